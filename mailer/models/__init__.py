"""The data model. Import from here: `from mailer.models import Member, Officer`."""

from mailer.models.audit import AuditEvent
from mailer.models.campaigns import (Attachment, BodyFormat, Campaign, CampaignStatus, Delivery, DeliveryStatus,
                                     Stream)
from mailer.models.consent import ConsentEvent, MemberTag, Segment, Suppression, SuppressionReason, Tag
from mailer.models.inbound import (BounceEvent, ImapState, InboundAttachment, InboundKind, InboundMessage,
                                   InboundStatus, MessageReference, OutgoingReply, Thread, ThreadNote, ThreadRead, ThreadStatus)
from mailer.models.imports import ImportMapping, ImportRun, ImportStatus, MemberCount
from mailer.models.meetings import (AgendaItem, AgendaPaper, Attendance, CorrespondenceLink, Meeting, MeetingCampaign,
                                    MeetingKind, MeetingStatus, MinuteItem, Minutes, MinutesStatus, Response)
from mailer.models.members import Branch, EmailHealth, Member, MemberStatus
from mailer.models.officers import ApiToken, Officer, Role
from mailer.models.routines import RoutineRun

__all__ = [
    "ApiToken",
    "AgendaItem",
    "AgendaPaper",
    "Attendance",
    "CorrespondenceLink",
    "Meeting",
    "MeetingCampaign",
    "MeetingKind",
    "MeetingStatus",
    "MinuteItem",
    "Minutes",
    "MinutesStatus",
    "Response",
    "Attachment",
    "AuditEvent",
    "BodyFormat",
    "BounceEvent",
    "Campaign",
    "CampaignStatus",
    "ConsentEvent",
    "Delivery",
    "DeliveryStatus",
    "ImapState",
    "InboundAttachment",
    "InboundKind",
    "InboundMessage",
    "InboundStatus",
    "MemberTag",
    "Segment",
    "Stream",
    "Suppression",
    "SuppressionReason",
    "Tag",
    "Thread",
    "ThreadNote",
    "ThreadRead",
    "ThreadStatus",
    "Branch",
    "EmailHealth",
    "ImportMapping",
    "ImportRun",
    "ImportStatus",
    "Member",
    "MemberCount",
    "MemberStatus",
    "MessageReference",
    "Officer",
    "OutgoingReply",
    "Role",
    "RoutineRun",
]
