"""Monitoring: drift, data and model quality, operations and business metrics on the
prediction log, stored as time series, with reports and alerts (``conveyor.drift`` for
two data sets, ``Workspace.monitoring`` for a served model)."""

from conveyor.monitoring.reporting import drift_report_data

__all__ = ["drift_report_data"]
