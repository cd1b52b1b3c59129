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
    """The record of what the relay accepted is the database, written at each 250 (while the
    next envelope is on the wire) and always before the next message's content goes out: a run
    killed at any point leaves only the message on the wire unrecorded."""
    from sqlalchemy import func, select

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
                    Delivery.campaign_id == campaign.id, Delivery.status == DeliveryStatus.SENT))))
        return real(*args, before_content=then_look)

    monkeypatch.setattr(batch, "_send_one", checked)
    batch.send_batch(campaign.id, 0)
    assert seen == [(0, 0), (1, 1), (2, 2), (3, 3)]
