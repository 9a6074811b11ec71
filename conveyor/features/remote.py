"""The feature store of a remote workspace: the same interface, over the server's API.

Definitions are read here, from this workspace's ``features/`` folder, and sent as their
specs; the server checks them against its data and records them. Entity rows go to the
server as Arrow IPC and the features come back the same way, joined here onto the caller's
own rows, so a training set has the columns, types and index it has in-process.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import TypeAdapter

from conveyor.core.workspace import RemoteWorkspace, Workspace, open_workspace
from conveyor.errors import ValidationError
from conveyor.features.api import (
    DIGEST_HEADER,
    ENDPOINTS,
    AppliedDefinition,
    DefinitionDoc,
    OnlineFeatures,
)
from conveyor.features.datasets import SOURCE_PREFIX
from conveyor.features.definitions import (
    Definition,
    Entity,
    FeatureService,
    FeatureView,
)
from conveyor.features.loader import load_definitions
from conveyor.features.lookup import OnlineResponse
from conveyor.features.materializations import Progress, When
from conveyor.features.schemas import Materialization, Plan, SavedDataset
from conveyor.features.store import FeatureRefs, FeatureStore, desired_definitions
from conveyor.server.client import ARROW, RemoteService
from conveyor.server.frames import read_frame

if TYPE_CHECKING:
    from conveyor.tracking.run import Run

_APPLIED = TypeAdapter(list[AppliedDefinition])
_MATERIALIZATIONS = TypeAdapter(list[Materialization])


def _docs(objects: Sequence[Definition]) -> list[dict[str, Any]]:
    return [DefinitionDoc.of(obj).model_dump(mode="json") for obj in objects]


def _time(value: When) -> str | None:
    """A time as the server reads it: ISO 8601 (a string is sent as given, for the server to check)."""
    return value.isoformat() if isinstance(value, datetime) else value


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars become Python numbers, times ISO 8601."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} cannot be sent as JSON")


def _ipc(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _arrow(entity: pd.DataFrame | pa.Table) -> pa.Table:
    if isinstance(entity, pa.Table):
        return entity
    if not isinstance(entity, pd.DataFrame):
        raise ValidationError(f"entity_df must be a pandas DataFrame or an Arrow table, not {type(entity).__name__}",
                              field="entity_df")
    try:
        return pa.Table.from_pandas(entity, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValidationError(f"entity_df cannot be sent to the server as Arrow: {exc}", field="entity_df") from exc


class RemoteRetrievalJob:
    """A training set the server computed: its features joined onto the caller's entity rows
    (``to_df`` keeps their columns and index, as in-process)."""

    def __init__(self, entity: pd.DataFrame | pa.Table, features: pa.Table, timestamp_column: str,
                 service: str | None, request: dict[str, Any]) -> None:
        self.entity = entity
        self.features = features
        self.timestamp_column = timestamp_column
        self.service = service
        self.outputs = features.column_names
        self._request = request

    def __repr__(self) -> str:
        return f"RemoteRetrievalJob(rows={self.rows}, features={self.outputs!r})"

    @property
    def rows(self) -> int:
        """How many rows the training set has: one per entity row."""
        return self.features.num_rows

    def to_arrow(self) -> pa.Table:
        """Entity columns followed by the features, as an Arrow table."""
        table = _arrow(self.entity)
        for name in self.features.column_names:
            table = table.append_column(name, self.features.column(name))
        return table

    def to_df(self) -> pd.DataFrame:
        """Entity columns (unchanged, same index) followed by the features, as pandas."""
        features = self.features.to_pandas()
        entity = self.entity if isinstance(self.entity, pd.DataFrame) else self.entity.to_pandas()
        features.index = entity.index
        return pd.concat([entity, features], axis=1)

    def to_parquet(self, path: str | Path) -> Path:
        """Write the training set to a Parquet file; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(self.to_arrow(), path)
        return path

    def to_batches(self, rows_per_batch: int = 100_000) -> Iterator[pa.RecordBatch]:
        """The training set in record batches."""
        yield from self.to_arrow().to_batches(max_chunksize=rows_per_batch)


