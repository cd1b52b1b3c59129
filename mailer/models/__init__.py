"""The data model. Import from here: `from mailer.models import Member, Officer`."""

from mailer.models.audit import AuditEvent
from mailer.models.imports import ImportMapping, ImportRun, ImportStatus
from mailer.models.members import Branch, EmailHealth, Member, MemberStatus
from mailer.models.officers import Officer, Role

__all__ = [
    "AuditEvent",
    "Branch",
    "EmailHealth",
    "ImportMapping",
    "ImportRun",
    "ImportStatus",
    "Member",
    "MemberStatus",
    "Officer",
    "Role",
]
