"""Never lose the member's words: one test per family of trimming mistakes, with invented mail.

Each family has a rule that can be stated (see mailer/inbound/trim.py): a sign-off is a short
"Sent from <device or mail app>" line that ends the member's writing; quoted-printable left
encoded is decoded before the attribution is looked for; "-- " (RFC 3676) starts a signature
however long it is, while another line of dashes is only a signature with a few lines under it;
an inline reply keeps every unquoted paragraph.
"""

from __future__ import annotations

import pytest

from mailer.inbound.parse import parse
from mailer.inbound.trim import trim_text

ATTRIBUTION = "On Mon, 23 Nov 2026 at 09:12, Anytown CLP Secretary <secretary@example.org> wrote:"


@pytest.mark.parametrize("line", [
    "Sent from my desk, is much easier than my mobile phone",
    "Sent from my desk, which beats the tablet",
    "Sent from a magnificent torch of pixels",
    "Sent from the committee room after the vote on the motion about mobile phone masts",
    "Sent from our branch meeting; the phone tree worked",
])
def test_a_sentence_that_starts_like_a_signoff_is_the_members(line):
    text = f"I'll bring the leaflets.\n\n{line}\n\n{ATTRIBUTION}\n> Who can help on Saturday?\n"
    assert trim_text(text).visible == f"I'll bring the leaflets.\n\n{line}"


@pytest.mark.parametrize("line", [
    "Sent from my iPhone",
    "Sent from my Pixel 7",
    "Sent from Yahoo Mail on Android",
    "Sent from my cell, please excuse any typos.",
    "Envoyé de mon iPad",
    "Von meinem Mobiltelefon gesendet",
    "Get Outlook for Android",
])
def test_a_device_signoff_that_ends_the_writing_goes(line):
    above_quote = f"I'll bring the leaflets.\n\n{line}\n\n{ATTRIBUTION}\n> Who can help on Saturday?\n"
    assert trim_text(above_quote).visible == "I'll bring the leaflets."
    at_the_end = f"{ATTRIBUTION}\n> Who can help on Saturday?\n\nMe.\n\n{line}\n"
    assert trim_text(at_the_end).visible == "Me."


def test_a_signoff_shaped_line_with_the_members_text_under_it_stays():
    text = "Sent from my iPhone\nbut I have also written to the council about it.\n"
    assert trim_text(text).visible == text.strip()


def test_quoted_printable_soft_breaks_are_decoded_before_the_attribution_is_found():
    raw = ("From: Ann <ann@example.org>\r\nTo: secretary@example.org\r\nSubject: Re: News\r\n"
           "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable \r\n\r\n"
           "Yes, I will come =E2=80=94 Ann.\r\n\r\n"
           "On Mon, 23 Nov 2026 at 09:12, Anytown CLP Secretary <secretary@example.org> w=\r\nrote:\r\n"
           "> Will you come?=20\r\n").encode()
    parsed = parse(raw)
    assert "w=" not in parsed.text
    assert trim_text(parsed.text).visible == "Yes, I will come — Ann."


def test_a_body_left_in_quoted_printable_is_decoded_by_the_trimmer():
    body = ("Yes, I will come =E2=80=94 Ann.\n\nOn Mon, 23 Nov 2026 at 09:12, Anytown CLP Secretary "
            "<secretary@example.org> w=\nrote:\n> Will you come?\n")
    assert trim_text(body).visible == "Yes, I will come — Ann."


def test_prose_with_equals_signs_is_not_taken_for_quoted_printable():
    body = "The vote was 12 = 12, so the chair decided.\nCost=\n"
    assert trim_text(body).visible == body.strip()


@pytest.mark.parametrize("delimiter", ["-- ", "--"])
def test_everything_under_the_signature_delimiter_is_signature_however_long(delimiter):
    signature = "\n".join(["Ann Member", "Branch Secretary", "Anytown East branch", "07700 900123",
                           "ann@example.org", "Promoted by A. Agent", "on behalf of Anytown CLP",
                           "1 High Street, Anytown", "Printed by Print Co"])
    trimmed = trim_text(f"I'll be there.\n\n{delimiter}\n{signature}\n")
    assert trimmed.visible == "I'll be there." and trimmed.quoted.endswith("Printed by Print Co")


def test_a_long_block_under_a_line_of_dashes_is_not_certainly_a_signature():
    notes = "\n".join(f"Point {i}: what I think we should do about item {i}." for i in range(1, 10))
    text = f"My notes for the meeting:\n\n----------\n{notes}\n"
    assert trim_text(text).visible == text.strip()


def test_an_inline_reply_keeps_every_unquoted_paragraph():
    text = (f"Answers below.\n\n{ATTRIBUTION}\n> Can you come on Thursday?\n\nYes, from 7pm.\n\n"
            "> Can you bring the leaflets?\n\nNo, sorry: Bob has them.\n\n> Any other business?\n\n"
            "The motion on the bus routes.\n")
    visible = trim_text(text).visible
    for paragraph in ("Answers below.", "Yes, from 7pm.", "No, sorry: Bob has them.", "The motion on the bus routes."):
        assert paragraph in visible
    assert "> Can you bring the leaflets?" in visible  # the question each answer answers