class RemoteFeatureStore(RemoteService):
    """``FeatureStore`` over HTTP. ``conveyor.FeatureStore(...)`` returns one when the workspace
    names a server; ``duckdb``, ``online`` and ``catalog`` are the server's own and are not here."""

    service_type = FeatureStore
    prefix = ""
    endpoints = ENDPOINTS

    def __init__(self, path: str | Path | None = None, *, workspace: Workspace | None = None, **overrides: Any) -> None:
        self.workspace = workspace or open_workspace(path, **overrides)
        if not isinstance(self.workspace, RemoteWorkspace):
            raise ValidationError("RemoteFeatureStore needs a workspace that names a server (server: or CONVEYOR_SERVER)",
                                  field="server")
        self.settings = self.workspace.settings
        super().__init__(self.workspace.client)

    def __repr__(self) -> str:
        return f"RemoteFeatureStore({self.client.url!r})"

    def close(self) -> None:
        """Nothing to release: the connection belongs to the workspace."""

    def __enter__(self) -> RemoteFeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def refresh(self) -> None:
        """Nothing cached here: the server reads the applied definitions on every request."""

    def _post(self, path: str, body: Any) -> Any:
        return self.client.request("POST", path, content=json.dumps(body, default=_plain).encode(),
                                   headers={"content-type": "application/json"})

    # definitions -------------------------------------------------------------------------

    def plan(self, objects: Sequence[Definition] | None = None) -> Plan:
        """What ``apply`` would create, update or delete, and which models a change would break.

        ``objects=None`` reads this workspace's ``features/`` folder (here, not on the server),
        whose contents are the whole desired state; a list adds or updates only those.
        """
        if objects is None:
            body = {"objects": _docs(load_definitions(self.settings))}
            return Plan.model_validate_json(self._post("/features/plan-declared", body).content)
        return Plan.model_validate_json(self._post("/features/plan", {"objects": _docs(desired_definitions(objects))}).content)

    def apply(self, objects: Sequence[Definition] | None = None, allow_breaking: bool = False) -> Plan:
        """Send the definitions (``None``: this workspace's ``features/`` folder, read here) for the
        server to check against its data and record.

        Raises:
            ValidationError: a definition file fails, or a reference, column, type or timestamp is wrong.
            Conflict: the change breaks a feature service a model uses, and ``allow_breaking`` is False.
        """
        if objects is None:
            body = {"objects": _docs(load_definitions(self.settings)), "allow_breaking": allow_breaking}
            return Plan.model_validate_json(self._post("/features/apply-declared", body).content)
        body = {"objects": _docs(desired_definitions(objects)), "allow_breaking": allow_breaking}
        return Plan.model_validate_json(self._post("/features/apply", body).content)

    def list_definitions(self, kind: str | None = None) -> list[tuple[int, Definition]]:
        """Applied objects (optionally of one kind: entity, feature_view, feature_service) with their versions."""
        params = {"kind": kind} if kind else {}
        response = self.client.request("GET", "/features/definitions", params=params)
        return [(item.version, item.load()) for item in _APPLIED.validate_json(response.content)]

    def _definition(self, path: str, version: int | None = None) -> Any:
        params = {"version": version} if version is not None else {}
        return DefinitionDoc.model_validate_json(self.client.request("GET", path, params=params).content).load()

    def get_entity(self, name: str) -> Entity:
        """The applied entity ``name``."""
        return self._definition(f"/features/entities/{quote(name, safe='')}")  # type: ignore[no-any-return]

    def get_feature_view(self, name: str, version: int | None = None) -> FeatureView:
        """The applied feature view ``name`` (its newest version unless one is given)."""
        return self._definition(f"/features/views/{quote(name, safe='')}", version)  # type: ignore[no-any-return]

    def get_feature_service(self, name: str, version: int | None = None) -> FeatureService:
        """The applied feature service ``name``."""
        return self._definition(f"/features/services/{quote(name, safe='')}", version)  # type: ignore[no-any-return]

    # materialisation ---------------------------------------------------------------------

    def materialize(self, start: When = None, end: When = None, views: Sequence[str] | None = None,
                    progress: Progress | None = None) -> list[Materialization]:
        """Have the server load the newest value per entity in ``(start, end]`` of each view into
        its online store; ``progress`` hears of each view once, when the server is done."""
        body = {"start": _time(start), "end": _time(end), "views": None if views is None else list(views)}
        return self._materialized(self._post("/features/materialize", body).content, progress)

    def materialize_incremental(self, end: When = None, views: Sequence[str] | None = None,
                                progress: Progress | None = None) -> list[Materialization]:
        """Like ``materialize``, each view starting where its last committed run ended."""
        body = {"end": _time(end), "views": None if views is None else list(views)}
        return self._materialized(self._post("/features/materialize-incremental", body).content, progress)

    @staticmethod
    def _materialized(content: bytes, progress: Progress | None) -> list[Materialization]:
        done = _MATERIALIZATIONS.validate_json(content)
        if progress is not None:
            for run in done:
                progress(run.view, run.rows_read or 0, run.rows_read or 0)
        return done

    # online ------------------------------------------------------------------------------

    def get_online_features(
        self, features: FeatureRefs, entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]
    ) -> OnlineResponse:
        """The materialised values of ``features`` for each entity, with a status per value
        (present, null, missing, outside_ttl)."""
        rows: Any = ({key: list(values) for key, values in entity_rows.items()} if isinstance(entity_rows, Mapping)
                     else [dict(row) if isinstance(row, Mapping) else row for row in entity_rows])
        body = {"features": _refs(features)[0], "entity_rows": rows}
        return OnlineFeatures.model_validate_json(self._post("/features/online", body).content).response()

    # training sets -----------------------------------------------------------------------

    def get_historical_features(
        self,
        entity_df: pd.DataFrame | pa.Table,
        features: FeatureRefs,
        timestamp_column: str = "event_timestamp",
        full_feature_names: bool = False,
    ) -> RemoteRetrievalJob:
        """A point-in-time-correct training set, computed by the server from the entity rows sent there.

        Raises:
            ValidationError: a join key or the timestamp column is missing, or a feature is unknown.
            NotFound: a view or service is not applied.
        """
        refs, service = _refs(features)
        request = {"features": refs, "service": service if isinstance(features, FeatureService) else None,
                   "timestamp_column": timestamp_column, "full_feature_names": full_feature_names}
        content = _ipc(_arrow(entity_df))
        response = self.client.request("POST", "/features/historical", params={**_query(request), "entity_columns": "false"},
                                       content=content, headers={"content-type": ARROW, "accept": ARROW})
        table = pa.ipc.open_stream(response.content).read_all()
        return RemoteRetrievalJob(entity_df, table, timestamp_column, service, {**request, "content": content})

    # saved datasets ----------------------------------------------------------------------

    def save_dataset(self, job: RemoteRetrievalJob, name: str, run: Run | None = None) -> SavedDataset:
        """Have the server keep the training set as a new version of dataset ``name`` (it recomputes
        it from the same entity rows), and log it as ``run``'s input."""
        if not isinstance(job, RemoteRetrievalJob):
            raise ValidationError(f"save_dataset needs the job this store returned, not {type(job).__name__}", field="job")
        request = dict(job._request)
        content = request.pop("content")
        response = self.client.request("POST", f"/features/datasets/{quote(name, safe='')}", params=_query(request),
                                       content=content, headers={"content-type": ARROW})
        saved = SavedDataset.model_validate_json(response.content)
        if run is not None:
            run.log_dataset(job.to_df(), name=name, context="train", source=f"{SOURCE_PREFIX}{name}/v{saved.version}")
        return saved

    def load_dataset(self, name: str, version: int | None = None) -> pd.DataFrame:
        """The rows of a saved dataset, as saved (checked against their checksum on the server)."""
        params = {"version": version} if version is not None else {}
        return read_frame(self.client.request("GET", f"/features/datasets/{quote(name, safe='')}/rows", params=params,
                                              headers={"accept": ARROW}))

    def rebuild_dataset(self, name: str, version: int | None = None) -> tuple[pd.DataFrame, bool]:
        """Recompute a saved dataset on the server; returns the rows and whether their content hash
        equals the saved one (False: the source data changed)."""
        params = {"version": version} if version is not None else {}
        response = self.client.request("POST", f"/features/datasets/{quote(name, safe='')}/rebuild", params=params,
                                       headers={"accept": ARROW})
        return read_frame(response), response.headers.get(DIGEST_HEADER) == "true"


def _refs(features: FeatureRefs) -> tuple[str | list[str], str | None]:
    """Features as the API takes them (a service's name, or references) and the service's name if any."""
    if isinstance(features, FeatureService):
        return features.refs, features.name
    if isinstance(features, str):
        return features, None if ":" in features else features
    return list(features), None


def _query(request: dict[str, Any]) -> dict[str, Any]:
    features = request["features"]
    query = {"features": [features] if isinstance(features, str) else features,
             "timestamp_column": request["timestamp_column"],
             "full_feature_names": str(request["full_feature_names"]).lower()}
    if request.get("service"):
        query["service"] = request["service"]
    return query

