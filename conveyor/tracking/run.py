"""The handle the SDK returns from ``conveyor.start_run``."""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pandas as pd

from conveyor.tracking.schemas import (
    ArtifactInfo,
    DatasetInput,
    RunData,
    RunInfo,
    RunStatus,
)

if TYPE_CHECKING:
    from conveyor.core.workspace import Workspace
    from conveyor.registry import LoggedModel
    from conveyor.registry.packaging import Signature
    from conveyor.tracking.service import TrackingService


class Run:
    """A running run. Use it as a context manager: leaving the block finishes the run,
    an exception marks it failed with the error recorded.

    Example:
        >>> with conveyor.start_run(experiment="credit", params={"C": 1.0}) as run:
        ...     run.log_metric("auc", 0.91, step=10)
    """

    def __init__(self, service: TrackingService, info: RunInfo, workspace: Workspace | None = None) -> None:
        self._service = service
        self._workspace = workspace
        self.info = info

    @property
    def id(self) -> str:
        """The run id."""
        return self.info.id

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, name={self.info.name!r})"

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if error is None:
            self.end()
        elif isinstance(error, KeyboardInterrupt):
            self.end(RunStatus.KILLED, "interrupted by the user")
        else:
            self.end(RunStatus.FAILED, "".join(traceback.format_exception(kind, error, tb))[-4000:])

    def end(self, status: RunStatus | str = RunStatus.FINISHED, error: str | None = None) -> None:
        """Finish the run with ``status`` (``FINISHED``, ``FAILED`` or ``KILLED``)."""
        self._service.end_run(self.id, RunStatus(status), error)

    def log_param(self, key: str, value: Any) -> None:
        """Record one parameter (immutable once logged)."""
        self._service.log_params(self.id, {key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record several parameters."""
        self._service.log_params(self.id, params)

    def log_metric(self, key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
        """Log one metric value; durable against a crash once this returns."""
        self._service.log_metrics(self.id, {key: value}, step, timestamp)

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None) -> None:
        """Log several metrics at one step."""
        self._service.log_metrics(self.id, metrics, step, timestamp)

    def log_batch(
        self,
        metrics: Iterable[tuple[str, float, int] | tuple[str, float, int, int | None]] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Log many ``(key, value, step[, timestamp_ms])`` points, params and tags at once."""
        if params:
            self._service.log_params(self.id, params)
        if tags:
            self._service.set_tags(self.id, tags)
        self._service.log_metric_points(self.id, (point if len(point) == 4 else (*point, None) for point in metrics))

    def set_tag(self, key: str, value: Any) -> None:
        """Set one tag (tags may change)."""
        self._service.set_tags(self.id, {key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set several tags."""
        self._service.set_tags(self.id, tags)

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> list[ArtifactInfo]:
        """Store a file or a folder as artifacts of the run."""
        return self._service.log_artifact(self.id, local_path, artifact_path)

    def log_table(self, frame: pd.DataFrame, artifact_path: str) -> ArtifactInfo:
        """Store a DataFrame as a Parquet artifact."""
        return self._service.log_table(self.id, frame, artifact_path)

    def log_figure(self, figure: Any, artifact_path: str) -> ArtifactInfo:
        """Store a matplotlib figure as an image artifact."""
        return self._service.log_figure(self.id, figure, artifact_path)

    def log_dataset(self, data: Any, name: str, context: str = "train", source: str | None = None) -> DatasetInput:
        """Record a dataset (DataFrame, Arrow table or path) the run consumed."""
        return self._service.log_dataset(self.id, data, name, context, source)

    def log_model(
        self,
        model: Any,
        name: str = "model",
        signature: Signature | None = None,
        input_example: pd.DataFrame | None = None,
        training_data: pd.DataFrame | None = None,
        target: pd.Series | None = None,
        registered_model_name: str | None = None,
        allow_pickle: bool = False,
        **options: Any,
    ) -> LoggedModel:
        """Store a model (scikit-learn, LightGBM, XGBoost, CatBoost or a ``PythonModel``)
        in a safe format, with its signature and a checksum of every file.

        Args:
            name: the artifact folder; the model's URI is ``runs:/RUN_ID/NAME``.
            signature: the input schema; inferred from ``training_data`` (preferred:
                it sees nulls and categorical levels) or ``input_example`` if omitted.
            training_data: the features the model was fitted on; also kept as the
                reference distribution for population stability.
            target: the labels, for the signature's outputs.
            registered_model_name: also register it as the next version of this model.
            allow_pickle: permit pickle for a model no safe format handles; loading it
                will need the same opt-in.
            options: ``flavor``, ``artifacts``, ``code_paths`` for ``PythonModel``.
        """
        from conveyor.registry.loading import log_and_register

        return log_and_register(
            self._service, self._workspace.registry if self._workspace else None, self.id, model, name,
            registered_model_name, signature=signature, input_example=input_example, training_data=training_data,
            target=target, allow_pickle=allow_pickle, **options,
        )

    def flush(self) -> None:
        """Make every logged metric visible in the metadata store now."""
        self._service.flush()

    def data(self) -> RunData:
        """The run as stored: info, params, metrics, tags, artifacts, inputs."""
        return self._service.get_run(self.id)
