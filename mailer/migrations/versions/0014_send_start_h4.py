"""send start: the two delivery indexes only sent rows need become partial

A send's start inserts one delivery row per recipient (100,000 for a large party) in one
statement, and every index on the table costs that statement an entry per row. Two of the seven
indexes serve only rows that have been sent: (campaign_id, sent_at), read for the sending rate
over the last minute (`sent_at >= ...`), and message_id, read to find the delivery a bounce or a
reply answers (`message_id = ...`). Every row is inserted with both NULL, so as partial indexes
(WHERE ... IS NOT NULL; both databases support them, and both planners use them for those
conditions, which imply NOT NULL) the start writes no entry to them, and they hold only the
rows that were sent. The batch job's own writes are unchanged: it sets both when a message is sent.

Revision ID: 0014_send_start_h4
Revises: 0013
Create Date: 2026-11-26
"""

from alembic import op
import sqlalchemy as sa


revision = '0014_send_start_h4'
down_revision = '0013'
branch_labels = None
depends_on = None

PARTIAL = {"ix_deliveries_campaign_sent_at": (["campaign_id", "sent_at"], "sent_at IS NOT NULL"),
           "ix_deliveries_message_id": (["message_id"], "message_id IS NOT NULL")}


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        for name, (columns, where) in PARTIAL.items():
            batch_op.drop_index(name)
            batch_op.create_index(name, columns, unique=False, postgresql_where=sa.text(where),
                                  sqlite_where=sa.text(where))


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        for name, (columns, _where) in PARTIAL.items():
            batch_op.drop_index(name)
            batch_op.create_index(name, columns, unique=False)
