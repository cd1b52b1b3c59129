"""routines remember what they made (the weekly bulletin: one draft a week); member counts by
branch and status are kept after each import (the overview's members-over-imports chart)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-26
"""

from alembic import op
import sqlalchemy as sa
import mailer.db


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('routine_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('routine', sa.String(length=40), nullable=False),
    sa.Column('period', sa.String(length=20), nullable=False),
    sa.Column('body', sa.String(length=40), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('made_at', mailer.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_routine_runs_campaign_id_campaigns'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_routine_runs')),
    sa.UniqueConstraint('routine', 'period', 'body', name=op.f('uq_routine_runs_routine'))
    )
    op.create_table('member_counts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('import_run_id', sa.Integer(), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['branch_id'], ['branches.id'], name=op.f('fk_member_counts_branch_id_branches'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['import_run_id'], ['import_runs.id'],
                            name=op.f('fk_member_counts_import_run_id_import_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_counts'))
    )
    with op.batch_alter_table('member_counts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_member_counts_import_run_id'), ['import_run_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('member_counts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_member_counts_import_run_id'))
    op.drop_table('member_counts')
    op.drop_table('routine_runs')
