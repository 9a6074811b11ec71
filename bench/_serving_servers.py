"""The model servers of ``bench/serving.py``: the competitors' virtualenvs, the list of server
variants, and starting, probing and stopping server processes.

A server variant is one way of serving a model over HTTP (a tool, its options, its request
body); ``variants()`` lists them, so a further variant of Conveyor's server (another
flag, another route) is one more entry there and is then measured by every online
scenario like the others.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
from _harness import BENCH_DIR
from _serving_common import REGISTERED, VENVS, Context, child_env, free_port
from rich.console import Console

READY_SECONDS = 180  # a cold start of BentoML or MLflow on a busy 2-core machine
SHARED = ("scikit-learn", "lightgbm")  # same versions as this virtualenv: every tool loads the same joblib files


# virtualenvs of the competitors -----------------------------------------------------------


@dataclass(frozen=True)
class Competitors:
    """The competitors' virtualenvs and what they were given; None where skipped or broken."""

    mlflow: Path | None = None  # the virtualenv
    bentoml: Path | None = None
    mlflow_models: Path | None = None  # folder of MLflow models, one sub-folder per model key
    versions: dict[str, str] = field(default_factory=dict)  # mlflow, bentoml


def _installed(python: Path, names: tuple[str, ...]) -> dict[str, str | None]:
    code = ("import json, importlib.metadata as m\n"
            "def v(n):\n    try: return m.version(n)\n    except m.PackageNotFoundError: return None\n"
            f"print(json.dumps({{n: v(n) for n in {list(names)!r}}}))")
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return json.loads(done.stdout) if done.returncode == 0 else dict.fromkeys(names)


def ensure_venv(console: Console, name: str, tool: str, log: Path) -> Path | None:
    """``bench/.venvs/<name>`` with the latest ``tool``, pandas, pyarrow and this virtualenv's
    scikit-learn and LightGBM versions: reused when it has them, else created or completed
    with pip (output in ``log``). None when pip fails."""
    venv = VENVS / name
    python = venv / "bin" / "python"
    wanted = {lib: metadata.version(lib) for lib in SHARED}
    names = (tool, "pandas", "pyarrow", *SHARED)
    found = _installed(python, names) if python.exists() else dict.fromkeys(names)
    if all(found[n] for n in names) and all(found[lib] == version for lib, version in wanted.items()):
        return venv
    console.print(f"Installing {tool} into {venv} (first use only; pip output in {log.name})...")
    with open(log, "a") as out:
        if not python.exists():
            subprocess.run([shutil.which("python3") or sys.executable, "-m", "venv", str(venv)], check=True)
        pins = [f"{lib}=={version}" for lib, version in wanted.items()]
        done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip", tool, "pandas",
                               "pyarrow", *pins], stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        console.print(f"[yellow]pip could not install {tool} into {venv}; it is left out[/]")
        return None
    return venv


def prepare_competitors(ctx: Context) -> Competitors:
    """Create or reuse both virtualenvs and save the MLflow models; a tool that cannot be
    installed is reported and left out."""
    if not ctx.cfg.competitors:
        return Competitors()
    folder, console = ctx.cfg.folder, ctx.console
    mlflow = ensure_venv(console, "mlflow-serve", "mlflow", folder / "pip.log")
    bentoml = ensure_venv(console, "bentoml", "bentoml", folder / "pip.log")
    versions = {tool: _installed(venv / "bin" / "python", (tool,))[tool] or "?"
                for tool, venv in (("mlflow", mlflow), ("bentoml", bentoml)) if venv}
    models = None
    if mlflow is not None:
        example = folder / "example.parquet"
        ctx.rows(5).to_parquet(example, index=False)
        args = {"models": {k: str(p) for k, p in ctx.prepared.pickles.items()}, "example": str(example),
                "out": str(folder / "mlflow-models")}
        with open(folder / "mlflow-save.log", "w") as log:
            done = subprocess.run([str(mlflow / "bin" / "python"), str(BENCH_DIR / "_serving_mlflow_save.py"),
                                   json.dumps(args)], stdout=subprocess.PIPE, stderr=log, text=True, env=child_env())
        if done.returncode == 0:
            models = folder / "mlflow-models"
        else:
            console.print(f"[yellow]MLflow could not save the models; it is left out:[/]\n"
                          f"{tail(folder / 'mlflow-save.log')}")
    return Competitors(mlflow if models else None, bentoml, models, versions)


