"""Scenarios 1, 2 and 4 of ``bench/serving.py``, which share running servers: single-row
latency, throughput under 8 concurrent connections, and the latency cost of Conveyor's
prediction log.

For each model every server variant (``_serving_servers.variants``) is started at once;
each latency repeat then measures every variant and the limit in turn (so drift of this
shared machine hits all of them), and throughput follows, one variant at a time.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

from _serving_common import MODELS, Context, median, ms, per_second, percentile, ratio
from _serving_load import (
    CONNECTIONS,
    Load,
    LoadError,
    find_wrk,
    in_process,
    in_process_rate,
    run_threads,
    run_wrk,
    sequential,
)
from _serving_servers import (
    Competitors,
    Server,
    Variant,
    answer_probability,
    request_rows,
    start_all,
    stop_all,
    variants,
)

POOL = 500  # distinct rows that requests cycle through
JUDGED = "sklearn"  # the online targets are judged on this model
LIMITS = {"limit-df": "predict_proba in-process, one-row DataFrame (limit)",
          "limit-np": "predict_proba in-process, one-row NumPy array (limit)"}
Row = tuple[str, str, str]


@dataclass
class Online:
    """What the online scenarios measured, keyed by (variant or limit key, model)."""

    found: list[Variant]
    no_log: bool
    generator: str = ""
    latency: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    loads: dict[tuple[str, str], Load] = field(default_factory=dict)
    broken: dict[tuple[str, str], str] = field(default_factory=dict)

    def p(self, key: str, model: str, which: int) -> float | None:
        """Median over the repeats of p50 (``which`` 0) or p99 (1); None if not measured."""
        samples = self.latency.get((key, model))
        return median([s[which] for s in samples]) if samples else None


# measuring ---------------------------------------------------------------------------------


def broken(ctx: Context, online: Online, server: Server, reason: str) -> None:
    """Record a variant that failed: the run fails if it is Conveyor's."""
    server.broken = reason
    online.broken[(server.variant.key, server.model)] = reason
    if server.variant.conveyor:
        ctx.report.fail(f"{server.variant.label} serving {server.model}: {reason}")


def check_conveyor(ctx: Context, online: Online, server: Server) -> None:
    """One request: Conveyor's probability must be the fitted model's."""
    frame = ctx.rows(1)
    try:
        _, answer = sequential(server.port, server.variant.path(server.model),
                               [server.variant.body(request_rows(frame)[0])], 0, 1)
        got = answer_probability(json.loads(answer))
    except (LoadError, KeyError, IndexError, ValueError) as error:
        broken(ctx, online, server, f"no probability in its answer: {error}")
        return
    expected = float(ctx.prepared.fitted[server.model].predict_proba(frame)[0, 1])
    if abs(got - expected) > 1e-6:
        broken(ctx, online, server, f"probability {got!r}, the fitted model's is {expected!r}")


def measure_latency(ctx: Context, online: Online, servers: list[Server], model: str) -> None:
    """``repeats`` rounds; in each, every live server and both limits in turn."""
    cfg, pool = ctx.cfg, ctx.rows(POOL)
    rows = request_rows(pool)
    bodies = {server.variant.key: [server.variant.body(row) for row in rows] for server in servers}
    frames = [pool.iloc[[i]] for i in range(len(pool))]
    limits = {"limit-df": frames, "limit-np": [frame.to_numpy() for frame in frames]}
    predict = ctx.prepared.fitted[model].predict_proba
    for repeat in range(cfg.repeats):
        for server in servers:
            if server.broken:
                continue
            try:
                samples, _ = sequential(server.port, server.variant.path(model), bodies[server.variant.key],
                                        cfg.warmup, cfg.calls)
            except LoadError as error:
                broken(ctx, online, server, str(error))
                continue
            online.latency[(server.variant.key, model)].append((percentile(samples, 50), percentile(samples, 99)))
        for key, inputs in limits.items():
            samples = in_process(predict, inputs, cfg.warmup, cfg.calls)
            online.latency[(key, model)].append((percentile(samples, 50), percentile(samples, 99)))
        ctx.console.print(f"  [dim]{model}: latency repeat {repeat + 1}/{cfg.repeats} done[/]")


def measure_throughput(ctx: Context, online: Online, servers: list[Server], model: str, wrk: str | None) -> None:
    """Every live server under 8 connections for ``duration`` s, then the limit's loops."""
    cfg, pool = ctx.cfg, ctx.rows(POOL)
    row = request_rows(pool.iloc[:1])[0]
    for server in servers:
        if server.broken:
            continue
        path, body = server.variant.path(model), server.variant.body(row)
        try:
            load = (run_wrk(wrk, server.port, path, body, cfg.duration, cfg.folder) if wrk
                    else run_threads(server.port, path, body, cfg.duration))
        except LoadError as error:
            broken(ctx, online, server, str(error))
            continue
        online.loads[(server.variant.key, model)] = load
        if server.variant.conveyor and load.errors:
            ctx.report.fail(f"{server.variant.label} serving {model}: {load.errors:,} failed requests "
                            f"({load.non_2xx:,} non-2xx) of {load.requests:,} under load")
    frames = [pool.iloc[[i]] for i in range(len(pool))]
    predict = ctx.prepared.fitted[model].predict_proba
    online.loads[("limit-df", model)] = in_process_rate(predict, frames, cfg.duration)
    online.loads[("limit-np", model)] = in_process_rate(predict, [f.to_numpy() for f in frames], cfg.duration)
    ctx.console.print(f"  [dim]{model}: throughput done[/]")


