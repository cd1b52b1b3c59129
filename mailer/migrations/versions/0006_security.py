"""security: officers' session generation; campaigns' body data

Signing out or changing a password bumps the generation, ending every session and remember-me
cookie. A campaign's body data is text the body shows but never runs (the circulated minutes).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('officers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_generation', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('body_data', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('body_data')
    with op.batch_alter_table('officers', schema=None) as batch_op:
        batch_op.drop_column('session_generation')
