"""The online store: latest feature values per entity key, for serving.

``open_online_store`` is the one place that picks and imports a backend; the Redis one
is imported only when configured, so ``redis`` is needed only by workspaces that use it.
"""

from __future__ import annotations

from pathlib import Path

from conveyor.core.config import OnlineStoreSettings
from conveyor.features.online.base import OnlineStore, OnlineTable

__all__ = ["OnlineStore", "OnlineTable", "open_online_store"]


def open_online_store(settings: OnlineStoreSettings, state_dir: Path) -> OnlineStore:
    """The store ``settings`` describe; SQLite without a path lives at ``state_dir/online.db``,
    a relative path starts at the workspace (the folder holding ``state_dir``)."""
    if settings.type == "redis":
        from conveyor.features.online.redis import RedisOnlineStore

        return RedisOnlineStore(settings.url, settings.namespace)
    from conveyor.features.online.sqlite import SqliteOnlineStore

    path = Path(state_dir).parent / Path(settings.path).expanduser() if settings.path else Path(state_dir) / "online.db"
    return SqliteOnlineStore(path)
