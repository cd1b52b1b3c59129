"""`mailer inbound evaluate`: every reading score in one place, over any folders of messages."""

from __future__ import annotations

import json

from click.testing import CliRunner

from mailer.inbound.cli import inbound_cli
from tests.inbound.test_fuzz import _written

REPLY = (b"From: Ann <ann@example.org>\r\nTo: secretary@example.org\r\nSubject: Re: News\r\n"
         b"Message-ID: <r1@example.org>\r\nIn-Reply-To: <news@example.org>\r\n\r\nYes.\r\n")
ARF = (b"From: abuse@isp.example\r\nTo: secretary@example.org\r\nSubject: Abuse report\r\nMIME-Version: 1.0\r\n"
       b"Content-Type: multipart/report; report-type=feedback-report; boundary=f\r\n\r\n--f\r\n"
       b"Content-Type: text/plain\r\n\r\nA complaint.\r\n--f\r\nContent-Type: message/feedback-report\r\n\r\n"
       b"Feedback-Type: abuse\r\nUser-Agent: x/1\r\nVersion: 1\r\nOriginal-Rcpt-To: ann@example.net\r\n--f--\r\n")


def make_corpus(root):
    (root / "maildir").mkdir(parents=True)
    (root / "not-bounces").mkdir()
    (root / "emails").mkdir()
    (root / "trimmed").mkdir()
    (root / "other").mkdir()
    dsn = _written()[1]
    (root / "maildir" / "postfix-01.eml").write_bytes(dsn)
    (root / "maildir" / "arf-01.eml").write_bytes(ARF)
    (root / "maildir" / "postfix-02.eml").write_bytes(REPLY)  # a "bounce" that is not read as one
    (root / "not-bounces" / "reply.eml").write_bytes(REPLY)
    (root / "emails" / "a.txt").write_text("Yes.\n\nOn 5 Mar 2024, Ann <a@example.org> wrote:\n> Come?\n")
    (root / "trimmed" / "a.txt").write_text("Yes.\n")
    (root / "other" / "loose.eml").write_bytes(REPLY.replace(b"<r1@", b"<r2@"))
    (root / "expected.json").write_text(json.dumps({"files": {"postfix-01.eml": [
        {"status": "5.1.1", "reply": "550", "hard": True}]}}))
    return root


def test_evaluate_prints_every_score_in_one_place(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    result = CliRunner().invoke(inbound_cli, ["evaluate", str(corpus)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "reply trimming: 1/1 (100.0%)" in out
    assert "bounce rule: 3/4 (75.0%)" in out and "postfix-02.eml: reply, expected bounce" in out
    assert "bounces read with recipient and status: 1/2 (50.0%)" in out
    assert "status codes as expected.json: 1/1 (100.0%)" in out
    assert "complaints: 1/1 (100.0%)" in out and "not-bounces taken for bounces: 0 of 1" in out
    assert "messages: 5 (reply 3, bounce 1, complaint 1); errors: 0" in out  # maildir, not-bounces, other/
    assert "reading time: median" in out


def test_evaluate_json_and_a_plain_folder_of_messages(tmp_path):
    folder = tmp_path / "mail"
    folder.mkdir()
    for i, raw in enumerate(_written()):
        (folder / f"{i}.eml").write_bytes(raw)
    result = CliRunner().invoke(inbound_cli, ["evaluate", "--json", str(folder)])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)[str(folder)]
    assert set(scores) == {"messages"}
    m = scores["messages"]
    assert m["messages"] == 10 and m["errors"] == 0 and m["kinds"]["bounce"] == 3
    assert m["bounces_with_recipient_and_status"] == 3 and m["kinds"]["auto_reply"] == 2
