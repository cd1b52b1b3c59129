"""reply claims: which job holds an officer's reply while it is sent (fencing, as deliveries have)

Whether a reply is in flight was read from RQ's started registry, which a FLUSHALL empties while
the job runs on; the claim is in the database now.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26
"""

from alembic import op
import sqlalchemy as sa
import mailer.db


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outgoing_replies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('lease_until', mailer.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outgoing_replies', schema=None) as batch_op:
        batch_op.drop_column('lease_until')
        batch_op.drop_column('claimed_by')
