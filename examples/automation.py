"""The closed loop at the end of the demo, on simulated time: the champion serves months of
later applications over HTTP while an automation agent runs the retraining policy
credit-risk-policy.yaml. Monitoring sees the inputs drift and, as labels come back, the
ROC AUC fall; the agent retrains on recent labelled applications, the pipeline's gate
checks the candidate against the champion, a validator approves it, the agent promotes
it and the server hot-swaps it. Then a person promotes a bad candidate by hand and the
agent's watch rolls it back. A table of the automation events and a plot of quality over
time (reports/automation.png) end it.

One ManualClock drives the agent and the server's prediction log, so a simulated week
takes seconds. The data set has no later loans: the later months serve real loans again,
each once and only to a version that never trained on it, with an induced shift (see
``later_months``).
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import uvicorn
from rich.console import Console
from rich.table import Table

import conveyor
from conveyor.automation.agent import Agent
from conveyor.automation.events import AutomationEvent
from conveyor.automation.jobs import WAITING, Job
from conveyor.automation.policy import DriftTrigger, Policy, QualityTrigger
from conveyor.core.clock import ManualClock
from conveyor.core.workspace import Workspace
from conveyor.serving.app import create_app
from conveyor.serving.feedback import Feedback

MODEL = "credit-risk"
POLICY = Path("credit-risk-policy.yaml")
PIPELINE = "credit-risk.yaml"
DATA = Path("data")
REPORTS = Path("reports")
HISTORY = DATA / "labels-history.parquet"  # read by the agent's retrains with data/labels-week*.parquet
SEED = 7
WEEK = 7 * 86_400
MAX_WEEKS = 18
FRESH_WEEKS = 9           # weeks of the champion's test loans, served while version 1 is champion
PER_WEEK = 150            # applications a week while version 1 serves, one HTTP request each
LATER_PER_WEEK = 200      # applications a week once a retrained version serves
LABEL_DELAY = 3           # weeks until a loan's outcome is known
SHIFT_WEEKS = (1, 3)      # the applicants' inputs shift over weeks 2-3 (see stressed)
FRAUD = 0.4               # share of good unverified-income loans that go bad once the fraud wave is at full strength
FRAUD_WEEKS = (1, 4)      # the fraud wave grows over weeks 2-4
ARCHIVE_DAYS = 120        # loans older than this are outside any retrain's window (retrain.window is 90d)


@dataclass
class Week:
    """One simulated week: the applications served, who answered, and when."""

    number: int
    applications: pd.DataFrame
    versions: set[int] = field(default_factory=set)
    request_ids: list[str] = field(default_factory=list)


def closed_loop(builder: Workspace, validator: Workspace, loans: pd.DataFrame, holdout: pd.DataFrame,
                console: Console) -> None:
    """Run the simulated weeks, then print the events and jobs and write reports/automation.png."""
    if builder.automation.find_policy("credit-risk-retrain") is not None:
        console.print("the closed loop already ran in this workspace: rm -rf .conveyor reports data to run it again")
        return
    started = time.perf_counter()
    # Monitoring's weekly windows start on epoch weeks (Thursday 00:00 UTC): start at the second
    # such boundary, so the demo's earlier predictions are in no window the triggers read.
    start = (int(time.time()) // WEEK + 2) * WEEK
    clock = ManualClock(start)
    common = common_levels(loans)
    archive = loans[loans["event_timestamp"] < loans["event_timestamp"].max() - pd.Timedelta(days=ARCHIVE_DAYS)]
    fresh = later_months(common(holdout), SEED, FRESH_WEEKS, PER_WEEK)
    older = later_months(common(archive), SEED + 1, MAX_WEEKS, LATER_PER_WEEK)
    write_history(fresh + older, set(common(loans)["customer_id"]))
    until = holdout["event_timestamp"].min().date().isoformat()  # the first model's training period ends here
    policy = builder.automation.apply_policy(POLICY)
    console.print(
        f"\n[bold]Closed loop[/] in simulated time from {day(start)}: Dana applies policy [bold]{policy.name}[/] "
        f"({POLICY}) and an agent runs it as user 'agent'. Each week {PER_WEEK} applications come in over HTTP "
        f"({LATER_PER_WEEK} once a retrained version serves) and the outcomes of those {LABEL_DELAY} weeks old come "
        "back.\nThe data set has no later loans: each week serves real loans again, each once and only to a version "
        "that never trained on it (states and sub-grades under 1% of the loans left out), with an induced, seeded "
        f"shift: from week {SHIFT_WEEKS[0] + 1} rates rise and applicants borrow more, use more of their credit and "
        f"ask for more of it (the inputs drift), and a fraud wave makes up to {FRAUD:.0%} of the good loans without "
        "income verification go bad (only the labels show it).",
        highlight=False,
    )
    settings = builder.settings
    agent = Workspace(settings.model_copy(update={"user": "agent"})).automation.agent(clock=clock, lease_s=120)
    serving_settings = settings.serving.model_copy(update={"poll_interval_s": 0.2})
    server_workspace = Workspace(settings.model_copy(update={"serving": serving_settings}))
    model = conveyor.load_model(f"models:/{MODEL}@champion", workspace=builder)
    columns = [spec.name for spec in model.signature.inputs]  # every version has the same inputs
    weeks: list[Week] = []
    story = Story(builder, start)
    bad_week, last_week = 0, MAX_WEEKS  # the bad candidate comes once a promotion passed its watch
    with quiet_logs(), serving(server_workspace, clock) as server:
        for number in range(1, MAX_WEEKS + 1):
            champion = builder.registry.get_registered_model(MODEL).aliases["champion"]
            if number > last_week:
                break
            if champion == 1 and number > FRESH_WEEKS:
                console.print(f"no retrained champion after {FRESH_WEEKS} weeks, and the champion's test loans are "
                              "used up: the loop ends here")
                break
            if number == bad_week:
                with console.status(f"Dana retrains on the loans before {until}"):
                    story.say(promote_bad_candidate(builder, validator, server, clock, story, until))
                    settle(agent)  # the agent sees the alias move: a watch starts
                story.happened(server, clock)
                champion = builder.registry.get_registered_model(MODEL).aliases["champion"]
                last_week = number + LABEL_DELAY + 1  # its first labels, then a week after the watch decided
            week = serve_week(server, clock, start, number, (fresh if champion == 1 else older)[number - 1], columns)
            weeks.append(week)
            clock.set(start + number * WEEK)
            record_arrivals(builder, clock, weeks)
            with console.status(f"week {number}: the agent monitors and evaluates the policy"):
                settle(agent)
                story.happened(server, clock)
                for job in builder.automation.list_jobs(status=WAITING, kind="retrain"):
                    story.say(approve(validator, job))
                    settle(agent)  # the agent promotes the approved candidate
                    story.happened(server, clock)
            if "watch.passed" in story.types and not bad_week:
                bad_week = number + 1
            console.print(story.line(week), highlight=False)
        agent.close()
        with console.status("monitoring each version once more on its weeks, with every label that came back"):
            complete_record(builder, start, weeks)
    summary(builder, start, console)
    plot(builder, start, policy, story.marks, console)
    console.print(f"closed loop: {len(weeks)} simulated weeks in {time.perf_counter() - started:.0f} s")



# The later months


def later_months(pool: pd.DataFrame, seed: int, count: int, per_week: int) -> list[pd.DataFrame]:
    """``count`` weeks of ``per_week`` applications drawn without replacement from ``pool``,
    each a new applicant, with two induced changes that grow over the first weeks: the
    applicants' inputs shift as rates rise (``stressed``), and a fraud wave turns good loans
    without income verification bad. Only the labels show the fraud, and the champion,
    which learnt that unverified applicants are the safer ones, ranks those loans low."""
    rng = np.random.default_rng(seed)
    unverified = (pool["verification_status"] == "Not_Verified").to_numpy()
    left = np.ones(len(pool), dtype=bool)
    weeks = []
    for number in range(1, count + 1):
        picked = rng.choice(np.flatnonzero(left), size=per_week, replace=False)
        left[picked] = False
        rows = stressed(pool.iloc[picked].reset_index(drop=True), ramp(number, SHIFT_WEEKS), rng)
        fraud = unverified[picked] & (rows["bad"].to_numpy() == 0)
        fraud &= rng.random(per_week) < FRAUD * ramp(number, FRAUD_WEEKS)
        rows["loan_id"] = rows["customer_id"]
        rows["customer_id"] = [f"S{seed}W{number:02d}N{index:03d}" for index in range(per_week)]
        rows["bad"] = np.where(fraud, 1, rows["bad"])
        weeks.append(rows)
    return weeks


def stressed(rows: pd.DataFrame, shift: float, rng: np.random.Generator) -> pd.DataFrame:
    """Applications as rates rise (``shift`` from 0 to 1): interest rates 2 points higher,
    amounts 40% larger, credit lines 15 points more used, more recent credit inquiries."""
    inquiries = rng.poisson(1.5 * shift, len(rows))
    return rows.assign(
        int_rate=(rows["int_rate"] + 2 * shift).round(2),
        funded_amnt=(rows["funded_amnt"] * (1 + 0.4 * shift) / 25).round().astype("int64") * 25,
        revol_util=(rows["revol_util"] + 15 * shift).round(1),
        all_util=(rows["all_util"] + round(15 * shift)).astype("int64"),
        inq_last_6mths=rows["inq_last_6mths"] + inquiries,
        inq_last_12m=rows["inq_last_12m"] + inquiries,
    )


def common_levels(loans: pd.DataFrame) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """A filter keeping the applicants whose state and sub-grade make up at least 1% of the
    loans. A model refuses a category it never saw, and a version retrained on a few
    hundred recent loans has not seen the rarest states and grades."""
    levels = {column: set((shares := loans[column].value_counts(normalize=True))[shares >= 0.01].index)
              for column in ("addr_state", "sub_grade")}
    return lambda frame: frame[np.logical_and.reduce([frame[c].isin(known) for c, known in levels.items()])]


def ramp(number: int, weeks: tuple[int, int]) -> float:
    """How far a change has gone in week ``number``: 0 until ``weeks[0]``, 1 from ``weeks[1]``."""
    first, full = weeks
    return float(np.clip((number - first) / (full - first), 0.0, 1.0))


def write_history(weeks: list[pd.DataFrame], common: set[str]) -> None:
    """The labelled history the agent's retrains read: the loans of data/labels.parquet with
    common levels (like the later months), without those the later months serve again
    (none may be a candidate's training row and test row)."""
    labels = pd.read_parquet(DATA / "labels.parquet")
    keep = labels["customer_id"].isin(common) & ~labels["customer_id"].isin(set(pd.concat(weeks)["loan_id"]))
    labels[keep].to_parquet(HISTORY, index=False)
    for stale in DATA.glob("labels-week*.parquet"):
        stale.unlink()


# Serving


@contextlib.contextmanager
def serving(workspace: Workspace, clock: ManualClock) -> Iterator[Server]:
    """credit-risk@champion served over HTTP in this process, its prediction log stamped by
    the simulated clock; it follows the alias every 0.2 s."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(workspace, [f"{MODEL}@champion"], clock=clock)
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    client = Server(port, app.state.server.log)
    try:
        yield client
    finally:
        client.connection.close()
        server.should_exit = True
        thread.join()


class Server:
    """A keep-alive client of the demo's server (reconnecting after an idle close)."""

    def __init__(self, port: int, log: Any) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port)
        self.log = log

    def call(self, method: str, path: str, body: bytes | None = None) -> dict[str, Any]:
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body, {"content-type": "application/json"} if body else {})
                return orjson.loads(self.connection.getresponse().read())
            except (ConnectionError, http.client.HTTPException):
                self.connection.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def served_version(self) -> int:
        return self.call("GET", f"/v1/models/{MODEL}")["version"]


