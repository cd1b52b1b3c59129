"""Sort a parsed inbound message: reply, auto-reply, bounce, complaint, loop or other.

Order matters (as in Discourse's reply-by-email and Zammad's filters): bounces and complaints
are recognised first (non-delivery reports are often auto-submitted too), then our own mail
coming back (a loop), then auto-replies, then mail without a human sender; what is left is a
reply from a person. Mailer never answers automatically: this only sorts. Pure: no database.

Bounces are read from RFC 3464 delivery-status reports and, failing that, from the text of the
non-standard reports common servers send (Exchange, Gmail, Yahoo, qmail, Exim, Postfix,
Sendmail, Domino, Courier, Amazon SES notifications, ...), with the status code taken from
the report where it has one and inferred from the SMTP reply or the wording where it has not.

Over 400 lines on purpose: the families' readers share one set of recipient, status and
reply-code helpers and one order of trust; split by family, each would repeat or import them all.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace

from mailer.inbound.parse import ParsedMessage, normalise_msgid, parse

KINDS = ("reply", "auto_reply", "bounce", "complaint", "loop", "other")

# Classification reads at most this much of the text and of each report part: a delivery report
# or an auto-reply says what it is near the top, and the work per message must stay bounded.
CLASSIFY_MAX_CHARS = 64 * 1024
FAILED_ACTIONS = ("failed", "delayed")


@dataclass
class BouncedRecipient:
    """One recipient a delivery report is about."""

    address: str
    status: str  # enhanced status code, e.g. "5.1.1"; "" when none could be found
    action: str  # failed, delayed, delivered, relayed or expanded (RFC 3464)
    diagnostic: str
    hard: bool  # a permanent failure of the address itself: stop mailing it
    reply_code: str = ""  # SMTP reply code, e.g. "550"
    status_inferred: bool = False  # the status is not in the report: read from the reply code or the words
    final_recipient: str = ""  # the Final-Recipient when it differs from `address` (the Original-Recipient)
    remote_mta: str = ""

    @property
    def failed(self) -> bool:
        """A failure (permanent or delayed), not a success report."""
        return self.action in FAILED_ACTIONS


@dataclass
class BounceReport:
    recipients: list[BouncedRecipient] = field(default_factory=list)
    source: str = ""  # "delivery-status" (RFC 3464), "text" (a server's own wording) or "ses"
    reporting_mta: str = ""
    original_message_id: str | None = None  # of the message that bounced, when the report carries it
    original_to: list[str] = field(default_factory=list)


@dataclass
class ComplaintReport:
    """An RFC 5965 feedback report (or a provider's equivalent) about mail we sent."""

    feedback_type: str = ""  # abuse, fraud, virus, not-spam, other, ...
    recipients: list[str] = field(default_factory=list)  # who complained (the original recipients)
    original_message_id: str | None = None
    original_from: str | None = None
    user_agent: str = ""
    source_ip: str = ""
    source: str = ""


@dataclass
class Classification:
    kind: str
    reasons: list[str] = field(default_factory=list)
    bounce: BounceReport | None = None
    complaint: ComplaintReport | None = None
    limited: bool = False  # the text was longer than CLASSIFY_MAX_CHARS: only its start was read


# --- entry point ----------------------------------------------------------------------------

def classify(msg: ParsedMessage, own_addresses: set[str] = frozenset(),
             own_message_id_domains: set[str] = frozenset()) -> Classification:
    """Sort one parsed message; `reasons` say why, for the officer and for debugging."""
    msg, limited = _bounded(msg)
    result = _classify(msg, own_addresses, own_message_id_domains)
    if limited:
        result.limited = True
        result.reasons.append(f"only the first {CLASSIFY_MAX_CHARS // 1024} KB of the text were read")
    return result


def _bounded(msg: ParsedMessage) -> tuple[ParsedMessage, bool]:
    """The message with its text, subject and report parts cut to CLASSIFY_MAX_CHARS (a copy, if cut)."""
    cap = CLASSIFY_MAX_CHARS
    long_parts = any(p.text is not None and len(p.text) > cap for p in msg.parts)
    if len(msg.text or "") <= cap and len(msg.subject or "") <= 2000 and not long_parts:
        return msg, False
    parts = [replace(p, text=p.text[:cap]) if p.text is not None and len(p.text) > cap else p for p in msg.parts]
    limited = len(msg.text or "") > cap or long_parts
    return replace(msg, text=(msg.text or "")[:cap], subject=(msg.subject or "")[:2000], parts=parts), limited


def _classify(msg: ParsedMessage, own_addresses, own_message_id_domains) -> Classification:
    own = {_base_address(a) for a in own_addresses if a}
    own_domains = {d.lower().lstrip("@") for d in own_message_id_domains if d}

    complaint = _complaint(msg)
    if complaint is not None:
        report, reasons = complaint
        return Classification("complaint", reasons, complaint=report)

    signals = _bounce_signals(msg)
    bounce = _bounce(msg, signals)
    if bounce is not None:
        report, reasons = bounce
        return Classification("bounce", reasons, bounce=report)

    loop = _loop_reasons(msg, own, own_domains)
    if loop:
        return Classification("loop", loop)

    auto = _auto_reply_reasons(msg)
    if auto:
        return Classification("auto_reply", auto)

    other = _other_reasons(msg, signals)
    if other:
        return Classification("other", other)

    reasons = [f"from a person: {msg.from_address}"]
    if msg.in_reply_to or msg.references:
        reasons.append(f"answers {msg.in_reply_to or msg.references[-1]}")
    return Classification("reply", reasons)


def own_identity(config) -> tuple[set[str], set[str]]:
    """(our addresses, our Message-ID domains) from app settings: SENDER_ADDRESS, REPLY_ADDRESS and
    BOUNCE_ADDRESS; MESSAGE_ID_DOMAIN, else the sender address's domain."""
    addresses = {str(config.get(key) or "").strip().lower()
                 for key in ("SENDER_ADDRESS", "REPLY_ADDRESS", "BOUNCE_ADDRESS")}
    addresses.discard("")
    sender = str(config.get("SENDER_ADDRESS") or "")
    domain = str(config.get("MESSAGE_ID_DOMAIN") or "").strip().lower() or sender.rpartition("@")[2].strip().lower()
    return addresses, ({domain} if domain else set())


def _base_address(address: str) -> str:
    """secretary+r-abc@example.org -> secretary@example.org (lower-cased)."""
    local, _, domain = address.strip().lower().rpartition("@")
    if not local:
        return address.strip().lower()
    return f"{local.split('+')[0]}@{domain}"


# --- loops ----------------------------------------------------------------------------------

def _loop_reasons(msg: ParsedMessage, own: set[str], own_domains: set[str]) -> list[str]:
    reasons = []
    if msg.from_address and _base_address(msg.from_address) in own:
        reasons.append(f"sent from our own address {msg.from_address}")
    if msg.message_id and own_domains and not (msg.in_reply_to and not reasons):
        # Our Message-ID under someone else's From: our message relayed back by a list or a
        # forwarder that rewrote the sender. (Not when it answers something: a colleague whose
        # mail client makes Message-IDs on the same domain is replying, not looping. A dedicated
        # MESSAGE_ID_DOMAIN, e.g. mail.example.org, avoids that overlap altogether.)
        domain = msg.message_id.strip("<>").rpartition("@")[2].lower()
        if domain in own_domains:
            reasons.append(f"its Message-ID {msg.message_id} is one of ours")
    return reasons


# --- auto-replies ---------------------------------------------------------------------------

# Subjects of out-of-office and other automatic replies, anchored at the start (or in brackets),
# so that "Re: Apologies for absence" from a member stays a reply.
_AUTO_SUBJECT = re.compile(r"""
    ^\s*(?:\[[^\]]*\]\s*)?(?:
        out\s+of\s+(?:the\s+)?office(?!\s+hours) | ooo\b | automatic\s+reply | auto(?:matic)?[\s-]*(?:reply|response|respond(?:er)?)
      | autoreply | away\s+from\s+(?:the\s+)?office | i\s+am\s+(?:away|out)\b | on\s+(?:holiday|vacation|leave)\b
      | vacation\s+(?:reply|message|notice) | (?:holiday|vacation)\s+auto | away\s+until\b
      | absence\b(?!\s+(?:of|at|from\s+(?:the\s+)?meeting)) | absent\b
      | abwesenheit | automatische\s+antwort | nicht\s+im\s+b(?:ü|ue)ro | außer\s+haus | ausser\s+haus
      | r(?:é|e)ponse\s+automatique | absent(?:e)?\s+du\s+bureau | message\s+d'absence | en\s+cong(?:é|e)
      | respuesta\s+autom(?:á|a)tica | fuera\s+de\s+(?:la\s+)?oficina | ausente\b | ausencia\b
      | risposta\s+automatica | fuori\s+(?:sede|ufficio) | assente\b
      | afwezig | automatisch\s+antwoord | niet\s+aanwezig | buiten\s+kantoor
      | resposta\s+autom(?:á|a)tica | fora\s+do\s+escrit(?:ó|o)rio | aus(?:ê|e)ncia\b
      | poza\s+biurem | odpowied(?:ź|z)\s+automatyczna | autoodpowied(?:ź|z) | nieobecno(?:ść|sc)
      | autosvar | automatiskt\s+svar | automatisk\s+svar | fr(?:å|a)nvaro | fr(?:å|a)nvarande | frav(?:æ|ae)r
      | ikke\s+til\s+stede | ferie\b | semester\b
      | automaattinen\s+vastaus | poissa\s+toimistolta | lomalla | poissa\b
      | automatick(?:á|a)\s+odpov(?:ě|e)(?:ď|d) | mimo\s+kancel(?:á|a)(?:ř|r) | automatikus\s+v(?:á|a)lasz | h(?:á|a)zon\s+k(?:í|i)v(?:ü|u)l
      | r(?:ă|a)spuns\s+automat | otomatik\s+yan(?:ı|i)t | αυτόματη\s+απάντηση | автоматический\s+ответ | автоответ
    )
  | [\[(](?:auto[\s-]*reply|out\s+of\s+office|automatic\s+reply|autoresponse|auto[\s-]*response)[\])]
""", re.I | re.X)

_AUTO_BODY = re.compile(
    r"\b(?:i\s+am|i'm|i\s+will\s+be)\s+(?:currently\s+)?(?:out\s+of\s+(?:the\s+)?office|away|on\s+(?:holiday|leave|vacation)"
    r"|travel+ing)|this\s+is\s+an\s+auto(?:mated|matic)[\s-]*(?:reply|response|message)"
    r"|auto(?:matic|mated)?[\s-]*(?:reply|response)|limited\s+access\s+to\s+(?:e-?mail|my\s+e-?mail)",
    re.I)


def _auto_reply_reasons(msg: ParsedMessage) -> list[str]:
    reasons = []
    auto_submitted = (msg.auto_submitted or "").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        reasons.append(f"Auto-Submitted: {msg.auto_submitted} (RFC 3834)")
    for name, value in (("X-Autoreply", msg.x_autoreply), ("X-Autorespond", msg.x_autorespond)):
        if value is not None and value.strip().lower() not in ("no", "false", "0"):
            reasons.append(f"{name}: {value or '(empty)'}")
    precedence = (msg.precedence or "").strip().lower()
    if precedence == "auto_reply":
        reasons.append("Precedence: auto_reply")
    if msg.x_auto_response_suppress is not None and msg.x_ms_exchange_inbox_rules_loop is not None:
        reasons.append(f"X-Auto-Response-Suppress with X-MS-Exchange-Inbox-Rules-Loop "
                       f"({msg.x_ms_exchange_inbox_rules_loop}): an Exchange rule's reply")
    if msg.header("X-MS-Exchange-Generated-Message-Source"):
        reasons.append(f"X-MS-Exchange-Generated-Message-Source: {msg.header('X-MS-Exchange-Generated-Message-Source')}")
    subject_match = _AUTO_SUBJECT.search(msg.subject or "")
    if subject_match:
        reasons.append(f"an automatic-reply subject: {msg.subject!r}")
    if precedence in ("bulk", "junk", "list") and not reasons:
        body_match = _AUTO_BODY.search((msg.text or "")[:3000])
        if body_match:
            reasons.append(f"Precedence: {precedence} with automatic-reply wording ({body_match.group(0)!r})")
    return reasons


# --- other (no human sender) ----------------------------------------------------------------

_NO_HUMAN_LOCAL = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|donotreply|noreply|notifications?|notify|mailer[-_]?daemon|"
    r"mail[-_]?daemon|postmaster|post[-_]master|bounces?|daemon|auto[-_]?confirm|automailer|alerts?|root|"
    r"nobody|listserv|majordomo|mailman|sympa|owner-.*|.*-(?:owner|bounces?|request))(?:[+].*)?$", re.I)


