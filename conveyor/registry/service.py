"""The model registry: registered models and their immutable, numbered versions.

Every state change runs in an audited transaction (see ``governance.audit``): the
change and its audit entry commit together, one writer at a time, on SQLite and
PostgreSQL alike. Aliases and the approval workflow are in ``aliases.py`` and
``approvals.py``; this module holds what they share.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, func, select, update

from conveyor.core.artifacts import ArtifactStore
from conveyor.core.config import RegistrySettings
from conveyor.core.db import MetadataStore
from conveyor.core.db.base import now_ms
from conveyor.errors import Conflict, NotFound, ValidationError
from conveyor.governance import (
    ActingActor,
    Action,
    Actor,
    AuditedTransaction,
    AuditLog,
    requires,
)
from conveyor.registry.aliases import AliasOperations
from conveyor.registry.approvals import ApprovalOperations
from conveyor.registry.loading import PROFILE_FILE, load_resolved
from conveyor.registry.packaging import (
    MANIFEST_FILE,
    Manifest,
    Predictor,
    read_manifest,
)
from conveyor.registry.schemas import (
    ModelVersion,
    RegisteredModel,
    RiskTier,
    VersionStatus,
)
from conveyor.registry.tables import model_aliases, model_versions, registered_models
from conveyor.registry.uris import (
    LATEST,
    RunRef,
    check_model_name,
    parse_model_uri,
    parse_version,
)
from conveyor.registry.validation import ValidationOperations
from conveyor.tracking import TrackingService

EDITABLE_FIELDS = ("description", "owner_team", "task_type", "intended_use", "limitations", "tags")


def _risk_tier(value: RiskTier | str) -> RiskTier:
    try:
        return RiskTier(value)
    except ValueError:
        raise ValidationError(f"risk tier must be low, medium or high, got {value!r}", field="risk_tier") from None


def _tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise ValidationError(f"tags must be a mapping, got {type(tags).__name__}", field="tags")
    return {str(key): str(value) for key, value in tags.items()}


class RegistryService(AliasOperations, ApprovalOperations, ValidationOperations):
    """Registered models, versions, aliases and approvals of one workspace.

    Args:
        store: the metadata store.
        artifacts: the artifact store holding model files.
        tracking: the tracking service, for the runs models come from.
        settings: the registry's rules (protected aliases, tiers needing approval...).
        actor: who acts; every change is recorded under this name.
        cache: where loaded models' files are kept, one folder per manifest.
    """

    actor = ActingActor()

    def __init__(
        self, store: MetadataStore, artifacts: ArtifactStore, tracking: TrackingService,
        settings: RegistrySettings, actor: Actor, cache: Path,
    ) -> None:
        self.cache = cache
        self.store = store
        self.artifacts = artifacts
        self.tracking = tracking
        self.settings = settings
        self.actor = actor
        self.audit = AuditLog(store, actor)

    # -- registered models -------------------------------------------------------

    def _model_row(self, conn: Connection, name: str) -> Any:
        row = conn.execute(select(registered_models).where(registered_models.c.name == name)).first()
        if row is None:
            raise NotFound(f"registered model '{name}' does not exist", field="name")
        return row

    def _insert_model(self, tx: AuditedTransaction, name: str, values: dict[str, Any]) -> Any:
        now = now_ms()
        row = {
            "id": uuid.uuid4().hex, "name": name, "created_by": self.actor.name, "created_at": now, "updated_at": now,
            **values,
        }
        tx.conn.execute(registered_models.insert().values(**row))
        tx.record(self.actor.name, "model.created", name, None, {k: row.get(k) for k in ("risk_tier", *EDITABLE_FIELDS)})
        return self._model_row(tx.conn, name)

    @requires(Action.MODELS_WRITE)
    def create_registered_model(
        self,
        name: str,
        description: str | None = None,
        owner_team: str | None = None,
        task_type: str | None = None,
        risk_tier: RiskTier | str | None = None,
        intended_use: str | None = None,
        limitations: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> RegisteredModel:
        """Create a registered model; ``Conflict`` if the name is taken.

        ``risk_tier`` defaults to ``registry.default_risk_tier``; the tier decides
        whether a version needs approval before it may become champion.
        """
        check_model_name(name)
        values = {
            "description": description, "owner_team": owner_team, "task_type": task_type,
            "risk_tier": _risk_tier(risk_tier or self.settings.default_risk_tier).value,
            "intended_use": intended_use, "limitations": limitations, "tags": _tags(tags),
        }
        with self.audit.transaction() as tx:
            if tx.conn.execute(select(registered_models.c.id).where(registered_models.c.name == name)).first():
                raise Conflict(f"registered model '{name}' exists already", field="name")
            self._insert_model(tx, name, values)
        return self.get_registered_model(name)

    def update_registered_model(self, name: str, **changes: Any) -> RegisteredModel:
        """Change a model's descriptive fields (``models.write``) or its risk tier.

        Only a validator or platform admin may change the risk tier (``models.set_tier``):
        lowering it would otherwise let a model skip approval. A validator may change the
        tier alone without ``models.write``.
        """
        given = {key for key, value in changes.items() if value is not None}
        if given != {"risk_tier"}:
            self.actor.require(Action.MODELS_WRITE)
        if "risk_tier" in given:
            self.actor.require(Action.MODELS_SET_TIER)
        unknown = set(changes) - {*EDITABLE_FIELDS, "risk_tier"}
        if unknown:
            raise ValidationError(f"cannot update {', '.join(sorted(unknown))} of a registered model", field=min(unknown))
        values = {key: value for key, value in changes.items() if value is not None}
        if "risk_tier" in values:
            values["risk_tier"] = _risk_tier(values["risk_tier"]).value
        if "tags" in values:
            values["tags"] = _tags(values["tags"])
        with self.audit.transaction() as tx:
            row = self._model_row(tx.conn, name)
            before = {key: row._mapping[key] for key in values}
            if values and before != values:
                tx.conn.execute(
                    update(registered_models).where(registered_models.c.id == row.id).values(**values, updated_at=now_ms())
                )
                tx.record(self.actor.name, "model.updated", name, before, values)
        return self.get_registered_model(name)

    # The body checks models.write, and models.set_tier for a new risk tier.
    update_registered_model.__conveyor_action__ = Action.MODELS_WRITE  # type: ignore[attr-defined]

    def _registered(self, conn: Connection, rows: Sequence[Any]) -> list[RegisteredModel]:
        ids = [row.id for row in rows]
        aliases: dict[str, dict[str, int]] = {model_id: {} for model_id in ids}
        for model_id, alias, version in conn.execute(
            select(model_aliases.c.model_id, model_aliases.c.alias, model_aliases.c.version)
            .where(model_aliases.c.model_id.in_(ids)).order_by(model_aliases.c.alias)
        ):
            aliases[model_id][alias] = version
        latest = dict(conn.execute(
            select(model_versions.c.model_id, func.max(model_versions.c.version))
            .where(model_versions.c.model_id.in_(ids)).group_by(model_versions.c.model_id)
        ).all())
        return [RegisteredModel(**row._mapping, aliases=aliases[row.id], latest_version=latest.get(row.id)) for row in rows]

    @requires(Action.MODELS_READ)
    def get_registered_model(self, name: str) -> RegisteredModel:
        """A registered model with its aliases and latest version number."""
        with self.store.read() as conn:
            return self._registered(conn, [self._model_row(conn, name)])[0]

    @requires(Action.MODELS_READ)
    def list_registered_models(self) -> list[RegisteredModel]:
        """Every registered model, by name."""
        with self.store.read() as conn:
            rows = conn.execute(select(registered_models).order_by(registered_models.c.name)).all()
            return self._registered(conn, rows)

    # -- versions ------------------------------------------------------------------

    def _manifest_of_run(self, ref: RunRef) -> tuple[str, Manifest]:
        artifact = self.tracking.get_artifact(ref.run_id, f"{ref.path}/{MANIFEST_FILE}")
        return artifact.sha256, read_manifest(self.artifacts.get_bytes(artifact.sha256))

    @requires(Action.MODELS_WRITE)
    def create_model_version(
        self, name: str, source: str, description: str | None = None, feature_service: str | None = None,
        risk_tier: RiskTier | str | None = None,
    ) -> ModelVersion:
        """Register the model logged at ``source`` (``runs:/RUN/PATH``) as the next version
        of ``name``, creating the registered model if it does not exist yet.

        The version pins the manifest by hash, so later logging to the same run path
        never changes it. Lineage (run, datasets, git commit) is copied from the run.
        """
        check_model_name(name)
        ref = parse_model_uri(source)
        if not isinstance(ref, RunRef):
            raise ValidationError(f"a version is registered from a runs:/RUN/PATH URI, got {source!r}", field="source")
        manifest_sha, manifest = self._manifest_of_run(ref)
        run = self.tracking.get_run(ref.run_id)
        profile = next((a.sha256 for a in run.artifacts if a.path == f"{ref.path}/{PROFILE_FILE}"), None)
        with self.audit.transaction() as tx:
            model = tx.conn.execute(select(registered_models).where(registered_models.c.name == name)).first()
            if model is None:
                model = self._insert_model(tx, name, {
                    "risk_tier": _risk_tier(risk_tier or self.settings.default_risk_tier).value,
                    "task_type": manifest.signature.outputs.kind if manifest.signature and manifest.signature.outputs else None,
                    "tags": {},
                })
            number = (tx.conn.execute(
                select(func.max(model_versions.c.version)).where(model_versions.c.model_id == model.id)
            ).scalar() or 0) + 1
            now = now_ms()
            row = {
                "id": uuid.uuid4().hex, "model_id": model.id, "version": number, "source": f"runs:/{ref.run_id}/{ref.path}",
                "run_id": ref.run_id, "manifest_sha256": manifest_sha, "profile_sha256": profile, "flavor": manifest.flavor, "unsafe": manifest.unsafe,
                "status": VersionStatus.CANDIDATE.value, "description": description, "git_commit": run.info.git_commit,
                "datasets": sorted({item.id for item in run.inputs}), "feature_service": feature_service,
                "created_by": self.actor.name, "created_at": now, "status_changed_at": now,
            }
            tx.conn.execute(model_versions.insert().values(**row))
            tx.record(self.actor.name, "version.created", f"{name}/{number}", None, {
                "status": row["status"], "source": row["source"], "manifest_sha256": manifest_sha,
                "flavor": manifest.flavor, "unsafe": manifest.unsafe,
            })
        return self.get_model_version(name, number)

    def _version_row(self, conn: Connection, name: str, version: int | str) -> tuple[Any, Any]:
        model = self._model_row(conn, name)
        wanted = parse_version(version)
        if wanted == LATEST:
            number = conn.execute(select(func.max(model_versions.c.version)).where(model_versions.c.model_id == model.id)).scalar()
            if number is None:
                raise NotFound(f"registered model '{name}' has no versions", field="version")
        elif isinstance(wanted, str):
            number = conn.execute(select(model_aliases.c.version).where(
                model_aliases.c.model_id == model.id, model_aliases.c.alias == wanted
            )).scalar()
            if number is None:
                raise NotFound(f"registered model '{name}' has no alias '{wanted}'", field="alias")
        else:
            number = wanted
        row = conn.execute(select(model_versions).where(
            model_versions.c.model_id == model.id, model_versions.c.version == number
        )).first()
        if row is None:
            raise NotFound(f"registered model '{name}' has no version {number}", field="version")
        return model, row

    def _version(self, conn: Connection, name: str, row: Any) -> ModelVersion:
        aliases = conn.execute(select(model_aliases.c.alias).where(
            model_aliases.c.model_id == row.model_id, model_aliases.c.version == row.version
        ).order_by(model_aliases.c.alias)).scalars().all()
        values = {key: value for key, value in row._mapping.items() if key not in {"id", "model_id"}}
        return ModelVersion(model=name, **values, aliases=list(aliases))

    @requires(Action.MODELS_READ)
    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        """A version by number, alias (``"champion"``) or ``"latest"``."""
        with self.store.read() as conn:
            _, row = self._version_row(conn, name, version)
            return self._version(conn, name, row)

    @requires(Action.MODELS_READ)
    def resolve(self, uri: str) -> tuple[ModelVersion | None, str]:
        """The version a model URI names (``None`` for ``runs:/``) and its manifest hash."""
        ref = parse_model_uri(uri)
        if isinstance(ref, RunRef):
            return None, self._manifest_of_run(ref)[0]
        found = self.get_model_version(ref.name, ref.alias or ref.version or LATEST)
        return found, found.manifest_sha256

    @requires(Action.MODELS_READ)
    def load_model(
        self,
        uri: str,
        allow_pickle: bool = False,
        trusted_types: Sequence[str] = (),
        schema_mode: Literal["error", "coerce"] = "error",
    ) -> Predictor:
        """The model a URI names (``models:/NAME@ALIAS``, ``models:/NAME/3``, ``runs:/RUN/PATH``),
        behind one predictor interface whatever its library; every file is verified first.

        ``trusted_types`` adds to ``registry.trusted_types`` the types skops may rebuild.
        """
        version, manifest_sha = self.resolve(uri)
        trusted = [*self.settings.trusted_types, *trusted_types]
        return load_resolved(self.artifacts, self.cache, uri, version, manifest_sha, allow_pickle, trusted, schema_mode)

    @requires(Action.MODELS_READ)
    def list_model_versions(self, name: str, status: VersionStatus | str | None = None) -> list[ModelVersion]:
        """Every version of a model, newest first, optionally of one status."""
        with self.store.read() as conn:
            model = self._model_row(conn, name)
            query = select(model_versions).where(model_versions.c.model_id == model.id)
            if status is not None:
                query = query.where(model_versions.c.status == VersionStatus(status).value)
            rows = conn.execute(query.order_by(model_versions.c.version.desc())).all()
            return [self._version(conn, name, row) for row in rows]

    @requires(Action.MODELS_READ)
    def feature_service_consumers(self, services: Sequence[str]) -> dict[str, list[str]]:
        """Live model versions (neither archived nor rejected) that consume each feature service,
        as ``name vN``: what a change to the service would break."""
        query = (
            select(model_versions.c.feature_service, registered_models.c.name, model_versions.c.version)
            .join(registered_models, registered_models.c.id == model_versions.c.model_id)
            .where(model_versions.c.feature_service.in_(list(services)))
            .where(model_versions.c.status.not_in([VersionStatus.ARCHIVED.value, VersionStatus.REJECTED.value]))
            .order_by(registered_models.c.name, model_versions.c.version)
        )
        consumers: dict[str, list[str]] = {}
        with self.store.read() as conn:
            for service, model, version in conn.execute(query):
                consumers.setdefault(service, []).append(f"{model} v{version}")
        return consumers

    def _set_status(self, tx: AuditedTransaction, name: str, row: Any, status: VersionStatus, action: str, actor: str,
                    extra: dict[str, Any] | None = None) -> None:
        tx.conn.execute(update(model_versions).where(model_versions.c.id == row.id).values(
            status=status.value, status_changed_at=now_ms()
        ))
        tx.record(actor, action, f"{name}/{row.version}", {"status": row.status}, {"status": status.value, **(extra or {})})
