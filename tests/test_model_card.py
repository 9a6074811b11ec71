"""Model cards in Markdown and HTML."""

from __future__ import annotations

import pytest

from conveyor.governance.validation import (
    Check,
    Curves,
    ModelCardFacts,
    ValidationReport,
    ValidationThresholds,
    render_card_html,
    render_card_markdown,
)

SECTIONS = [
    "## Overview",
    "## Intended use",
    "## Training data",
    "## Inputs",
    "## Performance",
    "## Validation result",
    "## Approvals",
    "## Limitations",
    "## Provenance",
]


def _report(passed: bool = True) -> ValidationReport:
    return ValidationReport(
        model="credit", version=3, champion_version=2, task="classification", rows=5000, target="default",
        created_at=1_717_243_200_000, created_by="ana", thresholds=ValidationThresholds(), primary_metric="roc_auc",
        metrics={"roc_auc": 0.81, "brier": 0.12}, champion_metrics={"roc_auc": 0.79, "brier": 0.13},
        differences={"roc_auc": 0.02, "brier": -0.01}, calibration=None, segments=None, periods=None, psi=None,
        curves=Curves(),
        checks=[
            Check(name="min_rows", passed=True, severity="fail", detail="5000 rows with a target"),
            Check(name="champion_comparison", passed=passed, severity="fail", detail="roc_auc 0.81 vs 0.79"),
        ],
        passed=passed,
    )


def _facts(**changes: object) -> ModelCardFacts:
    facts = ModelCardFacts(
        name="credit", version=3, description="Scores loan applications.", owner_team="risk-models",
        task_type="classification", risk_tier="high", intended_use="Pre-screening of consumer loans.",
        limitations="Not for business loans.", created_by="ana", created_at=1_717_243_200_000, status="staging",
        run_id="r-123", git_commit="abc123", flavor="sklearn", libraries={"scikit-learn": "1.9.1"},
        signature_inputs=[{"name": "income", "type": "double", "nullable": False, "levels": None},
                          {"name": "region", "type": "string", "nullable": True, "levels": ["north", "south"]}],
        training_data=[{"name": "loans-2024", "digest": "d41d8cd9", "rows": 120000, "source": "s3://loans/2024",
                        "context": "training"}],
        run_metrics={"val_auc": 0.8123}, params={"C": "1.0"}, validation=_report(),
        approvals=[{"actor": "bob", "decision": "approved", "reason": "meets policy", "at": 1_717_329_600_000}],
        aliases=["challenger"],
    )
    return facts.model_copy(update=changes)


def test_the_markdown_card_has_every_section_and_the_facts() -> None:
    card = render_card_markdown(_facts())
    assert card.startswith("# credit — version 3 (staging)")
    for header in SECTIONS:
        assert header in card
    assert "| Risk tier | high |" in card
    assert "| loans-2024 | 120000 | s3://loans/2024 | training | d41d8cd9 |" in card
    assert "| region | string | True | north, south |" in card
    assert "| roc_auc | 0.81 | 0.79 | 0.02 |" in card
    assert "**PASSED**" in card and "| champion_comparison | fail | pass |" in card
    assert "| bob | approved | meets policy | 2024-06-02 12:00 UTC |" in card
    assert "| scikit-learn | 1.9.1 |" in card and "challenger" in card


def test_missing_facts_are_marked_not_documented() -> None:
    card = render_card_markdown(ModelCardFacts(name="credit", version=1))
    limitations = card.split("## Limitations")[1].split("##")[0]
    assert "Not documented" in limitations
    assert "| Risk tier | Not documented |" in card
    assert "_Not documented — the version has not been validated._" in card
    assert "No approvals recorded." in card


def test_a_failed_validation_reads_failed() -> None:
    card = render_card_markdown(_facts(validation=_report(passed=False)))
    assert "**FAILED**" in card and "| champion_comparison | fail | fail |" in card


def test_pipes_in_table_cells_are_escaped() -> None:
    card = render_card_markdown(_facts(description="Scores A | B applicants\nnightly"))
    assert "| Description | Scores A \\| B applicants nightly |" in card
    page = render_card_html(_facts(description="Scores A | B applicants"))
    assert "<td>Scores A | B applicants</td>" in page


def test_the_html_card_renders_tables_and_escapes_raw_html() -> None:
    page = render_card_html(_facts(limitations="<script>alert(1)</script>"))
    assert page.startswith("<!DOCTYPE html>")
    assert "<table>" in page and "<h2>Provenance</h2>" in page
    assert "<script>" not in page and "&lt;script&gt;" in page


@pytest.mark.parametrize("header", SECTIONS)
def test_every_section_is_a_heading_in_html(header: str) -> None:
    assert f"<h2>{header.removeprefix('## ')}</h2>" in render_card_html(_facts())
