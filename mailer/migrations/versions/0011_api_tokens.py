"""personal API tokens for officers

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-26
"""

from alembic import op
import sqlalchemy as sa
import mailer.db


revision = '0011'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('officer_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('hint', sa.String(length=12), nullable=False),
    sa.Column('created_at', mailer.db.UTCDateTime(), nullable=False),
    sa.Column('expires_at', mailer.db.UTCDateTime(), nullable=True),
    sa.Column('last_used_at', mailer.db.UTCDateTime(), nullable=True),
    sa.Column('revoked_at', mailer.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['officer_id'], ['officers.id'], name=op.f('fk_api_tokens_officer_id_officers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_officer_id'), ['officer_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_officer_id'))
    op.drop_table('api_tokens')
