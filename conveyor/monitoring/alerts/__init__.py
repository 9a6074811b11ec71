"""Alerting on monitoring results: rules, their evaluation, and delivery to channels.

Rules (``load_rules`` reads them from YAML) watch a series of ``monitor_results``;
``AlertService.evaluate(model)`` fires an alert once per breach and resolves it when the
series clears, delivering through an outbox to a log, signed webhooks or platform events.
"""

from conveyor.monitoring.alerts.engine import AlertEvent, AlertService
from conveyor.monitoring.alerts.rules import AlertRule, load_rules, parse_rule

__all__ = ["AlertEvent", "AlertRule", "AlertService", "load_rules", "parse_rule"]