def serve_week(server: Server, clock: ManualClock, start: float, number: int, applications: pd.DataFrame,
               columns: list[str]) -> Week:
    """The week's applications as one-row requests spread over the week, each logged at its
    simulated time (which becomes the application's event time)."""
    first = start + (number - 1) * WEEK
    times = first + (np.arange(len(applications)) + 0.5) * WEEK / len(applications)
    stamps = pd.to_datetime(times, unit="s").astype("datetime64[us]")
    report_age = (applications["event_timestamp"] - applications["pulled_at"]).to_numpy()  # as for the original loan
    week = Week(number, applications.assign(event_timestamp=stamps, pulled_at=stamps - report_age))
    for when, record in zip(times, applications[columns].to_dict(orient="records")):
        clock.set(float(when))
        answer = server.call("POST", f"/v1/models/{MODEL}/predict",
                             orjson.dumps({"instances": [record]}, option=orjson.OPT_SERIALIZE_NUMPY))
        if "version" not in answer:
            raise RuntimeError(f"the server refused week {number}'s request {record}: {answer}")
        week.versions.add(answer["version"])
        week.request_ids.append(answer["request_id"])
    server.log.flush()
    return week


def wait_for_swap(server: Server, workspace: Workspace, timeout: float = 15.0) -> int:
    """Wait until the server answers with the version the champion alias points at."""
    expected = workspace.registry.get_registered_model(MODEL).aliases["champion"]
    deadline = time.monotonic() + timeout
    while (version := server.served_version()) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return version


