"""A realistic demo CLP, generated: no real people. Addresses use example domains, phone numbers
Ofcom's drama range, so nothing here can reach anyone."""

from __future__ import annotations

import random
from datetime import date, timedelta

from sqlalchemy import func, select

from mailer import audit
from mailer.db import session
from mailer.models import Branch, EmailHealth, Member, MemberStatus, Role
from mailer.officers import service as officers

FIRST = ("Aisha Alan Amelia Andrew Ann Arjun Beth Bilal Catherine Chloe Chris Claire Connor Daniel David Deborah "
         "Eilidh Emma Fatima Gareth Grace Hannah Harry Imran Isla Jack Jas James Jane Joan John Joseph Karen Kemi "
         "Laura Liam Lucy Mark Mary Megan Michael Mohammed Nadia Niamh Oliver Olivia Owen Paul Priya Rachel Rhys "
         "Richard Ruth Sam Sarah Sean Sophie Stephen Susan Tariq Thomas Tom Tunde Wendy William Yusuf Zainab").split()
LAST = ("Ahmed Ali Allen Baker Bell Bennett Brown Campbell Carter Chapman Clarke Collins Cooper Davies Edwards Evans "
        "Green Hall Harris Hughes Hussain Jackson James Jones Kaur Khan Kelly King Lee Lewis Martin Mitchell Moore "
        "Morgan Murphy Nowak O'Brien Okafor Owen Patel Phillips Price Roberts Robinson Scott Shah Singh Smith Taylor "
        "Thomas Thompson Turner Walker Ward Watson White Williams Wilson Wood Wright Young").split()

# Branch -> ward -> polling districts.
AREAS = {
    "Northgate": {"Northgate": ["NGA", "NGB", "NGC"], "Castle": ["CSA", "CSB"]},
    "Riverside": {"Riverside": ["RVA", "RVB"], "Old Town": ["OTA", "OTB", "OTC"]},
    "St Mary's": {"St Mary's": ["SMA", "SMB"], "Abbey": ["ABA", "ABB"], "Hillcrest": ["HCA"]},
}
STATUS_WEIGHTS = {MemberStatus.ACTIVE: 70, MemberStatus.NEW: 8, MemberStatus.ARREARS: 9,
                  MemberStatus.LAPSED: 9, MemberStatus.RESIGNED: 4}
DEMO_MARKER = "DEMO"


def seed(members: int = 320, echo=print) -> bool:
    """Add the demo CLP unless it is already there. Returns True when it seeded."""
    if session.scalar(select(func.count()).select_from(Member).where(Member.membership_number.like("DEMO%"))):
        echo("Demo data already present.")
        return False
    rng = random.Random(2026)
    branches = {name: Branch(name=name) for name in AREAS}
    for b in branches.values():
        existing = session.scalar(select(Branch).where(Branch.name == b.name))
        if existing is not None:
            branches[b.name] = existing
        else:
            session.add(b)
    session.flush()

    statuses, weights = zip(*STATUS_WEIGHTS.items())
    used_emails: set[str] = set()
    today = date.today()
    for n in range(1, members + 1):
        branch_name = rng.choice(list(AREAS))
        ward = rng.choice(list(AREAS[branch_name]))
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first}.{last}{rng.randint(1, 99)}@example.{'org' if n % 3 else 'com'}".lower().replace("'", "")
        if n % 17 == 0 or email in used_emails:
            email = None  # some members have no email: they get printed notices
        else:
            used_emails.add(email)
        status = rng.choices(statuses, weights)[0]
        # Relative to today, so "new" members stay recent joiners whenever the demo is made.
        joined = today - timedelta(days=rng.randint(10, 365 * 30) if status is not MemberStatus.NEW
                                               else rng.randint(1, 60))
        session.add(Member(
            membership_number=f"{DEMO_MARKER}{n:05d}", first_name=first, last_name=last, email=email,
            phone=f"07700 900{rng.randint(0, 999):03d}" if rng.random() < 0.6 else None,
            postcode=f"ZZ{rng.randint(1, 9)} {rng.randint(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
                     f"{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}",
            ward=ward, polling_district=rng.choice(AREAS[branch_name][ward]), branch=branches[branch_name],
            status=status, joined_on=joined, bulletins_consent=rng.random() < 0.85,
            notices_consent=rng.random() > 0.02, to_welcome=status is MemberStatus.NEW,
            email_health=EmailHealth.ON_HOLD if email and rng.random() < 0.03 else EmailHealth.OK,
        ))
    audit.record("demo.seed", "demo", None, {"members": members}, actor="mailer up --demo")

    made = []
    people = [("chair@example.org", Role.CHAIR, None, "Demo Chair"),
              ("treasurer@example.org", Role.CLP_OFFICER, None, "Demo Treasurer")] + [
        (f"{name.lower().replace(chr(39), '').replace(' ', '')}.secretary@example.org", Role.BRANCH_SECRETARY,
         branches[name], f"{name} Branch Secretary") for name in AREAS]
    for email, role, branch, name in people:
        if officers.find_by_email(email) is None:
            _officer, password = officers.create_officer(email, role, branch, name)
            made.append((email, role.label, password))
    session.commit()
    echo(f"Demo CLP seeded: {len(branches)} branches, {members} members.")
    for email, label, password in made:
        echo(f"    {label:18} {email:40} password: {password}")
    return True
