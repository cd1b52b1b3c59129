"""A meeting's life, named in one place for the callers outside the package (pages, the API, jobs,
the inbound side): plan it and build its agenda (`planning`), notice it within the rules, tell
members of changes or a cancellation and remind them (`noticing`), and keep their answers and the
register (`attendance`). Each rule lives in its module; this one only names them, so a caller
says `service.send_notice` whichever module holds it. Modules inside `mailer.meetings` import
the module that holds the rule."""

from __future__ import annotations

from mailer.meetings.planning import (
    add_paper, CHANGES_MEMBERS_HEAR_OF, create, default_entitled, EDITABLE, entitled_query, listing,
    meeting_of, needs_update_notice, notices, postal_count, postal_list, PostalRow, proposals_read_from,
    set_agenda, update)
from mailer.meetings.noticing import (
    cancel, evidence_csv, mark_held, MeetingView, postal_csv, postal_reason, reminders_to_send,
    schedule_reminder, send_notice, send_or_leave, send_reminder, send_update)
from mailer.meetings.attendance import (
    APOLOGY_WORDS, confirm, entitled_member, from_inbound, mark_present, proposed_apologies,
    read_response_token, reads_as_apologies, record_response, Register, register, register_page,
    register_summary, RegisterPerson, RegisterRow, RegisterSummary, response_links, response_of,
    response_token)

__all__ = [
    "EDITABLE", "CHANGES_MEMBERS_HEAR_OF", "listing", "notices", "proposals_read_from", "meeting_of",
    "default_entitled", "create", "update", "needs_update_notice", "set_agenda", "add_paper",
    "entitled_query", "PostalRow", "postal_list", "postal_count", "MeetingView", "send_or_leave",
    "send_notice", "send_update", "cancel", "mark_held", "schedule_reminder", "reminders_to_send",
    "send_reminder", "postal_csv", "postal_reason", "evidence_csv", "response_token", "response_links",
    "read_response_token", "response_of", "record_response", "confirm", "RegisterRow", "Register", "register",
    "RegisterPerson", "register_page", "proposed_apologies", "entitled_member", "RegisterSummary",
    "register_summary", "mark_present", "APOLOGY_WORDS", "reads_as_apologies", "from_inbound",
]