# server variants ------------------------------------------------------------------------------


def records(row: dict[str, float], key: str) -> bytes:
    """``{key: [row]}`` as JSON bytes."""
    return json.dumps({key: [row]}).encode()


@dataclass(frozen=True)
class Variant:
    """One way of serving a model over HTTP.

    ``command(ctx, competitors, model, port)`` gives the argv and extra environment that
    start it; ``path(model)`` the prediction route; ``body(row)`` one row's request body.
    """

    key: str
    label: str
    tool: str  # conveyor, mlflow or bentoml: Conveyor's failures fail the run, the others' mark them broken
    ready: str  # GET path answering 200 once the model is loaded
    path: Callable[[str], str]
    body: Callable[[dict[str, float]], bytes]
    command: Callable[[Context, Competitors, str, int], tuple[list[str], dict[str, str]]]

    @property
    def conveyor(self) -> bool:
        """Whether this is Conveyor's server."""
        return self.tool == "conveyor"


def _conveyor(*flags: str) -> Callable[[Context, Competitors, str, int], tuple[list[str], dict[str, str]]]:
    def command(ctx: Context, _: Competitors, model: str, port: int) -> tuple[list[str], dict[str, str]]:
        return ([sys.executable, "-m", "conveyor", "-w", str(ctx.prepared.workspace), "serve",
                 f"{REGISTERED[model]}@champion", "--port", str(port), *flags], {})
    return command


def _mlflow(_: Context, tools: Competitors, model: str, port: int) -> tuple[list[str], dict[str, str]]:
    assert tools.mlflow is not None and tools.mlflow_models is not None
    binaries = tools.mlflow / "bin"  # it starts uvicorn through the shell
    return ([str(binaries / "mlflow"), "models", "serve", "-m", str(tools.mlflow_models / model), "--env-manager",
             "local", "-p", str(port), "--host", "127.0.0.1"], {"PATH": f"{binaries}{os.pathsep}{os.environ['PATH']}"})


def _bentoml(service: str) -> Callable[[Context, Competitors, str, int], tuple[list[str], dict[str, str]]]:
    def command(ctx: Context, tools: Competitors, model: str, port: int) -> tuple[list[str], dict[str, str]]:
        assert tools.bentoml is not None
        return ([str(tools.bentoml / "bin" / "bentoml"), "serve", f"_serving_bento_service:{service}", "--port",
                 str(port), "--host", "127.0.0.1", "--working-dir", str(BENCH_DIR)],
                {"BENCH_MODEL": str(ctx.prepared.pickles[model]), "BENTOML_HOME": str(ctx.cfg.folder / "bentoml")})
    return command


def _conveyor_path(model: str) -> str:
    return f"/v1/models/{REGISTERED[model]}/predict"


def _instances(row: dict[str, float]) -> bytes:
    return records(row, "instances")


def conveyor_flags() -> set[str]:
    """The options ``conveyor serve --help`` lists (versions before ``--no-log`` lack it)."""
    done = subprocess.run([sys.executable, "-m", "conveyor", "serve", "--help"], capture_output=True, text=True,
                          env=child_env(COLUMNS="200"))
    return {word.strip("│,") for word in done.stdout.split() if word.startswith("--")}


