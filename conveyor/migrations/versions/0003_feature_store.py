"""Feature store: versioned definitions, materialisations with their feature
statistics, and saved training sets.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:44:56.542517
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('feature_datasets',
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('entity_digest', sa.String(length=64), nullable=False),
    sa.Column('rows', sa.BigInteger(), nullable=False),
    sa.Column('uri', sa.Text(), nullable=False),
    sa.Column('entity_uri', sa.Text(), nullable=False),
    sa.Column('feature_service', sa.String(length=128), nullable=True),
    sa.Column('feature_service_version', sa.Integer(), nullable=True),
    sa.Column('features', sa.JSON(), nullable=False),
    sa.Column('timestamp_column', sa.String(length=128), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', 'version', name=op.f('pk_feature_datasets'))
    )
    op.create_table('feature_definitions',
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'name', 'version', name=op.f('pk_feature_definitions'))
    )
    op.create_table('feature_materializations',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('view', sa.String(length=128), nullable=False),
    sa.Column('view_version', sa.Integer(), nullable=False),
    sa.Column('start_us', sa.BigInteger(), nullable=True),
    sa.Column('end_us', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('rows_read', sa.BigInteger(), nullable=True),
    sa.Column('rows_written', sa.BigInteger(), nullable=True),
    sa.Column('newest_event_us', sa.BigInteger(), nullable=True),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('started_at', sa.BigInteger(), nullable=False),
    sa.Column('finished_at', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feature_materializations'))
    )
    with op.batch_alter_table('feature_materializations', schema=None) as batch_op:
        batch_op.create_index('ix_feature_materializations_view', ['view', 'view_version', 'status'], unique=False)

    op.create_table('feature_statistics',
    sa.Column('materialization_id', sa.String(length=32), nullable=False),
    sa.Column('feature', sa.String(length=128), nullable=False),
    sa.Column('stats', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['materialization_id'], ['feature_materializations.id'], name=op.f('fk_feature_statistics_materialization_id_feature_materializations')),
    sa.PrimaryKeyConstraint('materialization_id', 'feature', name=op.f('pk_feature_statistics'))
    )


def downgrade() -> None:
    op.drop_table('feature_statistics')
    with op.batch_alter_table('feature_materializations', schema=None) as batch_op:
        batch_op.drop_index('ix_feature_materializations_view')

    op.drop_table('feature_materializations')
    op.drop_table('feature_definitions')
    op.drop_table('feature_datasets')
