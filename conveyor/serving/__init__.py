"""Serving: real-time HTTP endpoints over registered models."""
