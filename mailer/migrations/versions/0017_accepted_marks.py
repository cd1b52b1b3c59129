"""accepted marks: a message the relay took is marked in two columns no index covers

A batch marks each message the relay accepted before it sends the next (so a run killed at any
moment leaves at most the message on the wire unrecorded). That mark used to set the row's
status, sent_at and message_id: an entry moved in one index and added to two more for every
message, about half of the mark's cost. The mark now sets `accepted_at` and
`accepted_message_id`, which no index covers; the batch folds them into status, sent_at and
message_id once per chunk of messages, in one statement, and so does any run that takes rows back
from a run that died (mailer.sending.campaigns.fold_accepted).

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa
import mailer.db


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable and without a default: both databases add such a column without rewriting the table.
    op.add_column('deliveries', sa.Column('accepted_at', mailer.db.UTCDateTime(timezone=True), nullable=True))
    op.add_column('deliveries', sa.Column('accepted_message_id', sa.String(length=250), nullable=True))


def downgrade() -> None:
    # Marks not yet folded are folded first, so that going back loses no message that was sent.
    op.execute("UPDATE deliveries SET status = 'sent', sent_at = accepted_at, message_id = accepted_message_id, "
               "lease_until = NULL WHERE accepted_at IS NOT NULL AND status = 'sending'")
    op.drop_column('deliveries', 'accepted_message_id')
    op.drop_column('deliveries', 'accepted_at')
