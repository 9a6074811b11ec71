"""Policies are checked on apply with errors naming the field, and schedule slots follow
their cron in its time zone, with the declared catch-up."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from automation_support import policy
from pipeline_support import write_pipeline

from conveyor.automation.policy import ScheduleTrigger, load_policy, parse_policy
from conveyor.automation.triggers import schedule, slots_between
from conveyor.errors import ValidationError

HOUR_MS = 3_600_000


@pytest.mark.parametrize("change, field, words", [
    ({"triggers": [{"type": "schedule", "cron": "every monday"}]}, "triggers[0].cron", "not a cron expression"),
    ({"triggers": [{"type": "schedule", "cron": "0 3 * * *", "timezone": "Mars/Olympus"}]}, "triggers[0].timezone",
     "not a time zone"),
    ({"triggers": [{"type": "drift", "over": "a week"}]}, "triggers[0].over", "expected a duration"),
    ({"triggers": [{"type": "quality", "below": 0.7, "min_labels": 0}]}, "triggers[0].min_labels", "greater than"),
    ({"triggers": [{"type": "staleness"}]}, "triggers[0]", "give 'max_age'"),
    ({"triggers": [{"type": "sometimes"}]}, "triggers[0]", "does not match any of the expected tags"),
    ({"triggers": []}, "triggers", "at least 1 item"),
    ({"watch": {"checks": [{"metric": "model_quality.roc_auc"}]}}, "watch.checks[0]", "exactly one of"),
    ({"limits": {"max_concurrent": 0}}, "limits.max_concurrent", "greater than or equal to 1"),
    ({"promotion": {"automatic_tiers": ["tiny"]}}, "promotion.automatic_tiers[0]", "'low', 'medium' or 'high'"),
    ({"retrian": {}}, "retrian", "unknown field"),
])
def test_a_bad_policy_is_refused_naming_the_field(tmp_path: Path, change: dict, field: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_policy(policy(tmp_path / "pipeline.yaml", **change))
    assert caught.value.field == field
    assert words in caught.value.message


def test_a_policy_whose_pipeline_registers_another_model_is_refused_on_apply(workspace) -> None:  # noqa: ANN001
    path = write_pipeline(Path(workspace.settings.workspace), register={"model": "other"})
    with pytest.raises(ValidationError, match="must register model 'cancer'") as caught:
        workspace.automation.apply_policy(policy(path))
    assert caught.value.field == "retrain.pipeline"
    assert workspace.automation.list_policies() == []


def test_a_policy_file_resolves_its_pipeline_from_its_folder(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text("name: p\nmodel: cancer\ntriggers: [{type: schedule, cron: '0 3 * * *'}]\n"
                                          "retrain: {pipeline: pipeline.yaml}\n")
    assert load_policy(tmp_path / "policy.yaml").retrain.pipeline == str(tmp_path / "pipeline.yaml")
    (tmp_path / "broken.yaml").write_text("name: p\n  model: [")
    with pytest.raises(ValidationError, match="broken.yaml line"):
        load_policy(tmp_path / "broken.yaml")


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).astimezone(timezone.utc).timestamp() * 1000)


def test_slots_follow_the_cron_in_its_time_zone_across_a_dst_change() -> None:
    trigger = ScheduleTrigger(type="schedule", cron="0 3 * * *", timezone="Europe/Paris")
    slots = slots_between(trigger, _ms("2024-03-29T12:00:00+00:00"), _ms("2024-04-01T12:00:00+00:00"))
    assert slots == [_ms("2024-03-30T03:00:00+01:00"), _ms("2024-03-31T03:00:00+02:00"),
                     _ms("2024-04-01T03:00:00+02:00")]


def test_the_first_evaluation_arms_a_schedule_and_late_slots_follow_the_catch_up() -> None:
    start = _ms("2024-01-01T00:30:00+00:00")
    skip = ScheduleTrigger(type="schedule", cron="0 * * * *", catchup="skip", grace="10m")
    once = skip.model_copy(update={"catchup": "once"})
    assert schedule(skip, None, start).run is None and schedule(skip, None, start).last_slot == start
    on_time = schedule(skip, start, start + HOUR_MS // 2 + 60_000)
    assert (on_time.run, on_time.missed) == (start + HOUR_MS // 2, 0)
    late = start + 3 * HOUR_MS
    assert (schedule(skip, start, late).run, schedule(skip, start, late).missed) == (None, 3)
    assert (schedule(once, start, late).run, schedule(once, start, late).missed) == (late - HOUR_MS // 2, 2)
