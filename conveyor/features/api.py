"""The feature store over HTTP (``/api/v1/features``): definitions, plans and applies,
materialisations and their freshness, statistics, online values, training sets and saved datasets.

Definitions travel as the specs ``apply`` stores (``{"kind", "spec"}``), never as code: a
remote client reads its ``features/`` folder itself and sends what it declares. Entity rows
and training sets travel as Arrow IPC (types intact), or as JSON for other clients.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

import pandas as pd
import pyarrow as pa
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field, TypeAdapter
from starlette.concurrency import run_in_threadpool

from conveyor.errors import ConveyorError, ValidationError
from conveyor.features.definitions import (
    Definition,
    FeatureService,
    definition_from_spec,
)
from conveyor.features.lookup import FeatureStatus, OnlineResponse
from conveyor.features.schemas import Materialization, Plan, SavedDataset
from conveyor.features.store import FeatureRefs, FeatureStore
from conveyor.server.bodies import require
from conveyor.server.endpoints import Endpoint, add_service_routes, permission_of
from conveyor.server.frames import ARROW, frame_response

ENDPOINTS = (
    Endpoint("list_materializations", "GET", "/features/materializations"),
    Endpoint("get_materialization", "GET", "/features/materializations/{materialization_id}"),
    Endpoint("last_materialization", "GET", "/features/views/{view}/last-materialization"),
    Endpoint("watermark", "GET", "/features/views/{view}/watermark"),
    Endpoint("feature_statistics", "GET", "/features/views/{view}/statistics"),
    Endpoint("list_datasets", "GET", "/features/datasets"),
    Endpoint("get_dataset", "GET", "/features/datasets/{name}"),
)
"""Feature store methods served as they are; definitions, materialising, lookups and frames have routes below."""

DIGEST_HEADER = "X-Conveyor-Digest-Matches"
Kind = Literal["entity", "feature_view", "feature_service"]
_LIST = TypeAdapter(list[Any])


def feature_store(request: Request) -> FeatureStore:
    """A feature store of the server's workspace, for one request (closing it releases DuckDB and the online store)."""
    return FeatureStore(workspace=request.app.state.workspace)


router = add_service_routes(APIRouter(tags=["features"]), FeatureStore, feature_store, ENDPOINTS)


def _json(model: BaseModel | list[Any], status: int = 200) -> Response:
    body = model.model_dump_json() if isinstance(model, BaseModel) else _LIST.dump_json(model)
    return Response(body, status_code=status, media_type="application/json")


# definitions -------------------------------------------------------------------------------

class DefinitionDoc(BaseModel):
    """An entity, feature view or feature service as JSON: its kind and the spec ``apply`` stores."""

    kind: Kind
    spec: dict[str, Any]

    @classmethod
    def of(cls, obj: Definition) -> DefinitionDoc:
        """The document of a definition."""
        return cls(kind=obj.kind, spec=obj.to_spec())  # type: ignore[arg-type]

    def load(self) -> Definition:
        """The definition this document describes; ``ValidationError`` naming what is wrong with it."""
        try:
            return definition_from_spec(self.kind, self.spec)
        except ConveyorError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            name = self.spec.get("name", "?")
            raise ValidationError(f"{self.kind} {name!r}: spec is not valid ({type(exc).__name__}: {exc})",
                                  field=f"{self.kind}.spec") from exc


class AppliedDefinition(DefinitionDoc):
    """An applied definition with its version."""

    version: int


def _definitions(docs: list[DefinitionDoc]) -> list[Definition]:
    return [doc.load() for doc in docs]


@router.get("/features/definitions", response_model=list[AppliedDefinition], summary="Applied definitions",
            openapi_extra=permission_of(FeatureStore.list_definitions))
def list_definitions(request: Request, kind: Kind | None = None) -> Response:
    """The newest version of every applied object (optionally of one kind)."""
    store = feature_store(request)
    found = [AppliedDefinition(version=version, **DefinitionDoc.of(obj).model_dump())
             for version, obj in store.list_definitions(kind)]
    return _json(found)


@router.get("/features/entities/{name}", response_model=DefinitionDoc, summary="An applied entity",
            openapi_extra=permission_of(FeatureStore.get_entity))
def get_entity(request: Request, name: str) -> Response:
    """The applied entity ``name``."""
    return _json(DefinitionDoc.of(feature_store(request).get_entity(name)))


@router.get("/features/views/{name}", response_model=DefinitionDoc, summary="An applied feature view",
            openapi_extra=permission_of(FeatureStore.get_feature_view))
