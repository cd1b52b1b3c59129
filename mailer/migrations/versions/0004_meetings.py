"""meetings, agendas, attendance, minutes; the chair role

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa
import mailer.db


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('meetings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.Enum('general', 'agm', 'special', 'executive', 'branch', name='meeting_kind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('starts_at', mailer.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', mailer.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('venue_name', sa.String(length=200), nullable=False),
    sa.Column('venue_address', sa.String(length=500), nullable=False),
    sa.Column('online_url', sa.String(length=500), nullable=False),
    sa.Column('dial_in', sa.String(length=500), nullable=False),
    sa.Column('accessibility', sa.Text(), nullable=False),
    sa.Column('entitled', sa.JSON(), nullable=False),
    sa.Column('quorum', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('planned', 'noticed', 'held', 'cancelled', name='meeting_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('cancelled_reason', sa.String(length=500), nullable=False),
    sa.Column('ical_uid', sa.String(length=120), nullable=False),
    sa.Column('ical_sequence', sa.Integer(), nullable=False),
    sa.Column('notice_override', sa.String(length=500), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', mailer.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', mailer.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['branch_id'], ['branches.id'], name=op.f('fk_meetings_branch_id_branches')),
    sa.ForeignKeyConstraint(['created_by_id'], ['officers.id'], name=op.f('fk_meetings_created_by_id_officers'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meetings')),
    sa.UniqueConstraint('ical_uid', name=op.f('uq_meetings_ical_uid'))
    )
    with op.batch_alter_table('meetings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meetings_branch_id'), ['branch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_meetings_starts_at'), ['starts_at'], unique=False)

    op.create_table('meeting_campaigns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=20), nullable=False),
    sa.Column('ical_sequence', sa.Integer(), nullable=False),
    sa.Column('created_at', mailer.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_meeting_campaigns_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_meeting_campaigns_meeting_id_meetings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meeting_campaigns')),
    sa.UniqueConstraint('campaign_id', name=op.f('uq_meeting_campaigns_campaign_id'))
    )
    with op.batch_alter_table('meeting_campaigns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meeting_campaigns_meeting_id'), ['meeting_id'], unique=False)

    op.create_table('minutes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('draft', 'approved', 'circulated', 'adopted', name='minutes_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('present_text', sa.Text(), nullable=False),
    sa.Column('approved_by_id', sa.Integer(), nullable=True),
    sa.Column('approved_at', mailer.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('circulated_at', mailer.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('circulation_campaign_id', sa.Integer(), nullable=True),
    sa.Column('adopted_at', mailer.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('adopted_at_meeting_id', sa.Integer(), nullable=True),
    sa.Column('web_token', sa.String(length=40), nullable=False),
    sa.Column('created_at', mailer.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', mailer.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['adopted_at_meeting_id'], ['meetings.id'], name=op.f('fk_minutes_adopted_at_meeting_id_meetings'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['approved_by_id'], ['officers.id'], name=op.f('fk_minutes_approved_by_id_officers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['circulation_campaign_id'], ['campaigns.id'], name=op.f('fk_minutes_circulation_campaign_id_campaigns'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_minutes_meeting_id_meetings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_minutes')),
    sa.UniqueConstraint('meeting_id', name=op.f('uq_minutes_meeting_id')),
    sa.UniqueConstraint('web_token', name=op.f('uq_minutes_web_token'))
    )
    op.create_table('agenda_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('role', sa.String(length=30), nullable=False),
    sa.Column('last_minutes_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['last_minutes_id'], ['minutes.id'], name=op.f('fk_agenda_items_last_minutes_id_minutes'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_agenda_items_meeting_id_meetings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agenda_items'))
    )
    with op.batch_alter_table('agenda_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agenda_items_meeting_id'), ['meeting_id'], unique=False)

    op.create_table('agenda_papers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=120), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['agenda_items.id'], name=op.f('fk_agenda_papers_item_id_agenda_items'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agenda_papers'))
    )
    with op.batch_alter_table('agenda_papers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agenda_papers_item_id'), ['item_id'], unique=False)

    op.create_table('attendance',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('response', sa.Enum('none', 'attending', 'apologies', 'not_attending', name='attendance_response', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('source', sa.String(length=30), nullable=False),
    sa.Column('responded_at', mailer.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('proposed', sa.Boolean(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('present', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_attendance_meeting_id_meetings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_attendance_member_id_members'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_id'], ['inbound_messages.id'], name=op.f('fk_attendance_message_id_inbound_messages'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attendance')),
    sa.UniqueConstraint('meeting_id', 'member_id', name=op.f('uq_attendance_meeting_id'))
    )
    with op.batch_alter_table('attendance', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attendance_meeting_id'), ['meeting_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attendance_member_id'), ['member_id'], unique=False)

    op.create_table('correspondence_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('thread_id', sa.Integer(), nullable=False),
    sa.Column('added_by_id', sa.Integer(), nullable=True),
    sa.Column('added_at', mailer.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['added_by_id'], ['officers.id'], name=op.f('fk_correspondence_links_added_by_id_officers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['item_id'], ['agenda_items.id'], name=op.f('fk_correspondence_links_item_id_agenda_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['thread_id'], ['threads.id'], name=op.f('fk_correspondence_links_thread_id_threads'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_correspondence_links')),
    sa.UniqueConstraint('item_id', 'thread_id', name=op.f('uq_correspondence_links_item_id'))
    )
    with op.batch_alter_table('correspondence_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_correspondence_links_item_id'), ['item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_correspondence_links_thread_id'), ['thread_id'], unique=False)

    op.create_table('minute_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('minutes_id', sa.Integer(), nullable=False),
    sa.Column('agenda_item_id', sa.Integer(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['agenda_item_id'], ['agenda_items.id'], name=op.f('fk_minute_items_agenda_item_id_agenda_items'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['minutes_id'], ['minutes.id'], name=op.f('fk_minute_items_minutes_id_minutes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_minute_items'))
    )
    with op.batch_alter_table('minute_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_minute_items_minutes_id'), ['minutes_id'], unique=False)
    _officer_roles(ROLES + ("chair",))


def downgrade() -> None:
    op.execute("UPDATE officers SET role = 'clp_officer' WHERE role = 'chair'")
    _officer_roles(ROLES)
    with op.batch_alter_table('minute_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_minute_items_minutes_id'))

    op.drop_table('minute_items')
    with op.batch_alter_table('correspondence_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_correspondence_links_thread_id'))
        batch_op.drop_index(batch_op.f('ix_correspondence_links_item_id'))

    op.drop_table('correspondence_links')
    with op.batch_alter_table('attendance', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attendance_member_id'))
        batch_op.drop_index(batch_op.f('ix_attendance_meeting_id'))

    op.drop_table('attendance')
    with op.batch_alter_table('agenda_papers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agenda_papers_item_id'))

    op.drop_table('agenda_papers')
    with op.batch_alter_table('agenda_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agenda_items_meeting_id'))

    op.drop_table('agenda_items')
    op.drop_table('minutes')
    with op.batch_alter_table('meeting_campaigns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_meeting_campaigns_meeting_id'))

    op.drop_table('meeting_campaigns')
    with op.batch_alter_table('meetings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_meetings_starts_at'))
        batch_op.drop_index(batch_op.f('ix_meetings_branch_id'))

    op.drop_table('meetings')


ROLES = ("clp_secretary", "clp_officer", "branch_secretary")


def _officer_roles(values: tuple[str, ...]) -> None:
    """Officers may hold `values`: the role's CHECK constraint is replaced (SQLite copies the table)."""
    with op.batch_alter_table("officers", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_officers_officer_role"), type_="check")
        batch_op.create_check_constraint(op.f("ck_officers_officer_role"), sa.column("role").in_(values))