# What arrives each week


def record_arrivals(workspace: Workspace, clock: ManualClock, weeks: list[Week]) -> None:
    """The week's applications land in the feature sources (the application and the credit
    report pulled for it), and the outcomes of the applications LABEL_DELAY weeks old come
    back: as feedback on their predictions (monitoring's quality metrics) and as a labelled
    entity file (the agent's retrains)."""
    rows = weeks[-1].applications
    for name in ("applications", "credit_history"):
        path = DATA / f"{name}.parquet"
        current = pd.read_parquet(path)
        pd.concat([current, rows[current.columns]], ignore_index=True).to_parquet(path, index=False)
    if len(weeks) <= LABEL_DELAY:
        return
    week = weeks[-1 - LABEL_DELAY]
    labels = week.applications
    workspace.monitoring.feedback.record([Feedback(request_id=request_id, label=int(bad), time=clock.now())
                                          for request_id, bad in zip(week.request_ids, labels["bad"])])
    labels[["customer_id", "event_timestamp", "bad"]].to_parquet(DATA / f"labels-week{week.number:02d}.parquet",
                                                                 index=False)


# The agent and the people around it


def settle(agent: Agent) -> None:
    """Tick until a tick starts no job: the monitoring job first, then what its figures trigger."""
    for _ in range(5):
        tick = agent.tick()
        agent.drain()
        if not tick.started:
            return


