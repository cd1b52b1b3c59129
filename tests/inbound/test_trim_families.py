"""Never lose the member's words: one test per family of trimming mistakes, with invented mail.

Each family has a rule that can be stated (see mailer/inbound/trim.py): a sign-off is a short
"Sent from <device or mail app>" line that ends the member's writing, the device named from a
closed vocabulary (not any words after "Sent from"); quoted-printable left encoded is decoded (or
its soft breaks re-joined) before the attribution is looked for; "-- " (RFC 3676) starts a
signature of up to 15 lines, while another line of dashes is only a signature with a few lines, or
a block of contact details, under it; an inline reply keeps every unquoted paragraph.
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
def test_everything_under_the_signature_delimiter_is_signature(delimiter):
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


@pytest.mark.parametrize("line", [
    "Sent from my kitchen table",
    "Sent from my allotment shed",
    "Sent on behalf of the mobile canvassing team",
    "Sent by the treasurer on her phone before the AGM",
    "Written from my phone because I am out canvassing",
    "From my point of view the phone bank went well",
    "Sent from my 2nd floor office",
])
def test_words_after_a_signoff_lead_that_name_no_device_stay(line):
    text = f"Count me in.\n\n{line}\n\n{ATTRIBUTION}\n> Who can help?\n"
    assert trim_text(text).visible == f"Count me in.\n\n{line}"


@pytest.mark.parametrize("line", [
    "Sent from my Motorola Edge 30",
    "Greetings from my iPhone",
    "Verzonden vanaf mijn Samsung Galaxy-smartphone",
    "Sent from Proton Mail for Android",
    "Sent from my BlackBerry 10 smartphone on the Vodafone network",
    "Typed on a tiny screen",  # not a device word: stays (checked below)
])
def test_signoffs_naming_a_device_from_the_closed_vocabulary(line):
    text = f"Count me in.\n\n{line}\n"
    expected = f"Count me in.\n\n{line}" if line.startswith("Typed") else "Count me in."
    assert trim_text(text).visible == expected


def test_a_soft_break_left_in_an_attribution_is_joined_even_when_the_rest_is_not_quoted_printable():
    # "a = b" is not quoted-printable, so the body is not decoded; the attribution is still found.
    body = ("Yes please, and a = b in the minutes.\n\nOn Tue, 1 Dec 2026 at 18:40, Ward Three Secretary "
            "<ward3@example.org> wr=\note:\n> Can you take the minutes?\n")
    assert trim_text(body).visible == "Yes please, and a = b in the minutes."


def test_a_long_block_under_the_signature_delimiter_is_not_certainly_a_signature():
    notes = "\n".join(f"Item {i}: the branch agreed to look into it." for i in range(1, 18))
    text = f"Minutes below.\n\n-- \n{notes}\n"
    assert trim_text(text).visible == text.strip()


def test_contact_details_under_a_line_of_dashes_are_a_signature_even_past_six_lines():
    contact = "\n".join(["Sam Organiser", "Campaigns lead", "Westfield ward", "Anytown CLP",
                          "Tel 01632 960123", "Mob 07700 900456", "sam@example.net", "https://example.net/westfield",
                          "Office: 2 Mill Lane, Anytown"])
    for rule in ("__________", "==========", "----------"):
        trimmed = trim_text(f"Happy to chair.\n\n{rule}\n{contact}\n")
        assert trimmed.visible == "Happy to chair.", rule
        assert trimmed.quoted.endswith("Office: 2 Mill Lane, Anytown")


def test_a_signature_under_a_rule_goes_before_the_earlier_message_too():
    contact = "\n".join(["Sam Organiser", "Campaigns lead", "Westfield ward", "Anytown CLP",
                          "Tel 01632 960123", "Mob 07700 900456", "sam@example.net", "https://example.net/westfield"])
    text = f"Happy to chair.\n\n__________\n{contact}\n\n{ATTRIBUTION}\n> Who will chair?\n"
    assert trim_text(text).visible == "Happy to chair."


def test_sentences_under_a_rule_are_the_members_even_when_short_lines():
    text = ("Agenda thoughts.\n\n----------\nWe should start on time.\nThe treasurer needs ten minutes.\n"
            "Then the campaign update.\nThen any other business.\nI can print copies.\n"
            "Ann will bring tea.\nBob will lock up.\n")
    assert trim_text(text).visible == text.strip()
