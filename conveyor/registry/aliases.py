"""Aliases (``champion``, ``challenger``, any name): set, moved, deleted and rolled back
atomically, with the history of where each pointed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, select

from conveyor.core.db.base import now_ms
from conveyor.errors import Conflict, NotFound
from conveyor.governance.permissions import Action, requires
from conveyor.registry.schemas import AliasChange, ModelVersion, VersionStatus
from conveyor.registry.tables import alias_history, model_aliases
from conveyor.registry.uris import check_alias

if TYPE_CHECKING:
    from conveyor.core.config import RegistrySettings
    from conveyor.core.db import MetadataStore
    from conveyor.governance import Actor, AuditedTransaction, AuditLog

CLOSED = {VersionStatus.ARCHIVED.value, VersionStatus.REJECTED.value}


def _effective(changes: list[Any]) -> list[int | None]:
    """Replay an alias's history into the stack of versions it pointed to (``None`` when
    deleted); a rollback pops back to the last version below the current one."""
    stack: list[int | None] = []
    for change in changes:
        if change.action == "rollback":
            stack.pop()
            while stack and stack[-1] is None:
                stack.pop()
        else:
            stack.append(change.version if change.action == "set" else None)
    return stack


class AliasOperations:
    """The alias side of ``RegistryService``."""

    store: MetadataStore
    audit: AuditLog
    actor: Actor
    settings: RegistrySettings
    if TYPE_CHECKING:  # provided by RegistryService

        def _model_row(self, conn: Connection, name: str) -> Any: ...
        def _version_row(self, conn: Connection, name: str, version: int | str) -> tuple[Any, Any]: ...
        def get_model_version(self, name: str, version: int | str) -> ModelVersion: ...

    def check_may_hold(self, model: Any, version: Any, alias: str) -> None:
        """Refuse an alias a version may not hold: closed versions hold none, and a
        protected alias needs approval when the model's risk tier requires it."""
        if version.status in CLOSED:
            raise Conflict(
                f"version {version.version} of '{model.name}' is {version.status} and cannot hold alias '{alias}'",
                field="version",
            )
        needs_approval = alias in self.settings.protected_aliases and model.risk_tier in self.settings.approval_required_tiers
        if needs_approval and version.status != VersionStatus.APPROVED.value:
            raise Conflict(
                f"version {version.version} of '{model.name}' (risk tier {model.risk_tier}) is {version.status}: "
                f"it must be approved before it can hold alias '{alias}'",
                field="version",
            )

    def _current(self, conn: Connection, model_id: str, alias: str) -> int | None:
        return conn.execute(select(model_aliases.c.version).where(
            model_aliases.c.model_id == model_id, model_aliases.c.alias == alias
        )).scalar()

    def _point(self, tx: AuditedTransaction, model: Any, alias: str, version: int | None, action: str) -> None:
        current = self._current(tx.conn, model.id, alias)
        now = now_ms()
        if version is None:
            tx.conn.execute(delete(model_aliases).where(model_aliases.c.model_id == model.id, model_aliases.c.alias == alias))
        else:
            upsert = self.store.dialect.insert(model_aliases).values(
                model_id=model.id, alias=alias, version=version, set_by=self.actor.name, set_at=now
            )
            tx.conn.execute(upsert.on_conflict_do_update(
                index_elements=[model_aliases.c.model_id, model_aliases.c.alias],
                set_={"version": version, "set_by": self.actor.name, "set_at": now},
            ))
        tx.conn.execute(alias_history.insert().values(
            model_id=model.id, alias=alias, action=action, version=version, previous_version=current,
            actor=self.actor.name, at=now,
        ))
        tx.record(
            self.actor.name, f"alias.{action}", f"{model.name}@{alias}",
            None if current is None else {"version": current}, None if version is None else {"version": version},
        )

    @requires(Action.MODELS_ALIAS)
    def set_alias(self, name: str, alias: str, version: int | str) -> ModelVersion:
        """Point ``alias`` at ``version`` (a number, or another alias to copy), moving it
        atomically if it pointed elsewhere."""
        check_alias(alias)
        with self.audit.transaction() as tx:
            model, row = self._version_row(tx.conn, name, version)
            if self._current(tx.conn, model.id, alias) != row.version:
                self.check_may_hold(model, row, alias)
                self._point(tx, model, alias, row.version, "set")
        return self.get_model_version(name, row.version)

    @requires(Action.MODELS_ALIAS)
    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias; ``NotFound`` if the model has no such alias."""
        check_alias(alias)
        with self.audit.transaction() as tx:
            model = self._model_row(tx.conn, name)
            if self._current(tx.conn, model.id, alias) is None:
                raise NotFound(f"registered model '{name}' has no alias '{alias}'", field="alias")
            self._point(tx, model, alias, None, "delete")

    @requires(Action.MODELS_ALIAS)
    def rollback_alias(self, name: str, alias: str) -> ModelVersion:
        """Point ``alias`` back at the version it held before the current one; repeated
        rollbacks walk further back through its history."""
        check_alias(alias)
        with self.audit.transaction() as tx:
            model = self._model_row(tx.conn, name)
            stack = _effective(self._history_rows(tx.conn, model.id, alias))
            if not stack or stack[-1] is None:
                raise NotFound(f"registered model '{name}' has no alias '{alias}'", field="alias")
            earlier = [version for version in stack[:-1] if version is not None]
            if not earlier:
                raise Conflict(f"alias '{alias}' of '{name}' has no earlier version to roll back to", field="alias")
            _, row = self._version_row(tx.conn, name, earlier[-1])
            self.check_may_hold(model, row, alias)
            self._point(tx, model, alias, row.version, "rollback")
        return self.get_model_version(name, row.version)

    def _history_rows(self, conn: Connection, model_id: str, alias: str | None) -> list[Any]:
        query = select(alias_history).where(alias_history.c.model_id == model_id)
        if alias is not None:
            query = query.where(alias_history.c.alias == alias)
        return conn.execute(query.order_by(alias_history.c.id)).all()

    @requires(Action.MODELS_READ)
    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        """Every move of the model's aliases (or of one), oldest first."""
        with self.store.read() as conn:
            model = self._model_row(conn, name)
            return [AliasChange(**row._mapping) for row in self._history_rows(conn, model.id, alias)]
