"""Serving: the index of prediction log files and the ground truth recorded by request id.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('prediction_log_files',
    sa.Column('path', sa.String(length=1024), nullable=False),
    sa.Column('date', sa.String(length=10), nullable=False),
    sa.Column('model', sa.String(length=256), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('deployment', sa.String(length=256), nullable=True),
    sa.Column('rows', sa.BigInteger(), nullable=False),
    sa.Column('first_time', sa.BigInteger(), nullable=False),
    sa.Column('last_time', sa.BigInteger(), nullable=False),
    sa.Column('first_request_id', sa.String(length=32), nullable=False),
    sa.Column('last_request_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('path', name=op.f('pk_prediction_log_files'))
    )
    op.create_index('ix_prediction_log_files_model_last_time', 'prediction_log_files', ['model', 'last_time'], unique=False)
    op.create_index('ix_prediction_log_files_first_request_id', 'prediction_log_files', ['first_request_id'], unique=False)
    op.create_index('ix_prediction_log_files_last_request_id', 'prediction_log_files', ['last_request_id'], unique=False)

    op.create_table('prediction_feedback',
    sa.Column('request_id', sa.String(length=32), nullable=False),
    sa.Column('row', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('label', sa.JSON(), nullable=False),
    sa.Column('time', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('request_id', 'row', name=op.f('pk_prediction_feedback'))
    )
    op.create_index('ix_prediction_feedback_time', 'prediction_feedback', ['time'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_prediction_feedback_time', table_name='prediction_feedback')
    op.drop_table('prediction_feedback')
    op.drop_index('ix_prediction_log_files_last_request_id', table_name='prediction_log_files')
    op.drop_index('ix_prediction_log_files_first_request_id', table_name='prediction_log_files')
    op.drop_index('ix_prediction_log_files_model_last_time', table_name='prediction_log_files')
    op.drop_table('prediction_log_files')