def get_feature_view(request: Request, name: str, version: int | None = None) -> Response:
    """The applied feature view ``name`` (its newest version unless one is given)."""
    return _json(DefinitionDoc.of(feature_store(request).get_feature_view(name, version)))


@router.get("/features/services/{name}", response_model=DefinitionDoc, summary="An applied feature service",
            openapi_extra=permission_of(FeatureStore.get_feature_service))
def get_feature_service(request: Request, name: str, version: int | None = None) -> Response:
    """The applied feature service ``name`` (its newest version unless one is given)."""
    return _json(DefinitionDoc.of(feature_store(request).get_feature_service(name, version)))


class PlanRequest(BaseModel):
    """Definitions to add or update; none: the server workspace's own ``features/`` folder."""

    objects: list[DefinitionDoc] | None = None


class ApplyRequest(PlanRequest):
    """``PlanRequest``, and whether a change may break a feature service a model uses."""

    allow_breaking: bool = False


class DeclaredPlanRequest(BaseModel):
    """The whole desired state (what a ``features/`` folder declares): applied objects not in it are deleted."""

    objects: list[DefinitionDoc]


class DeclaredApplyRequest(DeclaredPlanRequest):
    """``DeclaredPlanRequest``, and whether a change may break a feature service a model uses."""

    allow_breaking: bool = False


def _listed(docs: list[DefinitionDoc] | None) -> list[Definition] | None:
    return None if docs is None else _definitions(docs)


@router.post("/features/plan", response_model=Plan, summary="What an apply would do",
             openapi_extra=permission_of(FeatureStore.plan))
def plan(request: Request, body: PlanRequest) -> Response:
    """What ``apply`` would create, update or delete, and which models a change would break."""
    require(request, FeatureStore.plan)
    with feature_store(request) as store:
        return _json(store.plan(_listed(body.objects)))


@router.post("/features/apply", response_model=Plan, summary="Apply definitions",
             openapi_extra=permission_of(FeatureStore.apply))
def apply(request: Request, body: ApplyRequest) -> Response:
    """Check the definitions against their data, then record each changed one as a new version."""
    require(request, FeatureStore.apply)
    with feature_store(request) as store:
        return _json(store.apply(_listed(body.objects), body.allow_breaking))


@router.post("/features/plan-declared", response_model=Plan, summary="What applying a whole desired state would do",
             openapi_extra=permission_of(FeatureStore.plan_declared))
def plan_declared(request: Request, body: DeclaredPlanRequest) -> Response:
    """What ``apply-declared`` would create, update or delete (deletes included)."""
    require(request, FeatureStore.plan_declared)
    with feature_store(request) as store:
        return _json(store.plan_declared(_definitions(body.objects)))


@router.post("/features/apply-declared", response_model=Plan, summary="Apply a whole desired state",
             openapi_extra=permission_of(FeatureStore.apply_declared))
def apply_declared(request: Request, body: DeclaredApplyRequest) -> Response:
    """Apply the definitions a client's ``features/`` folder declares; applied objects not among them are deleted."""
    require(request, FeatureStore.apply_declared)
    with feature_store(request) as store:
        return _json(store.apply_declared(_definitions(body.objects), body.allow_breaking))


# materialisation and freshness ---------------------------------------------------------------

When = Annotated[str | None, Field(description="A time, ISO 8601 (naive times are UTC).")]


class MaterializeRequest(BaseModel):
    """The window ``(start, end]`` (default: all of history up to now) and views (default: all) to materialise."""

    start: When = None
    end: When = None
    views: list[str] | None = None


class IncrementalRequest(BaseModel):
    """Materialise each view (default: all) from its watermark up to ``end`` (default: now)."""

    end: When = None
    views: list[str] | None = None


@router.post("/features/materialize", response_model=list[Materialization], summary="Materialise a window",
             openapi_extra=permission_of(FeatureStore.materialize))
def materialize(request: Request, body: MaterializeRequest) -> Response:
    """Load the newest value per entity in the window into the online store, with feature statistics."""
    with feature_store(request) as store:
        return _json(store.materialize(body.start, body.end, body.views))


@router.post("/features/materialize-incremental", response_model=list[Materialization],
             summary="Materialise what is new since each view's watermark",
             openapi_extra=permission_of(FeatureStore.materialize_incremental))
def materialize_incremental(request: Request, body: IncrementalRequest) -> Response:
    """Like materialise, each view starting where its last committed run ended (views already there are skipped)."""
    with feature_store(request) as store:
        return _json(store.materialize_incremental(body.end, body.views))


