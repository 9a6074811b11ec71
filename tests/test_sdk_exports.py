"""The SDK's public names are deliberate: adding or removing one changes this test."""

import conveyor


def test_public_names_are_pinned() -> None:
    assert sorted(conveyor.__all__) == [
        "Conflict", "ConveyorError", "Experiment", "IntegrityError", "NotFound", "PermissionDenied", "Run",
        "RunData", "RunStatus", "Unavailable", "ValidationError", "Workspace", "active_run", "compare_runs",
        "create_experiment", "get_metric_history", "get_run", "list_experiments", "log_metric", "log_metrics",
        "log_param", "log_params", "open_workspace", "search_runs", "seed_everything", "set_tag", "start_run",
    ]
    for name in conveyor.__all__:
        assert hasattr(conveyor, name), name


def test_module_level_logging_uses_the_active_run(tmp_path) -> None:  # noqa: ANN001
    workspace = conveyor.open_workspace(tmp_path)
    with conveyor.start_run(workspace=workspace) as run:
        conveyor.log_param("alpha", 0.5)
        conveyor.log_metrics({"auc": 0.8}, step=1)
        conveyor.set_tag("team", "risk")
    data = conveyor.get_run(run.id, workspace=workspace)
    assert (data.params, data.metrics, data.tags) == ({"alpha": "0.5"}, {"auc": 0.8}, {"team": "risk"})
    assert conveyor.active_run() is None
