"""Ground truth by request id: the newest label wins on both databases, request bodies and
files are refused naming the field, line or row, and the CLI prints one line."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conveyor.core.workspace import Workspace
from conveyor.errors import NotFound, ValidationError
from conveyor.serving.feedback import Feedback, FeedbackService, parse_feedback_body
from conveyor.serving.payload import BadRequest
from conveyor.serving.prediction_log import new_request_id

A, B = "0190f3a1b2c3" + "a" * 20, "0190f3a1b2c4" + "b" * 20


@pytest.fixture
def feedback(workspace: Workspace) -> FeedbackService:
    return FeedbackService(workspace.metadata)


def labels(service: FeedbackService, request_id: str) -> list[tuple[int, object]]:
    return [(item.row, item.label) for item in service.get(request_id)]


def problems(body: object) -> list[tuple[str, str]]:
    with pytest.raises(BadRequest) as caught:
        parse_feedback_body(body if isinstance(body, bytes) else orjson.dumps(body))
    return [(problem.field, problem.message) for problem in caught.value.problems]


def test_the_newest_label_of_a_row_wins(feedback: FeedbackService) -> None:
    now = time.time()
    assert feedback.record([Feedback(request_id=A, label=0, time=now - 10),
                            Feedback(request_id=A, row=1, label="fraud", time=now - 10)]) == 2
    assert feedback.record([Feedback(request_id=A, label=1, time=now)]) == 1
    assert labels(feedback, A) == [(0, 1), (1, "fraud")]
    feedback.record([Feedback(request_id=A, label=0, time=now - 5)])  # an older label arriving late
    assert labels(feedback, A) == [(0, 1), (1, "fraud")]
    assert feedback.count() == 2


def test_a_label_given_twice_in_one_call_keeps_the_last(feedback: FeedbackService) -> None:
    now = time.time()
    assert feedback.record([Feedback(request_id=B, label=True, time=now),
                            Feedback(request_id=B.upper(), label=False, time=now)]) == 2
    assert labels(feedback, B) == [(0, False)]
    assert feedback.get(B)[0].time == pytest.approx(now, abs=0.001)


def test_labels_keep_their_json_type_and_unknown_requests_have_none(feedback: FeedbackService) -> None:
    feedback.record([Feedback(request_id=A, row=row, label=label) for row, label in enumerate([1, 2.5, "x", True])])
    assert labels(feedback, A) == [(0, 1), (1, 2.5), (2, "x"), (3, True)]
    assert feedback.get(new_request_id()) == []


def test_recording_an_invalid_item_names_its_position_and_field(feedback: FeedbackService) -> None:
    with pytest.raises(ValidationError, match=r"feedback\[1\]\.label: must be a number, string or bool, got list"):
        feedback.record([Feedback(request_id=A, label=1), Feedback(request_id=B, label=[1])])
    with pytest.raises(ValidationError, match=r"feedback\[0\]\.row: must be a non-negative integer, got -1"):
        feedback.record([Feedback(request_id=A, row=-1, label=1)])
    assert feedback.count() == 0


def test_a_body_holds_one_label_or_a_list_of_them() -> None:
    [single] = parse_feedback_body(orjson.dumps({"request_id": A.upper(), "label": 1}))
    assert (single.request_id, single.row, single.label) == (A, 0, 1)
    many = parse_feedback_body(orjson.dumps({"feedback": [{"request_id": A, "label": "no", "row": 2},
                                                          {"request_id": B, "label": False}]}))
    assert [(f.request_id, f.row, f.label) for f in many] == [(A, 2, "no"), (B, 0, False)]


def test_a_bad_body_names_every_offending_field() -> None:
    assert problems(b"{not json")[0][0] == "body"
    assert problems([1, 2])[0][0] == "body"
    assert problems({"label": 1}) == [("request_id", "is required")]
    assert problems({"request_id": "abc", "label": None}) == [
        ("request_id", "must be 32 hex characters (a request id the server answered with), got 'abc'"),
        ("label", "must not be null"),
    ]
    assert problems({"request_id": A, "label": 1, "lable": 2}) == [
        ("lable", "unknown field (expected request_id, label, row)")]
    assert problems({"feedback": []}) == [("feedback", "must be a non-empty list of objects")]
    found = problems({"feedback": [{"request_id": A, "label": 1}, "x", {"request_id": B},
                                   {"request_id": A, "label": {"a": 1}}, {"request_id": A, "label": 1, "row": "0"},
                                   {"request_id": "", "label": 1, "row": -1}]})
    assert [field for field, _ in found] == ["feedback[1]", "feedback[2].label", "feedback[3].label",
                                             "feedback[4].row", "feedback[5].request_id", "feedback[5].row"]
    assert dict(found)["feedback[3].label"] == "must be a number, string or bool, got dict"
    assert dict(found)["feedback[5].request_id"] == "must not be empty"


def test_a_csv_file_is_ingested_with_typed_labels(feedback: FeedbackService, tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(f"request_id,row,label\n{A},0,1\n{A},1,0\n{B},0,1\n")
    assert feedback.ingest_file(path) == 3
    assert labels(feedback, A) == [(0, 1), (1, 0)]
    assert labels(feedback, B) == [(0, 1)]


def test_a_parquet_file_with_other_column_names_and_no_row_column_is_ingested(
    feedback: FeedbackService, tmp_path: Path
) -> None:
    path = tmp_path / "labels.parquet"
    pq.write_table(pa.table({"rid": [A, B], "defaulted": ["yes", "no"]}), path)
    assert feedback.ingest_file(path, request_id_column="rid", label_column="defaulted") == 2
    assert labels(feedback, A) == [(0, "yes")] and labels(feedback, B) == [(0, "no")]


@pytest.mark.parametrize(
    ("content", "message", "field"),
    [
        ("id,label\n", r"labels\.csv: no column 'request_id' \(columns: id, label\)", "request_id"),
        (f"request_id,label\n{A},1\n,1\n", r"labels\.csv line 3, column 'request_id': must not be empty", "request_id"),
        (f"request_id,label\n{A},1\n{B},1\nxyz,1\n", r"line 4, column 'request_id': must be 32 hex characters",
         "request_id"),
        (f"request_id,label\n{A},\n", r"line 2, column 'label': must not be null", "label"),
        (f"request_id,label,row\n{A},1,-2\n", r"line 2, column 'row': must be a non-negative integer, got -2", "row"),
    ],
)
def test_a_bad_csv_file_is_refused_naming_the_line_and_column(
    feedback: FeedbackService, tmp_path: Path, content: str, message: str, field: str
) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(content)
    with pytest.raises(ValidationError, match=message) as caught:
        feedback.ingest_file(path)
    assert caught.value.field == field
    assert feedback.count() == 0


def test_a_bad_parquet_row_is_refused_naming_the_row(feedback: FeedbackService, tmp_path: Path) -> None:
    path = tmp_path / "labels.parquet"
    pq.write_table(pa.table({"request_id": [A, B, A], "label": [1.0, float("nan"), 0.0]}), path)
    with pytest.raises(ValidationError, match=r"labels\.parquet row 1, column 'label': must not be null"):
        feedback.ingest_file(path)
    assert feedback.count() == 0


def test_a_missing_or_unsupported_file_is_refused(feedback: FeedbackService, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="nothing.csv does not exist"):
        feedback.ingest_file(tmp_path / "nothing.csv")
    (tmp_path / "labels.json").write_text("{}")
    with pytest.raises(ValidationError, match=r"labels\.json: expected a \.csv or \.parquet file"):
        feedback.ingest_file(tmp_path / "labels.json")
    (tmp_path / "broken.parquet").write_text("not parquet")
    with pytest.raises(ValidationError, match=r"broken\.parquet: cannot read it as parquet"):
        feedback.ingest_file(tmp_path / "broken.parquet")


def test_the_cli_ingests_a_file_and_prints_one_line(
    workspace: Workspace, tmp_path: Path, run_cli  # noqa: ANN001
) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(f"request_id,label\n{A},1\n{B},0\n")
    result = run_cli(workspace, "feedback", "ingest", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"recorded 2 label(s) from {path}"
    assert labels(FeedbackService(workspace.metadata), B) == [(0, 0)]


def test_cli_errors_are_one_line_with_the_error_exit_code(
    workspace: Workspace, tmp_path: Path, run_cli  # noqa: ANN001
) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(f"request_id,label\n{A},1\n")
    wrong = run_cli(workspace, "feedback", "ingest", str(path), "--label-column", "outcome")
    assert wrong.returncode == 2
    assert wrong.stderr.strip().splitlines() == [f"error: {path}: no column 'outcome' (columns: request_id, label)"]
    missing = run_cli(workspace, "feedback", "ingest", str(tmp_path / "nothing.csv"))
    assert missing.returncode == 3 and len(missing.stderr.strip().splitlines()) == 1