def _other_reasons(msg: ParsedMessage, signals: "_Signals") -> list[str]:
    reasons = []
    if signals.daemon_sender:
        reasons.append(f"from a mail system ({msg.from_name or msg.from_address}), but no failed recipient could be read")
    elif msg.from_address and _NO_HUMAN_LOCAL.match(msg.from_address.partition("@")[0]):
        reasons.append(f"from an address no person reads: {msg.from_address}")
    if msg.list_id:
        reasons.append(f"a mailing-list message (List-Id: {msg.list_id})")
    elif msg.header("List-Unsubscribe") and not msg.in_reply_to:
        reasons.append("a newsletter (List-Unsubscribe, and not an answer to anything)")
    precedence = (msg.precedence or "").strip().lower()
    if precedence in ("bulk", "junk", "list"):
        reasons.append(f"Precedence: {precedence}")
    if msg.return_path == "":
        reasons.append("a null envelope sender (Return-Path: <>): system mail")
    if not msg.from_address:
        reasons.append("no sender address")
    return reasons


# --- complaints -----------------------------------------------------------------------------

_FEEDBACK_TYPE = re.compile(r"(?im)^feedback-type[ \t]*:[ \t]*[a-z][\w-]*[ \t]*$")
_FEEDBACK_OTHER = re.compile(r"(?im)^(?:user-agent|version)[ \t]*:")


def _is_feedback_fields(text: str) -> bool:
    """Does this text open with RFC 5965's required fields (Feedback-Type, User-Agent, Version)?"""
    head = text[:4096]
    return bool(_FEEDBACK_TYPE.search(head) and _FEEDBACK_OTHER.search(head))


def _complaint(msg: ParsedMessage) -> tuple[ComplaintReport, list[str]] | None:
    report_parts = [p for p in msg.parts if p.content_type == "message/feedback-report"]
    if not report_parts and not _REPLY_PREFIX.match(msg.subject or ""):
        # The report part mislabelled (text/plain): RFC 5965's required fields say what it is.
        report_parts = [p for p in msg.parts if p.content_type == "text/plain" and _is_feedback_fields(p.text or "")]
    if msg.report_type == "feedback-report" or report_parts:
        fields = _fields(report_parts[0].text or "") if report_parts else {}
        report = ComplaintReport(source="arf")
        report.feedback_type = (fields.get("feedback-type", [""])[0]).strip().lower()
        report.user_agent = fields.get("user-agent", [""])[0].strip()
        report.source_ip = fields.get("source-ip", [""])[0].strip()
        report.original_from = _address_in(fields.get("original-mail-from", [""])[0]) or None
        recipients = [a for v in fields.get("original-rcpt-to", []) + fields.get("removal-recipient", [])
                      if (a := _address_in(v))]
        original = _original_message(msg)
        if original is not None:
            report.original_message_id = original.message_id
            report.original_from = report.original_from or original.from_address
            if not recipients:
                recipients = list(original.to)
        report.recipients = _unique(recipients)
        reasons = ["an RFC 5965 feedback report (multipart/report; report-type=feedback-report)"]
        if report.feedback_type:
            reasons.append(f"Feedback-Type: {report.feedback_type}")
        if report.recipients:
            reasons.append("complained about by " + ", ".join(report.recipients))
        return report, reasons
    original = _original_message(msg)
    if original is not None and original.header("X-HmXmrOriginalRecipient"):
        recipient = _address_in(original.header("X-HmXmrOriginalRecipient") or "")
        report = ComplaintReport(feedback_type="abuse", recipients=[recipient] if recipient else [],
                                 original_message_id=original.message_id, original_from=original.from_address,
                                 source="microsoft-jmrp")
        return report, ["a Microsoft junk-mail report (X-HmXmrOriginalRecipient in the attached message)"]
    ses = _ses_notification(msg)
    if ses and ses.get("notificationType", "").lower() == "complaint":
        complaint = ses.get("complaint") or {}
        recipients = [r.get("emailAddress", "").lower() for r in complaint.get("complainedRecipients", []) if isinstance(r, dict)]
        report = ComplaintReport(feedback_type=str(complaint.get("complaintFeedbackType", "")).lower(),
                                 recipients=[r for r in recipients if r], source="ses")
        return report, ["an Amazon SES complaint notification"]
    return None


