"""The sending pipeline's fast paths give what the plain ones give: the same tokens and template
values, the same decoded message parts, the same SMTP bytes."""

from __future__ import annotations

import random
import re
import smtplib
from email import message_from_bytes, policy

from mailer.compose import personal
from mailer.db import session
from mailer.compose import tokens
from mailer.mail.smtp import dot_stuffed as _dot_stuffed, smtp_address as _smtp_address
from mailer.compose.message import CampaignMessages
from mailer.mail.mime import QuotedPrintable, Skeleton, _qp


def test_address_tokens_are_those_of_the_plain_function(make_campaign):
    messages = CampaignMessages(make_campaign())
    for delivery_id in (1, 35, 36, 12345, 10**9):
        for kind in "rbu":
            assert messages._address_token(kind, delivery_id) == tokens.address_token(kind, delivery_id)


def test_a_recipient_renders_as_its_member_does(make_campaign, make_member, make_branch):
    from sqlalchemy import select

    from mailer.models import Member
    from mailer.sending.batch import Recipient, _still_reachable

    campaign = make_campaign()
    member = make_member(first_name="Ann", last_name="Lee", ward="Castle", polling_district="CA1",
                         branch=make_branch("Northgate"))
    row = type("Row", (), {"member_id": member.id})()
    [kept], suppressed, found = _still_reachable(campaign, [row])
    recipient = found[member.id]
    assert isinstance(recipient, Recipient) and not suppressed
    messages = CampaignMessages(campaign)
    assert messages.compiled.render(personal.context(campaign, recipient)) == \
        messages.compiled.render(personal.context(campaign, session.scalar(select(Member).where(Member.id == member.id))))


def _decoded(data: bytes) -> tuple[str, str]:
    message = message_from_bytes(data, policy=policy.default)
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


