"""``FeatureStore``: the one service layer of the feature store; the SDK and CLI call it.

Definitions are applied from code into versioned records; training sets and online
lookups read the applied versions, never the files, so what a model was trained on can
be named exactly.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from conveyor.core.workspace import Workspace, open_workspace
from conveyor.errors import Conflict, ValidationError
from conveyor.features.catalog import DefinitionCatalog
from conveyor.features.checks import check_references, check_view_data
from conveyor.features.datasets import DatasetOperations
from conveyor.features.definitions import (
    Definition,
    Entity,
    FeatureService,
    FeatureView,
)
from conveyor.features.engine import connect, ttl_micros
from conveyor.features.loader import load_definitions
from conveyor.features.lookup import OnlineResponse, ViewLookup, lookup
from conveyor.features.materializations import MaterializationOperations
from conveyor.features.materialize import online_table
from conveyor.features.offline import RetrievalJob, ViewRead
from conveyor.features.online import OnlineStore, open_online_store
from conveyor.features.plan import make_plan
from conveyor.features.schemas import Plan
from conveyor.features.sources import SourceContext
from conveyor.governance.identity import Actor
from conveyor.governance.permissions import Action, requires

FeatureRefs = str | FeatureService | Sequence[str]


def desired_definitions(objects: Sequence[Definition]) -> list[Definition]:
    """``objects`` once each, with the entities their views hold as objects added.

    Raises:
        ValidationError: an item is not a definition, or two different ones share a kind and name.
    """
    desired: dict[tuple[str, str], Definition] = {}
    for obj in objects:
        if not isinstance(obj, Definition):
            raise ValidationError(f"cannot apply {type(obj).__name__}: expected Entity, FeatureView or FeatureService",
                                  field="objects")
        key = (obj.kind, obj.name)
        if key in desired and desired[key] != obj:
            raise ValidationError(f"{obj.label} is given twice with different definitions", field=f"{obj.kind}.name")
        desired[key] = obj
        if isinstance(obj, FeatureView):
            for entity in obj.entities:
                if isinstance(entity, Entity):
                    desired.setdefault(("entity", entity.name), entity)
    return list(desired.values())


class FeatureStore(MaterializationOperations, DatasetOperations):
    """The feature store of one workspace.

    Args:
        path: the workspace folder (found from the current folder if omitted).
        workspace: an open workspace instead of a path.
        overrides: settings overrides, as for ``conveyor.open_workspace``.

    In a workspace that names a server (``server:`` or ``CONVEYOR_SERVER``) this is a
    ``RemoteFeatureStore``: the same interface, over the server's API.

    Example::

        store = conveyor.FeatureStore()
        training = store.get_historical_features(labels, "credit_v1").to_df()
        store.get_online_features("credit_v1", [{"customer_id": "C000042"}]).to_dict()
    """

    def __new__(cls, path: str | Path | None = None, *, workspace: Workspace | None = None, **overrides: Any) -> FeatureStore:
        """The workspace's feature store: this class in-process, the same interface over HTTP
        (``RemoteFeatureStore``) when the workspace works through a server."""
        if cls is FeatureStore:
            workspace = workspace or open_workspace(path, **overrides)
            store_type = workspace.feature_store_type
            if store_type is not FeatureStore:
                return store_type(workspace=workspace)  # type: ignore[no-any-return]
        return super().__new__(cls)

    def __init__(self, path: str | Path | None = None, *, workspace: Workspace | None = None, **overrides: Any) -> None:
        self.workspace = workspace or open_workspace(path, **overrides)
        self.settings = self.workspace.settings
        self.catalog = DefinitionCatalog(self.workspace.metadata)
        self._plans: dict[Any, list[ViewLookup]] = {}

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.settings.workspace)!r})"

    @functools.cached_property
    def online(self) -> OnlineStore:
        """The configured online store (SQLite by default, Redis for teams)."""
        return open_online_store(self.settings.features.online, self.settings.state_dir)

    @functools.cached_property
    def duckdb(self) -> SourceContext:
        """The DuckDB connection that reads sources."""
        return connect(self.settings)

    @property
    def actor(self) -> Actor:
        """Who acts on the store: the workspace's acting user."""
        return self.workspace.actor

    def close(self) -> None:
        """Release the online store and the DuckDB connection."""
        if "online" in self.__dict__:
            self.online.close()
        if "duckdb" in self.__dict__:
            self.duckdb.con.close()

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # definitions -------------------------------------------------------------------------

    def _desired(self, objects: Sequence[Definition] | None) -> tuple[list[Definition], bool]:
        if objects is None:
            return load_definitions(self.settings), True
        return desired_definitions(objects), False

    @requires(Action.FEATURES_READ)
    def plan(self, objects: Sequence[Definition] | None = None) -> Plan:
        """What ``apply`` would create, update or delete, and which models a change would break.

        ``objects=None`` reads the workspace's ``features/`` folder, whose contents are the whole
        desired state (objects no longer declared are deleted); a list adds or updates only those.
        """
        desired, prune = self._desired(objects)
        return self._plan(desired, prune)

    @requires(Action.FEATURES_READ)
    def plan_declared(self, objects: Sequence[Definition]) -> Plan:
        """What ``apply_declared`` would do."""
        return self._plan(desired_definitions(objects), prune=True)

    def _plan(self, desired: list[Definition], prune: bool, conn: Any = None) -> Plan:
        current = self.catalog.latest(conn)
        versions = {key: stored.version for key, stored in self.catalog.latest(conn, include_deleted=True).items()}
        return make_plan(desired, current, prune, self.workspace.registry.feature_service_consumers, versions)

    @requires(Action.FEATURES_APPLY)
    def apply(self, objects: Sequence[Definition] | None = None, allow_breaking: bool = False) -> Plan:
        """Check the definitions, then record each changed one as a new version (audited).

        Raises:
            ValidationError: a reference, column, type or timestamp is wrong; names the object and field.
            Conflict: the change breaks a feature service a model uses, and ``allow_breaking`` is False.
        """
        desired, prune = self._desired(objects)
        return self._apply(desired, prune, allow_breaking)

    @requires(Action.FEATURES_APPLY)
    def apply_declared(self, objects: Sequence[Definition], allow_breaking: bool = False) -> Plan:
        """``apply()`` of definitions read elsewhere (a remote client sends its ``features/`` folder's
        this way): ``objects`` are the whole desired state, so applied objects not among them are deleted."""
        return self._apply(desired_definitions(objects), True, allow_breaking)

    def _apply(self, desired: list[Definition], prune: bool, allow_breaking: bool) -> Plan:
        plan = self._plan(desired, prune)
        state = self._state_after(desired, prune)
        check_references(state)
        entities = {obj.name: obj for obj in state.values() if isinstance(obj, Entity)}
        for change in plan.changes:
            view = state.get((change.kind, change.name))
            if isinstance(view, FeatureView):
                check_view_data(view, entities, self.duckdb)
        specs = {(obj.kind, obj.name): obj.to_spec() for obj in desired}
        actor = self.workspace.actor.name
        with self.workspace.audit.transaction() as tx:
            plan = self._plan(desired, prune, tx.conn)
            if plan.breaking and not allow_breaking:
                raise Conflict(f"apply refused: {plan.breaking[0]} (pass allow_breaking / --allow-breaking)",
                               field="feature_service")
            for change in plan.changes:
                spec = None if change.action == "delete" else specs[(change.kind, change.name)]
                self.catalog.add_version(tx.conn, change.kind, change.name, change.version, spec, actor)
                tx.record(actor, f"features.{change.action}", f"{change.kind}/{change.name}",
                          None, {"version": change.version, "details": change.details})
        self._plans.clear()
        return plan

    def _state_after(self, desired: list[Definition], prune: bool) -> dict[tuple[str, str], Definition]:
        state: dict[tuple[str, str], Definition] = {}
        if not prune:
            state = {key: self.catalog.load(stored) for key, stored in self.catalog.latest().items()}
        state.update({(obj.kind, obj.name): obj for obj in desired})
        return state

    @requires(Action.FEATURES_READ)
    def list_definitions(self, kind: str | None = None) -> list[tuple[int, Definition]]:
        """Applied objects (optionally of one kind: entity, feature_view, feature_service) with their versions."""
        latest = sorted(self.catalog.latest().values(), key=lambda s: (s.kind, s.name))
        return [(s.version, self.catalog.load(s)) for s in latest if kind is None or s.kind == kind]

    @requires(Action.FEATURES_READ)
    def get_entity(self, name: str) -> Entity:
        """The applied entity ``name``."""
        return self.catalog.load(self.catalog.get("entity", name))  # type: ignore[return-value]

    @requires(Action.FEATURES_READ)
    def get_feature_view(self, name: str, version: int | None = None) -> FeatureView:
        """The applied feature view ``name`` (its newest version unless one is given)."""
        return self.catalog.load(self.catalog.get("feature_view", name, version))  # type: ignore[return-value]

    @requires(Action.FEATURES_READ)
    def get_feature_service(self, name: str, version: int | None = None) -> FeatureService:
        """The applied feature service ``name``."""
        return self.catalog.load(self.catalog.get("feature_service", name, version))  # type: ignore[return-value]

    # resolving feature references ----------------------------------------------------------

    def _refs(self, features: FeatureRefs) -> tuple[list[str], str | None]:
        if isinstance(features, FeatureService):
            return features.refs, features.name
        if isinstance(features, str):
            if ":" in features:
                return [features], None
            return self.get_feature_service(features).refs, features
        refs = list(features)
        if not refs:
            raise ValidationError("features: give a feature service or a non-empty list of 'view:feature'", field="features")
        for ref in refs:
            if not isinstance(ref, str) or ref.count(":") != 1:
                raise ValidationError(f"feature reference {ref!r} must look like 'view:feature'", field="features")
        return refs, None

    def _reads(self, refs: list[str], full_feature_names: bool) -> list[ViewRead]:
        grouped: dict[str, list[str]] = {}
        for ref in refs:
            view, name = ref.split(":", 1)
            grouped.setdefault(view, []).append(name)
        reads, seen = [], {}
        for view_name, names in grouped.items():
            stored = self.catalog.get("feature_view", view_name)
            view: FeatureView = self.catalog.load(stored)  # type: ignore[assignment]
            for name in names:
                view.feature(name)
            outputs = tuple(f"{view_name}__{n}" if full_feature_names else n for n in names)
            for output in outputs:
                if output in seen:
                    raise ValidationError(
                        f"feature {output!r} comes from both {seen[output]!r} and {view_name!r}: "
                        "pass full_feature_names=True", field=output)
                seen[output] = view_name
            keys = tuple(k for e in view.entity_names for k in self.get_entity(e).join_keys)
            reads.append(ViewRead(view, stored.version, keys, tuple(names), outputs))
        return reads

    # offline -----------------------------------------------------------------------------

    @requires(Action.FEATURES_READ)
    def get_historical_features(
        self,
        entity_df: pd.DataFrame | pa.Table,
        features: FeatureRefs,
        timestamp_column: str = "event_timestamp",
        full_feature_names: bool = False,
    ) -> RetrievalJob:
        """A point-in-time-correct training set: for each entity row, each view's latest values at
        or before its timestamp and within the view's TTL (nulls otherwise), rows kept in order.

        Raises:
            ValidationError: a join key or the timestamp column is missing, or a feature is unknown.
            NotFound: a view or service is not applied.
        """
        refs, service = self._refs(features)
        reads = self._reads(refs, full_feature_names)
        for read in reads:
            clash = set(read.outputs) & set(entity_df.columns if isinstance(entity_df, pd.DataFrame) else entity_df.column_names)
            if clash:
                name = sorted(clash)[0]
                raise ValidationError(f"entity_df already has a column {name!r}, also a requested feature", field=name)
        return RetrievalJob(self.duckdb, reads, entity_df, timestamp_column, service)

    # online ------------------------------------------------------------------------------

    def _lookup_plan(self, features: FeatureRefs) -> list[ViewLookup]:
        cache_key = features.name if isinstance(features, FeatureService) else (
            features if isinstance(features, str) else tuple(features))
        plan = self._plans.get(cache_key)
        if plan is None:
            refs, _ = self._refs(features)
            plan = []
            for read in self._reads(refs, full_feature_names=False):
                positions = tuple(1 + read.view.feature_names.index(n) for n in read.features)
                ttl = ttl_micros(read.view)
                stamps = frozenset(o for o, n in zip(read.outputs, read.features) if read.view.feature(n).dtype == "timestamp")
                plan.append(ViewLookup(online_table(read.view, read.version), read.join_keys, positions, read.outputs,
                                       ttl, stamps))
            self._plans[cache_key] = plan
        return plan

    @requires(Action.FEATURES_READ)
    def get_online_features(
        self, features: FeatureRefs, entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]
    ) -> OnlineResponse:
        """The materialised values of ``features`` for each entity, with a status per value
        (present, null, missing, outside_ttl).

        Raises:
            ValidationError: an entity row lacks a join key, or a feature is unknown.
        """
        return lookup(self.online, self._lookup_plan(features), entity_rows)

    @requires(Action.FEATURES_READ)
    def online_columns(self, features: FeatureRefs) -> tuple[list[str], list[str]]:
        """The join keys an online lookup of ``features`` needs and the columns it returns."""
        plan = self._lookup_plan(features)
        keys = list(dict.fromkeys(key for view in plan for key in view.join_keys))
        return keys, [output for view in plan for output in view.outputs]

    def refresh(self) -> None:
        """Forget cached lookup plans, e.g. after another process applied new definitions."""
        self._plans.clear()
