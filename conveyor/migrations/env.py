"""Alembic environment: runs Conveyor's migrations on the connection the store passes."""

from alembic import context

import conveyor.automation.tables
import conveyor.features.tables
import conveyor.governance.tables
import conveyor.monitoring.tables
import conveyor.pipelines.tables
import conveyor.registry.tables
import conveyor.serving.deployments.tables
import conveyor.serving.tables
import conveyor.tracking.tables  # noqa: F401
from conveyor.core.db.base import metadata_obj
from conveyor.core.db.store import VERSION_TABLE

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Conveyor migrations run through MetadataStore, which passes a connection")

context.configure(
    connection=connection,
    target_metadata=metadata_obj,
    version_table=VERSION_TABLE,
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
