"""The validation contract: thresholds in, a self-contained report out.

A ``ValidationReport`` holds everything its HTML rendering needs (downsampled
curves included), so a report stored as JSON can be rendered again later without
the model or the data.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Task = Literal["classification", "regression"]


class ValidationThresholds(BaseModel):
    """Limits a candidate must respect to pass validation.

    ``max_degradation`` is the allowed drop of the primary metric against the
    champion: an absolute drop of ROC AUC for classification, a relative increase
    of RMSE for regression (0.01 = 1 % worse). It also scales the warn-level
    stability rule for segments and periods (see ``stability.py``).
    """

    model_config = ConfigDict(frozen=True)

    max_degradation: float = Field(0.01, ge=0)
    max_psi: float = Field(0.25, gt=0)
    min_rows: int = Field(100, ge=1)
    min_segment_rows: int = Field(30, ge=1)


class Check(BaseModel):
    """One rule and its outcome; a failed ``"fail"`` check fails the report."""

    model_config = ConfigDict(frozen=True)

    name: str
    passed: bool
    severity: Literal["fail", "warn"]
    detail: str


class CalibrationBin(BaseModel):
    """Rows whose predicted probability of the positive class falls in ``[lower, upper)``.

    The last bin includes 1.0. Means are ``None`` for an empty bin.
    """

    model_config = ConfigDict(frozen=True)

    lower: float
    upper: float
    count: int
    mean_predicted: float | None
    observed_rate: float | None


class RocCurve(BaseModel):
    """A ROC curve of one class against the rest, downsampled for plotting."""

    model_config = ConfigDict(frozen=True)

    label: str
    fpr: list[float]
    tpr: list[float]


class PredictionSample(BaseModel):
    """A fixed random sample of (actual, predicted) pairs for a regression plot."""

    model_config = ConfigDict(frozen=True)

    actual: list[float]
    predicted: list[float]


class Curves(BaseModel):
    """What the plots of a report need beyond its metrics.

    Classification fills the ROC curves (binary: the positive class only;
    multiclass: one per class against the rest); regression fills ``sample``.
    """

    model_config = ConfigDict(frozen=True)

    roc: list[RocCurve] = []
    champion_roc: list[RocCurve] = []
    sample: PredictionSample | None = None


class SegmentGroup(BaseModel):
    """Metrics on one value of a segment column, or one period.

    ``rows`` counts rows with a target. A metric undefined on the group (ROC AUC
    when only one class occurs) is ``None``. ``unstable`` marks a group the
    stability rule flags.
    """

    model_config = ConfigDict(frozen=True)

    value: str
    rows: int
    metrics: dict[str, float | None]
    unstable: bool = False


class SegmentResult(BaseModel):
    """Per-group metrics of one column, groups in display order."""

    model_config = ConfigDict(frozen=True)

    column: str
    groups: list[SegmentGroup]


class ValidationReport(BaseModel):
    """The outcome of validating one model version on a holdout frame.

    ``rows`` counts all rows of the data; metrics use the rows with a target.
    ``differences`` are candidate minus champion per metric both have.
    ``thresholds`` are the limits the checks applied. ``passed`` is true when every
    ``"fail"``-severity check passed. Load a stored
    report with ``ValidationReport.model_validate_json``.
    """

    model_config = ConfigDict(frozen=True)

    model: str
    version: int
    champion_version: int | None
    task: Task
    rows: int
    target: str
    created_at: int
    created_by: str
    thresholds: ValidationThresholds
    primary_metric: str
    metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    differences: dict[str, float] | None
    calibration: list[CalibrationBin] | None
    segments: SegmentResult | None
    periods: SegmentResult | None
    psi: dict[str, float] | None
    curves: Curves
    checks: list[Check]
    passed: bool

    def to_json(self) -> str:
        """The report as a JSON document."""
        return self.model_dump_json()

    def comparison(self) -> list[tuple[str, float | None, float | None, float | None]]:
        """(metric, candidate, champion, difference) per metric either model has, candidate's first."""
        champion = self.champion_metrics or {}
        differences = self.differences or {}
        names = [*self.metrics, *(name for name in champion if name not in self.metrics)]
        return [(name, self.metrics.get(name), champion.get(name), differences.get(name)) for name in names]
