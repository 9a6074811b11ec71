"""Pipelines: the cache of step outputs, keyed by the hash of each step's inputs.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 10:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pipeline_step_cache',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('pipeline', sa.String(length=128), nullable=False),
    sa.Column('step', sa.String(length=32), nullable=False),
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('output_sha256', sa.String(length=64), nullable=False),
    sa.Column('output_size', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_pipeline_step_cache'))
    )


def downgrade() -> None:
    op.drop_table('pipeline_step_cache')
