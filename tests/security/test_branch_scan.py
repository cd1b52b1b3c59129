"""Branch scan: as branch A's secretary, every admin route with the ids of branch B's records
answers 403 or 404; and no page or file A receives, on any route, contains the marker seeded
into every one of B's records."""

from __future__ import annotations

import mailbox
import re
from email.message import EmailMessage

from mailer.db import session
from mailer.models import ImportRun
from tests.security.conftest import FIGURES, MARKER, client_for, seed_branch
from tests.security.test_route_scan import METHODS, url_for_rule

PUBLIC_LINK = re.compile(r"(?:https?://[^/\"'<>\s]+)?(/(?:calendar|w|minutes|u|r)/[A-Za-z0-9._~%-]+(?:\.ics)?)")

# Admin routes that name no record: A may use them (they must still show nothing of B's).
NO_RECORD = {"admin.campaigns.create", "admin.meetings.create", "admin.members.create", "admin.imports.upload",
             "admin.officers.create"}


def _ids_for(endpoint: str, ids: dict) -> dict:
    found = dict(ids)
    found["attachment_id"] = ids["campaign_attachment_id" if endpoint.startswith("admin.campaigns.")
                                 else "inbound_attachment_id"]
    return found


def test_branch_a_reaches_nothing_of_branch_b(app, officers, tmp_path):
    app.config["MAIL_CATCHER"] = True  # the Outbox too: it holds B's mail
    theirs = seed_branch(officers.sec_b, officers.branch_b, officers.secretary, officers.chair, "S", MARKER)
    ours = seed_branch(officers.sec_a, officers.branch_a, officers.secretary, officers.chair, "N", "")
    run = ImportRun(officer_id=officers.secretary.id, filename=f"south-{MARKER}.csv", content=MARKER.encode())
    session.add(run)
    session.commit()
    caught = EmailMessage()
    caught["From"], caught["To"], caught["Subject"] = "mailer@example.org", theirs.member.email, f"News {MARKER}"
    caught.set_content(f"For Bea {MARKER}")
    key = mailbox.Maildir(tmp_path / "instance" / "outbox", create=True).add(bytes(caught))
    extra_b = {"run_id": run.id, "officer_id": officers.sec_b.id, "key": key}
    extra_a = {"run_id": run.id, "officer_id": officers.sec_a.id, "key": key}

    # The scan's own check: the marker really is in what B's records show (to an officer who may see them).
    clp = client_for(app, officers.secretary)
    t = theirs.ids
    for url in (f"/members/{t['member_id']}", f"/campaigns/{t['campaign_id']}", f"/correspondence/{t['thread_id']}",
                f"/meetings/{t['meeting_id']}", f"/meetings/{t['meeting_id']}/minutes",
                f"/meetings/{t['meeting_id']}/register", f"/meetings/{t['meeting_id']}/papers/{t['paper_id']}",
                f"/correspondence/attachment/{t['inbound_attachment_id']}", f"/outbox/{key}", "/members/"):
        response = clp.get(url)
        assert response.status_code == 200 and MARKER.encode() in response.data, url

    client = client_for(app, officers.sec_a)
    failures, cross, own, links = [], 0, 0, set()
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("admin.")]
    for rule in rules:
        for method in METHODS:
            if method not in rule.methods:
                continue
            # With B's ids: refused, and nothing of B's in the answer.
            if rule.arguments and rule.endpoint not in NO_RECORD:
                url = url_for_rule(rule, _ids_for(rule.endpoint, {**theirs.ids, **extra_b}))
                response = client.open(url, method=method)
                cross += 1
                if response.status_code not in (403, 404):
                    failures.append(f"{method} {url} ({rule.endpoint}): {response.status_code}")
                if MARKER.encode() in response.data:
                    failures.append(f"{method} {url} ({rule.endpoint}): B's marker in the answer")
            # With A's own ids (or none): whatever it answers, nothing of B's.
            if method == "GET":
                url = url_for_rule(rule, _ids_for(rule.endpoint, {**ours.ids, **extra_a}))
                response = client.get(url)
                own += 1
                if MARKER.encode() in response.data:
                    failures.append(f"GET {url} ({rule.endpoint}, A's own): B's marker in the answer")
                links |= set(PUBLIC_LINK.findall(response.data.decode("utf-8", "replace")))
    # The public addresses A's pages hand out (feeds, web versions, minutes, preferences): nothing of B's.
    anonymous = app.test_client()
    for link in sorted(links):
        response = anonymous.get(link)
        own += 1
        if MARKER.encode() in response.data:
            failures.append(f"GET {link} (a public link in A's pages): B's marker in the answer")
    # B's records are all still there, unchanged by A's attempts.
    from mailer.models import Member

    session.expire_all()
    assert session.get(Member, theirs.ids["member_id"]).first_name == f"Bea{MARKER}"
    FIGURES["branch scan: cross-branch requests"] = cross
    FIGURES["branch scan: A's own pages checked for B's marker"] = own
    FIGURES["branch scan: public links in A's pages followed"] = len(links)
    FIGURES["branch scan: failures"] = len(failures)
    print(f"\nbranch scan: {cross} cross-branch requests, {own} of A's own pages and links checked "
          f"({len(links)} public links), {len(failures)} failures")
    assert cross > 60
    assert not failures, "\n".join(failures)
