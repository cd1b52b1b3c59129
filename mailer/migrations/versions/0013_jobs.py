"""meetings say when their reminder is due and whether it went

Reminders were only in Redis: a flush lost them. The meeting's row now holds the pending work, so
reconcile rebuilds it. Meetings noticed before this revision get the default REMINDER_HOURS (24,
or MAILER_REMINDER_HOURS) before their start, unless their reminder already went.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26
"""

import os

from alembic import op
import sqlalchemy as sa
import mailer.db


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('meetings', sa.Column('reminder_due_at', mailer.db.UTCDateTime(), nullable=True))
    op.add_column('meetings', sa.Column('reminder_sent_at', mailer.db.UTCDateTime(), nullable=True))
    hours = int(os.environ.get("MAILER_REMINDER_HOURS") or 24)
    if not hours:
        return
    from datetime import timedelta

    meetings = sa.table('meetings', sa.column('id', sa.Integer), sa.column('status', sa.String),
                        sa.column('starts_at', mailer.db.UTCDateTime()), sa.column('ical_sequence', sa.Integer),
                        sa.column('reminder_due_at', mailer.db.UTCDateTime()))
    links = sa.table('meeting_campaigns', sa.column('meeting_id', sa.Integer), sa.column('purpose', sa.String),
                     sa.column('ical_sequence', sa.Integer))
    conn = op.get_bind()
    sent = sa.exists().where(links.c.meeting_id == meetings.c.id, links.c.purpose == 'reminder',
                             links.c.ical_sequence == meetings.c.ical_sequence)
    now = mailer.db.utcnow()
    for meeting_id, starts_at in conn.execute(sa.select(meetings.c.id, meetings.c.starts_at).where(
            meetings.c.status == 'noticed', meetings.c.starts_at > now, ~sent)).all():
        conn.execute(meetings.update().where(meetings.c.id == meeting_id)
                     .values(reminder_due_at=starts_at - timedelta(hours=hours)))


def downgrade() -> None:
    with op.batch_alter_table('meetings', schema=None) as batch_op:
        batch_op.drop_column('reminder_sent_at')
        batch_op.drop_column('reminder_due_at')
