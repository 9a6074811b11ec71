"""Load generators of ``bench/serving.py``: one sequential keep-alive client (latency), ``wrk``
or a Python fallback (throughput), and the in-process loops of the limit.

``wrk`` runs ``-t2 -c8`` with a Lua script that sets method, body and Content-Type and whose
``done`` prints the totals, error counts and latency percentiles on lines this module
parses. Without ``wrk`` on PATH, ``apt-get install -y wrk`` is tried once (as root, not at
smoke sizes); failing that, 8 threads of this process send keep-alive requests with
``http.client`` (GIL-bound: a lower ceiling than wrk's, said in the table).
"""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _serving_common import percentile

CONNECTIONS = 8
HEADERS = {"Content-Type": "application/json"}
TIMEOUT = 10.0  # seconds: a request slower than this breaks a competitor's variant
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[%s]==]

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH-TOTALS %%d %%d %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    e.status, e.connect, e.read, e.write, e.timeout))
  io.write(string.format("BENCH-LATENCY %%d %%d %%d\\n", latency:percentile(50), latency:percentile(99), latency.max))
end
"""


class LoadError(Exception):
    """A request failed (status other than 200, timeout, closed connection)."""


@dataclass(frozen=True)
class Load:
    """What a load generator measured: requests/s, client-side latency, errors."""

    rate: float
    p50: float
    p99: float
    requests: int
    errors: int  # non-2xx answers plus connect/read/write errors and timeouts
    non_2xx: int


# latency: one client ------------------------------------------------------------------------


def sequential(port: int, path: str, bodies: Sequence[bytes], warmup: int, calls: int) -> tuple[list[float], bytes]:
    """Seconds of each of ``calls`` requests sent one after another on one keep-alive
    connection after ``warmup`` untimed ones, and the first answer's body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    samples: list[float] = []
    first = b""
    try:
        for index in range(warmup + calls):
            body = bodies[index % len(bodies)]
            start = time.perf_counter()
            connection.request("POST", path, body, HEADERS)
            response = connection.getresponse()
            data = response.read()
            elapsed = time.perf_counter() - start
            if response.status != 200:
                raise LoadError(f"HTTP {response.status}: {data[:300].decode(errors='replace')}")
            if index == 0:
                first = data
            if index >= warmup:
                samples.append(elapsed)
    except (OSError, http.client.HTTPException) as error:
        raise LoadError(f"{type(error).__name__}: {error}") from None
    finally:
        connection.close()
    return samples, first


def in_process(call: Callable[[Any], Any], inputs: Sequence[Any], warmup: int, calls: int) -> list[float]:
    """Seconds of each of ``calls`` calls of ``call`` (cycling through ``inputs``) after
    ``warmup`` untimed ones: the limit's latency."""
    for index in range(warmup):
        call(inputs[index % len(inputs)])
    samples = []
    for index in range(calls):
        item = inputs[index % len(inputs)]
        start = time.perf_counter()
        call(item)
        samples.append(time.perf_counter() - start)
    return samples


def in_process_rate(call: Callable[[Any], Any], inputs: Sequence[Any], seconds: float) -> Load:
    """The same loop for ``seconds``: calls per second (the limit's throughput, one thread)."""
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    index = 0
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        call(inputs[index % len(inputs)])
        samples.append(time.perf_counter() - start)
        index += 1
    return Load(len(samples) / sum(samples), percentile(samples, 50), percentile(samples, 99), len(samples), 0, 0)


# throughput: wrk or threads -----------------------------------------------------------------


def find_wrk(install: bool) -> str | None:
    """``wrk`` on PATH; with ``install`` (root, Debian) one ``apt-get install -y wrk`` first."""
    found = shutil.which("wrk")
    if found or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    for command in (["apt-get", "install", "-y", "-qq", "wrk"], ["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "wrk"]):
        if shutil.which("wrk"):
            break
        subprocess.run(command, capture_output=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return shutil.which("wrk")


def run_wrk(wrk: str, port: int, path: str, body: bytes, seconds: int, folder: Path) -> Load:
    """``wrk -t2 -c8`` for ``seconds`` against one route, parsed."""
    script = folder / "post.lua"
    script.write_text(LUA % body.decode())
    try:
        done = subprocess.run([wrk, "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", f"--timeout={TIMEOUT:.0f}s", "-s",
                               str(script), f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True,
                              timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        raise LoadError(f"wrk did not finish {seconds} s of load within {seconds + 60} s") from None
    lines = {line.split()[0]: [int(v) for v in line.split()[1:]] for line in done.stdout.splitlines()
             if line.startswith("BENCH-")}
    if done.returncode != 0 or "BENCH-TOTALS" not in lines:
        raise LoadError(f"wrk exited {done.returncode}: {(done.stderr or done.stdout)[-300:]}")
    requests, micros, status, *others = lines["BENCH-TOTALS"]
    p50, p99, _ = lines["BENCH-LATENCY"]
    return Load(requests / (micros / 1e6), p50 / 1e6, p99 / 1e6, requests, status + sum(others), status)


def run_threads(port: int, path: str, body: bytes, seconds: int) -> Load:
    """8 threads, each a keep-alive ``http.client`` connection, for ``seconds``."""
    samples: list[list[float]] = [[] for _ in range(CONNECTIONS)]
    errors = [0] * CONNECTIONS
    non_2xx = [0] * CONNECTIONS
    deadline = time.perf_counter() + seconds

    def client(slot: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                connection.request("POST", path, body, HEADERS)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                errors[slot] += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
                continue
            samples[slot].append(time.perf_counter() - start)
            if not 200 <= response.status < 300:
                non_2xx[slot] += 1
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(slot,)) for slot in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    every = [s for slot in samples for s in slot]
    if not every:
        raise LoadError(f"no request answered in {seconds} s ({sum(errors)} errors)")
    return Load(len(every) / elapsed, percentile(every, 50), percentile(every, 99), len(every),
                sum(errors) + sum(non_2xx), sum(non_2xx))
