"""The SDK's public names are deliberate: adding or removing one changes this test."""

import conveyor


def test_public_names_are_pinned() -> None:
    assert sorted(conveyor.__all__) == [
        "Approval", "AuditVerification", "Conflict", "ConveyorError", "Entity", "Experiment", "Feature",
        "FeatureService", "FeatureStore", "FeatureView", "FileSource", "IntegrityError", "Job",
        "LoggedModel", "ModelVersion", "NotFound", "PermissionDenied", "Pipeline", "PipelineResult", "Policy", "PostgresSource", "Predictor", "PythonModel",
        "RegisteredModel", "RiskTier", "Run", "RunData", "RunStatus", "Signature", "SqlSource", "Unavailable",
        "ValidationError", "VersionStatus", "Workspace", "active_run", "apply_policy", "approve_model_version",
        "compare_runs", "create_experiment", "create_registered_model", "delete_alias", "drift", "get_metric_history",
        "get_model_version", "get_registered_model", "get_run", "infer_signature", "list_experiments", "list_jobs",
        "load_model", "log_metric", "log_metrics", "log_model", "log_param", "log_params", "model_card",
        "open_workspace", "register_model", "reject_model_version", "reproduce_run", "request_approval", "run_pipeline",
        "search_runs",
        "seed_everything", "set_alias", "set_tag", "start_run", "validate_model_version", "verify_audit_log",
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
