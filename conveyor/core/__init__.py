"""Shared core: configuration, metadata store, artifact store, workspace."""
