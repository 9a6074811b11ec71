"""Deployments and their history, in the metadata store.

Every change is a new revision: a create or update (audited, with who did it), a
rollback, or an alias that a target follows moving to another version (noticed by
``sync``, which servers call as they poll). A revision records the spec and the
versions its targets resolved to, so ``rollback`` can restore exactly what served
before: it pins the previous revision's versions, whatever the aliases say now.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, insert, select, update

from conveyor.core.db import MetadataStore
from conveyor.core.db.base import now_ms
from conveyor.errors import Conflict, NotFound, ValidationError
from conveyor.governance.audit import AuditLog
from conveyor.governance.identity import ActingActor, Actor
from conveyor.governance.permissions import Action, requires
from conveyor.registry.service import RegistryService
from conveyor.serving.deployments.spec import DeploymentSpec, Route, version_of
from conveyor.serving.deployments.tables import deployment_revisions, deployments


class Deployment(BaseModel):
    """One revision of a deployment: its spec and the version each target resolved to."""

    name: str
    revision: int
    spec: DeploymentSpec
    resolved: dict[str, int]
    reason: str
    actor: str
    created_at: int

    def versions(self) -> list[int]:
        """The versions serving traffic, in the traffic order."""
        return [self.resolved[route.target] for route in self.spec.traffic]


def _revision(name: str, row: Any) -> Deployment:
    return Deployment(name=name, revision=row.revision, spec=DeploymentSpec.model_validate_json(row.spec),
                      resolved=json.loads(row.resolved), reason=row.reason, actor=row.actor, created_at=row.created_at)


class DeploymentService:
    """Create, change, follow and roll back deployments."""

    actor = ActingActor()

    def __init__(self, store: MetadataStore, registry: RegistryService, audit: AuditLog, actor: Actor) -> None:
        self.store = store
        self.registry = registry
        self.audit = audit
        self.actor = actor

    @requires(Action.DEPLOYMENTS_READ)
    def resolve(self, spec: DeploymentSpec) -> dict[str, int]:
        """The version each target of ``spec`` names right now.

        Raises:
            NotFound: the model, an alias or a version does not exist (``field`` says which option).
        """
        resolved = {}
        for target in spec.targets():
            pinned = version_of(target)
            try:
                found = self.registry.get_model_version(spec.model, pinned if pinned is not None else target)
            except NotFound as exc:
                field = "model" if exc.field in ("name", "model") else ("shadow" if target in spec.shadow else "traffic")
                raise NotFound(f"deployment target {target!r}: {exc.message}", field=field) from None
            resolved[target] = found.version
        return resolved

    def _latest(self, conn: Connection, name: str) -> Deployment:
        head = conn.execute(select(deployments.c.revision).where(deployments.c.name == name)).scalar_one_or_none()
        if head is None:
            raise NotFound(f"no deployment named {name!r}", field="name")
        row = conn.execute(select(deployment_revisions).where(
            deployment_revisions.c.name == name, deployment_revisions.c.revision == head)).one()
        return _revision(name, row)

    def _append(self, conn: Connection, name: str, revision: int, spec: DeploymentSpec, resolved: dict[str, int],
                reason: str) -> Deployment:
        at = now_ms()
        conn.execute(insert(deployment_revisions).values(
            name=name, revision=revision, spec=spec.model_dump_json(), resolved=json.dumps(resolved, sort_keys=True),
            reason=reason, actor=self.actor.name, created_at=at))
        if revision == 1:
            conn.execute(insert(deployments).values(name=name, model=spec.model, revision=1, created_at=at, updated_at=at))
        else:
            moved = conn.execute(update(deployments).where(deployments.c.name == name, deployments.c.revision == revision - 1)
                                 .values(revision=revision, model=spec.model, updated_at=at))
            if moved.rowcount != 1:
                raise Conflict(f"deployment {name!r} changed meanwhile; retry", field="name")
        return Deployment(name=name, revision=revision, spec=spec, resolved=resolved, reason=reason,
                          actor=self.actor.name, created_at=at)

    def _change(self, name: str, spec: DeploymentSpec, reason: str, action: str, create: bool = False) -> Deployment:
        resolved = self.resolve(spec)
        with self.audit.transaction() as tx:
            before = None
            if create:
                exists = tx.conn.execute(select(deployments.c.name).where(deployments.c.name == name)).first()
                if exists is not None:
                    raise Conflict(f"deployment {name!r} already exists; use update", field="name")
                revision = 1
            else:
                current = self._latest(tx.conn, name)
                before = {"revision": current.revision, "spec": current.spec.model_dump(), "resolved": current.resolved}
                revision = current.revision + 1
            deployment = self._append(tx.conn, name, revision, spec, resolved, reason)
            tx.record(self.actor.name, f"deployment.{action}", f"deployment:{name}", before,
                      {"revision": revision, "spec": spec.model_dump(), "resolved": resolved})
        return deployment

    @requires(Action.DEPLOYMENTS_WRITE)
    def create(self, name: str, spec: DeploymentSpec) -> Deployment:
        """A new deployment; ``Conflict`` if the name is taken."""
        if not name or not name.replace("-", "").replace("_", "").isalnum():
            raise ValidationError(f"deployment name {name!r}: letters, digits, - and _ only", field="name")
        return self._change(name, spec, "created", "create", create=True)

    @requires(Action.DEPLOYMENTS_WRITE)
    def update(self, name: str, spec: DeploymentSpec) -> Deployment:
        """A new revision with ``spec`` (policy, traffic, shadows, key)."""
        return self._change(name, spec, "updated", "update")

    @requires(Action.DEPLOYMENTS_READ)
    def get(self, name: str) -> Deployment:
        """The current revision."""
        with self.store.read() as conn:
            return self._latest(conn, name)

    @requires(Action.DEPLOYMENTS_READ)
    def list(self) -> list[Deployment]:
        """The current revision of every deployment, by name."""
        with self.store.read() as conn:
            names = conn.execute(select(deployments.c.name).order_by(deployments.c.name)).scalars().all()
            return [self._latest(conn, name) for name in names]

    @requires(Action.DEPLOYMENTS_READ)
    def history(self, name: str) -> list[Deployment]:
        """Every revision, oldest first."""
        with self.store.read() as conn:
            self._latest(conn, name)
            rows = conn.execute(select(deployment_revisions).where(deployment_revisions.c.name == name)
                                .order_by(deployment_revisions.c.revision)).all()
            return [_revision(name, row) for row in rows]

    @requires(Action.DEPLOYMENTS_READ)
    def sync(self, name: str) -> Deployment:
        """The current revision, after recording one if an alias a target follows has moved.

        Several servers may notice the same move at once: one records it, the others read it.
        It needs only ``deployments.read``: the revision records what the aliases already say
        (whoever moved them had ``models.alias``), so any model server may keep it current.
        """
        current = self.get(name)
        resolved = self.resolve(current.spec)
        if resolved == current.resolved:
            return current
        moves = ", ".join(f"{target} {current.resolved.get(target)}→{version}" for target, version in resolved.items()
                          if current.resolved.get(target) != version)
        try:
            with self.store.write() as conn:
                return self._append(conn, name, current.revision + 1, current.spec, resolved, f"alias moved: {moves}")
        except Conflict:
            return self.get(name)

    @requires(Action.DEPLOYMENTS_WRITE)
    def rollback(self, name: str) -> Deployment:
        """Serve again exactly what the previous revision served: its policy and split, with
        every target pinned to the version it resolved to then.

        Raises:
            Conflict: the deployment has no earlier revision.
        """
        self.sync(name)
        revisions = self.history(name)
        if len(revisions) < 2:
            raise Conflict(f"deployment {name!r} has no earlier revision to roll back to", field="name")
        previous = revisions[-2]
        pin = {target: str(version) for target, version in previous.resolved.items()}
        spec = previous.spec.model_copy(update={
            "traffic": [Route(target=pin[route.target], weight=route.weight) for route in previous.spec.traffic],
            "shadow": [pin[target] for target in previous.spec.shadow],
        })
        return self._change(name, DeploymentSpec.model_validate(spec.model_dump()),
                            f"rolled back to revision {previous.revision}", "rollback")
