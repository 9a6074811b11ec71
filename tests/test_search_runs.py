"""Searching runs: the filter language, ordering, limits and errors with positions."""

from __future__ import annotations

import pytest

import conveyor
from conveyor.core.workspace import Workspace
from conveyor.errors import NotFound, ValidationError

pytestmark = pytest.mark.both_modes

MODELS = [("lgbm", 0.91, "risk"), ("lgbm", 0.85, "risk"), ("rf", 0.88, "growth"), ("lr", 0.75, "risk"), ("xgb", 0.95, "growth")]


@pytest.fixture
def populated(workspace: Workspace) -> Workspace:
    for index, (model, auc, team) in enumerate(MODELS):
        with conveyor.start_run(experiment="s", name=f"r{index}", params={"model": model, "depth": index * 3},
                                tags={"team": team}, workspace=workspace) as run:
            run.log_metric("auc", auc)
    with conveyor.start_run(experiment="s", name="no-metric", params={"model": "lgbm"}, workspace=workspace):
        pass
    return workspace


def names(frame) -> list[str]:  # noqa: ANN001
    return list(frame["run_name"])


def test_the_issue_example_filter_and_order(populated: Workspace) -> None:
    found = conveyor.search_runs(
        "s", filter="metrics.auc > 0.8 and params.model = 'lgbm' and tags.team = 'risk'",
        order_by=["metrics.auc DESC"], workspace=populated,
    )
    assert names(found) == ["r0", "r1"]
    assert list(found["metrics.auc"]) == [0.91, 0.85]


def test_or_in_and_parentheses(populated: Workspace) -> None:
    found = conveyor.search_runs(
        "s", filter="(params.model IN ('rf', 'xgb') or metrics.auc < 0.8) and tags.team != 'nobody'",
        order_by=["metrics.auc ASC"], workspace=populated,
    )
    assert names(found) == ["r3", "r2", "r4"]


def test_like_and_numeric_param_comparison(populated: Workspace) -> None:
    assert set(names(conveyor.search_runs("s", filter="params.model LIKE 'l%'", workspace=populated))) == {
        "r0", "r1", "r3", "no-metric"}
    # A numeric literal compares params as numbers; ordering by a param is by its text.
    found = conveyor.search_runs("s", filter="params.depth >= 9", order_by=["params.depth"], workspace=populated)
    assert names(found) == ["r4", "r3"]


def test_runs_without_the_order_metric_come_last(populated: Workspace) -> None:
    found = conveyor.search_runs("s", order_by=["metrics.auc DESC"], workspace=populated)
    assert names(found) == ["r4", "r0", "r2", "r1", "r3", "no-metric"]


def test_max_results_limits_after_ordering(populated: Workspace) -> None:
    found = conveyor.search_runs("s", order_by=["metrics.auc DESC"], max_results=2, workspace=populated)
    assert names(found) == ["r4", "r0"]


def test_attributes_can_be_filtered(populated: Workspace) -> None:
    assert len(conveyor.search_runs("s", filter="attributes.status = 'FINISHED'", workspace=populated)) == 6
    assert names(conveyor.search_runs("s", filter="attributes.run_name = 'r2'", workspace=populated)) == ["r2"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metrics.auc >", r"filter: unexpected end of input"),
        ("metrics.auc > 0.9 and", r"unexpected end of input"),
        ("metrics.auc > 0.9 params.model = 'x'", r"unexpected 'params.model' at position 19"),
        ("params.model = 'x'; DROP TABLE runs", r"unexpected ';' at position 19"),
        ("foo.bar = 1", r"unexpected 'foo.bar' at position 1"),
        ("metrics.auc = 'high'", r"metrics\.auc is numeric, compared with the string 'high'"),
        ("attributes.colour = 'red'", r"unknown attribute 'colour'"),
        ("metrics.auc LIKE '%'", r"LIKE does not apply to metric 'auc'"),
    ],
)
def test_a_malformed_filter_is_a_clear_error(populated: Workspace, text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        conveyor.search_runs("s", filter=text, workspace=populated)
    assert info.value.field == "filter"


def test_values_are_bound_not_spliced(populated: Workspace) -> None:
    found = conveyor.search_runs("s", filter="params.model = 'x\\' OR 1=1 --'", workspace=populated)
    assert found.empty
    assert len(conveyor.search_runs("s", workspace=populated)) == 6


def test_a_bad_order_by_names_the_position(populated: Workspace) -> None:
    with pytest.raises(ValidationError, match=r"order_by: unexpected 'DOWN' at position 13"):
        conveyor.search_runs("s", order_by=["metrics.auc DOWN"], workspace=populated)


def test_an_unknown_experiment_is_not_found(populated: Workspace) -> None:
    with pytest.raises(NotFound, match="experiment 'nope' does not exist"):
        conveyor.search_runs("nope", workspace=populated)


def test_max_results_must_be_positive(populated: Workspace) -> None:
    with pytest.raises(ValidationError, match="max_results"):
        conveyor.search_runs("s", max_results=0, workspace=populated)
