"""``conveyor policies``, ``conveyor agent`` and ``conveyor jobs``: thin over ``AutomationService``."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.markup import escape

from conveyor.automation.agent import Agent, Tick
from conveyor.automation.jobs import (
    CANCELLED,
    FAILED,
    RUNNING,
    STATUSES,
    SUCCEEDED,
    Job,
)
from conveyor.automation.policy import Policy
from conveyor.automation.service import AutomationService
from conveyor.cli_support import JsonFlag, console, print_json, print_records, workspace
from conveyor.core.clock import SYSTEM_CLOCK, Clock, SimulatedClock, iso
from conveyor.core.db.base import now_ms
from conveyor.errors import ValidationError
from conveyor.monitoring.windows import parse_duration, parse_time

policies_app = typer.Typer(help="Retraining policies: when a model is retrained, promoted, watched, rolled back.",
                           no_args_is_help=True)
agent_app = typer.Typer(help="The automation agent: evaluates policies and runs their jobs.", no_args_is_help=True)
jobs_app = typer.Typer(help="Automation jobs: retrains and monitoring runs, with their outcome.", no_args_is_help=True)

PolicyName = Annotated[str, typer.Argument(help="Policy name.")]
JobId = Annotated[str, typer.Argument(help="Job id, or a unique prefix of at least 6 characters.")]

ALIVE_S = 90  # an agent whose last heartbeat is older than this is shown as not alive
TIME_FIELDS = ("lease_expires_at", "scheduled_for", "created_at", "started_at", "finished_at")


def _iso(ms: int | None) -> str:
    """Epoch milliseconds as ISO 8601 UTC; empty for None."""
    return "" if ms is None else iso(ms / 1000)


def _short(text: str | None, width: int = 70) -> str:
    """``text`` on one line, cut to ``width`` characters."""
    line = " ".join((text or "").split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _trigger_text(trigger: Any) -> str:
    """A trigger in a few words: ``schedule '0 3 * * 1'``, ``drift dataset_drift.share_drifted > 0.3 over 7d``."""
    if trigger.type == "schedule":
        return f"schedule '{trigger.cron}'" + ("" if trigger.timezone == "UTC" else f" {trigger.timezone}")
    if trigger.type == "drift":
        column = f"[{trigger.column}]" if trigger.column else ""
        return f"drift {trigger.metric}{column} > {trigger.above} over {trigger.over}"
    if trigger.type == "quality":
        return f"quality {trigger.metric} < {trigger.below} over {trigger.over}"
    if trigger.type == "staleness":
        parts = ([f"age > {trigger.max_age}"] if trigger.max_age else []) + (["feature views"] if trigger.feature_views
                                                                               else [])
        return f"staleness ({' or '.join(parts)})"
    return f"new_data >= {trigger.min_rows:,} rows"


def _triggers(policy: Policy) -> str:
    return ", ".join(_trigger_text(trigger) for trigger in policy.triggers)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """A stored policy row with its spec re-serialised, so webhook secrets are masked."""
    return {**row, "spec": Policy.model_validate(row["spec"]).model_dump(mode="json")}


def _state_lines(row: dict[str, Any]) -> list[str]:
    """Where a policy's evaluation stands, one fact a line."""
    state = row.get("state") or {}
    champion = state.get("champion")
    lines = [f"paused: {'yes' if row.get('paused') else 'no'}",
             f"updated: {_iso(row.get('updated_at'))} by {row.get('updated_by', '')}",
             "champion seen: " + (f"version {champion['version']} since {_iso(champion['since'])}" if champion
                                  else "none yet"),
             f"last training: {_iso(state.get('last_training')) or 'never'}"]
    for key, slot in state.get("slots", {}).items():
        cron, _, zone = key.partition(":")[2].rpartition(":")
        lines.append(f"schedule '{cron}' ({zone}): last slot {_iso(slot)}")
    if state.get("monitor_slot") is not None:
        lines.append(f"last monitoring slot: {_iso(state['monitor_slot'])}")
    return lines


# Policies


@policies_app.command("apply")
def apply(ctx: typer.Context, file: Annotated[Path, typer.Argument(help="Policy YAML file.")]) -> None:
    """Check a policy and its pipeline, then store it; its evaluation state survives a change."""
    policy = workspace(ctx).automation.apply_policy(file)
    console.print(f"applied policy [bold]{escape(policy.name)}[/] (model {escape(policy.model)}): "
                  f"{escape(_triggers(policy))}", highlight=False, soft_wrap=True)


