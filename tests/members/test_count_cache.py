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