def measure(ctx: Context, tools: Competitors, no_log: bool) -> Online:
    """Start the servers of each model in turn and run the selected online scenarios."""
    scenarios = tuple(s for s in ctx.cfg.scenarios if s in ("latency", "throughput", "logging"))
    online = Online(variants(scenarios, tools, no_log), no_log)
    wrk = None
    if "throughput" in scenarios:
        wrk = find_wrk(install=not ctx.cfg.smoke)
        online.generator = (f"wrk -t2 -c{CONNECTIONS} ({wrk})" if wrk else
                            f"Python: {CONNECTIONS} threads of keep-alive http.client in the benchmark's process "
                            f"(wrk not available; GIL-bound, a lower ceiling than wrk's)")
        ctx.console.print(f"Load generator: {online.generator}")
    for model in MODELS:
        servers = start_all(ctx, tools, online.found, model)
        try:
            for server in servers:
                if server.broken:
                    online.broken[(server.variant.key, model)] = server.broken
                elif server.variant.conveyor:
                    check_conveyor(ctx, online, server)
            if "latency" in scenarios or "logging" in scenarios:
                measure_latency(ctx, online, servers, model)
            if "throughput" in scenarios:
                measure_throughput(ctx, online, servers, model, wrk)
        finally:
            stop_all(servers)
    return online


# tables ---------------------------------------------------------------------------------------


def lower(ours: float | None, theirs: float | None) -> str:
    """``3.2× lower`` / ``1.5× higher`` (Conveyor's figure against another tool's)."""
    if ours is None or theirs is None:
        return "n/a"
    return f"{ratio(theirs / ours)} lower" if ours <= theirs else f"{ratio(ours / theirs)} higher"


def figure(online: Online, key: str, model: str) -> str:
    """``p50 1.23 ms · p99 2.34 ms`` or why there is none."""
    if (key, model) in online.broken:
        return "[red]broken[/]"
    p50, p99 = online.p(key, model, 0), online.p(key, model, 1)
    return f"p50 {ms(p50)} · p99 {ms(p99)}" if p50 is not None and p99 is not None else "not measured"


def latency_rows(ctx: Context, online: Online, model: str) -> list[Row]:
    """Scenario 1's rows for one model."""
    report, judged = ctx.report, model == JUDGED
    ours50, ours99 = online.p("conveyor", model, 0), online.p("conveyor", model, 1)
    targets = {"mlflow": 6.0, "bentoml-df": 2.5}
    rows: list[Row] = []
    for variant in online.found:
        key = variant.key
        note = online.broken.get((key, model), "")[:160]
        if key == "conveyor" and judged and ours50 is not None and ours99 is not None:
            note = (f"p50 < 2 ms {report.target('latency p50 < 2 ms', ours50 < 0.002)}; "
                    f"p99 < 5 ms {report.target('latency p99 < 5 ms', ours99 < 0.005)}")
        elif not variant.conveyor and not note:
            theirs50 = online.p(key, model, 0)
            note = f"Conveyor's p50 {lower(ours50, theirs50)}, p99 {lower(ours99, online.p(key, model, 1))}"
            goal = targets.get(key)
            if judged and goal and ours50 is not None and theirs50 is not None:
                mark = report.target(f"latency p50 ≥ {goal:g}× lower than {key}", theirs50 >= goal * ours50)
                note += f" (target ≥ {goal:g}× lower: {mark})"
        rows.append((f"{variant.label}, {model}", figure(online, key, model), note))
    for key in LIMITS:
        limit = online.p(key, model, 0)
        note = f"Conveyor's p50 is {ratio(ours50 / limit)} the limit's" if ours50 is not None and limit else ""
        rows.append((f"{LIMITS[key]}, {model}", figure(online, key, model), note))
    frame, array = online.p("limit-df", model, 0), online.p("limit-np", model, 0)
    if ours50 is not None and frame is not None and array is not None:
        rows.append((f"server-side overhead of Conveyor, {model}: its p50 − the one-row DataFrame predict p50",
                     ms(ours50 - frame), f"{ms(ours50 - array)} over the NumPy row's p50"))
    return rows


def load_figure(online: Online, key: str, model: str) -> str:
    """``1,234 req/s · p50 6.1 ms · p99 9.0 ms · 0 errors`` or why there is none."""
    if (key, model) in online.broken:
        return "[red]broken[/]"
    load = online.loads.get((key, model))
    if load is None:
        return "not measured"
    if key in LIMITS:
        return f"{per_second(load.rate, 'calls/s')} · p50 {ms(load.p50)}"
    errors = f"[red]{load.errors:,} errors ({load.non_2xx:,} non-2xx)[/]" if load.errors else "0 errors"
    return f"{per_second(load.rate)} · p50 {ms(load.p50)} · p99 {ms(load.p99)} · {errors}"