def variants(scenarios: tuple[str, ...], tools: Competitors, no_log: bool) -> list[Variant]:
    """The server variants the online scenarios measure, Conveyor's default first. The
    logging scenario alone needs only Conveyor's; ``no_log``: ``conveyor serve --no-log`` exists."""
    found = [Variant("conveyor", "Conveyor (prediction log on)", "conveyor", "/readyz", _conveyor_path, _instances,
                     _conveyor())]
    if no_log:
        found.append(Variant("conveyor-no-log", "Conveyor --no-log", "conveyor", "/readyz", _conveyor_path, _instances,
                             _conveyor("--no-log")))
    if scenarios == ("logging",):
        return found
    version = tools.versions.get
    if tools.mlflow is not None:
        found.append(Variant("mlflow", f"MLflow {version('mlflow')} models serve", "mlflow", "/ping",
                             lambda _: "/invocations", lambda r: records(r, "dataframe_records"), _mlflow))
    if tools.bentoml is not None:
        found.append(Variant("bentoml-df", f"BentoML {version('bentoml')}, DataFrame service", "bentoml", "/readyz",
                             lambda _: "/predict", lambda r: records(r, "df"), _bentoml("DataFrameClassifier")))
        found.append(Variant("bentoml-np", f"BentoML {version('bentoml')}, NumPy service, adaptive batching",
                             "bentoml", "/readyz", lambda _: "/predict",
                             lambda r: json.dumps({"input": [list(r.values())]}).encode(), _bentoml("NumpyClassifier")))
    return found


# server processes --------------------------------------------------------------------------


def tail(log: Path, lines: int = 15) -> str:
    """The last lines of a log file."""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


@dataclass
class Server:
    """A running server of one variant and one model (``broken``: why it is not usable)."""

    variant: Variant
    model: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    broken: str | None = None

    def get(self, path: str) -> int:
        """The HTTP status of ``GET path``; 0 if nothing answers."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            return response.status
        except OSError:
            return 0
        finally:
            connection.close()

    def stop(self) -> None:
        """Terminate its process group (the tools start children), killed after 20 s."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        if self.process.poll() is not None:
            try:  # children left behind in the group (a shell's uvicorn)
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def start(ctx: Context, tools: Competitors, variant: Variant, model: str) -> Server:
    """Start ``variant`` serving ``model`` on a free port, in its own process group."""
    port = free_port()
    argv, extra = variant.command(ctx, tools, model, port)
    log = ctx.cfg.folder / f"server-{variant.key}-{model}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=child_env(**extra),
                                   cwd=ctx.cfg.folder, start_new_session=True)
    return Server(variant, model, port, process, log)


def wait_ready(server: Server, deadline: float) -> None:
    """Poll the ready route until 200; marks the server broken if it exits or times out."""
    while server.process.poll() is None and time.monotonic() < deadline:
        if server.get(server.variant.ready) == 200:
            return
        time.sleep(0.25)
    state = f"exited {server.process.returncode}" if server.process.poll() is not None else "not ready in time"
    server.broken = f"{state} ({tail(server.log, 1).strip()[:200]})"


def start_all(ctx: Context, tools: Competitors, found: list[Variant], model: str) -> list[Server]:
    """Start every variant for ``model`` at once and wait until each is ready (or broken);
    a Conveyor server that does not come up fails the run."""
    servers = [start(ctx, tools, variant, model) for variant in found]
    started = time.monotonic()
    for server in servers:
        wait_ready(server, started + READY_SECONDS)
        if server.broken and server.variant.conveyor:
            ctx.report.fail(f"{server.variant.label} serving {model}: {server.broken}; "
                            f"its log ends:\n{tail(server.log)}")
    ctx.console.print(f"  [dim]{model}: {len(servers)} server(s) ready in {time.monotonic() - started:,.1f} s[/]")
    return servers


def stop_all(servers: list[Server]) -> None:
    """Stop every server."""
    for server in servers:
        server.stop()


def answer_probability(answer: Any) -> float:
    """P(class 1) of the one row of Conveyor's JSON answer."""
    return float(answer["probabilities"][0][1])


def request_rows(frame: pd.DataFrame) -> list[dict[str, float]]:
    """Rows as the JSON objects requests carry."""
    return frame.to_dict(orient="records")