@policies_app.command("list")
def list_policies(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every policy: its triggers, whether it is paused, the champion it saw and its last training."""
    rows = [_public(row) for row in workspace(ctx).automation.list_policies()]
    if as_json:
        print_json(rows)
        return
    table = []
    for row in rows:
        state = row["state"] or {}
        table.append({"name": row["name"], "model": row["model"],
                      "triggers": _triggers(Policy.model_validate(row["spec"])), "paused": row["paused"],
                      "champion seen": (state.get("champion") or {}).get("version"),
                      "last training": _iso(state.get("last_training"))})
    print_records(table, f"Policies ({len(table)})",
                  ["name", "model", "triggers", "paused", "champion seen", "last training"])


@policies_app.command("show")
def show_policy(ctx: typer.Context, name: PolicyName, as_json: JsonFlag = False) -> None:
    """A stored policy as YAML (its state as comments, so the output can be applied again) or JSON;
    webhook secrets are masked."""
    service = workspace(ctx).automation
    spec = service.get_policy(name).model_dump(mode="json")
    row = next((r for r in service.list_policies() if r["name"] == name), {"state": {}})
    if as_json:
        print_json({"policy": spec, "paused": row.get("paused"), "state": row["state"],
                    "created_at": row.get("created_at"), "updated_at": row.get("updated_at"),
                    "updated_by": row.get("updated_by")})
        return
    typer.echo("\n".join(f"# {line}" for line in _state_lines(row)))
    typer.echo(yaml.safe_dump(spec, sort_keys=False).rstrip())


@policies_app.command("delete")
def delete_policy(ctx: typer.Context, name: PolicyName) -> None:
    """Remove a policy; its jobs and events stay as history."""
    workspace(ctx).automation.delete_policy(name)
    console.print(f"deleted policy [bold]{escape(name)}[/]", highlight=False)


@policies_app.command("pause")
def pause(ctx: typer.Context, name: PolicyName) -> None:
    """Stop evaluating a policy: no new jobs until it is resumed (running ones finish)."""
    workspace(ctx).automation.set_paused(name, True)
    console.print(f"paused policy [bold]{escape(name)}[/]", highlight=False)


@policies_app.command("resume")
def resume(ctx: typer.Context, name: PolicyName) -> None:
    """Evaluate a paused policy again."""
    workspace(ctx).automation.set_paused(name, False)
    console.print(f"resumed policy [bold]{escape(name)}[/]", highlight=False)


# The agent


class _StopRequest:
    """The handler of SIGINT and SIGTERM: no tick starts after the first signal and the
    running jobs are drained. It only sets a flag (safe at any point of a tick) and puts
    the previous handlers back, so a second signal has its usual effect (a second SIGTERM
    ends the process; its jobs are taken over once their leases expire)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self.previous: dict[int, Any] = {}

    def install(self) -> None:
        """Handle the signals until ``restore``."""
        self.previous = {sig: signal.signal(sig, self) for sig in self.SIGNALS}

    def restore(self) -> None:
        """Put the previous handlers back."""
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def __call__(self, signum: int, frame: Any) -> None:
        self.requested = True
        self.restore()

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` of real time, in short slices, so a signal ends the wait at once."""
        deadline = time.monotonic() + seconds
        while not self.requested and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.2))


def _clock(simulate: bool, start: str | None, speed: float | None) -> tuple[Clock, float]:
    """The agent clock and its speed (clock seconds per real second)."""
    if not simulate:
        for option, value in (("--from", start), ("--speed", speed)):
            if value is not None:
                raise ValidationError(f"{option} needs --simulate", field=option.removeprefix("--"))
        return SYSTEM_CLOCK, 1.0
    origin = parse_time(start, "from") / 1000 if start is not None else time.time()
    clock = SimulatedClock(origin, 86_400.0 if speed is None else speed)
    return clock, clock.speed


def _job_text(job: Job) -> str:
    """A finished job in a few words: id, kind, status, outcome and error."""
    style = "red" if job.status == FAILED else "green" if job.status == SUCCEEDED else "yellow"
    outcome = f": {job.result['outcome']}" if job.result.get("outcome") else ""
    error = f" ({_short(job.error, 120)})" if job.error else ""
    return f"{job.id[:12]} {job.kind} [{style}]{job.status}[/]{escape(outcome + error)}"


def _print_tick(service: AutomationService, tick: Tick) -> None:
    """One line for a tick that did something, stamped with the agent clock."""
    parts = []
    for job_id in tick.created:
        job = service.get_job(job_id)
        parts.append(f"created {job.kind} job {job.id[:12]} ({escape(job.trigger)})")
    for job_id in tick.skipped:
        job = service.get_job(job_id)
        parts.append(f"skipped {escape(job.trigger)} retrain ({escape(_short(job.error, 120))})")
    parts += [f"started {job_id[:12]}" for job_id in tick.started]
    parts += [f"finished {_job_text(job)}" for job in tick.finished]
    parts += [f"[yellow]{escape(_short(note, 160))}[/]" for note in tick.notes]
    if parts:
        console.print(f"[dim]{_iso(tick.at)}[/]  " + "; ".join(parts), highlight=False, soft_wrap=True)


def _loop(service: AutomationService, agent: Agent, stop: _StopRequest, speed: float, until: float | None) -> int:
    """Tick every interval of the agent clock until a signal or ``until``; returns the ticks run.

    The loop is the CLI's own rather than ``Agent.run``, which has no per-tick hook and
    sleeps a whole interval whatever happens. ``Agent.stop`` is not called either: it also
    ends the heartbeat, and the jobs drained afterwards would lose their leases.
    """
    ticks = 0
    while not stop.requested:
        _print_tick(service, agent.tick())
        ticks += 1
        if until is not None and agent.clock.now() >= until:
            break
        stop.pause(agent.interval_s / speed)
    return ticks


@agent_app.command("run")
def run_agent(
    ctx: typer.Context,
    runner: Annotated[str, typer.Option(help="Where jobs run: thread, process or ray.")] = "thread",
    workers: Annotated[int, typer.Option(help="Jobs this agent runs at once.")] = 1,
    interval: Annotated[str, typer.Option(help="Agent-clock time between ticks: 30s, 5m, 1h.")] = "30s",
    lease: Annotated[str, typer.Option(help="Real time a claimed job stays this agent's without a heartbeat.")] = "60s",
    policies: Annotated[list[str] | None, typer.Option("--policy", help="Evaluate only this policy (repeatable).")] = None,
    once: Annotated[bool, typer.Option("--once", help="One tick, then wait for the jobs it started.")] = False,
    simulate: Annotated[bool, typer.Option("--simulate", help="Run on a simulated clock (see --from, --speed).")] = False,
    start: Annotated[str | None, typer.Option("--from", help="Simulated start (ISO 8601); default: now.")] = None,
    speed: Annotated[float | None, typer.Option(help="Simulated seconds per real second; default 86400 "
                                                     "(a day a second).")] = None,
    until: Annotated[str | None, typer.Option(help="Stop once the agent clock reaches this time (ISO 8601).")] = None,
) -> None:
    """Evaluate policies and run their jobs until Ctrl-C or SIGTERM (the running jobs finish first)."""
    clock, rate = _clock(simulate, start, speed)
    interval_s = parse_duration(interval, "interval") / 1000
    lease_s = parse_duration(lease, "lease") / 1000
    end = parse_time(until, "until") / 1000 if until is not None else None
    if once and end is not None:
        raise ValidationError("--until has no effect with --once: give one of them", field="until")
    service = workspace(ctx).automation
    for name in policies or []:
        service.get_policy(name)
    agent = service.agent(clock, runner, workers, interval_s, lease_s, policies=policies or None)
    stop = _StopRequest()
    stop.install()
    console.print(f"agent [bold]{agent.id}[/]: {agent.runner.name} runner, {workers} worker(s), every {interval} on "
                  f"the {clock!r}; policies: {', '.join(policies) if policies else 'all'}", highlight=False,
                  soft_wrap=True)
    ticks = 0
    try:
        if once:
            _print_tick(service, agent.tick())
            ticks = 1
        else:
            ticks = _loop(service, agent, stop, rate, end)
        running = [job for job in service.list_jobs(status=RUNNING) if job.lease_owner == agent.id]
        if running:
            console.print(f"waiting for {len(running)} running job(s)", highlight=False)
        finished = agent.drain()
        if finished:
            console.print(f"[dim]{_iso(agent.now())}[/]  finished " + "; ".join(_job_text(job) for job in finished),
                          highlight=False, soft_wrap=True)
    finally:
        stop.restore()
        agent.close()
    console.print(f"agent {agent.id} stopped after {ticks} tick(s) at {_iso(agent.now())}", highlight=False)


@agent_app.command("status")
def agent_status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every agent that registered (newest first), whether it is alive, and job counts per status."""
    service = workspace(ctx).automation
    now = now_ms()
    agents = []
    for row in service.agents():
        age = round((now - row["heartbeat_at"]) / 1000, 1)
        agents.append({**row, "heartbeat_age_s": age, "alive": row["stopped_at"] is None and age < ALIVE_S})
    counts = service.job_counts()
    if as_json:
        print_json({"agents": agents, "jobs": counts})
        return
    rows = [{**row, "started": row["started_at"], "clock now": _iso(row["clock_now"])} for row in agents]
    print_records(rows, f"Agents ({len(rows)})", ["id", "host", "pid", "runner", "clock", "started", "clock now",
                                                   "heartbeat_age_s", "alive", "running_jobs", "ticks"],
                  times=("started",))
    console.print("jobs: " + (", ".join(f"{counts[s]} {s}" for s in STATUSES if counts.get(s)) or "none"),
                  highlight=False)


# Jobs


@jobs_app.command("list")
def list_jobs(
    ctx: typer.Context,
    policy: Annotated[str | None, typer.Option(help="Only this policy's jobs.")] = None,
    status: Annotated[str | None, typer.Option(help=f"Only jobs in this status: {', '.join(STATUSES)}.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only jobs of this kind: retrain or monitor.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Jobs, newest first: why each was created, where it stands and how it ended."""
    if limit < 1:
        raise ValidationError(f"--limit must be at least 1, got {limit}", field="limit")
    jobs = workspace(ctx).automation.list_jobs(policy, status, kind, limit)
    if as_json:
        print_json([job.model_dump(mode="json") for job in jobs])
        return
    rows = [{"id": job.id[:12], "policy": job.policy, "kind": job.kind, "trigger": job.trigger, "status": job.status,
             "attempts": f"{job.attempts}/{job.max_attempts}", "scheduled_for": job.scheduled_for,
             "outcome": job.result.get("outcome", ""), "reason": _short(job.error or job.reason, 60)} for job in jobs]
    print_records(rows, f"Jobs ({len(rows)})", ["id", "policy", "kind", "trigger", "status", "attempts",
                                                 "scheduled_for", "outcome", "reason"], times=("scheduled_for",))


@jobs_app.command("show")
def show_job(ctx: typer.Context, job_id: JobId, as_json: JsonFlag = False) -> None:
    """Every field of a job; times on the agent clock (the lease's in real time), the result as JSON."""
    job = workspace(ctx).automation.get_job(job_id)
    if as_json:
        print_json(job.model_dump(mode="json"))
        return
    for name, value in job.model_dump(mode="json").items():
        if name == "result":
            continue
        text = _iso(value) if name in TIME_FIELDS else "" if value is None else str(value)
        console.print(f"[bold]{name:<17}[/] {escape(text)}", highlight=False, soft_wrap=True)
    console.print("[bold]result[/]", highlight=False)
    typer.echo(json.dumps(job.result, indent=2, default=str))


@jobs_app.command("cancel")
def cancel_job(ctx: typer.Context, job_id: JobId) -> None:
    """Cancel a pending or waiting job at once, a running one at its next step."""
    job = workspace(ctx).automation.cancel_job(job_id)
    if job.status == CANCELLED:
        console.print(f"job {job.id[:12]} cancelled", highlight=False)
    else:
        console.print(f"job {job.id[:12]} is {job.status}: cancellation requested, it stops at its next step",
                      highlight=False)


@jobs_app.command("retry")
def retry_job(ctx: typer.Context, job_id: JobId) -> None:
    """Queue a failed or cancelled job again, with its attempts reset."""
    job = workspace(ctx).automation.retry_job(job_id)
    console.print(f"job {job.id[:12]} is {job.status} again (attempts reset)", highlight=False)
