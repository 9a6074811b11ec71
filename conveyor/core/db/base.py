"""The one SQLAlchemy ``MetaData`` every capability's ``tables.py`` registers on."""

from __future__ import annotations

import time

from sqlalchemy import MetaData, String

metadata_obj = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


ID = String(32)  # a uuid4 hex
SHA = String(64)  # a sha256 hex digest


def now_ms() -> int:
    """Milliseconds since the epoch: the unit every stored timestamp uses."""
    return int(time.time() * 1000)
