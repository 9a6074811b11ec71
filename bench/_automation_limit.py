"""The physical limit of ``bench/automation.py``: the bare SQL an exactly-once scheduler
needs per slot, with nothing around it.

A ``jobs`` table with a unique ``(policy, trigger_key)``. Two threads, each with its own
connection in autocommit mode (every statement its own transaction), both try every slot
in order, so the conflicts are real: per slot a thread runs

1. ``INSERT ... ON CONFLICT (policy, trigger_key) DO NOTHING RETURNING id`` (create once);
2. ``UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = ...,
   lease_expires_at = ... WHERE policy = ... AND trigger_key = ... AND status = 'pending'
   RETURNING id`` (claim: compare-and-set; one thread wins);
3. for the winner: the no-op job (count its execution), then ``UPDATE jobs SET status =
   'succeeded', finished_at = ..., lease_owner = NULL WHERE id = ... AND lease_owner = ...
   AND status = 'running'`` (finish, fenced by the lease).

On PostgreSQL through psycopg 3 directly; on SQLite through ``sqlite3`` with the pragmas
Conveyor uses (WAL, ``synchronous=NORMAL``, busy timeout).
"""

from __future__ import annotations

import collections
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _automation_common import Outcome

SCHEMA = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    policy TEXT NOT NULL,
    trigger_key TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    scheduled_for BIGINT NOT NULL,
    finished_at BIGINT,
    UNIQUE (policy, trigger_key)
)"""
INSERT = ("INSERT INTO jobs (id, policy, trigger_key, status, scheduled_for) VALUES ({p}, 'bench', {p}, 'pending', {p}) "
          "ON CONFLICT (policy, trigger_key) DO NOTHING RETURNING id")
CLAIM = ("UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = {p}, lease_expires_at = {p} "
         "WHERE policy = 'bench' AND trigger_key = {p} AND status = 'pending' RETURNING id")
FINISH = ("UPDATE jobs SET status = 'succeeded', finished_at = {p}, lease_owner = NULL "
          "WHERE id = {p} AND lease_owner = {p} AND status = 'running'")
START_MS = 1_704_067_200_000
HOUR_MS = 3_600_000


def _slots(connect: Callable[[], Any], placeholder: str, store: str, slots: int) -> Outcome:
    """Both threads over every slot; times from their common start to the last one's end."""
    insert, claim, finish = (sql.format(p=placeholder) for sql in (INSERT, CLAIM, FINISH))
    runs: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(2)
    marks: list[float] = []
    errors: list[BaseException] = []
    finished_wrong = [0]

    def worker(owner: str) -> None:
        conn = connect()
        try:
            barrier.wait()
            if owner == "thread-a":
                marks.append(time.perf_counter())
            for slot in range(slots):
                key = f"schedule:{START_MS + slot * HOUR_MS}"
                now = int(time.time() * 1000)
                conn.execute(insert, (uuid.uuid4().hex, key, START_MS + slot * HOUR_MS)).fetchall()
                won = conn.execute(claim, (owner, now + 60_000, key)).fetchall()
                if not won:
                    continue
                with lock:
                    runs[key] += 1
                done = conn.execute(finish, (now, won[0][0], owner))
                if done.rowcount != 1:
                    finished_wrong[0] += 1
        except BaseException as error:  # noqa: BLE001 - reported by the caller
            errors.append(error)
            barrier.abort()
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(owner,)) for owner in ("thread-a", "thread-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcome = Outcome("bare SQL, 2 threads (limit)", store, slots)
    if errors:
        outcome.error = f"{type(errors[0]).__name__}: {errors[0]}"
        return outcome
    outcome.seconds = time.perf_counter() - marks[0]
    outcome.runs = dict(runs)
    if finished_wrong[0]:
        outcome.failures.append(f"{finished_wrong[0]} finish update(s) matched no row")
    return outcome


def limit_postgres(conninfo: str, slots: int) -> Outcome:
    """The limit on PostgreSQL, in the schema ``conninfo``'s ``search_path`` names."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(SCHEMA)
    return _slots(lambda: psycopg.connect(conninfo, autocommit=True), "%s", "PostgreSQL", slots)


def limit_sqlite(path: Path, slots: int) -> Outcome:
    """The limit on a fresh SQLite file (WAL, ``synchronous=NORMAL``, 30 s busy timeout)."""

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    conn = connect()
    conn.execute(SCHEMA)
    conn.close()
    return _slots(connect, "?", "SQLite", slots)
