"""Versions of applied definitions in the metadata store.

Every ``apply`` that changes an object adds a version; deleting one adds a tombstone
version, so the history of each object survives and a saved training set can name the
exact version of the service and views it was built from.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, func, select

from conveyor.core.db import MetadataStore
from conveyor.core.db.base import now_ms
from conveyor.errors import NotFound
from conveyor.features.definitions import Definition, definition_from_spec, spec_digest
from conveyor.features.schemas import StoredDefinition
from conveyor.features.tables import feature_definitions as defs


def _stored(row: Any) -> StoredDefinition:
    return StoredDefinition.model_validate(row._asdict())


class DefinitionCatalog:
    """Reads and writes definition versions."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    def latest(self, conn: Connection | None = None, include_deleted: bool = False) -> dict[tuple[str, str], StoredDefinition]:
        """The newest version of every object, keyed by (kind, name); deleted ones only when asked."""
        newest = (
            select(defs.c.kind, defs.c.name, func.max(defs.c.version).label("version"))
            .group_by(defs.c.kind, defs.c.name).subquery()
        )
        query = select(defs).join(newest, and_(
            defs.c.kind == newest.c.kind, defs.c.name == newest.c.name, defs.c.version == newest.c.version
        ))
        if conn is None:
            with self.store.read() as own:
                rows = own.execute(query).all()
        else:
            rows = conn.execute(query).all()
        found = {(row.kind, row.name): _stored(row) for row in rows}
        return found if include_deleted else {key: value for key, value in found.items() if not value.deleted}

    def get(self, kind: str, name: str, version: int | None = None) -> StoredDefinition:
        """One version (the newest when ``version`` is None) of an applied object.

        Raises:
            NotFound: no such object or version, or the object was deleted.
        """
        query = select(defs).where(defs.c.kind == kind, defs.c.name == name)
        query = query.where(defs.c.version == version) if version else query.order_by(defs.c.version.desc()).limit(1)
        with self.store.read() as conn:
            row = conn.execute(query).first()
        label = kind.replace("_", " ")
        if row is None or (row.deleted and version is None):
            raise NotFound(f"{label} {name!r}{f' version {version}' if version else ''} is not applied "
                           "(conveyor features apply)", field=label.replace(" ", "_"))
        return _stored(row)

    def history(self, kind: str, name: str) -> list[StoredDefinition]:
        """Every version of one object, newest first."""
        with self.store.read() as conn:
            rows = conn.execute(select(defs).where(defs.c.kind == kind, defs.c.name == name)
                                .order_by(defs.c.version.desc())).all()
        return [_stored(row) for row in rows]

    def load(self, stored: StoredDefinition) -> Definition:
        """The definition object of a stored version."""
        return definition_from_spec(stored.kind, stored.spec)

    @staticmethod
    def add_version(conn: Connection, kind: str, name: str, version: int, spec: dict[str, Any] | None,
                    actor: str) -> None:
        """Record a version; ``spec=None`` records the object's deletion."""
        conn.execute(defs.insert().values(
            kind=kind, name=name, version=version, spec=spec or {}, digest=spec_digest(spec or {}),
            deleted=spec is None, created_by=actor, created_at=now_ms(),
        ))
