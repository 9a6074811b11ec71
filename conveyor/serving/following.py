"""What a server serves, kept current: aliases and deployments are polled, and a change is
loaded in the background, then swapped in at once.

A source says what should be served now (``poll``: a version number, a deployment
revision) and how to build it. The follower polls every source in a worker thread; when
the answer changes it loads the versions it does not hold yet (in a thread, while the
event loop keeps answering) and replaces the served model with one assignment. A request
holds the served model it started with, so no request sees half a swap and none fails
because of one. A poll or load that fails keeps the current model serving and is counted.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Protocol

from conveyor.errors import NotFound
from conveyor.registry.service import RegistryService
from conveyor.serving.deployments import Deployment, DeploymentService
from conveyor.serving.endpoint import ModelEndpoint, ModelReference
from conveyor.serving.traffic import ServedModel, Variant

if TYPE_CHECKING:
    from conveyor.features.store import FeatureStore

log = logging.getLogger("conveyor.serving")


class EndpointCache:
    """Loaded versions by (model, version): a version shared by two variants or kept across a
    swap is loaded once."""

    def __init__(self, registry: RegistryService | None, features: Callable[[], FeatureStore] | None = None) -> None:
        self.registry = registry
        self.features = features
        self._loaded: dict[tuple[str, int], ModelEndpoint] = {}
        self._lock = threading.Lock()

    def get(self, model: str, version: int) -> ModelEndpoint:
        """The endpoint of ``model`` version ``version``, loading it on first use."""
        with self._lock:
            found = self._loaded.get((model, version))
        if found is None:
            if self.registry is None:
                raise NotFound(f"model {model!r} version {version} is not in this bundle", field="model")
            found = ModelEndpoint.load(self.registry, ModelReference(model, f"/{version}"), self.features)
            with self._lock:
                found = self._loaded.setdefault((model, version), found)
        return found

    def add(self, endpoint: ModelEndpoint) -> None:
        """Hold an endpoint loaded elsewhere (a serving bundle's model folder)."""
        with self._lock:
            self._loaded[(endpoint.name, endpoint.version)] = endpoint

    def keep_only(self, served: list[ServedModel]) -> None:
        """Forget versions no served model uses any more (their memory is freed with the last request)."""
        used = {(endpoint.name, endpoint.version) for model in served for endpoint in model.endpoints()}
        with self._lock:
            self._loaded = {key: value for key, value in self._loaded.items() if key in used}


class Source(Protocol):
    """Something served under a name whose content may change."""

    name: str

    def poll(self) -> Hashable:
        """What should be served now; a different value means reload."""

    def build(self, cache: EndpointCache) -> ServedModel:
        """The served model for the latest poll."""


class ReferenceSource:
    """A model by alias (followed as it moves) or by version (never changes)."""

    def __init__(self, registry: RegistryService, reference: ModelReference) -> None:
        self.registry = registry
        self.reference = reference
        self.name = reference.name
        self._version: int | None = None

    def poll(self) -> Hashable:
        """The version the reference resolves to."""
        version, _ = self.registry.resolve(self.reference.uri)
        self._version = version.version
        return self._version

    def build(self, cache: EndpointCache) -> ServedModel:
        """One variant: the resolved version."""
        version = self._version if self._version is not None else self.poll()
        endpoint = cache.get(self.reference.name, int(version))
        return ServedModel(self.name, [Variant(self.reference.selector.lstrip("@/"), endpoint)])


class DeploymentSource:
    """A deployment: its policy, split and shadows, followed revision by revision."""

    def __init__(self, service: DeploymentService, name: str) -> None:
        self.service = service
        self.name = name
        self._current: Deployment | None = None

    def poll(self) -> Hashable:
        """The deployment's revision, after recording any alias move."""
        self._current = self.service.sync(self.name)
        return self._current.revision

    def build(self, cache: EndpointCache) -> ServedModel:
        """The variants and shadows of the polled revision."""
        deployment = self._current or self.service.sync(self.name)
        spec = deployment.spec

        def variant(target: str, weight: float = 100.0) -> Variant:
            return Variant(target, cache.get(spec.model, deployment.resolved[target]), weight)

        return ServedModel(
            spec.model, [variant(route.target, route.weight) for route in spec.traffic], spec.policy,
            [variant(target) for target in spec.shadow], spec.key, deployment.name, deployment.revision,
        )


class FixedSource:
    """One version loaded once, from a folder (a serving bundle): it never changes."""

    def __init__(self, endpoint: ModelEndpoint) -> None:
        self.endpoint = endpoint
        self.name = endpoint.name

    def poll(self) -> Hashable:
        """Always the same version."""
        return self.endpoint.version

    def build(self, cache: EndpointCache) -> ServedModel:
        """One variant: the folder's version."""
        cache.add(self.endpoint)
        return ServedModel(self.name, [Variant(f"v{self.endpoint.version}", self.endpoint)])


class Follower:
    """Polls the sources and swaps in what changed, through ``install``."""

    def __init__(self, sources: list[Source], cache: EndpointCache, install: Callable[[Source, ServedModel], None],
                 interval_s: float, on_failure: Callable[[], None]) -> None:
        self.sources = sources
        self.cache = cache
        self.install = install
        self.interval_s = interval_s
        self.on_failure = on_failure
        self._seen: dict[str, Hashable] = {}

    def load_all(self) -> list[ServedModel]:
        """Build every source now (at start-up, before the server says it is ready)."""
        built = []
        for source in self.sources:
            self._seen[source.name] = source.poll()
            served = source.build(self.cache)
            self.install(source, served)
            built.append(served)
        return built

    def _refresh(self, source: Source) -> ServedModel | None:
        now = source.poll()
        if now == self._seen.get(source.name):
            return None
        served = source.build(self.cache)
        self._seen[source.name] = now
        return served

    async def run(self, served: Callable[[], list[ServedModel]]) -> None:
        """Poll forever (until cancelled); each change is loaded off the event loop, then installed."""
        while True:
            await asyncio.sleep(self.interval_s)
            for source in self.sources:
                try:
                    fresh = await asyncio.to_thread(self._refresh, source)
                except Exception:  # noqa: BLE001 - a failed poll keeps the current model serving
                    log.exception("could not refresh %s; still serving the current version", source.name)
                    self.on_failure()
                    continue
                if fresh is not None:
                    self.install(source, fresh)
                    log.warning("now serving %s: %s", source.name,
                                ", ".join(f"{v.label}=v{v.endpoint.version}" for v in fresh.variants))
            self.cache.keep_only(served())
