"""The data model. Import from here: `from mailer.models import Member, Officer`."""

from mailer.models.audit import AuditEvent
from mailer.models.campaigns import (Attachment, BodyFormat, Campaign, CampaignStatus, Delivery, DeliveryStatus,
                                     Stream)
from mailer.models.consent import ConsentEvent, MemberTag, Segment, Suppression, SuppressionReason, Tag
from mailer.models.imports import ImportMapping, ImportRun, ImportStatus
from mailer.models.members import Branch, EmailHealth, Member, MemberStatus
from mailer.models.officers import Officer, Role

__all__ = [
    "Attachment",
    "AuditEvent",
    "BodyFormat",
    "Campaign",
    "CampaignStatus",
    "ConsentEvent",
    "Delivery",
    "DeliveryStatus",
    "MemberTag",
    "Segment",
    "Stream",
    "Suppression",
    "SuppressionReason",
    "Tag",
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
