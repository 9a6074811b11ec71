"""The model server's Prometheus metrics, in a registry of its own (one per app).

Requests by model, version, variant and status; a latency histogram per version;
predicted rows; reload failures of the follower; and the prediction log's written and
dropped rows, read from the log when Prometheus scrapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from conveyor.serving.prediction_log import PredictionLog
    from conveyor.serving.traffic import Variant

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class _LogCollector(Collector):
    """The prediction log's counters, as they are at scrape time."""

    def __init__(self, log: PredictionLog) -> None:
        self.log = log

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        yield CounterMetricFamily("conveyor_prediction_log_written_rows", "Prediction rows written to the log.",
                                  value=self.log.written)
        yield CounterMetricFamily("conveyor_prediction_log_dropped_rows",
                                  "Prediction rows the log dropped (queue full or sink failing).", value=self.log.dropped)
        yield GaugeMetricFamily("conveyor_prediction_log_queued", "Records waiting for the log writer.",
                                value=self.log.queued)


class ServerMetrics:
    """Counters and histograms of one server process."""

    def __init__(self, log: PredictionLog | None) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("conveyor_requests", "Prediction requests by model, version, variant and HTTP status.",
                                ["model", "version", "variant", "status"], registry=self.registry)
        self.latency = Histogram("conveyor_request_seconds", "Time to answer a prediction request.",
                                 ["model", "version"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.rows = Counter("conveyor_predicted_rows", "Rows predicted.", ["model", "version"], registry=self.registry)
        self.reload_failures = Counter("conveyor_reload_failures", "Polls or loads of a new version that failed.",
                                       registry=self.registry)
        if log is not None:
            self.registry.register(_LogCollector(log))

    def count(self, variant: Variant, status: str) -> None:
        """One request of ``variant`` ended with ``status``."""
        endpoint = variant.endpoint
        self.requests.labels(endpoint.name, str(endpoint.version), variant.label, status).inc()

    def observe(self, variant: Variant, rows: int, seconds: float) -> None:
        """A successful answer of ``rows`` rows in ``seconds``."""
        endpoint = variant.endpoint
        version = str(endpoint.version)
        self.requests.labels(endpoint.name, version, variant.label, "200").inc()
        self.rows.labels(endpoint.name, version).inc(rows)
        self.latency.labels(endpoint.name, version).observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        """The text format body and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