def approve(validator: Workspace, job: Job) -> list[str]:
    """Val reviews a retrained candidate waiting for approval and approves it."""
    version = job.result["version"]
    roc_auc = job.result.get("metrics", {}).get("roc_auc", float("nan"))
    validator.registry.approve(MODEL, version, f"retrained by policy job {job.id[:12]}: ROC AUC {roc_auc:.3f} on the "
                               "newest labelled applications, where it beats the champion")
    return [f"val approved v{version}"]


def promote_bad_candidate(builder: Workspace, validator: Workspace, server: Server, clock: ManualClock,
                          story: Story, until: str) -> list[str]:
    """Scenario 2: Dana retrains on the labelled history before ``until`` only (the first
    model's training period: many rows, all from before the rate rise and the fraud wave)
    and skips the pipeline's gate. The version validates on its own test rows, which are
    from that period too, val approves it and Dana makes it champion by hand."""
    overrides = [f"dataset.entities.path={HISTORY}", f"dataset.until={until}", "gate=null", "tune.n_trials=4"]
    result = conveyor.run_pipeline(PIPELINE, overrides, workspace=builder)
    version = result.model_version
    if version is None:
        return [f"Dana's candidate was not registered: {'; '.join(result.notes)}"]
    status = builder.registry.get_model_version(MODEL, version).status.value
    if status != "validated":
        report, _ = builder.registry.validation_report(MODEL, version)
        failed = "; ".join(c.detail for c in report.checks if not c.passed and c.severity == "fail")
        return [f"Dana's candidate v{version} failed validation ({failed}): nothing to promote"]
    builder.registry.request_approval(MODEL, version, "retrained on the whole history before the new months")
    validator.registry.approve(MODEL, version, "validation passed: it beats the champion on its test rows")
    builder.registry.set_alias(MODEL, "champion", version)
    served = wait_for_swap(server, builder)
    story.marks.append((clock.now(), f"v{version} made champion by hand"))
    return [f"[bold]Dana[/] retrained on loans before {until} only, skipping the gate: v{version} (ROC AUC "
            f"{result.metrics['roc_auc']:.3f} on test rows of that period) passed validation, val approved it, Dana "
            f"made it champion by hand; the server answers with v{served}"]


