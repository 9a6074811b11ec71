"""Model risk management: validate a model version on holdout data, render reports and model cards.

Pure functions over DataFrames and duck-typed predictors (``predict``,
``predict_proba``, ``signature.outputs``); nothing here touches the database.
The registry and CLI call ``validate_model`` and the renderers, and store a
report with ``ValidationReport.to_json``.
"""

from conveyor.governance.validation.card import (
    ModelCardFacts,
    render_card_html,
    render_card_markdown,
)
from conveyor.governance.validation.profile import (
    CategoricalProfile,
    ColumnProfile,
    DataProfile,
    NumericProfile,
)
from conveyor.governance.validation.report_html import render_report_html
from conveyor.governance.validation.schemas import (
    CalibrationBin,
    Check,
    Curves,
    PredictionSample,
    RocCurve,
    SegmentGroup,
    SegmentResult,
    ValidationReport,
    ValidationThresholds,
)
from conveyor.governance.validation.validate import validate_model

__all__ = [
    "CalibrationBin",
    "CategoricalProfile",
    "Check",
    "ColumnProfile",
    "Curves",
    "DataProfile",
    "ModelCardFacts",
    "NumericProfile",
    "PredictionSample",
    "RocCurve",
    "SegmentGroup",
    "SegmentResult",
    "ValidationReport",
    "ValidationThresholds",
    "render_card_html",
    "render_card_markdown",
    "render_report_html",
    "validate_model",
]
