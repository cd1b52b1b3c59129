"""index the Message-IDs a stored message answers

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa
import mailer.db


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('message_references',
    sa.Column('inbound_message_id', sa.Integer(), nullable=False),
    sa.Column('referenced', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['inbound_message_id'], ['inbound_messages.id'], name=op.f('fk_message_references_inbound_message_id_inbound_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('inbound_message_id', 'referenced', name=op.f('pk_message_references'))
    )
    with op.batch_alter_table('message_references', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_message_references_referenced'), ['referenced'], unique=False)
    # Messages already held get their references indexed too.
    conn = op.get_bind()
    messages = sa.table("inbound_messages", sa.column("id", sa.Integer), sa.column("in_reply_to", sa.String),
                        sa.column("references", sa.JSON))
    refs = sa.table("message_references", sa.column("inbound_message_id", sa.Integer),
                    sa.column("referenced", sa.String))
    for message_id, in_reply_to, references in conn.execute(sa.select(messages)).all():
        found = {m[:300] for m in [in_reply_to, *(references or [])] if m}
        if found:
            conn.execute(refs.insert(), [{"inbound_message_id": message_id, "referenced": m} for m in found])


def downgrade() -> None:
    with op.batch_alter_table('message_references', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_message_references_referenced'))

    op.drop_table('message_references')