class ViewFreshness(BaseModel):
    """How fresh a view's online values are."""

    view: str
    version: int
    ttl_seconds: float | None
    watermark_us: int | None = Field(description="End of the last committed window of this version (epoch µs).")
    last: Materialization | None = Field(description="The view's last committed materialisation.")
    age_seconds: float | None = Field(description="Age now of the newest materialised value.")
    stale: bool = Field(description="Older than the ttl, or never materialised (views without a ttl are never stale).")


@router.get("/features/views/{name}/freshness", response_model=ViewFreshness, summary="Freshness of a view",
            openapi_extra=permission_of(FeatureStore.last_materialization))
def freshness(request: Request, name: str) -> Response:
    """The view's last materialisation, watermark, ttl and the age of its newest online value."""
    store = feature_store(request)
    last = store.last_materialization(name)
    version = store.catalog.get("feature_view", name).version
    view = store.get_feature_view(name, version)
    ttl = view.ttl.total_seconds() if view.ttl else None
    age = None if last is None or last.newest_event_us is None else max(0.0, time.time() - last.newest_event_us / 1e6)
    return _json(ViewFreshness(view=name, version=version, ttl_seconds=ttl, watermark_us=store.watermark(name, version),
                               last=last, age_seconds=age, stale=ttl is not None and (age is None or age > ttl)))


# online ------------------------------------------------------------------------------------

Features = Annotated[str | list[str], Field(
    description="A feature service's name, or 'view:feature' references.", examples=["credit_v1"])]


class OnlineRequest(BaseModel):
    """Features to look up for some entities."""

    features: Features
    entity_rows: list[dict[str, Any]] | dict[str, list[Any]] = Field(
        description="Join key values: a list of rows, or a list per key.", examples=[[{"customer_id": "C000042"}]])


class OnlineFeatures(BaseModel):
    """Feature values of some entities, in the order asked, with the status of each value."""

    keys: dict[str, list[Any]]
    values: dict[str, list[Any]]
    statuses: dict[str, list[FeatureStatus]]
    timestamps: list[str] = Field(default=[], description="Features whose values are times (ISO 8601 here).")

    @classmethod
    def of(cls, response: OnlineResponse) -> OnlineFeatures:
        """The JSON form of a lookup's answer."""
        times = [name for name, column in response.values.items() if any(isinstance(v, datetime) for v in column)]
        return cls(keys=response.keys, values=response.values, statuses=response.statuses,  # type: ignore[arg-type]
                   timestamps=times)

    def response(self) -> OnlineResponse:
        """The answer as the SDK returns it in-process (times as ``datetime``)."""
        values = {name: [_time(v) for v in column] if name in self.timestamps else column
                  for name, column in self.values.items()}
        statuses = {name: [s.value for s in column] for name, column in self.statuses.items()}
        return OnlineResponse(self.keys, values, statuses)


def _time(value: Any) -> Any:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


@router.post("/features/online", response_model=OnlineFeatures, summary="Online feature values",
             openapi_extra=permission_of(FeatureStore.get_online_features))
def get_online_features(request: Request, body: OnlineRequest) -> Response:
    """The materialised values of the features for each entity, with a status per value
    (present, null, missing, outside_ttl)."""
    with feature_store(request) as store:
        return _json(OnlineFeatures.of(store.get_online_features(body.features, body.entity_rows)))


# training sets -------------------------------------------------------------------------------

class TrainingSetQuery(BaseModel):
    """What a training set holds, besides its entity rows (the request body)."""

    features: list[str] = Field(default=[], description="A feature service's name, or 'view:feature' references.")
    service: str | None = Field(default=None, description="The feature service the references are (for lineage).")
    timestamp_column: str = "event_timestamp"
    full_feature_names: bool = False
    entity_columns: bool = Field(default=True, description="Return the entity columns too, not only the features.")

    def refs(self) -> FeatureRefs:
        """The features as ``get_historical_features`` takes them."""
        if self.service is not None:
            wrong = [ref for ref in self.features if ref.count(":") != 1]
            if wrong or not self.features:
                raise ValidationError(f"feature service {self.service!r}: give its 'view:feature' references, not "
                                      f"{wrong[0] if wrong else 'none'!r}", field="features")
            return FeatureService.from_spec({"name": self.service, "features": self.features})
        if len(self.features) == 1 and ":" not in self.features[0]:
            return self.features[0]
        return self.features


