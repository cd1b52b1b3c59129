"""/api/v1/members: list and search, read, update (with If-Match)."""

from __future__ import annotations

from flask import abort

from mailer import scope
from mailer.api import bp, cursor, etag_of, officer, page_links, problem, require_match, responses, spec, with_etag
from mailer.api.schemas import MemberList, MemberOut
from mailer.inputs import MemberPatch, MemberQuery
from mailer.db import session
from mailer.members import service
from mailer.models import Member, MemberStatus
from mailer.pagination import Key, paginate


def _out(member: Member) -> MemberOut:
    return MemberOut(id=member.id, membership_number=member.membership_number, first_name=member.first_name,
                     last_name=member.last_name, email=member.email, phone=member.phone, postcode=member.postcode,
                     ward=member.ward, polling_district=member.polling_district,
                     branch=member.branch.name if member.branch else None, status=member.status.value,
                     joined_on=member.joined_on, notices_consent=member.notices_consent,
                     bulletins_consent=member.bulletins_consent, email_health=member.email_health.value,
                     tags=sorted(t.name for t in member.tags))


def _visible(member_id: int) -> Member:
    member = scope.get_member(officer(), member_id)
    if member is None:  # another branch's member answers as one that does not exist
        abort(problem(404, "There is no such member."))
    return member


@bp.get("/members")
@spec.validate(query=MemberQuery, resp=responses(MemberList), tags=["members"])
def list_members(query: MemberQuery):
    """Members you may see, by id, with search and filters; follow Link: rel=next for more."""
    from sqlalchemy.orm import selectinload

    mq = service.MemberQuery(q=query.q, branch_id=query.branch_id,
                             status=MemberStatus(query.status) if query.status else None)
    stmt = service.matching(officer(), mq).options(selectinload(Member.branch), selectinload(Member.tags))
    page = paginate(stmt, [Key(Member.id)], cursor(query), query.limit, count=False)
    args = {k: v for k, v in query.model_dump(exclude={"after", "limit"}).items() if v not in (None, "")}
    return MemberList(items=[_out(m) for m in page]), 200, page_links(page, "api.list_members", **args)


@bp.get("/members/<int(max=2147483647):member_id>")
@spec.validate(resp=responses(MemberOut, 404), tags=["members"])
def read_member(member_id: int):
    """One member, with an ETag to send back as If-Match when you change them."""
    member = _visible(member_id)
    return with_etag(_out(member), etag_of("member", member.id, member.updated_at))


@bp.patch("/members/<int(max=2147483647):member_id>")
@spec.validate(json=MemberPatch, resp=responses(MemberOut, 404, 412, 428), tags=["members"])
def update_member(member_id: int, json: MemberPatch):
    """Change some of a member's fields (If-Match required); the change is audited."""
    member = _visible(member_id)
    require_match(etag_of("member", member.id, member.updated_at))
    service.update_member(officer(), member, json.raw())  # refused: 422, field by field (mailer.api)
    session.flush()
    return with_etag(_out(member), etag_of("member", member.id, member.updated_at))