# --- bounces: signals -----------------------------------------------------------------------

_DAEMON_LOCAL = re.compile(r"^(?:mailer[-_.]?daemon|mail[-_.]?daemon|postmaster|post[-_.]master|mail\.delivery\.system|"
                           r"mdaemon|mailerdaemon|mail-?delivery(?:-?system)?|bounces?|ndr)$", re.I)
_DAEMON_NAME = re.compile(r"mail(?:er)?[-\s]?daemon|mail\s+deliver(?:y)?\s+(?:sub)?system|postmaster|"
                          r"delivery\s+(?:status|subsystem|system|notification)|mail\s+administrator|"
                          r"system\s+administrator|ndr\s+administrator|internet\s+mail\s+delivery|content[-\s]filter", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery\s+(?:status|failure|failed|has\s+failed|notification|report|problem|delayed)|"
    r"failure\s+notice|returned\s+mail|returning\s+message|mail\s+delivery|non[-\s]?delivery|not\s+(?:be\s+)?delivered|"
    r"could\s+not\s+(?:be\s+)?(?:delivered|send)|delivery\s+(?:to|error)|mail\s+(?:system\s+)?error|mail\s+failed|"
    r"mail\s+failure|returned\s+to\s+sender|error\s+sending|message\s+delivery|delayed\s+mail|warning:\s*could\s+not|"
    r"delivery\s+notification|unzustellbar|nicht\s+zustellbar|non\s+remis|non\s+distribu|(?:é|e)chec\s+de\s+(?:la\s+)?(?:remise|distribution)|"
    r"no\s+se\s+puede\s+entregar|no\s+entregado|non\s+recapitabile|mancata\s+consegna|onbestelbaar|niet\s+bezorgd|"
    r"n(?:ã|a)o\s+(?:foi\s+)?entregue|niedostarcz|kunde\s+inte\s+levereras|ej\s+levererat|kunne\s+ikke\s+leveres|"
    r"ikke\s+levert|toimitus\s+ep(?:ä|a)onnistui|bounce|メールエラー|配信エラー|送信エラー|配信不能|不達|返送|退信|退回|未送达|无法投递|\bndr\b|\bdsn\b|недоставленное|не\s+(?:может\s+быть\s+)?доставлено",
    re.I)
_BOUNCE_BODY = re.compile(
    r"could\s*n[o']t\s+be\s+delivered|(?:was|were|has\s+not\s+been|have\s+not\s+been)\s+not\s+delivered|"
    r"(?:was|were)\s+not\s+delivered|wasn't\s+able\s+to\s+deliver|w(?:as|ere)\s+unable\s+to\s+deliver|unable\s+to\s+deliver|"
    r"delivery\s+to\s+the\s+following\s+recipients?\s+(?:failed|has\s+been\s+delayed)|did\s+not\s+reach|"
    r"failed\s+permanently|permanent\s+(?:error|failure|fatal)|following\s+address(?:\(es\)|es)?\s+(?:failed|had)|"
    r"had\s+(?:permanent\s+|fatal\s+)?(?:delivery\s+)?(?:errors|problems)|delivery\s+(?:has\s+)?failed|delivery\s+failure|"
    r"undeliverable|undelivered|returned\s+to\s+sender|rejected\s+by|(?:was|were)\s+rejected|delivery\s+problem|"
    r"error\s+(?:occurred\s+)?(?:while|delivering|sending)|there\s+was\s+an\s+error|unknown\s+user|user\s+unknown|"
    r"no\s+such\s+user|mailbox\s+(?:is\s+)?full|transcript\s+of\s+session|this\s+is\s+the\s+mail\s+system|"
    r"this\s+is\s+the\s+postfix\s+program|qmail-send\s+program|mail\s+delivery\s+(?:software|system|failed)|"
    r"failed\s+recipient|non[-\s]?delivery|final-recipient|diagnostic-code|not\s+be\s+delivered|delivery\s+attempts|"
    r"will\s+be\s+retried|could\s+not\s+send|could\s+not\s+deliver|message\s+could\s+not|not\s+listed\s+in|"
    r"failed\s+to\s+deliver|delivery\s+status|delivery\s+notification|mail\s+system\s+error|the\s+original\s+message\s+was\s+received|"
    r"failure\s+reasons|returned\s+message|rejected\s+your\s+message|refused\s+to\s+accept|"
    r"不能|エラー|送信できませんでした|доставлено|zugestellt|non\s+(?:è|e)\s+stato\s+recapitato|n'a\s+pas\s+pu\s+(?:être|etre)\s+(?:remis|distribu)",
    re.I)


@dataclass
class _Signals:
    daemon_sender: bool = False
    null_sender: bool = False
    subject: bool = False
    body: bool = False
    failed_header: bool = False
    system_sender: bool = False  # a no-reply or similar address: not a person
    server_format: str = ""  # the notice opens the way a known server's report does (_SERVER_OPENINGS)
    reasons: list[str] = field(default_factory=list)


def _bounce_signals(msg: ParsedMessage) -> _Signals:
    s = _Signals()
    local = (msg.from_address or "").partition("@")[0]
    if _DAEMON_LOCAL.match(local) or (msg.from_name and _DAEMON_NAME.search(msg.from_name)) or (
            not msg.from_address and msg.from_name and _DAEMON_LOCAL.match(msg.from_name.strip())):
        s.daemon_sender = True
        s.reasons.append(f"from a mail system ({msg.from_name or msg.from_address})")
    if msg.from_address and _NO_HUMAN_LOCAL.match(local):
        s.system_sender = True
    elif not msg.from_address or not local or "@" not in msg.from_address or msg.from_address.endswith("@"):
        # No usable address ("Courier mail server at host <@>", a bare name): not a person's mail.
        s.system_sender = True
    if msg.return_path == "":
        s.null_sender = True
        s.reasons.append("null envelope sender (Return-Path: <>)")
    if _BOUNCE_SUBJECT.search(msg.subject or ""):
        s.subject = True
        s.reasons.append(f"a delivery-failure subject: {msg.subject!r}")
    s.server_format = _server_format(msg.text or "")
    if s.server_format:
        s.body = True
        s.reasons.append(f"opens as {s.server_format}'s delivery reports do")
    if msg.x_failed_recipients:
        s.failed_header = True
        s.reasons.append("X-Failed-Recipients: " + ", ".join(msg.x_failed_recipients))
    return s


# The fixed sentences with which servers open their reports, as their documentation and source
# give them. Found among the first SERVER_OPENING_LINES lines of the text (before any member's
# words could push them down), they say a mail server wrote it, whatever address it came from.
_SERVER_OPENINGS = (
    ("qmail", "hi. this is the qmail-send program"),  # QSBMF
    ("Postfix", "this is the mail system at host"),
    ("Postfix", "this is the postfix program at host"),
    ("Exim", "this message was created automatically by mail delivery software"),
    ("Sendmail", "----- the following addresses had permanent fatal errors -----"),
    ("Sendmail", "----- transcript of session follows -----"),
    ("Exchange", "delivery has failed to these recipients or groups"),
    ("Exchange", "your message did not reach some or all of the intended recipients"),
    ("Courier", "this is a delivery status notification from"),
    ("Gmail", "delivery to the following recipient failed permanently"),
    ("Gmail", "** address not found **"),
    ("Gmail", "** message not delivered **"),
    ("Yahoo", "sorry, we were unable to deliver your message to the following address"),
)
SERVER_OPENING_LINES = 15


