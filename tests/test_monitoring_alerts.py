"""Alerts on monitoring results, on both databases: a breach fires once and reaches a real
HTTP server signed, retried through 5xx and outages; clearing resolves; a cool-down holds a
new breach back; state survives a restart; rule files are refused naming the field."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from conveyor.core.db import MetadataStore
from conveyor.core.workspace import Workspace
from conveyor.errors import NotFound, ValidationError
from conveyor.monitoring.alerts import AlertRule, AlertService, load_rules
from conveyor.monitoring.alerts.outbox import Outbox
from conveyor.monitoring.tables import monitor_results, platform_events

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000
SECRET = "s3cret"
_window = itertools.count(1)


@dataclass
class Request:
    headers: Message
    body: bytes


@dataclass
class Receiver:
    """A local webhook endpoint: records every POST, answers the queued statuses, then 200."""

    port: int = 0
    requests: list[Request] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/alerts"

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(request.body) for request in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with receiver.lock:
                receiver.requests.append(Request(self.headers, body))
                status = receiver.answers.pop(0) if receiver.answers else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def alerts(workspace: Workspace) -> AlertService:
    return AlertService(workspace.metadata, workspace.default_actor)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def add_point(store: MetadataStore, value: float | None, *, model: str = "credit", metric: str = "model_quality.roc_auc",
              column: str = "", status: str = "ok", window_end: int | None = None, version: int = 3) -> int:
    """One monitoring result of a series; each call is a later window unless ``window_end`` is given."""
    check, statistic = metric.split(".", 1)
    end = window_end if window_end is not None else T0 + next(_window) * HOUR
    with store.write() as conn:
        conn.execute(insert(monitor_results).values(
            run_id="r" * 32, model=model, version=version, check=check, column=column, statistic=statistic,
            value=value, threshold=0.7, status=status, window_start=end - HOUR, window_end=end, rows=500,
            created_at=end))
    return end


def webhook_rule(url: str, **changes: Any) -> AlertRule:
    spec = {"name": "approval-drop", "model": "credit", "metric": "model_quality.roc_auc", "op": "<",
            "threshold": 0.7, "severity": "critical",
            "channels": [{"type": "webhook", "url": url, "secret": SECRET, "backoff_s": 0.01}]}
    return AlertRule.model_validate({**spec, **changes})


def events(found: list) -> list[tuple[str, str]]:
    return [(event.rule, event.event) for event in found]


def test_a_webhook_alert_fires_once_per_breach_resolves_and_fires_again(alerts: AlertService,
                                                                       receiver: Receiver) -> None:
    store = alerts.store
    alerts.put_rule(webhook_rule(receiver.url))
    end = add_point(store, 0.65)
    fired = alerts.evaluate("credit", now_ms=end)
    assert events(fired) == [("approval-drop", "firing")]
    assert (fired[0].value, fired[0].version, fired[0].window_end) == (0.65, 3, end)
    add_point(store, 0.6)
    assert alerts.evaluate("credit") == []
    assert len(receiver.requests) == 1

    first = receiver.requests[0]
    payload = json.loads(first.body)
    assert payload == {
        "rule": "approval-drop", "model": "credit", "version": 3, "metric": "model_quality.roc_auc", "column": None,
        "value": 0.65, "op": "<", "threshold": 0.7, "severity": "critical", "event": "firing",
        "window_start": payload["window_start"], "window_end": payload["window_end"], "fired_at": payload["fired_at"],
        "delivery": fired[0].deliveries[0],
    }
    assert payload["window_end"].endswith("Z") and payload["fired_at"] == payload["window_end"]
    assert first.headers["X-Conveyor-Event"] == "firing"
    assert first.headers["X-Conveyor-Delivery"] == payload["delivery"]
    expected = "sha256=" + hmac.new(SECRET.encode(), first.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(first.headers["X-Conveyor-Signature"], expected)

    add_point(store, 0.81)
    assert events(alerts.evaluate("credit")) == [("approval-drop", "resolved")]
    add_point(store, 0.9)
    assert alerts.evaluate("credit") == []
    add_point(store, 0.5)
    assert events(alerts.evaluate("credit")) == [("approval-drop", "firing")]
    assert [(p["event"], p["value"]) for p in receiver.payloads()] == [("firing", 0.65), ("resolved", 0.81),
                                                                       ("firing", 0.5)]
    assert [r.headers["X-Conveyor-Event"] for r in receiver.requests] == ["firing", "resolved", "firing"]
    delivered = alerts.deliveries(rule="approval-drop", model="credit")
    assert [(d.event, d.status, d.attempts, d.response_status) for d in delivered] == [
        ("firing", "delivered", 1, 200), ("resolved", "delivered", 1, 200), ("firing", "delivered", 1, 200)]
    assert [d.payload["delivery"] for d in delivered] == [d.id for d in delivered]
    assert delivered[0].channel.startswith("webhook:127.0.0.1:") and "hooks" not in delivered[0].channel


def test_a_breach_within_the_cooldown_of_the_last_firing_does_not_fire(alerts: AlertService,
                                                                        receiver: Receiver) -> None:
    store = alerts.store
    alerts.put_rule(webhook_rule(receiver.url, cooldown="1h"))
    add_point(store, 0.6)
    assert events(alerts.evaluate("credit", now_ms=T0)) == [("approval-drop", "firing")]
    add_point(store, 0.8)
    assert events(alerts.evaluate("credit", now_ms=T0 + 60_000)) == [("approval-drop", "resolved")]
    add_point(store, 0.55)
    held = alerts.evaluate("credit", now_ms=T0 + 30 * 60_000)
    assert [(e.event, e.value, e.deliveries) for e in held] == [("suppressed", 0.55, [])]
    assert [s.state for s in alerts.states()] == ["ok"]
    assert events(alerts.evaluate("credit", now_ms=T0 + HOUR)) == [("approval-drop", "firing")]
    assert [p["event"] for p in receiver.payloads()] == ["firing", "resolved", "firing"]


def test_a_5xx_answer_is_retried_until_delivered(alerts: AlertService, receiver: Receiver) -> None:
    alerts.put_rule(webhook_rule(receiver.url))
    receiver.answers = [500, 503]
    add_point(alerts.store, 0.5)
    fired = alerts.evaluate("credit")
    [delivery] = alerts.deliveries()
    assert (delivery.id, delivery.status, delivery.attempts, delivery.response_status) == (
        fired[0].deliveries[0], "delivered", 3, 200)
    assert delivery.delivered_at is not None and delivery.last_error is None
    assert len(receiver.requests) == 3
    assert {r.headers["X-Conveyor-Delivery"] for r in receiver.requests} == {delivery.id}


def test_a_4xx_answer_is_a_final_failure(alerts: AlertService, receiver: Receiver) -> None:
    alerts.put_rule(webhook_rule(receiver.url))
    receiver.answers = [404]
    add_point(alerts.store, 0.5)
    alerts.evaluate("credit")
    [delivery] = alerts.deliveries()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("failed", 1, 404)
    assert delivery.last_error.startswith("HTTP 404")
    assert len(receiver.requests) == 1


def test_a_delivery_to_a_down_server_is_sent_by_retry_pending_once_it_is_up(alerts: AlertService) -> None:
    port = free_port()  # nothing listens there yet
    url = f"http://127.0.0.1:{port}/hooks/alerts"
    channel = {"type": "webhook", "url": url, "secret": SECRET, "max_attempts": 2, "backoff_s": 0.01}
    alerts.put_rule(webhook_rule(url, channels=[channel]))
    add_point(alerts.store, 0.5)
    assert events(alerts.evaluate("credit")) == [("approval-drop", "firing")]
    [failed] = alerts.deliveries()
    assert (failed.status, failed.attempts, failed.response_status) == ("failed", 2, None)
    assert "ConnectError" in failed.last_error

    server = Receiver(port=port)
    try:
        [retried] = alerts.retry_pending()
        assert (retried.id, retried.status, retried.attempts, retried.response_status) == (
            failed.id, "delivered", 3, 200)
        assert [p["delivery"] for p in server.payloads()] == [failed.id]
        assert alerts.retry_pending() == []
    finally:
        server.close()


def test_undelivered_alerts_of_a_deleted_rule_are_discarded(alerts: AlertService) -> None:
    url = f"http://127.0.0.1:{free_port()}/hooks/alerts"
    alerts.put_rule(webhook_rule(url, channels=[{"type": "webhook", "url": url, "max_attempts": 1}]))
    add_point(alerts.store, 0.5)
    alerts.evaluate("credit")
    alerts.delete_rule("approval-drop")
    assert alerts.states() == []
    [discarded] = alerts.retry_pending()
    assert (discarded.status, discarded.attempts) == ("discarded", 1)
    assert discarded.last_error.startswith("rule 'approval-drop' no longer exists")
    assert alerts.retry_pending() == []


def test_a_delivery_left_pending_by_a_killed_process_is_sent_later(alerts: AlertService, receiver: Receiver,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    alerts.put_rule(webhook_rule(receiver.url))
    add_point(alerts.store, 0.5)
    with monkeypatch.context() as patch:
        patch.setattr(Outbox, "send", lambda self, ids, down: [])  # the process dies after the commit
        fired = alerts.evaluate("credit")
    assert [(d.status, d.attempts) for d in alerts.deliveries()] == [("pending", 0)]
    assert receiver.requests == []
    assert alerts.evaluate("credit") == []  # evaluate retries first; the alert does not fire twice
    assert [(d.id, d.status, d.attempts) for d in alerts.deliveries()] == [(fired[0].deliveries[0], "delivered", 1)]
    assert len(receiver.requests) == 1


def test_state_survives_a_restart(workspace: Workspace, receiver: Receiver) -> None:
    first = AlertService(workspace.metadata, workspace.default_actor)
    first.put_rule(webhook_rule(receiver.url))
    add_point(first.store, 0.5)
    assert events(first.evaluate("credit")) == [("approval-drop", "firing")]

    store = MetadataStore(workspace.metadata.url)
    try:
        restarted = AlertService(store, workspace.default_actor)
        assert restarted.evaluate("credit") == []
        [state] = restarted.states()
        assert (state.rule, state.model, state.state, state.value) == ("approval-drop", "credit", "firing", 0.5)
        add_point(store, 0.75)
        assert events(restarted.evaluate("credit")) == [("approval-drop", "resolved")]
    finally:
        store.dispose()
    assert [p["event"] for p in receiver.payloads()] == ["firing", "resolved"]


def test_the_event_channel_appends_platform_events(alerts: AlertService) -> None:
    alerts.put_rule(AlertRule(name="drift", model="*", metric="data_drift.psi", column="*", status="drift",
                              channels=[{"type": "event"}]))
    end = T0 + 100 * HOUR
    for column, status in (("age", "ok"), ("income", "drift"), ("zip", "drift")):
        add_point(alerts.store, 0.3, metric="data_drift.psi", column=column, status=status, window_end=end)
    assert events(alerts.evaluate("credit")) == [("drift", "firing")]
    for column in ("age", "income", "zip"):
        add_point(alerts.store, 0.01, metric="data_drift.psi", column=column, window_end=end + HOUR)
    assert events(alerts.evaluate("credit")) == [("drift", "resolved")]

    with alerts.store.read() as conn:
        rows = conn.execute(select(platform_events).order_by(platform_events.c.id)).all()
    assert [(row.type, row.subject) for row in rows] == [("alert.firing", "credit"), ("alert.resolved", "credit")]
    assert (rows[0].payload["column"], rows[0].payload["columns"], rows[0].payload["status"]) == (
        "income", ["income", "zip"], "drift")
    assert rows[1].payload["columns"] == [] and rows[1].payload["event"] == "resolved"
    assert [d.channel for d in alerts.deliveries()] == ["event", "event"]


def test_a_rule_for_every_model_keeps_a_state_per_model(alerts: AlertService) -> None:
    alerts.put_rule(AlertRule(name="slow", model="*", metric="operations.p95_latency_ms", op=">", threshold=250,
                              channels=[{"type": "event"}]))
    add_point(alerts.store, 400, model="credit", metric="operations.p95_latency_ms")
    add_point(alerts.store, 120, model="churn", metric="operations.p95_latency_ms")
    assert events(alerts.evaluate("credit")) == [("slow", "firing")]
    assert alerts.evaluate("churn") == []
    assert alerts.evaluate("fraud") == []  # no results: no state
    assert [(s.model, s.state, s.value) for s in alerts.states()] == [("churn", "ok", 120), ("credit", "firing", 400)]


@pytest.mark.parametrize("unusable", [{"value": None}, {"value": 0.1, "status": "insufficient"}])
def test_null_and_insufficient_points_leave_the_state_unchanged(alerts: AlertService, receiver: Receiver,
                                                                unusable: dict[str, Any]) -> None:
    alerts.put_rule(webhook_rule(receiver.url))
    add_point(alerts.store, **unusable)
    assert alerts.evaluate("credit") == [] and alerts.states() == []
    add_point(alerts.store, 0.5)
    alerts.evaluate("credit")
    add_point(alerts.store, **unusable)
    assert alerts.evaluate("credit") == []
    assert [(s.state, s.value) for s in alerts.states()] == [("firing", 0.5)]
    assert len(receiver.requests) == 1


def test_a_log_channel_writes_one_line(alerts: AlertService, caplog: pytest.LogCaptureFixture) -> None:
    alerts.put_rule(AlertRule(name="stale", model="credit", metric="freshness.age_hours", op=">=", threshold=24,
                              severity="critical"))
    add_point(alerts.store, 30, metric="freshness.age_hours")
    with caplog.at_level(logging.INFO, logger="conveyor.alerts"):
        alerts.evaluate("credit")
    [record] = [r for r in caplog.records if r.name == "conveyor.alerts"]
    assert record.levelno == logging.CRITICAL
    assert "alert firing: rule=stale model=credit version=3 metric=freshness.age_hours" in record.getMessage()
    assert "value=30.0 condition='>= 24.0'" in record.getMessage()
    assert [(d.channel, d.status) for d in alerts.deliveries()] == [("log", "delivered")]


def test_rules_are_stored_with_their_secret_but_never_show_it(alerts: AlertService, tmp_path: Path) -> None:
    rule = webhook_rule("https://hooks.example.com/T0/B1/xyz")
    assert alerts.put_rule(rule) == rule
    assert alerts.get_rule("approval-drop").channels[0].secret.get_secret_value() == SECRET
    assert alerts.get_rule("approval-drop").model_dump()["channels"][0]["secret"] == "**********"
    assert SECRET not in repr(alerts.list_rules())
    path = tmp_path / "alerts.yaml"
    path.write_text("rules:\n"
                    "  - {name: approval-drop, model: credit, metric: model_quality.roc_auc, op: '<', threshold: 0.6}\n"
                    "  - {name: drift, model: '*', metric: data_drift.share_drifted, op: '>', threshold: 0.3,\n"
                    "     cooldown: 1d, channels: [{type: event}]}\n")
    assert [r.name for r in alerts.apply_file(path)] == ["approval-drop", "drift"]
    assert [(r.name, r.threshold, r.cooldown_ms) for r in alerts.list_rules()] == [
        ("approval-drop", 0.6, 0), ("drift", 0.3, 86_400_000)]
    alerts.delete_rule("drift")
    with pytest.raises(NotFound) as caught:
        alerts.get_rule("drift")
    assert caught.value.field == "name"
    with pytest.raises(NotFound):
        alerts.delete_rule("drift")


GOOD = {"name": "approval-drop", "model": "credit", "metric": "model_quality.roc_auc", "op": "<", "threshold": 0.7}


@pytest.mark.parametrize(("change", "field", "problem"), [
    ({"op": "=<"}, "op", "Input should be"),
    ({"op": None}, "op", "required with threshold"),
    ({"threshold": None}, "threshold", "required with op '<'"),
    ({"status": "drift"}, "status", "either status or op"),
    ({"metric": "model_qualty.roc_auc"}, "metric", "unknown check 'model_qualty'"),
    ({"metric": "roc_auc"}, "metric", "expected check.statistic"),
    ({"cooldown": "an hour"}, "cooldown", "expected a duration"),
    ({"severity": "page"}, "severity", "Input should be"),
    ({"treshold": 0.7}, "treshold", "unknown field"),
    ({"channels": [{"type": "webhook", "url": "ftp://x"}]}, "channels[0].url", "http:// or https://"),
    ({"channels": [{"type": "webhook", "url": "http://x", "max_attempts": 0}]}, "channels[0].max_attempts",
     "greater than or equal to 1"),
    ({"channels": [{"type": "sms"}]}, "channels[0]", "does not match"),
    ({"channels": [{"type": "log"}, {"type": "log"}]}, "channels", "channels[1] repeats channels[0]"),
])
def test_a_bad_rule_file_names_the_file_rule_and_field(tmp_path: Path, change: dict[str, Any], field: str,
                                                       problem: str) -> None:
    path = tmp_path / "alerts.yaml"
    bad = {key: value for key, value in {**GOOD, **change}.items() if value is not None}
    path.write_text(json.dumps({"rules": [{**GOOD, "name": "ok-rule"}, bad]}))
    with pytest.raises(ValidationError) as caught:
        load_rules(path)
    assert caught.value.message.startswith(f"{path} rules[1] (approval-drop) {field}: ")
    assert problem in caught.value.message
    assert caught.value.field == field


def test_a_rule_file_without_rules_or_with_duplicates_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text("- name: x\n")
    with pytest.raises(ValidationError, match="expected a mapping with a list under 'rules'"):
        load_rules(path)
    path.write_text(json.dumps({"rules": [GOOD, GOOD]}))
    with pytest.raises(ValidationError) as caught:
        load_rules(path)
    assert caught.value.message == f"{path} rules[1] (approval-drop) name: duplicate rule name 'approval-drop'"
    path.write_text("rules: [\n")
    with pytest.raises(ValidationError, match="not valid YAML"):
        load_rules(path)
