"""How an A/B request whose rows went to different versions is answered: one feature
report, rows numbered as the client sent them."""

from __future__ import annotations

import numpy as np

from conveyor.serving.app import _features
from conveyor.serving.endpoint import Answer
from conveyor.serving.enrichment import FeatureReport
from conveyor.serving.payload import Payload
from conveyor.serving.traffic import Assignment, Variant


def _part(rows: list[int], report: FeatureReport | None) -> tuple[Assignment, Answer]:
    answer = Answer(np.zeros(len(rows)), None, Payload(records=[{}] * len(rows)), report)
    return Assignment(Variant("a", None), rows), answer  # type: ignore[arg-type]


def test_feature_reports_of_split_rows_are_merged_in_request_numbering() -> None:
    merged = _features([
        _part([0, 2, 4], FeatureReport(["amount", "orders"], missing={"amount": [1]})),
        _part([1, 3], FeatureReport(["amount"], missing={"amount": [0, 1]}, stale={"orders": [1]})),
    ])
    assert merged == {"service_columns": ["amount", "orders"], "missing": {"amount": [1, 2, 3]},
                      "stale": {"orders": [3]}}
    assert _features([_part([0, 1], None)]) is None
