"""inbound mail, threads, bounces

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa
import mailer.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('imap_state',
    sa.Column('mailbox', sa.String(length=300), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=False),
    sa.Column('last_uid', sa.BigInteger(), nullable=False),
    sa.Column('polled_at', mailer.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('mailbox', name=op.f('pk_imap_state'))
    )
    op.create_table('threads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('normalised_subject', sa.String(length=300), nullable=False),
    sa.Column('correspondent', sa.String(length=254), nullable=False),
    sa.Column('status', sa.Enum('needs_action', 'actioned', name='thread_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('created_at', mailer.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_activity_at', mailer.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('branch_id', sa.Integer(), nullable=True),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('assigned_to_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['assigned_to_id'], ['officers.id'], name=op.f('fk_threads_assigned_to_id_officers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['branch_id'], ['branches.id'], name=op.f('fk_threads_branch_id_branches')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_threads_campaign_id_campaigns'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_threads_member_id_members'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_threads'))
    )
    with op.batch_alter_table('threads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_threads_branch_id'), ['branch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_threads_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_threads_correspondent'), ['correspondent'], unique=False)
        batch_op.create_index(batch_op.f('ix_threads_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_threads_normalised_subject'), ['normalised_subject'], unique=False)
        batch_op.create_index('ix_threads_status_activity', ['status', 'last_activity_at'], unique=False)

    op.create_table('inbound_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('received_at', mailer.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('transport', sa.String(length=20), nullable=False),
    sa.Column('dedupe_key', sa.String(length=320), nullable=False),
    sa.Column('message_id', sa.String(length=300), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('oversized', sa.Boolean(), nullable=False),
    sa.Column('imap_mailbox', sa.String(length=200), nullable=True),
    sa.Column('imap_uidvalidity', sa.BigInteger(), nullable=True),
    sa.Column('imap_uid', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.Enum('received', 'processed', 'failed', name='inbound_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('processed_at', mailer.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('kind', sa.Enum('reply', 'auto_reply', 'bounce', 'complaint', 'loop', 'other', name='inbound_kind', native_enum=False, create_constraint=True, length=20), nullable=True),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('defects', sa.JSON(), nullable=False),
    sa.Column('from_address', sa.String(length=254), nullable=True),
    sa.Column('from_name', sa.String(length=200), nullable=False),
    sa.Column('to_addresses', sa.JSON(), nullable=False),
    sa.Column('cc_addresses', sa.JSON(), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=False),
    sa.Column('sent_at', mailer.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('in_reply_to', sa.String(length=300), nullable=True),
    sa.Column('references', sa.JSON(), nullable=False),
    sa.Column('visible_text', sa.Text(), nullable=False),
    sa.Column('quoted_text', sa.Text(), nullable=False),
    sa.Column('full_text', sa.Text(), nullable=False),
    sa.Column('html_safe', sa.Text(), nullable=True),
    sa.Column('report', sa.JSON(), nullable=True),
    sa.Column('thread_id', sa.Integer(), nullable=True),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('delivery_id', sa.Integer(), nullable=True),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('match_method', sa.String(length=20), nullable=False),
    sa.Column('match_note', sa.String(length=500), nullable=False),
    sa.Column('flagged', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_inbound_messages_campaign_id_campaigns'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['delivery_id'], ['deliveries.id'], name=op.f('fk_inbound_messages_delivery_id_deliveries'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_inbound_messages_member_id_members'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['parent_id'], ['inbound_messages.id'], name=op.f('fk_inbound_messages_parent_id_inbound_messages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['thread_id'], ['threads.id'], name=op.f('fk_inbound_messages_thread_id_threads'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_messages')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_inbound_messages_dedupe_key')),
    sa.UniqueConstraint('imap_mailbox', 'imap_uidvalidity', 'imap_uid', name=op.f('uq_inbound_messages_imap_mailbox'))
    )
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_messages_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_messages_delivery_id'), ['delivery_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_messages_from_address'), ['from_address'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_messages_in_reply_to'), ['in_reply_to'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_messages_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_messages_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_messages_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_messages_received_at'), ['received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_messages_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_messages_thread_id'), ['thread_id'], unique=False)

    op.create_table('thread_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('thread_id', sa.Integer(), nullable=False),
    sa.Column('officer_id', sa.Integer(), nullable=True),
    sa.Column('at', mailer.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['officer_id'], ['officers.id'], name=op.f('fk_thread_notes_officer_id_officers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['thread_id'], ['threads.id'], name=op.f('fk_thread_notes_thread_id_threads'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_thread_notes'))
    )
    with op.batch_alter_table('thread_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_thread_notes_thread_id'), ['thread_id'], unique=False)

    op.create_table('thread_reads',
    sa.Column('officer_id', sa.Integer(), nullable=False),
    sa.Column('thread_id', sa.Integer(), nullable=False),
    sa.Column('read_at', mailer.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['officer_id'], ['officers.id'], name=op.f('fk_thread_reads_officer_id_officers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['thread_id'], ['threads.id'], name=op.f('fk_thread_reads_thread_id_threads'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('officer_id', 'thread_id', name=op.f('pk_thread_reads'))
    )
    op.create_table('bounce_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', mailer.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('hard', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('diagnostic', sa.String(length=1000), nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=True),
    sa.Column('inbound_message_id', sa.Integer(), nullable=True),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['delivery_id'], ['deliveries.id'], name=op.f('fk_bounce_events_delivery_id_deliveries'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['inbound_message_id'], ['inbound_messages.id'], name=op.f('fk_bounce_events_inbound_message_id_inbound_messages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_bounce_events_member_id_members'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bounce_events'))
    )
    with op.batch_alter_table('bounce_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bounce_events_delivery_id'), ['delivery_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_bounce_events_email'), ['email'], unique=False)

    op.create_table('inbound_attachments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=150), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('dangerous', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['inbound_messages.id'], name=op.f('fk_inbound_attachments_message_id_inbound_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_attachments'))
    )
    with op.batch_alter_table('inbound_attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_attachments_message_id'), ['message_id'], unique=False)

    op.create_table('outgoing_replies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('thread_id', sa.Integer(), nullable=False),
    sa.Column('in_reply_to_id', sa.Integer(), nullable=True),
    sa.Column('officer_id', sa.Integer(), nullable=True),
    sa.Column('message_id', sa.String(length=300), nullable=False),
    sa.Column('to_address', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', mailer.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', mailer.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('error', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['in_reply_to_id'], ['inbound_messages.id'], name=op.f('fk_outgoing_replies_in_reply_to_id_inbound_messages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['officer_id'], ['officers.id'], name=op.f('fk_outgoing_replies_officer_id_officers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['thread_id'], ['threads.id'], name=op.f('fk_outgoing_replies_thread_id_threads'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outgoing_replies')),
    sa.UniqueConstraint('message_id', name=op.f('uq_outgoing_replies_message_id'))
    )
    with op.batch_alter_table('outgoing_replies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outgoing_replies_thread_id'), ['thread_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('outgoing_replies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outgoing_replies_thread_id'))

    op.drop_table('outgoing_replies')
    with op.batch_alter_table('inbound_attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_attachments_message_id'))

    op.drop_table('inbound_attachments')
    with op.batch_alter_table('bounce_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bounce_events_email'))
        batch_op.drop_index(batch_op.f('ix_bounce_events_delivery_id'))

    op.drop_table('bounce_events')
    op.drop_table('thread_reads')
    with op.batch_alter_table('thread_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_thread_notes_thread_id'))

    op.drop_table('thread_notes')
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_messages_thread_id'))
        batch_op.drop_index(batch_op.f('ix_inbound_messages_status'))
        batch_op.drop_index(batch_op.f('ix_inbound_messages_received_at'))
        batch_op.drop_index(batch_op.f('ix_inbound_messages_message_id'))
        batch_op.drop_index(batch_op.f('ix_inbound_messages_member_id'))
        batch_op.drop_index(batch_op.f('ix_inbound_messages_kind'))
        batch_op.drop_index(batch_op.f('ix_inbound_messages_in_reply_to'))
        batch_op.drop_index(batch_op.f('ix_inbound_messages_from_address'))
        batch_op.drop_index(batch_op.f('ix_inbound_messages_delivery_id'))
        batch_op.drop_index(batch_op.f('ix_inbound_messages_campaign_id'))

    op.drop_table('inbound_messages')
    with op.batch_alter_table('threads', schema=None) as batch_op:
        batch_op.drop_index('ix_threads_status_activity')
        batch_op.drop_index(batch_op.f('ix_threads_normalised_subject'))
        batch_op.drop_index(batch_op.f('ix_threads_member_id'))
        batch_op.drop_index(batch_op.f('ix_threads_correspondent'))
        batch_op.drop_index(batch_op.f('ix_threads_campaign_id'))
        batch_op.drop_index(batch_op.f('ix_threads_branch_id'))

    op.drop_table('threads')
    op.drop_table('imap_state')