def throughput_rows(ctx: Context, online: Online, model: str) -> list[Row]:
    """Scenario 2's rows for one model."""
    ours = online.loads.get(("conveyor", model))
    rate = {key: load.rate for (key, m), load in online.loads.items() if m == model}
    bento = max((k for k in rate if k.startswith("bentoml")), key=lambda k: rate[k], default=None)
    rows: list[Row] = []
    for variant in online.found:
        key, note = variant.key, online.broken.get((variant.key, model), "")[:160]
        if not variant.conveyor and not note and ours is not None and key in rate:
            note = f"Conveyor answers {ratio(ours.rate / rate[key])} as many requests/s"
            goal = 10.0 if key == "mlflow" else 2.0 if key == bento else None
            if goal and model == JUDGED:
                name = "MLflow" if key == "mlflow" else "BentoML's best variant"
                mark = ctx.report.target(f"throughput ≥ {goal:g}× {key}", ours.rate >= goal * rate[key])
                note += f" (target ≥ {goal:g}× {name}: {mark})"
        rows.append((f"{variant.label}, {model}", load_figure(online, key, model), note))
    for key in LIMITS:
        note = f"Conveyor reaches {ours.rate / rate[key]:.0%} of it" if ours is not None and key in rate else ""
        rows.append((f"{LIMITS[key].replace('predict_proba', 'predict_proba loop')}, {model}",
                     load_figure(online, key, model), note))
    return rows


def logging_rows(ctx: Context, online: Online, model: str) -> list[Row]:
    """Scenario 4's row for one model: p50 with the log on minus p50 with ``--no-log``,
    repeat by repeat (the two alternate), median of the differences."""
    on, off = online.latency.get(("conveyor", model), []), online.latency.get(("conveyor-no-log", model), [])
    if not online.no_log or not on or not off:
        why = "conveyor serve has no --no-log yet" if not online.no_log else "not measured (a server broke)"
        return [(f"Conveyor p50 with the prediction log on (default), {model}", figure(online, "conveyor", model),
                 f"{why}: the cost of the log cannot be measured")]
    cost50 = median([a[0] - b[0] for a, b in zip(on, off, strict=False)])
    cost99 = median([a[1] - b[1] for a, b in zip(on, off, strict=False)])
    note = (f"log on p50 {ms(online.p('conveyor', model, 0))}, off {ms(online.p('conveyor-no-log', model, 0))}; "
            f"p99 {cost99 * 1000:+.2f} ms")
    loaded = online.loads.get(("conveyor", model)), online.loads.get(("conveyor-no-log", model))
    if loaded[0] and loaded[1]:
        note += f"; under load {loaded[0].rate:,.0f} req/s with the log, {loaded[1].rate:,.0f} without"
    if model == JUDGED:
        note += f"; target < 0.3 ms {ctx.report.target('prediction log p50 cost < 0.3 ms', cost50 < 0.0003)}"
    return [(f"Conveyor p50, prediction log on − --no-log, {model}", f"{cost50 * 1000:+.3f} ms", note)]


def print_tables(ctx: Context, online: Online) -> None:
    """The tables of the online scenarios that ran, and their summary lines."""
    cfg, report = ctx.cfg, ctx.report
    keys = [variant.key for variant in online.found] + list(LIMITS)
    if "latency" in cfg.scenarios:
        report.table(f"Single-row latency: {cfg.calls:,} sequential keep-alive requests from one http.client "
                     f"connection after {cfg.warmup:,} warm-up ones, client-side p50 and p99, median of "
                     f"{cfg.repeats} repeat(s); targets judged on {JUDGED}",
                     [row for model in MODELS for row in latency_rows(ctx, online, model)])
        for model in MODELS:
            ctx.summary.append(f"latency p50, {model}: " + ", ".join(
                f"{k} {ms(p50)}" for k, p50 in ((k, online.p(k, model, 0)) for k in keys) if p50 is not None))
    if "throughput" in cfg.scenarios:
        report.table(f"Throughput: {CONNECTIONS} concurrent keep-alive connections for {cfg.duration} s per "
                     f"variant, one row per request; generator {online.generator}; targets judged on {JUDGED}",
                     [row for model in MODELS for row in throughput_rows(ctx, online, model)])
        for model in MODELS:
            ctx.summary.append(f"throughput, {model}: " + ", ".join(
                f"{k} {online.loads[(k, model)].rate:,.0f}/s" for k in keys if (k, model) in online.loads))
    if "logging" in cfg.scenarios:
        if not online.no_log:
            ctx.console.print("[yellow]Note: `conveyor serve --help` lists no --no-log yet; only the default "
                              "(prediction log on) is measured.[/]")
        report.table(f"Prediction logging: latency cost of Conveyor's prediction log (p50 on − p50 with --no-log, "
                     f"alternated within each of {cfg.repeats} repeat(s)); target judged on {JUDGED}",
                     [row for model in MODELS for row in logging_rows(ctx, online, model)])
