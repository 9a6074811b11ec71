"""Feature store: definitions as code, point-in-time training sets, online serving.

Other capabilities use ``FeatureStore`` and the definition classes re-exported here.
"""

from conveyor.features.definitions import (
    Entity,
    Feature,
    FeatureSelection,
    FeatureService,
    FeatureView,
)
from conveyor.features.lookup import FeatureStatus, OnlineResponse
from conveyor.features.offline import RetrievalJob
from conveyor.features.schemas import Change, Materialization, Plan, SavedDataset
from conveyor.features.sources import FileSource, PostgresSource, SqlSource
from conveyor.features.store import FeatureStore

__all__ = [
    "Change",
    "Entity",
    "Feature",
    "FeatureSelection",
    "FeatureService",
    "FeatureStatus",
    "FeatureStore",
    "FeatureView",
    "FileSource",
    "Materialization",
    "OnlineResponse",
    "Plan",
    "PostgresSource",
    "RetrievalJob",
    "SavedDataset",
    "SqlSource",
]
