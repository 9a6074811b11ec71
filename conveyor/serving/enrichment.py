"""Online features for served models: a request may send only entity keys.

When the version being served was trained on a feature service, the signature's columns
that a request lacks and the service provides are read from the online store by the
request's join keys (request-time fields the client sends are kept as sent). Values the
store lacks or holds past their TTL are reported in the answer, feature by feature with
the rows concerned, and named in a 422 when the model cannot do without them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from conveyor.features.lookup import MISSING, OUTSIDE_TTL
from conveyor.serving.payload import Payload, Problem, refuse

if TYPE_CHECKING:
    from conveyor.features.store import FeatureStore


@dataclass
class FeatureReport:
    """What the online store gave a request: the fetched columns, and rows without a value."""

    fetched: list[str]
    missing: dict[str, list[int]] = field(default_factory=dict)
    stale: dict[str, list[int]] = field(default_factory=dict)

    def problems(self) -> list[Problem]:
        """One problem per feature the store could not give, for a refused request."""
        found = [Problem(name, f"no value in the online store for row(s) {rows}") for name, rows in self.missing.items()]
        return found + [Problem(name, f"online value older than its TTL for row(s) {rows}")
                        for name, rows in self.stale.items()]


class FeatureEnricher:
    """Fills a request's missing signature columns from one feature service."""

    def __init__(self, store: Callable[[], FeatureStore], service: str, inputs: list[str]) -> None:
        self._store_factory = store
        self._store: FeatureStore | None = None
        self._lock = threading.Lock()
        self.service = service
        self.inputs = set(inputs)
        self._columns: tuple[list[str], list[str]] | None = None

    def _open(self) -> tuple[FeatureStore, list[str], list[str]]:
        with self._lock:
            if self._store is None:
                self._store = self._store_factory()
                keys, outputs = self._store.online_columns(self.service)
                self._columns = keys, [name for name in outputs if name in self.inputs]
        keys, wanted = self._columns or ([], [])
        return self._store, keys, wanted

    def enrich(self, payload: Payload) -> tuple[Payload, FeatureReport | None]:
        """The payload with fetched columns added, and the report; unchanged (and no report)
        when every row already carries every column the model reads from the service.

        Raises:
            BadRequest: a row lacks a join key the lookup needs.
        """
        store, keys, wanted = self._open()
        records = payload.as_records()
        absent = [name for name in wanted if any(name not in row for row in records)]
        if not absent:
            return payload, None
        for key in keys:
            if any(row.get(key) is None for row in records):
                raise refuse(key, f"every row needs this join key: feature service {self.service!r} looks values up by it")
        found = store.get_online_features(self.service, [{key: row[key] for key in keys} for row in records])
        enriched = [{**{name: found.values[name][i] for name in absent}, **row} for i, row in enumerate(records)]
        report = FeatureReport(absent)
        for name in absent:
            statuses = found.statuses[name]
            for status, bucket in ((MISSING, report.missing), (OUTSIDE_TTL, report.stale)):
                rows = [i for i, value in enumerate(statuses) if value == status and name not in records[i]]
                if rows:
                    bucket[name] = rows
        return Payload(records=enriched), report