def _server_format(text: str) -> str:
    """The server whose report opening the text begins with (line by line: linear), else ""."""
    seen = 0
    for line in text[:8192].splitlines():
        line = " ".join(line.split()).lower()
        if not line:
            continue
        seen += 1
        if seen > SERVER_OPENING_LINES:
            break
        for server, opening in _SERVER_OPENINGS:
            if line.startswith(opening):
                return server
    return ""


# --- bounces: reading them ------------------------------------------------------------------

def _bounce(msg: ParsedMessage, signals: _Signals) -> tuple[BounceReport, list[str]] | None:
    report: BounceReport | None = None
    reasons: list[str] = []
    dsn_parts = [p for p in msg.parts if p.content_type in ("message/delivery-status", "message/global-delivery-status")]
    notice, copy_text = _split_notice(msg.text or "")
    # A person (not a mail system) answering or forwarding something: a bounce pasted into a
    # member's message is still the member's message.
    sent_by_person = not (signals.daemon_sender or signals.null_sender or signals.failed_header or signals.system_sender)
    forwarded_by_person = sent_by_person and bool(_REPLY_PREFIX.match(msg.subject or "") or msg.in_reply_to)
    person = sent_by_person and not signals.server_format  # a server's report opening: not a person's words

    for part in dsn_parts:
        report = _from_delivery_status(part.text or "")
        if report.recipients:
            reasons.append("an RFC 3464 delivery status notification"
                           + (" (multipart/report; report-type=delivery-status)" if msg.report_type == "delivery-status" else ""))
            break
    if (report is None or not report.recipients) and not forwarded_by_person and \
            re.search(r"(?im)^(?:final|original)-recipient\s*:", msg.text or ""):
        report = _from_delivery_status(msg.text or "")
        if report.recipients:
            reasons.append("delivery-status fields (RFC 3464) in the text of the report")
    if report is None or not report.recipients:
        ses = _ses_notification(msg)
        if ses:
            report = _from_ses(ses)
            if report.recipients:
                reasons.append(f"an Amazon SES {ses.get('notificationType', '').lower()} notification")
    if (report is None or not report.recipients) and not forwarded_by_person:
        events = _provider_events(msg)
        if events is not None:
            report = events
            reasons.append("a delivery provider's JSON bounce event (SendGrid, Mailgun or Postmark)")
    if report is None or not report.recipients:
        # The failure line family (fml, list managers, small servers): from a system address, a line
        # that begins with an address and a colon and then says why it failed.
        failure_line = signals.system_sender and _RECIPIENT_FAILURE_LINE.search(notice) is not None
        if not (signals.failed_header or signals.daemon_sender or signals.null_sender or signals.subject
                or signals.server_format
                or msg.report_type == "delivery-status" or dsn_parts or failure_line):
            return None
        # The failure wording is looked for only now, past the cheaper signals: most mail (a
        # member's reply) never gets here, and this search was a third of the reading time.
        signals.body = signals.body or failure_line or bool(_BOUNCE_BODY.search((msg.text or "")[:20000]))
        if not (signals.body or signals.failed_header or signals.subject):
            return None
        report = _from_text(msg, notice, copy_text)
        if not report.recipients:
            return None
        if forwarded_by_person:
            return None  # a member forwarding or answering a report: their message, whatever it holds
        if person:
            # Only a subject and words, from what may be a person: a member forwarding a bounce
            # ("Fwd: Undeliverable: ...") or writing about "undelivered leaflets" is not a bounce.
            if forwarded_by_person or not any(r.status and not r.status_inferred for r in report.recipients):
                return None
        reasons.append("a non-delivery report in a mail server's own format")

    _complete(report, msg, notice)
    original = _original_message(msg, copy_text)
    if original is not None:
        report.original_message_id = report.original_message_id or original.message_id
        report.original_to = list(original.to)
    reasons.extend(signals.reasons)
    for r in report.recipients:
        code = r.status + (" (inferred)" if r.status_inferred else "") if r.status else "no status"
        reasons.append(f"{r.address}: {r.action}, {code}, {'hard' if r.hard else 'soft'}")
    return report, reasons


_RECIPIENT_FAILURE_LINE = re.compile(
    r"^[ \t]*<?[^\s<>@:]+@[^\s<>:]+>?[ \t]*:[^\n]{0,200}?\b(?:user\s+unknown|unknown\s+(?:user|recipient)|"
    r"not\s+found|no\s+such\s+(?:user|mailbox|recipient|address)|does\s+not\s+exist|doesn't\s+exist|rejected|"
    r"mailbox\s+(?:is\s+)?full|quota|refused|denied|invalid\s+(?:recipient|address|mailbox)|undeliverable|"
    r"failed)\b", re.I | re.M)
_REPLY_PREFIX = re.compile(r"^\s*(?:re|fw|fwd|aw|wg|tr|sv|vs|rv|r|i|enc|odp|pd|antw|doorst|vl|ynt)\s*(?:\[\d+\])?\s*:", re.I)
_STATUS = re.compile(r"(?<![\w.#-])#?([245])\.(\d{1,3})\.(\d{1,3})(?![\w-]|\.\d)")
_REPLY = re.compile(r"(?:^|(?<=[\s:(\[<>'\"=]))([45][0-5]\d)(?=[\s\-,;:\])]|$)(?![-]\d{3}-)")
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")


def _status_in(text: str) -> str:
    """The first failure status code (4.x.x or 5.x.x) in `text`, else a 2.x.x one, else ""."""
    found = ["%s.%s.%s" % m.groups() for m in _STATUS.finditer(text or "")]
    for code in found:
        if code[0] in "45":
            return code
    return found[0] if found else ""


def _reply_in(text: str) -> str:
    m = _REPLY.search(text or "")
    return m.group(1) if m else ""


# An internationalised address (RFC 6531/6533: "utf-8; 山田@example.jp"): any characters but
# separators. Tried only on a short value and only when the ASCII form finds nothing.
_UTF8_ADDRESS = re.compile(r"[^\s<>@;,:\"()\[\]]+@[^\s<>@;,:\"()\[\]]+")


def _address_in(value: str) -> str:
    if not value:
        return ""
    value = value.split(";", 1)[1] if ";" in value and "@" in value.split(";", 1)[1] else value
    m = _ADDRESS.search(value)
    if m is None and not value.isascii() and len(value) <= 1000:
        m = _UTF8_ADDRESS.search(value)
        if m is not None and "." not in m.group(0).rpartition("@")[2]:
            m = None
    return m.group(0).lower().strip(".") if m else ""


def _fields(text: str) -> dict[str, list[str]]:
    """Header-style fields of a report (continuation lines joined): lower-cased name -> values."""
    out: dict[str, list[str]] = {}
    last = None
    for line in (text or "").splitlines():
        if line[:1] in (" ", "\t") and last:
            out[last][-1] += " " + line.strip()
            continue
        m = re.match(r"([A-Za-z][\w-]*)\s*:\s*(.*)$", line)
        if m:
            last = m.group(1).lower()
            out.setdefault(last, []).append(m.group(2).strip())
        else:
            last = None
    return out


_PER_RECIPIENT = ("original-recipient", "final-recipient", "action", "status", "remote-mta", "diagnostic-code",
                  "last-attempt-date", "will-retry-until", "final-log-id", "x-actual-recipient")


