"""routines remember what they made (the weekly bulletin: one draft a week)

Revision ID: 0014_routines_h7
Revises: 0013
Create Date: 2026-11-26
"""

from alembic import op
import sqlalchemy as sa
import mailer.db


revision = '0014_routines_h7'
down_revision = '0013'  # the file 0013_jobs.py; its revision id is '0013'
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


def downgrade() -> None:
    op.drop_table('routine_runs')