def complete_record(workspace: Workspace, start: float, weeks: list[Week]) -> None:
    """Monitor each version once more on the weeks it served, with every label that came
    back: the agent monitors the version the alias points at, so the labels that arrive
    after a version was replaced are not in its figures."""
    for version in sorted({v for week in weeks for v in week.versions}):
        served = [week.number for week in weeks if version in week.versions]
        for first, last in runs_of(served):
            since, until = (datetime.fromtimestamp(start + n * WEEK, timezone.utc) for n in (first - 1, last))
            workspace.monitoring.run(f"{MODEL}/{version}", window="7d", since=since, until=until)


def runs_of(numbers: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs of sorted numbers as (first, last): [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    runs: list[tuple[int, int]] = []
    for number in numbers:
        if runs and runs[-1][1] == number - 1:
            runs[-1] = (runs[-1][0], number)
        else:
            runs.append((number, number))
    return runs


# Reporting


class Story:
    """What each week's line says (automation events as they happen, what people did, the
    server following the alias) and the moments the plot marks."""

    def __init__(self, workspace: Workspace, start: float) -> None:
        self.workspace = workspace
        self.start = start
        events = workspace.automation.list_events(MODEL)
        self.seen = events[-1].id if events else 0
        self.types: set[str] = set()
        self.lines: list[str] = []
        self.marks: list[tuple[float, str]] = []

    def say(self, lines: list[str]) -> None:
        self.lines += lines

    def happened(self, server: Server, clock: ManualClock) -> None:
        """The automation events since the last call; after a promotion or a rollback, wait
        until the server answers with the new champion."""
        for event in self.workspace.automation.list_events(MODEL, after_id=self.seen):
            self.seen = event.id
            self.types.add(event.type)
            if text := describe(event):
                self.lines.append(text)
            if event.type in ("promoted", "rolled_back"):
                version = wait_for_swap(server, self.workspace)
                self.lines.append(f"the server answers with v{version}")
                self.marks.append((clock.now(), f"{'promoted' if event.type == 'promoted' else 'rolled back to'} "
                                                f"v{version}"))

    def line(self, week: Week) -> str:
        """One line: the week, the version that answered, its drift, the ROC AUC of the week
        whose labels just came back, and what happened."""
        end = pd.Timestamp((self.start + week.number * WEEK) * 1e9, tz="UTC")
        drift = window_value(self.workspace, "dataset_drift.share_drifted", end, week.versions)
        versions = "/".join(f"v{version}" for version in sorted(week.versions))
        text = f"week {week.number:2d} {day(self.start + (week.number - 1) * WEEK)}  {versions}"
        text += f"  drift {drift:.2f}" if drift is not None else "  drift  -  "
        if week.number > LABEL_DELAY:
            auc = window_value(self.workspace, "model_quality.roc_auc", end - pd.Timedelta(weeks=LABEL_DELAY), None)
            text += f"  ROC AUC of week {week.number - LABEL_DELAY:2d}: {auc:.3f}" if auc is not None else ""
        said, self.lines = self.lines, []
        return text + ("  | " + "; ".join(said) if said else "")


def window_value(workspace: Workspace, metric: str, end: pd.Timestamp, versions: set[int] | None) -> float | None:
    history = workspace.monitoring.history(MODEL, metric)
    found = history[(history["window_end"] == end) & history["value"].notna()]
    if versions is not None:
        found = found[found["version"].isin(versions)]
    return None if found.empty else float(found["value"].iloc[-1])


def describe(event: AutomationEvent) -> str:
    payload = event.payload
    if event.type == "trigger":
        return f"[bold]{payload['trigger']} trigger[/] → retrain job"
    if event.type == "job.waiting":
        return f"candidate v{payload['version']} beat the champion, awaits approval"
    if event.type == "job.succeeded" and payload.get("outcome") == "not_promoted":
        return f"candidate not promoted ({payload['summary']})"
    if event.type == "promoted":
        return f"[bold green]agent promoted v{payload['version']}[/]"
    if event.type == "watch.passed":
        return f"v{payload['version']} passed its watch"
    if event.type == "rolled_back":
        return f"[bold red]watch breached: agent rolled back v{payload['version']} → v{payload['restored']}[/]"
    if event.type == "job.failed":
        return f"[red]{payload['summary']}[/]"
    return ""


def summary(workspace: Workspace, start: float, console: Console) -> None:
    """The automation events (monitoring jobs aside) and the jobs by kind and outcome."""
    table = Table(title=f"Automation events of {MODEL} by simulated week", title_justify="left")
    for column in ("week", "event", "what happened"):
        table.add_column(column, no_wrap=column != "what happened")
    for event in workspace.automation.list_events(MODEL):
        if event.type == "job.started" and event.payload["summary"].startswith("monitor job"):
            continue
        at = pd.Timestamp(event.payload["at"]).timestamp()
        table.add_row(f"{(at - start) / WEEK:.0f}", event.type, event.payload["summary"])
    console.print(table)
    counts: dict[str, int] = {}
    for job in workspace.automation.list_jobs(limit=1000):
        key = f"{job.kind} {job.status}" + (f" ({job.result['outcome']})" if job.result.get("outcome") else "")
        counts[key] = counts.get(key, 0) + 1
    console.print("jobs: " + ", ".join(f"{count} {key}" for key, count in sorted(counts.items())))


def plot(workspace: Workspace, start: float, policy: Policy, marks: list[tuple[float, str]], console: Console) -> None:
    """ROC AUC and share of drifted columns per weekly window, one line per version, with the
    policy's trigger thresholds, the promotions and the rollback marked."""
    import matplotlib.pyplot as plt

    since = pd.Timestamp(start * 1e9, tz="UTC")
    thresholds = {"model_quality.roc_auc": [t.below for t in policy.triggers_of(QualityTrigger)],
                  "dataset_drift.share_drifted": [t.above for t in policy.triggers_of(DriftTrigger)]}
    figure, axes = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    lines = []
    for axis, metric, label in zip(axes, thresholds, ("ROC AUC (labelled loans)", "share of drifted columns")):
        history = workspace.monitoring.history(MODEL, metric)
        history = history[(history["window_start"] >= since) & history["value"].notna()]
        history = history.assign(week=((history["window_end"] - since) / pd.Timedelta(weeks=1)).round().astype(int))
        parts = []
        for version, points in history.groupby("version"):
            values = points.set_index("week")["value"]
            weeks = range(1, values.index.max() + 1)
            axis.plot(weeks, values.reindex(weeks), marker="o", label=f"v{version}")  # a gap where it did not serve
            spans = ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs_of(list(values.index)))
            parts.append(f"v{version} " + " ".join(f"{value:.2f}" for value in values) + f" (weeks {spans})")
        lines.append(f"{label} per week: " + "; ".join(parts))
        for threshold in thresholds[metric]:
            axis.axhline(threshold, color="red", linestyle=":", linewidth=1, label=f"trigger {threshold:g}")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        for at, name in marks:
            axis.axvline((at - start) / WEEK, color="grey", linestyle="--")
            if axis is axes[0]:
                axis.annotate(name, ((at - start) / WEEK, 0.98), xycoords=("data", "axes fraction"), rotation=90,
                              va="top", ha="right", fontsize=8)
    axes[1].set_ylim(0, 1)
    for axis in axes:
        axis.legend(loc="lower left" if axis is axes[0] else "upper left", fontsize=8)
    axes[1].set_xlabel("simulated week (a point is the weekly window that ends there)")
    axes[1].set_xticks(range(0, MAX_WEEKS + 1, 2))
    figure.suptitle(f"{MODEL}@champion in the closed loop")
    figure.tight_layout()
    REPORTS.mkdir(exist_ok=True)
    path = REPORTS / "automation.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    console.print(f"quality over time: {path}")
    for line in lines:
        console.print(f"  {line}", highlight=False)


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """The loop prints one line per week: alert deliveries to the log and the server's swap
    lines wait until it ends."""
    loggers = [logging.getLogger(name) for name in ("conveyor.alerts", "conveyor.serving")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def day(seconds: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(seconds))