def _from_delivery_status(text: str) -> BounceReport:
    """Recipients of an RFC 3464 delivery-status body (tolerant of missing blank lines and odd order)."""
    report = BounceReport(source="delivery-status")
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = None

    def close():
        nonlocal current
        if current:
            records.append(current)
        current = {}

    for line in (text or "").splitlines():
        if not line.strip():
            if any(k in current for k in ("final-recipient", "original-recipient", "x-actual-recipient")):
                close()
            last = None
            continue
        if line[:1] in (" ", "\t") and last:
            current[last] = current.get(last, "") + " " + line.strip()
            continue
        m = re.match(r"([A-Za-z][\w-]*)\s*:\s*(.*)$", line)
        if not m:
            last = None
            continue
        name, value = m.group(1).lower(), m.group(2).strip()
        if name == "reporting-mta":
            report.reporting_mta = value.split(";")[-1].strip()
            last = None
            continue
        if name not in _PER_RECIPIENT:
            last = None
            continue
        if name in current and name in ("final-recipient", "action", "status", "original-recipient") and (
                "final-recipient" in current or "original-recipient" in current):
            close()
        current[name] = value
        last = name
    close()

    for rec in records:
        final = _address_in(rec.get("final-recipient", "")) or _address_in(rec.get("x-actual-recipient", ""))
        original = _address_in(rec.get("original-recipient", ""))
        address = original or final
        if not address:
            continue
        diagnostic = rec.get("diagnostic-code", "")
        diagnostic = re.sub(r"^\s*(?:smtp|x-[\w-]+|x400|unix)\s*;\s*", "", diagnostic, flags=re.I).strip()
        status_field = rec.get("status", "")
        status = _status_in(status_field)
        reply = _reply_in(diagnostic) or _reply_in(status_field)
        if not reply:
            m = re.match(r"\s*(2\d\d)\b", diagnostic)
            reply = m.group(1) if m else ""
        if status in ("5.0.0", "4.0.0", "") or status.endswith(".0.0"):
            specific = _status_in(diagnostic)
            if specific and (not status or specific[0] == status[0]) and specific[2:] != "0.0":
                status = specific
        action = rec.get("action", "").split()[0].lower() if rec.get("action", "").strip() else ""
        action = {"failure": "failed", "fail": "failed", "delay": "delayed", "deliver": "delivered"}.get(action, action)
        if action == "failed" and status.startswith("4"):
            permanent = _status_in(diagnostic)
            if permanent.startswith("5") and reply.startswith("5"):
                status = permanent  # the report's class contradicts its own action and diagnostic
        report.recipients.append(BouncedRecipient(
            address=address, status=status, action=action, diagnostic=_clean(diagnostic), hard=False,
            reply_code=reply, final_recipient=final if final and final != address else "",
            remote_mta=rec.get("remote-mta", "").split(";")[-1].strip()))
    _dedupe(report)
    return report


def _ses_notification(msg: ParsedMessage) -> dict | None:
    """The Amazon SES notification (possibly inside an SNS envelope) in a message's text, if any."""
    text = (msg.text or "").strip()
    if '"notificationType"' not in text and '\\"notificationType\\"' not in text:
        return None
    start = text.find("{")
    end = text.rfind("}")
    if start < 0 or end < start:
        return None
    blob = text[start:end + 1]
    for candidate in (blob, re.sub(r"\r?\n\s*", "", blob)):
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("Message"), str):
            try:
                data = json.loads(data["Message"])
            except ValueError:
                continue
        if isinstance(data, dict) and "notificationType" in data:
            return data
    # Broken JSON: take what can be read.
    flat = blob.replace('\\"', '"')
    kind = re.search(r'"notificationType"\s*:\s*"(\w+)"', flat)
    if not kind:
        return None
    data: dict = {"notificationType": kind.group(1)}
    recipients = []
    for m in re.finditer(r'\{[^{}]*"emailAddress"\s*:\s*"([^"]+)"[^{}]*\}', flat):
        entry = {"emailAddress": m.group(1)}
        for key in ("action", "status", "diagnosticCode"):
            k = re.search(rf'"{key}"\s*:\s*"([^"]*)"', m.group(0))
            if k:
                entry[key] = k.group(1)
        recipients.append(entry)
    data["bounce"] = {"bouncedRecipients": recipients}
    data["complaint"] = {"complainedRecipients": recipients}
    return data


def _provider_events(msg: ParsedMessage) -> BounceReport | None:
    """Bounces in a delivery provider's JSON event, when one comes as mail (a forwarded webhook):

    - SendGrid: a list of events, {"event": "bounce" | "dropped" | "deferred", "email", "status",
      "reason"};
    - Mailgun: {"event-data": {"event": "failed" | "bounced", "severity": "permanent" |
      "temporary", "recipient", "delivery-status": {"code", "enhanced-code", "message",
      "description"}}} (or the event-data object alone);
    - Postmark: {"RecordType": "Bounce", "Type": "HardBounce" | "SoftBounce" | ..., "Email",
      "Details", "Description"}.
    Read with json.loads (linear) from the first "{" or "[" to the last "}" or "]" of the text."""
    text = (msg.text or "").strip()
    if not text or not any(key in text for key in ('"event"', '"RecordType"', '"event-data"')):
        return None
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    end = max(text.rfind("}"), text.rfind("]"))
    if start < 0 or end <= start:
        return None
    try:
        data = json.loads(text[start:end + 1])
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        return None
    events = data if isinstance(data, list) else [data]
    report = BounceReport(source="provider-json")
    for event in events[:200]:
        if not isinstance(event, dict):
            continue
        event = event.get("event-data") if isinstance(event.get("event-data"), dict) else event
        kind = str(event.get("event") or event.get("RecordType") or "").lower()
        if kind in ("bounce", "dropped", "deferred") and "email" in event:  # SendGrid
            address, status = event.get("email"), _status_in(str(event.get("status", "")))
            diagnostic, reply = str(event.get("reason") or event.get("response") or ""), ""
            action = "delayed" if kind == "deferred" else "failed"
        elif kind in ("failed", "bounced") and "recipient" in event:  # Mailgun
            delivery = event.get("delivery-status") if isinstance(event.get("delivery-status"), dict) else {}
            address = event.get("recipient")
            diagnostic = " ".join(str(delivery.get(k) or "") for k in ("message", "description")).strip()
            status = _status_in(str(delivery.get("enhanced-code") or "")) or _status_in(diagnostic)
            reply = str(delivery.get("code") or "") if re.fullmatch(r"[245]\d\d", str(delivery.get("code") or "")) else ""
            action = "delayed" if str(event.get("severity", "")).lower() == "temporary" else "failed"
        elif kind == "bounce" or (str(event.get("RecordType", "")).lower() == "bounce"):  # Postmark
            address = event.get("Email")
            diagnostic = " ".join(str(event.get(k) or "") for k in ("Details", "Description")).strip()
            status, reply = _status_in(diagnostic), ""
            action = "delayed" if str(event.get("Type", "")).lower() in ("softbounce", "transient") else "failed"
        else:
            continue
        address = _address_in(str(address or ""))
        if not address:
            continue
        diagnostic = re.sub(r"^\s*smtp\s*;\s*", "", diagnostic, flags=re.I)
        report.recipients.append(BouncedRecipient(
            address=address, status=status, action=action, diagnostic=_clean(diagnostic), hard=False,
            reply_code=reply or _reply_in(diagnostic)))
    _dedupe(report)
    return report if report.recipients else None


# Amazon SES bounce subtypes (its notification documentation) and the status each names.
_SES_SUBTYPE_STATUS = {
    "noemail": "5.1.1", "suppressed": "5.1.1", "onaccountsuppressionlist": "5.1.1",
    "mailboxfull": "5.2.2", "messagetoolarge": "5.3.4", "contentrejected": "5.6.0",
    "attachmentrejected": "5.6.0", "general": "5.0.0", "undetermined": "5.0.0",
}


