"""A remembered segment count is never stale after a change committed through the app."""

from mailer.db import session
from mailer.members import segments
from mailer.models import Member, MemberStatus, Stream


def test_a_count_is_remembered_until_a_member_changes(app, make_member, make_officer):
    with app.app_context():
        officer = make_officer()
        first = make_member(email="ann@example.org")
        before = segments.remembered_count({}, Stream.NOTICES, officer)
        again = segments.remembered_count({}, Stream.NOTICES, officer)
        assert again == before  # the same count, from Redis: the same moment counted
        session.get(Member, first.id).status = MemberStatus.RESIGNED
        session.flush()
        assert segments.remembered_count({}, Stream.NOTICES, officer)["members"] == before["members"]  # resigned still match
        assert segments.remembered_count({}, Stream.NOTICES, officer)["recipients"] == before["recipients"] - 1
        session.commit()
        after = segments.remembered_count({}, Stream.NOTICES, officer)
        assert after["recipients"] == before["recipients"] - 1 and after["as_of"] > before["as_of"]


def test_two_databases_sharing_a_redis_neither_share_counts_nor_stale_each_other(app, make_app, make_member,
                                                                                  make_officer, tmp_path):
    """The benchmark's SQLite and PostgreSQL apps (or two Mailers) on one Redis: each database its
    own generation and counts."""
    from mailer import migrate
    from mailer.members import count_cache

    other = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'other.sqlite'}")
    with other.app_context():
        migrate.upgrade()
        other_key = count_cache._generation_key()
    with app.app_context():
        officer = make_officer()
        make_member(email="ann@example.org")
        assert count_cache._generation_key() != other_key
        ours = segments.remembered_count({}, Stream.NOTICES, officer)
        conn = count_cache._redis()
        other_generation = conn.get(other_key)
        make_member(email="bob@example.org")
        session.commit()  # moves our generation only
        assert conn.get(other_key) == other_generation
        assert segments.remembered_count({}, Stream.NOTICES, officer)["as_of"] > ours["as_of"]  # counted afresh
