"""Model cards: what the platform knows about a model version, as Markdown or HTML.

The card is generated, never hand-written, so it cannot drift from the registry.
A fact the platform lacks is printed as "Not documented — ..." rather than left
out: a reviewer should see the gap, not miss it.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

from markdown_it import MarkdownIt
from pydantic import BaseModel

from conveyor.governance.validation.formatting import MISSING, number, timestamp
from conveyor.governance.validation.schemas import ValidationReport

MAX_LEVELS = 10


class ModelCardFacts(BaseModel):
    """Everything a model card shows; only ``name`` and ``version`` are required.

    ``signature_inputs`` rows have ``name``, ``type``, ``nullable``, ``levels``;
    ``training_data`` rows ``name``, ``digest``, ``rows``, ``source``, ``context``;
    ``approvals`` rows ``actor``, ``decision``, ``reason``, ``at`` (milliseconds or text).
    """

    name: str
    version: int
    description: str | None = None
    owner_team: str | None = None
    task_type: str | None = None
    risk_tier: str | None = None
    intended_use: str | None = None
    limitations: str | None = None
    created_by: str | None = None
    created_at: int | None = None
    status: str | None = None
    run_id: str | None = None
    git_commit: str | None = None
    flavor: str | None = None
    libraries: dict[str, str] = {}
    signature_inputs: list[dict[str, Any]] = []
    training_data: list[dict[str, Any]] = []
    run_metrics: dict[str, float] = {}
    params: dict[str, str] = {}
    validation: ValidationReport | None = None
    approvals: list[dict[str, Any]] = []
    aliases: list[str] = []


def _cell(value: Any) -> str:
    """A value as one Markdown table cell: backslashes and pipes escaped, on one line."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, float):
        return number(value)
    if isinstance(value, list | tuple):
        shown = ", ".join(str(v) for v in value[:MAX_LEVELS])
        value = shown + (f", … ({len(value)} in all)" if len(value) > MAX_LEVELS else "")
    text = " ".join(str(value).split())
    return text.replace("\\", "\\\\").replace("|", "\\|")


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _gap(what: str) -> str:
    return f"_Not documented — {what}._"


def _section(title: str, *parts: str) -> str:
    return "\n\n".join([f"## {title}", *parts])


def _title(facts: ModelCardFacts) -> str:
    status = facts.status or "status unknown"
    made = f"Created {timestamp(facts.created_at)}" + (f" by {facts.created_by}" if facts.created_by else "")
    return f"# {facts.name} — version {facts.version} ({status})\n\n{made}."


def _overview(facts: ModelCardFacts) -> str:
    missing = "Not documented"
    rows = [
        ("Description", facts.description or missing),
        ("Owner team", facts.owner_team or missing),
        ("Task", facts.task_type or missing),
        ("Risk tier", facts.risk_tier or missing),
        ("Aliases", ", ".join(facts.aliases) or "none"),
    ]
    return _section("Overview", _table(("Fact", "Value"), rows))


def _training_data(facts: ModelCardFacts) -> str:
    if not facts.training_data:
        return _section("Training data", _gap("no dataset was logged with the training run"))
    keys = ("name", "rows", "source", "context", "digest")
    return _section("Training data", _table([k.capitalize() for k in keys],
                                            [[item.get(k) for k in keys] for item in facts.training_data]))


def _inputs(facts: ModelCardFacts) -> str:
    if not facts.signature_inputs:
        return _section("Inputs", _gap("the version has no signature"))
    keys = ("name", "type", "nullable", "levels")
    return _section("Inputs", _table([k.capitalize() for k in keys],
                                     [[item.get(k) for k in keys] for item in facts.signature_inputs]))


def _performance(facts: ModelCardFacts) -> str:
    run = (_table(("Metric", "Value"), sorted(facts.run_metrics.items())) if facts.run_metrics
           else "No metrics were logged with the training run.")
    report = facts.validation
    if report is None:
        held_out = _gap("the version has not been validated on holdout data")
    else:
        champion = f"Champion v{report.champion_version}" if report.champion_version is not None else "Champion"
        held_out = (f"On {report.rows} holdout rows (target `{report.target}`), "
                    f"primary metric {report.primary_metric}:\n\n"
                    + _table(("Metric", f"Candidate v{report.version}", champion, "Difference"), report.comparison()))
    return _section("Performance", "### Training run", run, "### Validation", held_out)


def _validation(facts: ModelCardFacts) -> str:
    report = facts.validation
    if report is None:
        return _section("Validation result", _gap("the version has not been validated"))
    verdict = "PASSED" if report.passed else "FAILED"
    by = f" by {report.created_by}" if report.created_by else ""
    rows = [(c.name, c.severity, "pass" if c.passed else c.severity, c.detail) for c in report.checks]
    return _section("Validation result", f"**{verdict}** — validated {timestamp(report.created_at)}{by}.",
                    _table(("Check", "Severity", "Result", "Detail"), rows))


def _approvals(facts: ModelCardFacts) -> str:
    if not facts.approvals:
        return _section("Approvals", "No approvals recorded.")
    rows = [(a.get("actor"), a.get("decision"), a.get("reason"), timestamp(a.get("at"))) for a in facts.approvals]
    return _section("Approvals", _table(("Actor", "Decision", "Reason", "At"), rows))


def _provenance(facts: ModelCardFacts) -> str:
    rows = [("Run id", facts.run_id), ("Git commit", facts.git_commit), ("Flavor", facts.flavor)]
    parts = [_table(("Fact", "Value"), rows)]
    if facts.libraries:
        parts += ["### Libraries", _table(("Library", "Version"), sorted(facts.libraries.items()))]
    if facts.params:
        parts += ["### Training parameters", _table(("Parameter", "Value"), sorted(facts.params.items()))]
    return _section("Provenance", *parts)


def render_card_markdown(facts: ModelCardFacts) -> str:
    """The model card as Markdown: overview, intended use, training data, inputs,
    performance, validation result, approvals, limitations and provenance."""
    sections = [
        _title(facts),
        _overview(facts),
        _section("Intended use", facts.intended_use or _gap("say which decisions the model supports, and for whom")),
        _training_data(facts),
        _inputs(facts),
        _performance(facts),
        _validation(facts),
        _approvals(facts),
        _section("Limitations", facts.limitations or _gap("say where the model must not be used and what it gets wrong")),
        _provenance(facts),
    ]
    return "\n\n".join(sections) + "\n"


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
  body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; max-width: 960px;
         margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }}
  h2 {{ border-bottom: 1px solid #ddd; padding-bottom: .2rem; margin-top: 2rem; }}
  table {{ border-collapse: collapse; margin: .6rem 0; font-size: .92rem; }}
  th, td {{ border: 1px solid #ddd; padding: .3rem .6rem; text-align: left; vertical-align: top; }}
  th {{ background: #f4f6f8; }}
  code {{ background: #f4f6f8; padding: 0 .2rem; }}
</style>
</head>
<body>
{body}</body>
</html>
"""


def render_card_html(facts: ModelCardFacts) -> str:
    """The Markdown card rendered to a small styled HTML page; raw HTML in any fact is escaped."""
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(render_card_markdown(facts))
    return PAGE.format(title=html.escape(f"Model card: {facts.name} v{facts.version}"), body=body)
