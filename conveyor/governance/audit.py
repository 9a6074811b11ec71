"""The append-only, tamper-evident audit log of every registry state change.

Each entry carries the hash of the previous one, so editing or deleting any row
breaks the chain, and ``verify`` finds it. A single head row holds the last
sequence number and hash: writers lock it first, which serialises every audited
change (and makes each one atomic with its audit entry). Database triggers
refuse UPDATE and DELETE on the log; nothing in Conveyor issues either.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy import Connection, select, update

from conveyor.core.db.base import now_ms
from conveyor.errors import ValidationError
from conveyor.governance.identity import SYSTEM_ACTOR, ActingActor, Actor
from conveyor.governance.permissions import Action, requires
from conveyor.governance.tables import audit_head, audit_log

if TYPE_CHECKING:
    from conveyor.core.db import MetadataStore

GENESIS_HASH = "0" * 64
HEAD_ID = 1
_VERIFY_BATCH = 5000


class AuditEntry(BaseModel):
    """One recorded state change."""

    seq: int
    at: int
    actor: str
    action: str
    entity: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    prev_hash: str
    hash: str


class AuditVerification(BaseModel):
    """What ``verify`` found: ``ok`` only if every entry and the head are intact."""

    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    problems: list[str]


def _canonical(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def entry_hash(seq: int, at: int, actor: str, action: str, entity: str, before: str | None, after: str | None, prev: str) -> str:
    """The hash that chains an entry to its predecessor, over the stored column values."""
    payload = json.dumps([seq, at, actor, action, entity, before, after, prev], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class AuditedTransaction:
    """A write transaction holding the audit head lock; ``record`` appends entries to it."""

    conn: Connection
    seq: int
    hash: str
    recorded: list[AuditEntry] = field(default_factory=list)

    def record(self, actor: str, action: str, entity: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> AuditEntry:
        """Append one entry, chained to the last, in this transaction."""
        before_text, after_text = _canonical(before), _canonical(after)
        seq, at = self.seq + 1, now_ms()
        digest = entry_hash(seq, at, actor, action, entity, before_text, after_text, self.hash)
        self.conn.execute(
            audit_log.insert().values(
                seq=seq, at=at, actor=actor, action=action, entity=entity,
                before=before_text, after=after_text, prev_hash=self.hash, hash=digest,
            )
        )
        entry = AuditEntry(
            seq=seq, at=at, actor=actor, action=action, entity=entity,
            before=before, after=after, prev_hash=self.hash, hash=digest,
        )
        self.seq, self.hash = seq, digest
        self.recorded.append(entry)
        return entry


def _entry(row: Any) -> AuditEntry:
    values = dict(row._mapping)
    values["before"] = json.loads(values["before"]) if values["before"] is not None else None
    values["after"] = json.loads(values["after"]) if values["after"] is not None else None
    return AuditEntry(**values)


class AuditLog:
    """Appending to, reading and verifying the audit log.

    Args:
        store: the metadata store.
        actor: who reads the log (``audit.read``); a log used only to write, as services
            use theirs, needs none.
    """

    actor = ActingActor()

    def __init__(self, store: MetadataStore, actor: Actor | None = None) -> None:
        self.store = store
        self.actor = actor or Actor(SYSTEM_ACTOR, frozenset())

    @contextlib.contextmanager
    def transaction(self) -> Iterator[AuditedTransaction]:
        """A write transaction that holds the audit head: state changes and their entries
        commit together or not at all, one writer at a time."""
        with self.store.write() as conn:
            head = conn.execute(
                select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == HEAD_ID).with_for_update()
            ).one()
            tx = AuditedTransaction(conn, head.seq, head.hash)
            yield tx
            if tx.recorded:
                conn.execute(update(audit_head).where(audit_head.c.id == HEAD_ID).values(seq=tx.seq, hash=tx.hash))

    @requires(Action.AUDIT_READ)
    def list_entries(
        self, entity: str | None = None, action: str | None = None, limit: int = 100, newest_first: bool = True,
        actor: str | None = None, before: int | None = None, after: int | None = None,
    ) -> list[AuditEntry]:
        """Entries, newest first; ``entity`` matches exactly or as a prefix ending in ``/`` or ``@``.

        Args:
            actor: only the changes this user made.
            before, after: only entries whose ``seq`` is below / above these: the next page
                of a newest-first listing is ``before=<the last seq of this one>``.
        """
        if limit < 1:
            raise ValidationError(f"limit must be at least 1, got {limit}", field="limit")
        query = select(audit_log)
        if entity:
            query = query.where(
                (audit_log.c.entity == entity)
                | audit_log.c.entity.startswith(f"{entity}/", autoescape=True)
                | audit_log.c.entity.startswith(f"{entity}@", autoescape=True)
            )
        if action:
            query = query.where(audit_log.c.action == action)
        if actor:
            query = query.where(audit_log.c.actor == actor)
        if before is not None:
            query = query.where(audit_log.c.seq < before)
        if after is not None:
            query = query.where(audit_log.c.seq > after)
        query = query.order_by(audit_log.c.seq.desc() if newest_first else audit_log.c.seq).limit(limit)
        with self.store.read() as conn:
            return [_entry(row) for row in conn.execute(query)]

    @requires(Action.AUDIT_READ)
    def verify(self, expect_head: str | None = None) -> AuditVerification:
        """Walk the whole chain: contiguous sequence numbers, each hash recomputed, each
        link to the previous hash, and the head row matching the last entry.

        Args:
            expect_head: ``SEQ:HASH`` printed by an earlier verification and kept
                elsewhere; catches a rewrite of the tail together with the head.
        """
        problems: list[str] = []
        expected_seq, previous, count = 1, GENESIS_HASH, 0
        with self.store.read() as conn:
            head = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == HEAD_ID)).one()
            after = 0
            while True:
                rows = conn.execute(
                    select(audit_log).where(audit_log.c.seq > after).order_by(audit_log.c.seq).limit(_VERIFY_BATCH)
                ).all()
                if not rows:
                    break
                for row in rows:
                    count += 1
                    if row.seq != expected_seq:
                        problems.append(f"entry {expected_seq} is missing (next entry is {row.seq})")
                    if row.prev_hash != previous:
                        problems.append(f"entry {row.seq} does not link to the entry before it")
                    recomputed = entry_hash(
                        row.seq, row.at, row.actor, row.action, row.entity, row.before, row.after, row.prev_hash
                    )
                    if recomputed != row.hash:
                        problems.append(f"entry {row.seq} ({row.action} {row.entity}) was modified")
                    expected_seq, previous = row.seq + 1, row.hash
                after = rows[-1].seq
        last_seq = expected_seq - 1
        if head.seq != last_seq or head.hash != previous:
            problems.append(f"the log ends at entry {last_seq} but its head records entry {head.seq}: entries were removed")
        if expect_head is not None and expect_head != f"{head.seq}:{head.hash}":
            problems.append(f"the head is {head.seq}:{head.hash[:12]}…, not the expected {expect_head[:24]}")
        return AuditVerification(ok=not problems, entries=count, head_seq=head.seq, head_hash=head.hash, problems=problems)