def _from_ses(data: dict) -> BounceReport:
    report = BounceReport(source="ses")
    kind = str(data.get("notificationType", "")).lower()
    mail = data.get("mail") if isinstance(data.get("mail"), dict) else {}
    report.original_message_id = normalise_msgid(str(mail.get("messageId"))) if mail.get("messageId") else None
    if kind == "bounce":
        bounce = data.get("bounce") or {}
        permanent = str(bounce.get("bounceType", "")).lower() == "permanent"
        subtype = _SES_SUBTYPE_STATUS.get(str(bounce.get("bounceSubType", "")).lower(), "")
        report.reporting_mta = str(bounce.get("reportingMTA", "")).split(";")[-1].strip()
        for r in bounce.get("bouncedRecipients", []) or []:
            if not isinstance(r, dict) or not r.get("emailAddress"):
                continue
            diagnostic = re.sub(r"^\s*smtp\s*;\s*", "", str(r.get("diagnosticCode", "")), flags=re.I)
            status = _status_in(str(r.get("status", ""))) or _status_in(diagnostic)
            inferred = not status and bool(subtype)
            if inferred:  # SES's documented bounce subtype, in the class its bounce type says
                status = ("5" if permanent else "4") + subtype[1:]
            report.recipients.append(BouncedRecipient(
                address=str(r["emailAddress"]).lower(), status=status,
                action=str(r.get("action", "failed")).lower() or "failed", diagnostic=_clean(diagnostic),
                hard=permanent, reply_code=_reply_in(diagnostic), status_inferred=inferred))
    elif kind == "delivery":
        delivery = data.get("delivery") or {}
        response = str(delivery.get("smtpResponse", ""))
        for address in delivery.get("recipients", []) or []:
            report.recipients.append(BouncedRecipient(
                address=str(address).lower(), status=_status_in(response), action="delivered",
                diagnostic=_clean(response), hard=False, reply_code=_reply_in(response)))
    return report


# --- bounces: non-standard reports ----------------------------------------------------------

# "Original message follows" and the like, as the start of a line (after any decoration).
# Matched line by line on the line with its decoration stripped: a pattern that starts with a
# repeated class and runs per line can backtrack for minutes on a few kilobytes of dashes.
_COPY_MARKER = re.compile(r"""(?ix)(?:
      (?:this\s+is\s+a\s+|a\s+)?copy\s+of\s+(?:the|your)\s+(?:original\s+)?message
    | original\s+message\s*(?:follows|headers?|:|-|$)
    | below\s+this\s+line\s+is\s+a\s+copy | enclosed\s+is\s+a\s+copy
    | (?:the\s+)?headers?\s+of\s+the\s+original\s+message | unsent\s+message\s+follows
    | returned\s+message | message\s+headers\s+follow | below\s+is\s+a\s+copy\s+of\s+the\s+original
    | included\s+is\s+a\s+copy | original\s+message\s+header | message\s+text\s+follows
    | original\s+mail(?:\s+header)?s?\s*: | content\s+of\s+(?:the\s+)?original\s+message
    | original\s*-+ | the\s+original\s+message\s+headers?\s+(?:are|is|follow)
    | original\s+message\s+headers
)""")
_COPY_DECORATION = " \t\r-=_*|#>"


def _is_copy_marker(line: str) -> bool:
    """Does this line introduce the copy of the original message (after any dashes or quote marks)?"""
    return bool(_COPY_MARKER.match(line.lstrip(_COPY_DECORATION)))


_HEADER_LINE = re.compile(r"^(?:Received|Return-Path|Message-ID|From|To|Subject|Date|DKIM-Signature|X-Received|"
                          r"MIME-Version|Content-Type|Delivered-To|ARC-Seal|Authentication-Results|X-Mailer|"
                          r"User-Agent|Reply-To|Cc|X-Originating-IP|Content-Transfer-Encoding)\s*:", re.I)
_GENERIC_HEADER = re.compile(r"^[A-Za-z][\w-]*:|^[ \t]+\S")


def _split_notice(text: str) -> tuple[str, str]:
    """(the server's explanation, the copy of the original message that follows it)."""
    cut = len(text)
    lines = text.splitlines(keepends=True)
    pos = 0
    for line in lines:
        if _is_copy_marker(line):
            cut = pos
            break
        pos += len(line)
    pos = 0
    for i, line in enumerate(lines):
        if pos >= cut:
            break
        if _HEADER_LINE.match(line):
            block = lines[i:i + 6]
            known = sum(1 for b in block if _HEADER_LINE.match(b))
            generic = sum(1 for b in block if _GENERIC_HEADER.match(b))
            if known >= 2 and generic >= min(4, len(block)):
                cut = pos
                break
        pos += len(line)
    return text[:cut], text[cut:]


_URL = re.compile(r"(?:https?|ftp)://\S+|mailto:\S+", re.I)
_SENDER_CONTEXT = re.compile(
    r"(?:mail\s+from|envelope-from|envelope-sender|from|sender|reply-to|return-path|errors-to|contact|send\s+(?:mail|email)\s+to|"
    r"write\s+to|questions?\s+to|administrator|sent\s+by|originator|auth|sasl|login|message-id|references|in-reply-to|"
    r"\bid)\s*[:=]?\s*[<\"(\[]*\s*$", re.I)


def _from_text(msg: ParsedMessage, notice: str, copy_text: str) -> BounceReport:
    report = BounceReport(source="text")
    original = _original_message(msg, copy_text)
    exclude = {a for a in [msg.from_address, msg.return_path, msg.sender, *msg.to, *msg.reply_to] if a}
    if original is not None:
        exclude |= {a for a in [original.from_address, original.sender, original.return_path, *original.reply_to] if a}
    exclude -= set(msg.x_failed_recipients)

    if original is not None and original.message_id:
        exclude.add(original.message_id.strip("<>").lower())
    urls = [m.span() for m in _URL.finditer(notice)]
    positions: dict[str, int] = {}
    named_elsewise: set[str] = set()  # named as a sender or a contact somewhere: never a recipient
    mentions: list[tuple[int, str]] = []  # every place an address is named, in order
    for m in _ADDRESS.finditer(notice):
        address = m.group(0).lower().strip(".")
        if address in exclude or any(a <= m.start() < b for a, b in urls):
            continue
        line_start = max(notice.rfind("\n", 0, m.start()) + 1, m.start() - 200)
        before = notice[line_start:m.start()]
        if _SENDER_CONTEXT.search(before) or re.fullmatch(r"\s*(?:from|sender|reply-to|return-path)\s*:[^@]*", before, re.I):
            named_elsewise.add(address)
            continue
        positions.setdefault(address, m.start())
        mentions.append((m.start(), address))
    for address in named_elsewise:
        positions.pop(address, None)

    addresses = list(msg.x_failed_recipients) or sorted(positions, key=positions.get)
    if not addresses and original is not None and _BOUNCE_BODY.search(notice or msg.text or ""):
        addresses = [a for a in original.to + original.cc if a not in exclude][:20]
    addresses = addresses[:50]
    if not addresses:
        return report

    ordered = sorted(((positions.get(a, -1), a) for a in addresses))
    in_notice = {a for _, a in ordered if a in notice}
    for index, (start, address) in enumerate(ordered):
        if start < 0:
            segment = notice
        else:
            # Up to where another recipient is named next (a summary, then a transcript, may name
            # them all again): the text nearest this recipient is about it.
            following = next((at for at, other in mentions if at > start and other != address and other in positions),
                             len(notice))
            segment = notice[start:following]
        status = _status_in(segment)
        reply = _reply_in(segment)
        if not status and not reply:
            # The codes may sit apart from the address (a summary first, the technical details below).
            if not any(o != address for o in in_notice):
                status = _status_in(notice)
                reply = _reply_in(notice)
        explained = _diagnostic_text(notice if len(ordered) == 1 else segment, address)
        report.recipients.append(BouncedRecipient(
            address=address, status=status, action="", diagnostic=_clean(explained or notice),
            hard=False, reply_code=reply))
    _dedupe(report)
    return report


_EXPLAINING = re.compile(r"error|fail|reject|refus|denied|unknown|invalid|not\s+(?:found|exist|deliver|listed|accept)|"
                        r"no\s+such|full|quota|exceed|blocked|spam|policy|timed?\s*out|unreachable|said|response|"
                        r"reason|because|unable|could\s*n[o']t|cannot|problem|expired|retry|deferred|delay", re.I)


def _diagnostic_text(segment: str, address: str) -> str:
    """The lines of a segment that explain the failure: those with a code or telling words, else its first lines."""
    lines = [ln.strip() for ln in segment.splitlines() if ln.strip()]
    if lines and lines[0].strip("<>:\"' ").lower() == address:
        lines = lines[1:] or lines
    picked: list[str] = []
    for test in (_REPLY, _STATUS, _EXPLAINING):  # the server's own words first, then codes, then telling words
        taken = set(picked)
        picked += [ln for ln in lines if ln not in taken and test.search(ln)]
        if len(picked) >= 8:
            break
    return " ".join((picked or lines)[:8])