def test_pieces_encode_to_the_same_text_as_the_whole():
    rnd = random.Random(7)
    alphabet = ["a", "b", " ", "\t", ".", "=", "\n", "é", "€", "x" * 90, "<p style=\"c\">", "_", "\r\n", "\r"]
    skeleton = Skeleton(from_header="a@example.org", list_id="<l.example.org>")
    long_piece = "".join(rnd.choice(alphabet[:12]) for _ in range(400))  # the campaign's markup
    for _ in range(300):
        pieces = [rnd.choice([long_piece, "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40)))])
                  for _ in range(rnd.randint(0, 8))]
        encoded = QuotedPrintable().encode(pieces)
        if not any("\r" in p for p in pieces):  # (a stray CR is passed through as `_qp` always has)
            # 76, or 78 where b2a_qp itself turns a space ending a line into =20, as it always has
            assert max((len(line) for line in encoded.split(b"\r\n")), default=0) <= 78
        fields = dict(to="m@example.org", subject="s", message_id="<i@example.org>", reply_to="r@example.org",
                      list_unsubscribe="<https://example.org/u>")
        whole = skeleton.build(text="".join(pieces), html="".join(pieces), **fields)
        split = skeleton.build(text=pieces, html=pieces, **fields)
        assert _decoded(split) == _decoded(whole)
        if not any("\r" in p for p in pieces) and len("".join(pieces)) < 256:
            assert encoded == _qp("".join(pieces))  # short text: nothing differs at all


def test_messages_keep_the_personal_words_together(make_campaign, make_member):
    member = make_member(first_name="Dora", email="dora@example.org")
    envelope = CampaignMessages(make_campaign()).build(member, 1)
    assert b"Dear Dora," in envelope.data  # in the raw bytes, where filters and DKIM tests look


def test_smtp_addresses_and_dot_stuffing_match_smtplib():
    for address in ["a@b.c", "secretary+b-9ix-abcdefghijklmnop@example.org", "o'brien@x.org", "a..b@c.d",
                    "Ann <a@b.c>", "a@[1.2.3.4]", "weird address", '"quoted"@example.org']:
        assert _smtp_address(address) == smtplib.quoteaddr(address)
    rnd = random.Random(3)
    for _ in range(2000):
        data = bytes(rnd.choice(b".\r\nab") for _ in range(rnd.randint(0, 30)))
        data = re.sub(rb"(?:\r\n|\n|\r(?!\n))", b"\r\n", data)  # messages are built with CRLF line ends
        expected = smtplib._quote_periods(data)
        expected = (expected if expected.endswith(b"\r\n") else expected + b"\r\n") + b".\r\n"
        assert _dot_stuffed(data) == expected


def test_each_accepted_message_is_in_the_database_before_the_next_goes_out(app, make_campaign, make_member,
                                                                          scripted_smtp, monkeypatch):
    """The record of what the relay accepted is the database, written at each 250 (marked
    accepted, folded into SENT with the chunk) and always before the next message's content goes
    out: a run killed at any point leaves only the message on the wire unrecorded."""
    from sqlalchemy import func, or_, select

    from mailer.db import engine
    from mailer.models import Delivery, DeliveryStatus
    from mailer.sending import batch, campaigns

    for i in range(6):
        make_member(email=f"rec{i}@example.org")
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
    session.commit()
    campaigns.start(campaign.id)
    session.commit()  # as the start job does
    real, seen = batch._send_one, []

    def checked(*args, before_content=None):
        def then_look():  # the moment the next message's content would go out
            if before_content is not None:
                before_content()
            with engine().connect() as conn:  # another connection: only what is committed
                seen.append((len(scripted_smtp.accepted), conn.scalar(select(func.count()).where(
                    Delivery.campaign_id == campaign.id,
                    or_(Delivery.status == DeliveryStatus.SENT, Delivery.accepted_at.is_not(None))))))
        return real(*args, before_content=then_look)

    monkeypatch.setattr(batch, "_send_one", checked)
    batch.send_batch(campaign.id, 0)
    assert seen == [(0, 0), (1, 1), (2, 2), (3, 3)]


def test_a_campaigns_contexts_are_those_of_the_plain_function(make_campaign, make_member, make_branch):
    """The send's context maker (link around a token, signer made once) gives `context`'s values,
    and its preferences token is `preferences_token`'s, to the character, and reads back."""
    campaign = make_campaign()
    contexts = personal.Contexts(campaign)
    for i, branch in enumerate([make_branch("Northgate"), None]):
        member = make_member(first_name=f"Ann{i}", email=f"ann{i}@example.org", branch=branch)
        fast, plain = contexts(member), personal.context(campaign, member)
        assert fast.keys() == plain.keys()
        assert vars(fast["member"]) == vars(plain["member"])
        assert {k: v for k, v in fast.items() if k != "member"} == {k: v for k, v in plain.items() if k != "member"}
        token = tokens.PreferencesTokens(campaign.id)(member)
        assert token == tokens.preferences_token(member, campaign.id)
        assert tokens.read_preferences_token(token) == (member, campaign.id)


def test_the_parts_render_as_the_whole_does(make_campaign, make_member):
    """`render_parts` (one context per part, member fields read without the sandbox's vetting)
    joins to what `render` gives; a misspelt field is still an error, and the sandbox still
    refuses what is not a member's field."""
    import pytest

    from mailer.compose.render import CompiledCampaign, TemplateError

    campaign = make_campaign()
    member = make_member(first_name="Bea", ward="")
    messages = CampaignMessages(campaign)
    context = personal.context(campaign, member)
    subject, html, text = messages.compiled.render(context)
    parts = messages.compiled.render_parts(context)
    assert ("".join(parts[0]), "".join(parts[1])) == (html, text)
    assert messages.compiled.render_subject(context) == subject
    wrong = CompiledCampaign("s", "{{ member.frist_name }}", "x")
    with pytest.raises(TemplateError, match="frist_name"):
        wrong.render_parts(context)
    sneaky = CompiledCampaign("s", "{{ member.__class__.__init__.__globals__ }}", "x")
    with pytest.raises(TemplateError):
        sneaky.render_parts(context)


def test_headers_in_one_piece_are_those_folded_one_by_one():
    from mailer.mail.mime import _fold, _headers

    cases = [[("To", "Ann <a@example.org>"), ("Subject", "=?utf-8?q?caf=C3=A9?=")],
             [("List-Unsubscribe", ", ".join(f"<https://example.org/{i}>" for i in range(60)))],  # folded
             [("Subject", "=?utf-8?b?AAAA?=\r\n =?utf-8?b?BBBB?="), ("X", "a\nb")]]  # line ends made CRLF
    for pairs in cases:
        assert _headers(*pairs) == b"".join(_fold(k, v) for k, v in pairs)


def test_remembered_runs_encode_as_before():
    """The same pieces encoded by a fresh encoder and by one that remembers runs: the same bytes."""
    rnd = random.Random(11)
    markup = ["".join(rnd.choice("abc <>=\n.é") for _ in range(300)) for _ in range(3)]
    remembering = QuotedPrintable()
    for _ in range(200):
        pieces = [rnd.choice(markup + ["Dear ", rnd.choice(["Ann", "Bob", "Zoë"]), ",\n", "=x"]) for _ in range(8)]
        assert remembering.encode(pieces) == QuotedPrintable().encode(pieces)
