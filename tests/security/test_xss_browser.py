"""Stored XSS in real Chromium: payloads in every member-, officer- and email-provided field
(attachment names and display names included); every page that shows them is opened with a
dialog handler, a flag a payload would set, and a watch on script-blocking CSP reports. Zero
executions, and no live handler or javascript: link in any page's DOM."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid

import pytest

from mailer.compose import drafts
from mailer.db import session, utcnow
from mailer.inbound import correspondence
from mailer.meetings import minutes as minutes_service
from mailer.meetings import service as meetings
from mailer.members import service as members
from mailer.models import ImportRun, Member, MemberStatus, MeetingKind, Response, Role
from mailer.sending import campaigns
from tests.browser.conftest import browser, live_server, page, sign_in  # noqa: F401, F811 (fixtures)
from tests.security.conftest import FIGURES, ingest
from tests.security.test_route_scan import url_for_rule
from tests.sending.conftest import run_queue

pytestmark = pytest.mark.browser

PAYLOADS = [
    "<script>window.__xss=1</script>",
    "<img src=x onerror=window.__xss=2>",
    "<svg onload=window.__xss=3>",
    '"><img src=x onerror=window.__xss=4>',
    "'><svg/onload=window.__xss=5>",
    "javascript:window.__xss=6//",
    "data:text/html,<script>window.__xss=7</script>",
    "&lt;img src=x onerror=window.__xss=8&gt;",
    "{{ 7*7 }}{% raw %}<b>{{ 8*8 }}",
    '<a href="javascript:window.__xss=9">j</a>',
    "</textarea><script>window.__xss=10</script>",
    '<iframe srcdoc="<script>parent.__xss=11</script>">',
    "<details open ontoggle=window.__xss=12>",
    "%3Cscript%3Ewindow.__xss=13%3C/script%3E",
    "<img src=x onerror=alert(14)>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(15)>",
]

# Files, not pages: a browser downloads them (their serving is tested in test_holes, hole 7).
DOWNLOADS = {"admin.meetings.paper", "admin.correspondence.attachment", "admin.correspondence.message_raw",
             "admin.outbox.raw", "admin.meetings.notice_pdf", "admin.meetings.agenda_pdf",
             "admin.meetings.signin_pdf", "admin.meetings.minutes_pdf", "admin.meetings.evidence",
             "admin.meetings.postal",
             "admin.campaigns.preview_text", "admin.campaigns.find_members", "admin.campaigns.progress",
             "admin.imports.rejected"}

WATCH = """
window.__xss = 0; window.__cspScript = 0;
document.addEventListener('securitypolicyviolation', e => {
  if (String(e.violatedDirective).startsWith('script-src')) window.__cspScript += 1;
});
"""

# The page's flag, its script-src CSP reports, and the flag of any same-origin frame (a sandboxed
# frame has an opaque origin: reading it throws, and nothing can run in it).
FLAGS = """() => [window.__xss || 0, window.__cspScript || 0,
  Array.from(document.querySelectorAll('iframe')).map(f => { try { return f.contentWindow.__xss || 0 }
                                                             catch (e) { return 0 } }).reduce((a, b) => a + b, 0)]"""

DOM_CHECK = """() => {
  const bad = [];
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.attributes) {
      const v = (a.value || '').trim().toLowerCase();
      if (a.name.startsWith('on')) bad.push(el.tagName + ' ' + a.name);
      if (['href', 'src', 'action', 'formaction', 'srcdoc'].includes(a.name)
          && (v.startsWith('javascript:') || v.startsWith('data:text/html') || a.name === 'srcdoc')) {
        bad.push(el.tagName + ' ' + a.name + '=' + v.slice(0, 40));
      }
    }
  }
  return bad;
}"""


def _letter(n: int, payload: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f'"{payload}" <writer{n}@outside.example>'
    msg["To"], msg["Subject"] = "secretary@anytown-labour.example", f"Letter {payload}"
    msg["Message-ID"] = make_msgid(domain="outside.example")
    msg.set_content(f"Dear Secretary,\n\n{payload}\n")
    msg.add_alternative(f"<p>Dear Secretary,</p><p>{payload}</p><div>{payload}</div>", subtype="html")
    msg.add_attachment(b"%PDF-1.4 x", maintype="application", subtype="pdf", filename=f"{payload}.pdf")
    return bytes(msg)


def _seed(officers, make_officer) -> tuple[dict, list[str], int]:
    """Every field a member, officer or outsider fills, each holding payloads; returns the ids,
    the pages that show them, and the number of placements."""
    placements = 0
    secretary = officers.secretary
    for n, p in enumerate(PAYLOADS[:3]):
        make_officer(f"officer{n}@anytown-labour.example", Role.CLP_OFFICER, name=p)
        placements += 1
    branch = members.branch_by_name(PAYLOADS[1][:100])
    session.commit()
    placements += 1
    member_ids = []
    for n, p in enumerate(PAYLOADS):
        member = Member(membership_number=f"X{n:05d}", first_name=p[:100], last_name=p[::-1][:100],
                        email=f"m{n}@example.org", ward=p[:120], polling_district=p[:40], status=MemberStatus.ACTIVE,
                        branch_id=branch.id if n % 2 else None)
        session.add(member)
        session.flush()
        members.set_tags(member, p.replace(",", " ")[:60])
        member_ids.append(member.id)
        placements += 5
    session.commit()

    campaign_ids = []
    for n, p in enumerate(PAYLOADS[:6]):
        campaign = drafts.create(secretary)
        drafts.update(secretary, campaign, {"name": p, "subject": f"News {n} " + p.replace("{", "("),
                                            "preheader": p, "body": f"Dear {{{{ member.first_name }}}},\n\n{p}\n",
                                            "body_format": "markdown", "segment": {}})
        session.commit()
        campaign_ids.append(campaign.id)
        placements += 4
    for p in PAYLOADS[:4]:  # attachment names
        drafts.add_attachment(secretary, campaign, f"{p}.pdf", b"%PDF-1.4 x", "application/pdf")
    row = PAYLOADS[1].replace('"', "'")
    session.add(ImportRun(officer_id=secretary.id, filename=f"{PAYLOADS[3]}.csv",
                          content=f'Membership number,First name,Email\nY00001,"{row}",y@example.org\n'.encode()))
    session.commit()
    placements += 6
    campaigns.send_now(session.get(type(campaign), campaign_ids[0]), secretary)  # a web version and the archive
    session.commit()
    run_queue()

    letters = [ingest(_letter(n, p)) for n, p in enumerate(PAYLOADS)]
    placements += 5 * len(letters)
    thread = letters[0].thread
    correspondence.add_note(secretary, thread, PAYLOADS[2])
    session.commit()
    correspondence.reply(secretary, thread, letters[0], PAYLOADS[3])
    session.commit()
    run_queue()
    placements += 2

    starts = utcnow().replace(second=0, microsecond=0) + timedelta(days=30)
    meeting, _ = meetings.create(secretary, {"title": PAYLOADS[0], "kind": MeetingKind.GENERAL.value,
                                             "starts_at": starts, "ends_at": starts + timedelta(hours=2),
                                             "venue_name": PAYLOADS[1], "venue_address": PAYLOADS[2],
                                             "accessibility": PAYLOADS[4], "dial_in": PAYLOADS[6]})
    meeting.online_url = PAYLOADS[5]  # as if it had got past the form
    meetings.set_agenda(secretary, meeting, [{"id": i.id, "title": i.title, "notes": ""} for i in meeting.agenda]
                        + [{"title": p[:200], "notes": p} for p in PAYLOADS[7:11]])
    session.commit()
    meetings.add_paper(secretary, meeting.agenda[0], f"{PAYLOADS[9]}.pdf", b"%PDF-1.4 x", "text/html")
    meetings.record_response(meeting, session.get(Member, member_ids[0]), Response.APOLOGIES, "link")
    for letter in letters[:4]:
        minutes_service.attach(secretary, meeting, letter.thread)
    draft = minutes_service.start(secretary, meeting)
    minutes_service.save(secretary, draft, {item.id: PAYLOADS[n % len(PAYLOADS)] for n, item in enumerate(draft.items)},
                         present_text=PAYLOADS[11])
    session.commit()
    placements += 7 + 2 * 4 + 1 + len(draft.items) + 1

    ids = {"member_id": member_ids[1], "campaign_id": campaign_ids[0], "thread_id": thread.id,
           "message_id": letters[0].id, "meeting_id": meeting.id, "officer_id": officers.officer.id, "run_id": 1,
           "key": "x", "attachment_id": 1, "paper_id": 1, "attendance_id": 1, "reply_id": 1}
    pages = [f"/members/{i}" for i in member_ids] + [f"/correspondence/{m.thread_id}" for m in letters]
    pages += [f"/correspondence/message/{m.id}/html" for m in letters]
    pages += ["/imports/", "/imports/1"]
    pages += [f"/campaigns/{i}/edit" for i in campaign_ids] + [f"/campaigns/{i}/preview" for i in campaign_ids]
    pages += ["/members/?q=%3Cscript%3E", "/correspondence/?status=all", "/correspondence/?q=Letter",
              f"/meetings/{meeting.id}/minutes", "/campaigns/?page=1"]
    return ids, pages, placements


def test_no_payload_runs_in_any_page(app, officers, make_officer, page, live_server):
    ids, pages, placements = _seed(officers, make_officer)
    admin = [r for r in app.url_map.iter_rules()
             if r.endpoint.startswith("admin.") and "GET" in r.methods and r.endpoint not in DOWNLOADS]
    urls = sorted({url_for_rule(r, ids) for r in admin} | set(pages))
    from mailer.models import Campaign

    sent = session.get(Campaign, ids["campaign_id"])
    public = [f"/w/{sent.web_token}", "/archive"]

    session.commit()  # end the test's transaction: the live server writes (SQLite locks the file)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.add_init_script(WATCH)
    sign_in(page, officers.secretary.email)
    failures, visited = [], 0
    for url in urls + public:
        response = page.goto(url)
        visited += 1
        if response is None or response.status >= 500:
            failures.append(f"{url}: {response.status if response else 'no response'}")
            continue
        page.wait_for_load_state("load")
        if "sandbox" in (response.headers.get("content-security-policy") or ""):
            # The browser runs no script in this document at all (only a dialog could tell otherwise).
            continue
        flag, csp, framed = page.evaluate(FLAGS)
        if flag or csp or framed:
            failures.append(f"{url}: flag {flag}, script blocked by CSP {csp}, flag in a frame {framed}")
        bad = page.evaluate(DOM_CHECK)
        if bad:
            failures.append(f"{url}: live markup {bad[:5]}")
    if dialogs:
        failures.append(f"dialogs opened: {dialogs}")
    FIGURES["xss: payload placements"] = placements
    FIGURES["xss: pages opened in Chromium"] = visited
    FIGURES["xss: executions"] = len(failures)
    print(f"\nxss: {len(PAYLOADS)} payloads in {placements} placements, {visited} pages opened in Chromium, "
          f"{len(failures)} executions or live markup")
    assert visited > 60
    assert not failures, "\n".join(failures)