# --- bounces: completing statuses, actions and hard/soft -----------------------------------

# A basic SMTP reply code, without an enhanced status beside it, mapped to the RFC 3463 status its
# RFC 5321 (and RFC 7504) meaning names. Codes whose meaning is generic map to X.0.0: for those,
# and only for those, the wording may say more (_INFER, the last resort).
REPLY_CODE_STATUS = {
    "421": "4.0.0",  # service not available (also used for rate limits and greylisting): generic
    "450": "4.0.0",  # mailbox unavailable (busy, or blocked by policy): generic
    "451": "4.3.0",  # local error in processing: X.3.0 mail system status
    "452": "4.0.0",  # insufficient storage, or too many recipients (RFC 5321 4.5.3.1.10): generic
    "500": "5.5.2",  # syntax error, command unrecognised
    "501": "5.5.4",  # syntax error in parameters or arguments
    "502": "5.5.1",  # command not implemented
    "503": "5.5.1",  # bad sequence of commands
    "504": "5.5.4",  # command parameter not implemented
    "521": "5.3.2",  # host does not accept mail (RFC 7504): system not accepting messages
    "530": "5.7.0",  # authentication required
    "534": "5.7.9",  # authentication mechanism too weak
    "535": "5.7.8",  # authentication credentials invalid
    "550": "5.0.0",  # mailbox unavailable (unknown, or refused by policy): generic
    "551": "5.1.6",  # user not local: the mailbox has moved
    "552": "5.2.2",  # exceeded storage allocation
    "553": "5.0.0",  # mailbox name not allowed (also used for relay refusals): generic
    "554": "5.0.0",  # transaction failed: generic
    "556": "5.1.10",  # domain does not accept mail (RFC 7504): null MX
}

_INFER = [  # (wording, status): from the most specific to the most general
    (r"mailbox\s+(?:is\s+)?full|over\s*quota|quota\s+(?:exceeded|full)|exceeded\s+(?:the\s+)?(?:storage|quota|local\s+limit)|"
     r"insufficient\s+(?:disk\s+)?(?:space|storage)|mail\s*folder\s+is\s+full|mailbox\s+size\s+limit|"
     r"recipient's\s+mailbox\s+exceeded|storage\s+(?:allocation|quota)|has\s+exceeded|too\s+many\s+messages\s+in|"
     r"their\s+mailbox\s+is\s+full|inbox\s+is\s+full", "5.2.2"),
    (r"host\s+(?:unknown|not\s+found)|unknown\s+host|domain\s+(?:does\s+not|doesn't)\s+exist|domain\s+not\s+found|"
     r"name\s+service\s+error|no\s+mx|nxdomain|unrouteable\s+(?:mail\s+)?domain|no\s+such\s+domain|host\s+name\s+lookup\s+failure|"
     r"unknown\s+domain|domain\s+(?:name\s+)?not\s+(?:exist|valid)|dns\s+lookup\s+fail", "5.1.2"),
    (r"retry\s+time(?:out)?\s+exceeded|cannot\s+send\s+message\s+for|could\s+not\s+(?:be\s+)?(?:sent|delivered)\s+for|"
     r"expired|failed\s+\d+\s+attempts|after\s+(?:multiple\s+)?retries|retries\s+exceeded|unable\s+to\s+deliver\s+(?:this\s+message\s+)?(?:after|in)\s+\d", "5.4.7"),
    (r"message\s+(?:is\s+)?too\s+(?:large|big)|size\s+(?:limit\s+)?exceed|exceeds?\s+(?:the\s+)?(?:maximum|size)|message\s+size|"
     r"line\s+(?:length\s+)?(?:limit\s+exceeded|too\s+long)", "5.3.4"),
    (r"user\s+unknown|unknown\s+user|no\s+such\s+(?:user|recipient|mailbox|account)|(?:recipient|user|mailbox|address)\s+"
     r"(?:does\s+not|doesn't)\s+exist|does\s+not\s+exist|not\s+found|invalid\s+(?:recipient|address|mailbox|user)|"
     r"unknown\s+(?:recipient|address|mailbox|local[\s-]?part)|recipient\s+name\s+is\s+not\s+recognized|"
     r"not\s+listed\s+in|(?:doesn't|does\s+not)\s+have\s+an?\s+[\w.-]+\s+account|no\s+mailbox|mailbox\s+unavailable|"
     r"unrouteable\s+address|no\s+valid\s+recipients|address\s+rejected|user\s+not\s+found|account\s+(?:does\s+not|doesn't)\s+exist|"
     r"recipient\s+(?:address\s+)?rejected|addressee\s+unknown|not\s+a\s+valid|bad\s+destination\s+mailbox|"
     r"the\s+email\s+account\s+that\s+you\s+tried\s+to\s+reach", "5.1.1"),
    (r"malformed|syntax\s+error\s+in\s+(?:the\s+)?(?:address|recipient)|bad\s+address\s+syntax|invalid\s+address\s+syntax|"
     r"incorrectly\s+constructed", "5.1.3"),
    (r"(?:account|mailbox|user)\s+(?:is\s+|has\s+been\s+)?(?:disabled|suspended|inactive|deactivated|locked|closed|expired)", "5.2.1"),
    (r"hop\s+count\s+exceeded|mail\s+loop|loops?\s+back|too\s+many\s+hops", "5.4.6"),
    (r"relay(?:ing)?\s+(?:access\s+)?(?:denied|not\s+permitted|prohibited)|not\s+permitted\s+to\s+relay|unable\s+to\s+relay", "5.7.1"),
    (r"spam|blacklist|blocklist|block(?:ed)?|listed\s+(?:at|in|on)|reputation|policy|dmarc|spf|dkim|not\s+accepted|"
     r"access\s+denied|refused|content\s+rejected|virus|filter|prohibited|not\s+authori[sz]ed", "5.7.1"),
    (r"timed?\s*out|no\s+route\s+to\s+host|connection\s+(?:refused|reset|lost)|host\s+(?:not\s+)?(?:un)?reachable|"
     r"could\s+not\s+connect|network\s+(?:is\s+)?unreachable|connect\s+to\s+[^\n]{0,200}?failed|temporar(?:y|ily)|try\s+again|"
     r"deferred|service\s+unavailable|requests\s+to\s+connect|socket\s+error", "4.4.1"),
]
_INFER = [(re.compile(p, re.I), s) for p, s in _INFER]

_SOFT_WORDS = re.compile(
    r"mailbox\s+(?:is\s+)?full|over\s*quota|quota|insufficient\s+(?:disk\s+)?(?:space|storage)|mail\s*folder\s+is\s+full|"
    r"exceeded\s+(?:the\s+)?(?:storage|local\s+limit)|too\s+(?:large|big)|size\s+limit|greylist|try\s+again|"
    r"temporar(?:y|ily)|rate\s+limit|too\s+many\s+(?:connections|messages|recipients)|spam|blacklist|blocklist|"
    r"block(?:ed)?\b|reputation|dmarc|spf\b|dkim|policy|virus|not\s+accepted|relay|authenticat|tls|starttls|ptr|"
    r"reverse\s+dns|rdns|access\s+denied|sender\s+(?:address\s+|domain\s+)?(?:rejected|refused|denied|blocked)|"
    r"service\s+refused|refused\s+by\s+policy|not\s+allowed|domain\s+of\s+sender|sender\s+address", re.I)
_HARD_WORDS = re.compile(
    r"user\s+unknown|unknown\s+user|no\s+such\s+(?:user|recipient|mailbox|account)|(?:recipient|user|mailbox|address|account)\s+"
    r"(?:does\s+not|doesn't)\s+exist|recipient\s*not\s*found|user\s+not\s+found|invalid\s+(?:recipient|mailbox)|unknown\s+(?:recipient|mailbox)|"
    r"recipient\s+name\s+is\s+not\s+recognized|not\s+listed\s+in|no\s+mailbox|mailbox\s+unavailable|unrouteable\s+address|"
    r"addressee\s+unknown|host\s+(?:unknown|not\s+found)|domain\s+(?:does\s+not|doesn't)\s+exist|no\s+such\s+domain|"
    r"(?:wasn.?t|was\s+not)\s+found\s+at\s+the\s+destination|(?:recipient|email)\s+(?:email\s+)?address\s+is\s+"
    r"(?:possibly\s+)?incorrect|invalid\s+(?:user|address)|no\s+longer\s+(?:on\s+server|valid|active)", re.I)
