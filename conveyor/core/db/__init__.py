"""The metadata store: one SQLAlchemy engine over SQLite or PostgreSQL."""

from conveyor.core.db.base import metadata_obj
from conveyor.core.db.store import MetadataStore

__all__ = ["MetadataStore", "metadata_obj"]
