"""PDFs: the built-in font when Windows-1252 holds the text; otherwise DejaVu, read once per
process (cut down to the common letters when those suffice), each style added when first used."""

from __future__ import annotations

import io

import pypdf
import pytest

from mailer import documents as pdf


def _text(data: bytes) -> str:
    return " ".join(" ".join((p.extract_text() or "").split()) for p in pypdf.PdfReader(io.BytesIO(data)).pages)


def _document(title: str, text: str) -> tuple[pdf.Document, bytes]:
    doc = pdf.Document(title, text)
    doc.markdown(text)
    return doc, bytes(doc.output())


def test_dashes_quotes_and_bullets_need_no_embedded_font():
    doc, data = _document("Agenda", "# Apologies — “Siân”\n\n- one … two\n- €5")
    assert not doc.unicode and b"FontFile2" not in data
    text = _text(data)
    assert "Apologies — “Siân”" in text and "one … two" in text and "€5" in text and "•" in text


@pytest.mark.skipif(not (pdf._FONT_DIR / "DejaVuSans.ttf").exists(), reason="DejaVu is not installed here")
def test_other_letters_use_dejavu_read_once_and_only_the_styles_used():
    pdf._parsed.cache_clear()
    first, data = _document("Ōkafor", "# Łukasz Ōkafor → Ward 2\n\n**Αθήνα**, Київ")
    assert first.unicode and first.common  # every letter among the common ones: the cut-down font
    assert set(first.fonts) == {"body", "bodyB"}  # bold used, no italic: no italic font read
    text = _text(data)
    assert "Łukasz Ōkafor → Ward 2" in text and "Αθήνα, Київ" in text
    misses = pdf._parsed.cache_info().misses
    second, data = _document("Ōkafor", "# Ōkafor again")
    assert pdf._parsed.cache_info().misses == misses  # the fonts were read by the first document
    assert "Ōkafor again" in _text(data)
    rare, data = _document("漢", "漢 ✈")  # beyond the common letters: the whole font
    assert rare.unicode and not rare.common and "✈" in _text(data)


def test_drawn_text_wraps_within_the_margins_and_long_words_are_cut():
    doc = pdf.Document("Record", "")
    long_line = " ".join(f"word{i}" for i in range(60))
    address = "x" * 150 + "@example.org"  # wider than a line: cut, not run off the page
    doc.heading("Their record")
    doc.paragraph("Keir Hardie", label="Name:", gap=0)
    doc.bullet(long_line, label="1/3/2026")
    doc.paragraph(f"{address}\nsecond line")
    lines = [doc._wrap([("", long_line)], 11, 100), doc._wrap([("", address)], 11, 100)]
    for wrapped in lines:
        assert len(wrapped) > 1 and all(doc._width("".join(t for _s, t in line)) <= 100 for line in wrapped)
    assert "".join(t for line in lines[1] for _s, t in line) == address  # every character kept
    text = _text(bytes(doc.output()))
    assert "Their record" in text and "Name: Keir Hardie" in text and "1/3/2026 word0 word1" in text
    assert "word59" in text and "second line" in text
