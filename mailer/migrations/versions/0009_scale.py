"""scale: indexed member search, stored campaign counts, indexes for big lists

Revision ID: 0009
Revises: 0007
Create Date: 2026-11-26

- Member search answered by an index: SQLite, an FTS5 trigram table kept by triggers; PostgreSQL,
  pg_trgm GIN indexes on the searched expressions (see mailer.search). NOTE for later migrations:
  on SQLite, a batch_alter_table that rebuilds `members` drops its triggers; recreate them with
  `create_member_search()` below.
- Emails stored lower-case everywhere (the importer and forms already do): the few written
  before are lowered, so matching and grouping need no lower().
- campaigns.counts: the delivery counts, stored when a campaign finishes.
- deliveries (campaign_id, sent_at): the live sending rate reads the last minute only.
- members.email, inbound messages by (thread_id, id): the segment count groups on the stored
  address; a long thread pages through its messages in order.
"""

from alembic import op
import sqlalchemy as sa
import mailer.db


revision = '0009'
down_revision = '0007'
branch_labels = None
depends_on = None

FTS_TRIGGERS = {
    "members_fts_insert": "AFTER INSERT ON members BEGIN "
                          "INSERT INTO members_fts(rowid, name, email, number) VALUES "
                          "(new.id, new.first_name || ' ' || new.last_name, coalesce(new.email, ''), "
                          "coalesce(new.membership_number, '')); END",
    "members_fts_delete": "AFTER DELETE ON members BEGIN DELETE FROM members_fts WHERE rowid = old.id; END",
    "members_fts_update": "AFTER UPDATE OF first_name, last_name, email, membership_number ON members BEGIN "
                          "DELETE FROM members_fts WHERE rowid = old.id; "
                          "INSERT INTO members_fts(rowid, name, email, number) VALUES "
                          "(new.id, new.first_name || ' ' || new.last_name, coalesce(new.email, ''), "
                          "coalesce(new.membership_number, '')); END",
}
# Inbound messages: an external-content FTS5 table (the text is not stored twice).
INBOUND_COLUMNS = "full_text, visible_text, from_name, from_address"
INBOUND_NEW = "new.full_text, new.visible_text, new.from_name, coalesce(new.from_address, '')"
INBOUND_OLD = "old.full_text, old.visible_text, old.from_name, coalesce(old.from_address, '')"
FTS_TRIGGERS.update({
    "inbound_fts_insert": f"AFTER INSERT ON inbound_messages BEGIN INSERT INTO inbound_fts(rowid, {INBOUND_COLUMNS}) "
                          f"VALUES (new.id, {INBOUND_NEW}); END",
    "inbound_fts_delete": f"AFTER DELETE ON inbound_messages BEGIN INSERT INTO inbound_fts(inbound_fts, rowid, "
                          f"{INBOUND_COLUMNS}) VALUES ('delete', old.id, {INBOUND_OLD}); END",
    "inbound_fts_update": f"AFTER UPDATE OF {INBOUND_COLUMNS} ON inbound_messages BEGIN "
                          f"INSERT INTO inbound_fts(inbound_fts, rowid, {INBOUND_COLUMNS}) VALUES ('delete', old.id, "
                          f"{INBOUND_OLD}); INSERT INTO inbound_fts(rowid, {INBOUND_COLUMNS}) VALUES (new.id, "
                          f"{INBOUND_NEW}); END",
})
PG_TRIGRAM = {
    "ix_members_name_trgm": "members USING gin (lower(first_name || ' ' || last_name) gin_trgm_ops)",
    "ix_members_email_trgm": "members USING gin (email gin_trgm_ops)",
    "ix_members_number_trgm": "members USING gin (lower(membership_number) gin_trgm_ops)",
    # One expression over what the inbox search reads, newline-separated (a search has no newline).
    "ix_inbound_messages_text_trgm": "inbound_messages USING gin (lower(coalesce(from_address, '') || E'\\n' || "
                                     "from_name || E'\\n' || visible_text || E'\\n' || full_text) gin_trgm_ops)",
}


def create_member_search() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE IF NOT EXISTS members_fts USING fts5(name, email, number, tokenize='trigram')")
        op.execute("DELETE FROM members_fts")
        op.execute("INSERT INTO members_fts(rowid, name, email, number) SELECT id, first_name || ' ' || last_name, "
                   "coalesce(email, ''), coalesce(membership_number, '') FROM members")
        op.execute("CREATE VIRTUAL TABLE IF NOT EXISTS inbound_fts USING fts5(full_text, visible_text, from_name, "
                   "from_address, content='inbound_messages', content_rowid='id', tokenize='trigram')")
        op.execute("INSERT INTO inbound_fts(inbound_fts) VALUES ('rebuild')")
        for name, body in FTS_TRIGGERS.items():
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
            op.execute(f"CREATE TRIGGER {name} {body}")
    elif conn.dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, body in PG_TRIGRAM.items():
            op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {body}")


def drop_member_search() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        for name in FTS_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS members_fts")
        op.execute("DROP TABLE IF EXISTS inbound_fts")
    elif conn.dialect.name == "postgresql":
        for name in PG_TRIGRAM:
            op.execute(f"DROP INDEX IF EXISTS {name}")


def upgrade() -> None:
    op.execute("UPDATE members SET email = lower(email) WHERE email IS NOT NULL AND email <> lower(email)")
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('counts', sa.JSON(), nullable=True))
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_campaign_sent_at', ['campaign_id', 'sent_at'], unique=False)
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_members_email'), ['email'], unique=False)
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.create_index('ix_inbound_messages_thread_order', ['thread_id', 'id'], unique=False)
    create_member_search()  # after the rebuilds above, which would drop SQLite's triggers
    # Campaigns already finished get their counts now, as finishing stores them from here on.
    conn = op.get_bind()
    finished = conn.execute(sa.text("SELECT id FROM campaigns WHERE status = 'sent'")).scalars().all()
    campaigns = sa.table("campaigns", sa.column("id", sa.Integer), sa.column("counts", sa.JSON))
    for campaign_id in finished:
        counts = dict(conn.execute(sa.text("SELECT status, count(*) FROM deliveries WHERE campaign_id = :c "
                                           "GROUP BY status"), {"c": campaign_id}).all())
        conn.execute(campaigns.update().where(campaigns.c.id == campaign_id).values(counts=counts))


def downgrade() -> None:
    drop_member_search()
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_inbound_messages_thread_order')
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_members_email'))
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_campaign_sent_at')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('counts')
