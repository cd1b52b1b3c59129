"""One delivery's message: the campaign compiled once, then each member's headers and parts."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from flask import current_app

from mailer.compose import personal, tokens
from mailer.compose.render import CompiledCampaign, compile_campaign
from mailer.mail import domain_of
from mailer.mail.mime import Skeleton, address
from mailer.models import Campaign, Member


@dataclass
class Envelope:
    """What the transport needs for one message: the envelope sender, the recipient and the bytes
    (as built: the transport signs them)."""

    sender: str
    recipient: str
    message_id: str
    data: bytes


# What a member's context holds that differs from one member to the next (the rest is the campaign's).
PERSONAL = frozenset({"member", "unsubscribe_url", "preferences_url", "attending_url", "apologies_url",
                      "not_attending_url"})


class CampaignMessages:
    """Builds every member's message for one campaign, compiling the campaign only once."""

    def __init__(self, campaign: Campaign):
        cfg = current_app.config
        self.campaign = campaign
        self.compiled: CompiledCampaign = compile_campaign(campaign)
        self.sender_address = cfg["SENDER_ADDRESS"]
        self.reply_address = cfg["REPLY_ADDRESS"]
        self.bounce_address = cfg["BOUNCE_ADDRESS"] or cfg["REPLY_ADDRESS"]
        self.verp = cfg["VERP"]
        self.id_domain = cfg["MESSAGE_ID_DOMAIN"] or domain_of(self.sender_address)
        self.list_domain = cfg["LIST_ID_DOMAIN"] or domain_of(self.sender_address)
        from_name = campaign.from_name or cfg["SENDER_NAME"]
        self.skeleton = Skeleton(
            from_header=address(from_name, self.sender_address),
            list_id=f'"{cfg["ORG_NAME"]} {campaign.stream.value}" <{campaign.stream.value}.{self.list_domain}>',
            attachments=list(campaign.attachments),
        )
        self._address_token = _AddressTokens()
        self._sender_name = cfg["SENDER_NAME"]
        self._contexts = personal.Contexts(campaign)
        # A subject that names nothing personal (most do not) is rendered once, for the first member.
        self._same_subject = not (self.compiled.subject_names & PERSONAL)
        self._subject: str | None = None

    def build(self, member: Member | None, delivery_id: int | None, to_address: str | None = None) -> Envelope:
        """The message for `member` (a sample member when None; a test send when `delivery_id` is None).
        `member` may be a Member, or the batch job's Recipient (the fields a message uses)."""
        if member is None:
            context = personal.context(self.campaign, None)
            subject, html, text = self.compiled.render_pieces(context)
        else:
            context = self._contexts(member)
            subject = self._subject
            if subject is None:
                subject = self.compiled.render_subject(context)
                if self._same_subject:
                    self._subject = subject
            html, text = self.compiled.render_parts(context)
        recipient = to_address or member.email
        unique = secrets.token_hex(6)
        if delivery_id is None:
            message_id = f"<test.{self.campaign.id}.{unique}@{self.id_domain}>"
            reply_to, sender, mailto = self.reply_address, self.sender_address, self.reply_address
        else:
            message_id = f"<{self.campaign.id}.{delivery_id}.{unique}@{self.id_domain}>"
            address_token = self._address_token
            reply_to = tokens.plus_address(self.reply_address, address_token("r", delivery_id))
            sender = (tokens.plus_address(self.bounce_address, address_token("b", delivery_id))
                      if self.verp else self.sender_address)
            mailto = tokens.plus_address(self.reply_address, address_token("u", delivery_id))
        data = self.skeleton.build(
            to=address(context["member"].full_name if member is not None and (member.first_name or member.last_name)
                       else "", recipient),
            subject=subject, message_id=message_id,
            reply_to=address(self._sender_name, reply_to),
            list_unsubscribe=f"<{context['unsubscribe_url']}>, <mailto:{mailto}?subject=unsubscribe>",
            text=text, html=html)
        return Envelope(sender, recipient, message_id, data)


class _AddressTokens:
    """`tokens.address_token`, the same to the byte (the tests compare them), with the HMAC key
    set up once per campaign rather than three times per message."""

    def __init__(self):
        self._mac = hmac.new(current_app.config["SECRET_KEY"].encode(), digestmod=hashlib.sha256)

    def __call__(self, kind: str, delivery_id: int) -> str:
        ident = tokens._b36(delivery_id)
        mac = self._mac.copy()
        mac.update(f"{kind}:{ident}".encode())
        n = int.from_bytes(mac.digest()[:10], "big")  # base32 of 80 bits: eight 10-bit pairs of letters
        return f"{kind}-{ident}-" + "".join([_B32_PAIRS[(n >> shift) & 1023] for shift in (70, 60, 50, 40, 30, 20, 10, 0)])


_B32 = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648's alphabet, lower-cased as the tokens are
_B32_PAIRS = [a + b for a in _B32 for b in _B32]