_FULL_WORDS = re.compile(r"mailbox\s+(?:is\s+)?full|over\s*quota|quota|insufficient\s+(?:disk\s+)?(?:space|storage)|"
                         r"mail\s*folder\s+is\s+full|exceeded\s+(?:the\s+)?(?:storage|local\s+limit)", re.I)
_DELAY_WORDS = re.compile(
    r"will\s+be\s+retried|will\s+(?:continue|keep)\s+trying|warning\s+(?:message\s+)?only|this\s+is\s+a\s+warning|"
    r"delayed|delay\b|could\s+not\s+send\s+(?:message|mail)\s+for\s+(?:the\s+)?past|not\s+yet\s+been\s+delivered|"
    r"still\s+being\s+retried|do\s+not\s+need\s+to\s+resend|retry\s+(?:until|for)", re.I)


_PERMANENT_WORDS = re.compile(r"permanent|fatal|given\s+up|giving\s+up|failed\s+permanently|will\s+not\s+be\s+retried|"
                              r"no\s+further\s+(?:delivery\s+)?attempts", re.I)


_FAILED_WORDS = re.compile(r"permanent|fatal|failed|failure|rejected|could\s*n[o']t\s+be\s+delivered|undeliverable|"
                           r"not\s+delivered|undelivered", re.I)


def _says(words: str, pattern: re.Pattern, diagnostic: str, source: str, cache: dict, key: str) -> bool:
    """Does `pattern` occur in a recipient's `words`? For a text report those are its diagnostic
    plus the whole notice and subject, the same for every recipient: that part is searched once
    (cached), not once per recipient (50 recipients x 64 KB)."""
    if source != "text" or not words.startswith(diagnostic):
        return bool(pattern.search(words))
    if pattern.search(diagnostic):
        return True
    if key not in cache:
        cache[key] = bool(pattern.search(words[len(diagnostic):]))
    return cache[key]


def _complete(report: BounceReport, msg: ParsedMessage, notice: str) -> None:
    """Fill in statuses (inferred when absent), actions and hard/soft for every recipient."""
    delayed_notice = bool(_DELAY_WORDS.search(msg.subject or "")) or bool(_DELAY_WORDS.search(notice[:3000]))
    from_words: dict[str, str] = {}  # the inference from the whole notice, made once (not per recipient)
    for r in report.recipients:
        words = f"{r.diagnostic} {notice if report.source == 'text' else ''} {msg.subject or ''}"
        if not r.diagnostic and report.source != "text":
            # A report without a Diagnostic-Code: the human-readable part usually says more.
            r.diagnostic = _clean(_segment_for(notice, r.address))
            words = r.diagnostic
            specific = _status_in(r.diagnostic)
            if r.status.endswith(".0.0") and specific[:1] == r.status[:1] and not specific.endswith(".0.0"):
                r.status = specific
            r.reply_code = r.reply_code or _reply_in(r.diagnostic)
        mapped = REPLY_CODE_STATUS.get(r.reply_code, "")
        if not r.status and mapped and not mapped.endswith(".0.0"):
            r.status, r.status_inferred = mapped, True  # a specific reply code says it: no words needed
        if not r.status:
            # Last resort: no status in the report and only a generic reply code (or none). The
            # well-known phrases of _INFER give the detail; the class comes from the reply code,
            # the action or the words around it.
            inferred = next((status for pattern, status in _INFER if pattern.search(r.diagnostic)), "")
            if not inferred and report.source == "text":
                inferred = next((status for pattern, status in _INFER if pattern.search(r.diagnostic)), "")
                if not inferred:
                    if "notice" not in from_words:
                        from_words["notice"] = next((status for pattern, status in _INFER if pattern.search(notice)), "")
                    inferred = from_words["notice"] or next(
                        (status for pattern, status in _INFER if pattern.search(msg.subject or "")), "")
            klass = r.reply_code[:1] if r.reply_code[:1] in ("4", "5") else ""
            if not klass and r.action:
                klass = {"failed": "5", "delayed": "4", "delivered": "2", "relayed": "2", "expanded": "2"}.get(r.action, "")
            if not klass and delayed_notice:
                klass = "4"
            if not klass and _says(words, _PERMANENT_WORDS, r.diagnostic, report.source, from_words, "permanent"):
                klass = "5"
            if inferred:
                r.status = (klass or inferred[0]) + inferred[1:]
            elif klass:
                r.status = f"{klass}.0.0"
            elif _says(words, _FAILED_WORDS, r.diagnostic, report.source, from_words, "failed"):
                r.status = "5.0.0"
            r.status_inferred = bool(r.status)
        if not r.action:
            if r.status.startswith("2"):
                r.action = "delivered"
            elif r.status.startswith("4") or (delayed_notice and not r.status.startswith("5")):
                r.action = "delayed"
            else:
                r.action = "failed"
        r.hard = _is_hard(r)


def _segment_for(notice: str, address: str) -> str:
    index = notice.lower().find(address)
    if index < 0:
        return ""
    return _diagnostic_text(notice[index:index + 600], address)


def _is_hard(r: BouncedRecipient) -> bool:
    """A permanent failure of the address itself: a 5.x.x status, unless the words or the status say
    the mailbox is full, or the trouble is the message, the network, or our sender's reputation,
    authentication or policy (then the address may well be fine). A generic status that was only
    inferred (x.0.0) is hard only when the words say the address does not exist."""
    if r.action not in ("failed", ""):
        return False
    text = r.diagnostic or ""
    status = r.status or ""
    if not status.startswith("5"):
        return False
    hard_words = bool(_HARD_WORDS.search(text))
    soft_words = bool(_SOFT_WORDS.search(text))
    if status in ("5.2.2", "5.2.3", "5.3.4", "5.1.7", "5.1.8") or (_FULL_WORDS.search(text) and not hard_words):
        return False
    if hard_words:
        return True
    if r.status_inferred and status.endswith(".0.0"):
        return False
    if status.startswith("5.1.") or status == "5.4.4":
        return not soft_words
    if status.startswith(("5.7.", "5.6.", "5.3.", "5.5.", "5.4.")) or status == "5.2.0":
        return False
    return not soft_words


# --- shared helpers -------------------------------------------------------------------------

def _original_message(msg: ParsedMessage, copy_text: str = "") -> ParsedMessage | None:
    """The message a report is about: an attached message/rfc822 or headers part, else the copy in the text."""
    for part in msg.parts:
        if part.content_type in ("message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers"):
            data = part.data if part.content_type.startswith("message/rfc822") or part.content_type == "message/global" \
                else (part.text or "").encode("utf-8", "surrogateescape")
            if data.strip():
                return parse(data, max_bytes=2 * 1024 * 1024)
    for attachment in msg.attachments:
        if attachment.content_type == "text/plain" and re.search(r"header", attachment.filename, re.I):
            return parse(attachment.data, max_bytes=2 * 1024 * 1024)
    if copy_text.strip():
        first, _, rest = copy_text.lstrip().partition("\n")
        body = rest if _is_copy_marker(first) else copy_text.lstrip()
        original = parse(body.encode("utf-8", "surrogateescape"), max_bytes=2 * 1024 * 1024)
        if original.message_id or original.to or original.from_address:
            return original
    return None


def _clean(text: str, limit: int = 600) -> str:
    text = re.sub(r"\s+", " ", text or "").strip()
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _dedupe(report: BounceReport) -> None:
    seen: dict[str, BouncedRecipient] = {}
    for r in report.recipients:
        kept = seen.get(r.address)
        if kept is None:
            seen[r.address] = r
        elif not kept.status and r.status:
            seen[r.address] = r
    report.recipients = list(seen.values())


def _unique(items: list[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        if item and item not in out:
            out.append(item)
    return out


__all__ = ["BounceReport", "BouncedRecipient", "Classification", "ComplaintReport", "KINDS", "classify",
           "own_identity"]