ENTITY_BODY = {"requestBody": {"required": True, "description": "The entity rows: Arrow IPC, or JSON (a list of rows "
                               "or a list per column; times ISO 8601).", "content": {
                                   ARROW: {"schema": {"type": "string", "format": "binary"}},
                                   "application/json": {"schema": {"type": "object"}}}}}


def _entity_rows(body: bytes, content_type: str, timestamp_column: str) -> pa.Table | pd.DataFrame:
    """The entity rows a request carries: Arrow IPC as sent, JSON with its time column parsed."""
    if content_type.startswith(ARROW):
        try:
            return pa.ipc.open_stream(body).read_all()
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ValidationError(f"the body is not an Arrow IPC stream: {exc}", field="entity_df") from exc
    try:
        frame = pd.DataFrame(json.loads(body))
    except ValueError as exc:
        raise ValidationError(f"the body is neither Arrow IPC nor JSON entity rows: {exc}", field="entity_df") from exc
    if timestamp_column in frame.columns:
        try:
            frame[timestamp_column] = pd.to_datetime(frame[timestamp_column], utc=True, format="ISO8601")
        except (ValueError, TypeError) as exc:
            raise ValidationError(f"entity_df column {timestamp_column!r} holds values that are not ISO 8601 times",
                                  field=timestamp_column) from exc
    return frame


def _table_response(request: Request, table: pa.Table, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if ARROW not in request.headers.get("accept", ""):
        response = frame_response(request, table.to_pandas(), headers)
        response.status_code = status
        return response
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return Response(sink.getvalue(), status_code=status, media_type=ARROW, headers=headers)


async def _with_training_set(request: Request, query: TrainingSetQuery, method: Callable[..., Any],
                             use: Callable[[FeatureStore, Any], Any]) -> Any:
    """Refuse a user who may not call ``method``, read the entity rows, then (in the thread pool)
    build the training set's job and ``use`` it."""
    require(request, method)
    body = await request.body()
    entity = _entity_rows(body, request.headers.get("content-type", ""), query.timestamp_column)

    def run() -> Any:
        with feature_store(request) as store:
            job = store.get_historical_features(entity, query.refs(), query.timestamp_column, query.full_feature_names)
            return use(store, job)

    return await run_in_threadpool(run)


@router.post("/features/historical", summary="A point-in-time-correct training set",
             openapi_extra={**(permission_of(FeatureStore.get_historical_features) or {}), **ENTITY_BODY})
async def get_historical_features(request: Request, query: Annotated[TrainingSetQuery, Query()]) -> Response:
    """For each entity row, each view's latest values at or before its timestamp and within the
    view's ttl (nulls otherwise), rows in order: Arrow IPC with ``Accept: application/vnd.apache.arrow.stream``,
    else JSON."""

    def table(store: FeatureStore, job: Any) -> pa.Table:
        result = job.to_arrow()
        return result if query.entity_columns else result.select(job.outputs)

    return _table_response(request, await _with_training_set(request, query, FeatureStore.get_historical_features, table))


@router.post("/features/datasets/{name}", response_model=SavedDataset, status_code=201,
             summary="Save a training set as a dataset",
             openapi_extra={**(permission_of(FeatureStore.save_dataset) or {}), **ENTITY_BODY})
async def save_dataset(request: Request, name: str, query: Annotated[TrainingSetQuery, Query()]) -> Response:
    """Compute the training set and keep it as the next version of dataset ``name``, with its lineage."""
    saved = await _with_training_set(request, query, FeatureStore.save_dataset, lambda store, job: store.save_dataset(job, name))
    return _json(saved, 201)


@router.get("/features/datasets/{name}/rows", summary="The rows of a saved dataset",
            openapi_extra=permission_of(FeatureStore.load_dataset))
def load_dataset(request: Request, name: str, version: int | None = None) -> Response:
    """The rows as saved (checked against their checksum): Arrow IPC or JSON."""
    return frame_response(request, feature_store(request).load_dataset(name, version))


@router.post("/features/datasets/{name}/rebuild", summary="Recompute a saved dataset",
             openapi_extra=permission_of(FeatureStore.rebuild_dataset))
def rebuild_dataset(request: Request, name: str, version: int | None = None) -> Response:
    """The dataset recomputed from its entity rows and view versions; the ``X-Conveyor-Digest-Matches``
    header says whether it equals the saved one (``false``: the source data changed)."""
    with feature_store(request) as store:
        frame, same = store.rebuild_dataset(name, version)
    return frame_response(request, frame, {DIGEST_HEADER: str(same).lower()})
