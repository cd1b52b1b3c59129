"""pages at scale: indexes that answer the dashboard, the postal list and the bounces page

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26

- members: the dashboard counts members by status (those to welcome, those on hold) and by branch
  and status, and lists the newest to welcome and on hold: each from an index alone, not a pass
  over 100,000 members' rows. The postal list finds who objected to email notices by index.
- threads (last_activity_at, id): the inbox's "all" tab and the minutes page's recent threads,
  newest first, read from an index (51 rows) instead of joining and sorting every thread.
- inbound_messages: "bounces and letters by week" reads (received_at, kind, thread_id, member_id)
  from one index, never the rows with their raw bytes; "reports to confirm" (match_method
  'unconfirmed') are found by index, newest first, instead of reading every message.
"""

from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_members_status_welcome_health", "members", ["status", "to_welcome", "email_health"]),
    ("ix_members_branch_status", "members", ["branch_id", "status"]),
    ("ix_members_welcome_recent", "members", ["to_welcome", "created_at", "id"]),
    ("ix_members_health_recent", "members", ["email_health", "created_at", "id"]),
    ("ix_members_notices_consent", "members", ["notices_consent", "id"]),
    ("ix_inbound_messages_received_kind", "inbound_messages", ["received_at", "kind", "thread_id", "member_id"]),
    ("ix_threads_activity", "threads", ["last_activity_at", "id"]),
    ("ix_inbound_messages_match_received", "inbound_messages", ["match_method", "received_at", "id"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
