"""Trim a member's reply down to their own words.

Members answer bulletins and notices from every mail client there is. Most clients append the
earlier message under the reply ("top-posting"), some put the reply under it ("bottom-posting"),
and careful writers answer point by point between quoted lines ("inline" or interleaved). On top
of that come signatures, "Sent from my iPhone" lines and forwarded-message headers. Officers must
see what each member actually wrote, so this module splits a reply into

    Trimmed.visible   the member's own words (with the quoted lines they answer inline, if any)
    Trimmed.quoted    everything else, in order, so that nothing is ever lost

It is a readable rule set, not a model:

1.  Every line is given a kind (`Kind`): blank, text, quote ("> ..."), attribution ("On <date>,
    <someone> wrote:" in a dozen languages, also when a client wrapped it over several lines),
    banner ("-----Original Message-----", "Begin forwarded message:"), header block ("From: /
    Sent: / To: / Subject:"), signature separator ("-- "), horizontal rule ("_____"), or sign-off
    ("Sent from my iPhone", "Envoyé de mon iPad", "Get Outlook for Android"...).
2.  Then a few rules, each a small function below, decide which lines stay visible:
    a.  what follows the "-- " signature separator is a signature, when it is at most
        SIG_DASHES_MAX_LINES lines before the earlier message or the end (longer: not certain, kept);
    b.  sign-off lines ("Sent from" + words that all name a device or mail app, from a closed
        vocabulary) are dropped when they end the member's writing;
    c.  a rule line after the member's text with only a few lines under it, or a block of contact
        details (short lines, no sentences) of up to CONTACT_BLOCK_MAX_LINES, starts a signature;
    d.  an earlier message starts at an attribution, banner or header block (or at a quote block
        that begins with one). Under the member's text (top-posting) everything from there on
        goes, unless the member goes on writing under the quote (text followed by more quotes,
        or more than SIGNATURE_MAX_LINES lines): then it is an inline reply and only the
        attribution goes. With nothing of the member's above it (bottom-posting), the
        attribution and the quote under it go, unless the member answers between quotes;
    e.  a quote left at the very end, under the member's text, is the earlier message too.
    A quote without an attribution, above or between the member's lines, is kept: it is what the
    member chose to answer. A reply that is only such a quote is shown as it is.

`trim_html` renders HTML to the same lines, using what the clients' markup says for certain
(Gmail's gmail_quote/gmail_attr, Outlook's divRplyFwdMsg/appendonsend, Apple Mail's and
Thunderbird's blockquote type=cite and moz-cite-prefix, Yahoo's yahoo_quoted, signature blocks) as
hints that overrule the guesses of step 1, and then applies the same rules.

Known limits, all of them guesses that keep the words in `quoted` when wrong: a member's own line
that reads like an attribution ("On 3 May 2024 the council wrote:") followed by unquoted text is
taken for the start of an earlier message; a few lines under a rule ("____") are taken for a
signature; and a few lines under a quoted message in a top-posted reply are taken for the quoted
sender's signature.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from html.parser import HTMLParser

__all__ = ["Trimmed", "trim_text", "trim_html"]


@dataclass
class Trimmed:
    visible: str  # the member's own words
    quoted: str  # everything removed from the reply: quotes, headers, signatures
    limited: bool = False  # longer than TRIM_MAX_LINES / TRIM_MAX_CHARS: only the start was trimmed


class Kind(Enum):
    BLANK = "blank"
    TEXT = "text"  # the member's own words, until a rule says otherwise
    QUOTE = "quote"  # "> ...", "| ...", "Name> ..."
    ATTRIBUTION = "attribution"  # "On Tue, 5 May 2020 at 10:00, Ann <ann@example.org> wrote:"
    BANNER = "banner"  # "-----Original Message-----", "Begin forwarded message:"
    HEADER = "header"  # a block of "From: / Sent: / To: / Subject:" lines
    SIG_DASHES = "sig-dashes"  # "-- ", the standard signature separator (RFC 3676)
    RULE = "rule"  # a horizontal line: "_____", "*****", "=====", or Gmail's "ᐧ"
    SIGNOFF = "signoff"  # "Sent from my iPhone" and friends, or an HTML signature block


# Lines of these kinds begin an earlier message.
HEAD_KINDS = frozenset({Kind.ATTRIBUTION, Kind.BANNER, Kind.HEADER})

# A block of text of at most this many lines, alone at the end of a reply under a quote or a rule,
# is a signature (the member's, or the quoted sender's); longer, it is the member writing.
SIGNATURE_MAX_LINES = 6
# Under a rule line, a longer block is a signature only when it reads as contact details: at most
# this many lines, each at most SIGNATURE_LINE_MAX_CHARS long, none of them a sentence.
CONTACT_BLOCK_MAX_LINES = 12
SIGNATURE_LINE_MAX_CHARS = 72
# Under "-- " (RFC 3676's signature separator) a signature is certain up to this many lines.
SIG_DASHES_MAX_LINES = 15

# An attribution wrapped by a client spans at most this many lines.
ATTRIBUTION_MAX_LINES = 5

# Trimming reads at most this many lines (and characters) of a reply: the work per message is
# bounded. Beyond that, if the part read showed where the earlier message (or the signature)
# begins, the rest belongs to it and goes with it; otherwise the rest is shown as it is.
TRIM_MAX_LINES = 5000
TRIM_MAX_CHARS = 256 * 1024


def _words(*words: str) -> str:
    """A regex alternation of literal words, longest first so that the longest one wins."""
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


# --- quotes ------------------------------------------------------------------------------------

# "> text" (any depth), "| text" (some webmails; not a Markdown table row, which has more pipes),
# and Supercite's "Name> text". Four spaces or more of indentation is code, not a quote.
_QUOTE = re.compile(r"^[ \t]{0,3}(?:>|\|(?!.*\|)|[A-Za-z]{1,12}>(?=\s|$))")
_ONE_QUOTE_LEVEL = re.compile(r"^[ \t]{0,3}(?:>|\||[A-Za-z]{1,12}>) ?")


def _dequote(line: str) -> str:
    """The line with one level of quoting removed."""
    return _ONE_QUOTE_LEVEL.sub("", line, count=1)


# --- attributions: "On <date>, <someone> wrote:" -----------------------------------------------

# The verb, as the last word(s) before the colon.
_WROTE_LATIN = _words(
    "wrote", "writes",  # English
    "a écrit", "a ecrit",  # French
    "schrieb", "hat geschrieben",  # German
    "schreef", "geschreven",  # Dutch ("heeft X het volgende geschreven")
    "ha scritto", "scrisse",  # Italian
    "escribió", "escribio",  # Spanish
    "escreveu",  # Portuguese
    "skrev", "skriver",  # Swedish, Norwegian, Danish
    "napisał(a)", "napisała", "napisał", "napisal",  # Polish
    "napsal(a)", "napsala", "napsal",  # Czech
    "написал(а)", "написала", "написал", "пишет",  # Russian
    "написав", "пише",  # Ukrainian
    "kirjoitti",  # Finnish
    "írta",  # Hungarian
    "yazdı",  # Turkish
    "έγραψε",  # Greek
    "a scris",  # Romanian
    "ysgrifennodd",  # Welsh
)
_WROTE_CJK = _words("写道", "寫道", "書きました", "작성")  # Chinese, Japanese, Korean
_WROTE = rf"(?:(?<!\w)(?:{_WROTE_LATIN})|(?:{_WROTE_CJK}))"
_ENDS_WITH_WROTE = re.compile(rf"{_WROTE}\s*[:：]$", re.IGNORECASE)
_ENDS_WITH_WROTE_NO_COLON = re.compile(rf"{_WROTE}\s*[:：]?$", re.IGNORECASE)
# German and Scandinavian put the verb in the middle: "Am 3. Mai 2020 schrieb Ann <a@b>:".
_WROTE_MID = re.compile(r"(?<!\w)(?:schrieb|skrev|schreef|skriver)(?!\w)", re.IGNORECASE)
# Horde and friends: "Quoting Ann <ann@example.org>:".
_QUOTING = re.compile(r"^(?:quoting|zitat von|citando|cytuję|citation de)\s", re.IGNORECASE)

# How an attribution begins: "On", its translations, or a date ("2016-03-03 17:21 GMT+01:00 Ann",
# "23 mar 2017 21:25 Ann", "2016年12月12日"). Case matters: "On Mon," starts one, "on Monday" does not.
_ON = r"(?:On|Le|Am|Op|Il|El|Em|Den|Dnia|W dniu|Dne|Dňa|At|Ar|Quoting|Zitat von|Citando|В|У|På)"
_DATE_FIRST = (
    r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"  # 2016-03-03, 2013/7/20
    r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"  # 03.02.2016
    r"|\d{1,2}\.?\s+\w+\.?\s+\d{4}"  # 23 mar 2017, 20 окт. 2016
    r"|\d{4}\s*年|\d{4}년)"  # 2016年12月12日
)
_STRONG_START = re.compile(rf"^\s*(?:-+\s*)?(?:{_ON}\s|在\s?|{_DATE_FIRST})")
_DATE_START = re.compile(rf"^\s*{_DATE_FIRST}")
# "Ann Example <ann@example.org> schrieb am ...": a name, then an address in angle brackets.
_NAME_THEN_ADDRESS = re.compile(r"^[^<>]{1,80}<[^<>\s]*@")
_ANGLE_ADDRESS = re.compile(r"<[^<>]*@[^<>]*>")
_GMT_OFFSET = re.compile(r"GMT\s?[+-]\d")
_TIME = re.compile(r"(?<!\d)\d{1,2}[:.]\d{2}(?!\d)")
_ENDS_WITH_ADDRESS = re.compile(r"<[^<>]*@[^<>]*>\s*[:：]$")
_SENTENCE_END = re.compile(r"[^\W\d_][.!?]$")  # "...meet at 7pm." but not "Fr., 28."
_DECORATION = "-=_*~ \t"  # Zoho writes "---- On ..., Ann wrote ----"


def _squash(text: str) -> str:
    """Whitespace (non-breaking spaces too) collapsed to single spaces, ends stripped."""
    return re.sub(r"\s+", " ", text).strip()


def _is_attribution(text: str, single_line: bool) -> bool:
    """Does this (joined) text read like a client's "On <date>, <someone> wrote:" line?"""
    text = _squash(text)
    core = text.strip(_DECORATION)
    decorated = len(core) < len(text) and core != text.lstrip(_DECORATION)  # dashes after it
    if not core or len(core) > 300 or not re.search(r"\d|@", core):
        return False  # every real one has a date or an address
    ends_with_colon = core.endswith((":", "："))
    if _ENDS_WITH_WROTE.search(core):
        return True  # "On 5 May 2020, Ann <ann@example.org> wrote:"
    if single_line and decorated and _ENDS_WITH_WROTE_NO_COLON.search(core):
        return True  # "---- On Tue, 22 Dec 2015 14:17:36 +0530 Ann wrote ----"
    if ends_with_colon and _WROTE_MID.search(core):
        return True  # "Am 03.02.2016 3:35 nachm. schrieb Ann <ann@example.org>:"
    if ends_with_colon and _QUOTING.match(core):
        return True  # "Quoting Ann <ann@example.org>:"
    if _ENDS_WITH_ADDRESS.search(core) and _TIME.search(core):
        return True  # Gmail without a verb: "вт, 5 мар. 2024 г. в 19:02, Ann <ann@example.org>:"
    if _DATE_START.match(core):  # Gmail in many locales: "2016-10-24 15:36 GMT+02:00 Ann <a@b>:"
        if ends_with_colon and ("@" in core or core.endswith(">:")):
            return True
        if single_line and (_GMT_OFFSET.search(core) or _ANGLE_ADDRESS.search(core)):
            return True
    return False


def _attribution_starts(line: str) -> bool:
    """Can a wrapped attribution begin on this line?"""
    if _QUOTE.match(line) or _SENTENCE_END.search(line.strip()):
        return False
    return bool(_STRONG_START.match(line) or _NAME_THEN_ADDRESS.match(line))


class _LineFacts:
    """What the attribution search asks of each line, worked out once per line (not once per window)."""

    def __init__(self, lines: list[str]):
        self.quote = [bool(_QUOTE.match(line)) for line in lines]
        self.strong = [bool(_STRONG_START.match(line)) for line in lines]
        self.starts = [not q and _attribution_starts(line) for q, line in zip(self.quote, lines)]
        self.cue = [bool(_DIGIT_OR_AT.search(line)) for line in lines]  # every attribution has one


_DIGIT_OR_AT = re.compile(r"\d|@")


def _join_wrapped(span: list[str]) -> str:
    """Lines a client wrapped, joined again: with a space, or with nothing where a line ends in a
    quoted-printable soft break left undecoded ("... w=" + "rote:")."""
    out = span[0]
    for line in span[1:]:
        out = out[:-1] + line if out.endswith("=") else f"{out} {line}"
    return out


def _attribution_span(lines: list[str], end: int, taken: list[bool], facts: _LineFacts) -> int | None:
    """The first line of an attribution that ends on line `end`, or None.

    Clients wrap long attributions ("On Thu, 31 Mar 2016 at 11:16 Ann Example <\\nann@example.org>
    wrote:"), so the attribution may begin up to ATTRIBUTION_MAX_LINES - 1 lines higher. The
    longest span that begins like an attribution wins; a line inside it may not itself begin one,
    so that the member's own line above an attribution is never swallowed.
    """
    if not lines[end].strip():
        return None
    for start in range(max(0, end - ATTRIBUTION_MAX_LINES + 1), end + 1):
        if any(taken[start:end + 1]) or not any(facts.cue[start:end + 1]):
            continue
        span = lines[start:end + 1]
        if start < end:
            if not facts.starts[start] or any(facts.strong[start + 1:end + 1]):
                continue
        elif facts.quote[start]:
            continue  # a quoted attribution belongs to its quote block
        if _is_attribution(_join_wrapped(span), single_line=start == end):
            return start
    return None


# --- banners: "-----Original Message-----", "Begin forwarded message:" -------------------------

_BANNER_PHRASES = frozenset({
    # English
    "original message", "original e-mail", "original email", "forwarded message",
    "forwarded e-mail", "forwarded email", "begin forwarded message", "forwarded by",
    # French
    "message d'origine", "message original", "message transféré", "début du message réexpédié",
    "début du message transféré",
    # German
    "ursprüngliche nachricht", "ursprüngliche e-mail", "weitergeleitete nachricht",
    "anfang der weitergeleiteten nachricht", "anfang der weitergeleiteten e-mail",
    # Spanish
    "mensaje original", "mensaje reenviado", "inicio del mensaje reenviado",
    # Italian
    "messaggio originale", "messaggio inoltrato", "inizio messaggio inoltrato",
    # Dutch
    "oorspronkelijk bericht", "origineel bericht", "doorgestuurd bericht",
    "begin doorgestuurd bericht",
    # Portuguese
    "mensagem original", "mensagem encaminhada", "mensagem reencaminhada",
    "início da mensagem reencaminhada",
    # Swedish, Norwegian, Danish, Finnish
    "ursprungligt meddelande", "vidarebefordrat meddelande", "opprinnelig melding",
    "videresendt melding", "oprindelig meddelelse", "videresendt meddelelse",
    "alkuperäinen viesti", "välitetty viesti",
    # Polish, Czech, Hungarian
    "wiadomość oryginalna", "oryginalna wiadomość", "przekazana wiadomość",
    "wiadomość przekazana", "původní zpráva", "přeposlaná zpráva", "eredeti üzenet",
    "továbbított üzenet",
    # Russian, Ukrainian
    "исходное сообщение", "пересылаемое сообщение", "пересланное сообщение",
    "оригінальне повідомлення", "пересланий лист", "переслане повідомлення",
    # Chinese, Japanese, Korean
    "原始邮件", "转发的邮件", "原始郵件", "轉寄的郵件", "元のメッセージ", "転送されたメッセージ",
    "원본 메시지", "전달된 메시지",
    # Welsh
    "neges wreiddiol", "neges wedi'i hanfon ymlaen", "neges a anfonwyd ymlaen",
})


def _is_banner(line: str) -> bool:
    """A client's "original / forwarded message" line, framed by dashes or ending in a colon."""
    text = _squash(line)
    core = text.strip(_DECORATION)
    framed = sum(text.count(c) for c in "-=_") >= 2 and core != text
    colon = core.endswith((":", "："))
    return (framed or colon) and core.rstrip(":： ").lower() in _BANNER_PHRASES


# --- header blocks: "From: / Sent: / To: / Subject:" -------------------------------------------

_FROM_FIELDS = _words(
    "from", "von", "de", "da", "van", "från", "fra", "od", "от", "від", "expéditeur",
    "remitente", "mittente", "afzender", "avsändare", "nadawca", "lähettäjä", "feladó",
    "发件人", "寄件者", "寄件人", "差出人", "보낸 사람", "oddi wrth",
)
_OTHER_FIELDS = _words(
    "sent", "date", "to", "cc", "bcc", "subject", "reply-to", "reply to",  # English
    "gesendet", "datum", "an", "betreff", "kopie", "antwort an",  # German
    "envoyé", "envoyé le", "à", "objet", "répondre à",  # French
    "enviado", "enviado el", "fecha", "para", "asunto", "responder a",  # Spanish
    "enviada em", "assunto",  # Portuguese
    "inviato", "data", "a", "oggetto", "risposta", "rispondi a",  # Italian
    "verzonden", "aan", "onderwerp", "beantwoorden",  # Dutch
    "skickat", "till", "ämne", "kopia", "sendt", "til", "emne",  # Scandinavian
    "wysłano", "wysłane", "do", "temat",  # Polish
    "odesláno", "komu", "předmět",  # Czech
    "отправлено", "дата", "кому", "тема", "копия", "надіслано",  # Russian, Ukrainian
    "lähetetty", "vastaanottaja", "aihe", "elküldve", "címzett", "tárgy",  # Finnish, Hungarian
    "发送时间", "日期", "收件人", "主题", "抄送", "寄件日期", "收件者", "主旨",  # Chinese
    "送信日時", "宛先", "件名", "日付", "받는 사람", "날짜", "제목", "보낸 날짜",  # Japanese, Korean
    "anfonwyd", "dyddiad", "at", "pwnc", "ateb i",  # Welsh
)
_HEADER_FIELD = re.compile(
    rf"^\s*[*_]{{0,2}}(?:(?P<from>{_FROM_FIELDS})|{_OTHER_FIELDS})[*_]{{0,2}}\s*[:：]", re.IGNORECASE
)
# Outlook sometimes runs the whole header onto one line: "From: Ann Sent: Monday To: Bob Subject: Hi".
_HEADER_ON_ONE_LINE = re.compile(
    r"^\s*[*_]*(?:from|von)[*_]*:.+\b(?:sent|date|gesendet|datum)[*_]*:.+\b(?:to|subject|an|betreff)[*_]*:",
    re.IGNORECASE,
)
_HEADER_ON_ONE_LINE_MAX_CHARS = 1000
_HEADER_MIN_FIELDS = 3  # "From:", "To:" alone could be anyone's words; three fields are a header
_HEADER_MAX_CONTINUATION = 2  # lines a wrapped field value ("Subject: a long\nsubject") may take
# A header block is read at most this far: real ones have a dozen fields, and a longer run of
# "Field:" lines must not be re-read from every one of its lines (quadratic).
_HEADER_MAX_LINES = 60


def _header_block_end(lines: list[str], start: int) -> int | None:
    """The last line of a header block beginning at `start`, or None if none begins there."""
    if not _HEADER_FIELD.match(lines[start]):
        return None
    if len(lines[start]) <= _HEADER_ON_ONE_LINE_MAX_CHARS and _HEADER_ON_ONE_LINE.match(lines[start]):
        return start  # (its ".+ ... .+" backtracks over a long line: real ones are short)
    fields, has_from, last = 0, False, start
    for i in range(start, min(len(lines), start + _HEADER_MAX_LINES)):
        if not lines[i].strip():
            break
        field = _HEADER_FIELD.match(lines[i])
        if field:
            fields, last = fields + 1, i
            has_from = has_from or field.group("from") is not None
        elif i - last > _HEADER_MAX_CONTINUATION:
            break
    return last if fields >= _HEADER_MIN_FIELDS and has_from else None


# --- rules and signatures ----------------------------------------------------------------------

_SIG_DASHES = re.compile(r"^--\s*$")
# A line of one repeated mark: "-----", "_____", "*****", "=====", "~~~~", "####", "++++", or the
# lone "ᐧ" (U+1427) that Gmail add-ons leave under a message.
_RULE = re.compile(r"^\s*(?:([-_=*~+#—–─━])\1+|ᐧ)\s*$")
_SETEXT_UNDERLINE = re.compile(r"^\s*(?:=+|-+)\s*$")  # "Agenda\n======" is a heading, not a rule

# Sign-offs: "Sent from my iPhone". A line is one when it starts with one of these phrases and
# names a device or an app, or, short and after a "sent" verb, says "my" ("Sent from my TI-85");
# or when it matches one of the fixed forms below.
_SIGNOFF_LEAD = re.compile(
    r"^(?:" + _words(
        "sent from", "sent via", "sent with", "sent using", "sent by", "sent on", "from my",
        "envoyé de", "envoyé depuis", "envoyé à partir de", "envoyé avec", "envoyé par",
        "envoye de", "envoye depuis",  # French
        "gesendet von", "gesendet vom", "gesendet mit", "von meinem", "von meiner",
        "diese nachricht wurde",  # German
        "verzonden met", "verzonden vanaf", "verzonden vanuit", "verzonden van", "verstuurd vanaf",
        "verstuurd met", "verstuurd vanuit", "verstuurd van",  # Dutch
        "sendt fra", "sendt med", "skickat från", "skickat med", "skickad från", "lähetetty",
        "enviado desde", "enviado do", "enviado da", "enviado de", "enviado con", "enviado com",
        "enviado pelo", "enviada desde", "enviada do",  # Spanish, Portuguese
        "inviato da", "inviato dal", "inviato con", "inviato tramite",  # Italian
        "wysłane z", "wysłano z", "wysłane przez", "odesláno z",  # Polish, Czech
        "отправлено с", "отправлено из", "надіслано з",  # Russian, Ukrainian
        "anfonwyd o", "anfonwyd gyda", "anfonwyd drwy",  # Welsh
    ) + r")\b",
    re.IGNORECASE,
)
_SIGNOFF_FIXED = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"(?:从|從)我的.{1,30}(?:发送|傳送|寄出)",  # Chinese: "从我的 iPhone 发送"
        r"(?:发自|發自|来自|來自)我的.{1,30}",
        r".{1,30}から送信",  # Japanese: "iPhoneから送信"
        r".{1,30}에서 보냄",  # Korean
    )
]
# Or one word and "from (my)" before a phone's name: "Greetings from my iPhone", "Someone from mobile".
_SIGNOFF_OTHER_LEAD = re.compile(
    r"^(?:\w+\s+)?from\s+(?:my\s+)?(?=(?:mobile|phone|iphone|ipad|ipod|android|smartphone|tablet|cell)\b)",
    re.IGNORECASE)
_SIGNOFF_MAX_CHARS = 80
_SIGNOFF_MAX_WORDS = 10
# The closed vocabulary of a sign-off's device part. A device or mail app, as a whole word
# ("pixels" is not a Pixel, "mobiles" not a mobile) ...
_DEVICE_WORD = re.compile(
    r"(?:i?phone\w*|smartphone|cell(?:phone)?|mobil\w*|m[óo]vil|handy|telefon\w*|ipad|ipod|android|ios|tablet"
    r"|device|appareil|ger[äa]t|blackberry|galaxy|samsung|htc|nokia|huawei|xiaomi|oneplus|pixel|motorola|moto"
    r"|alcatel|lenovo|sony|xperia|lg|oppo|vivo|realme|fairphone|windows|outlook|\w*mail\w*|correo|kindle"
    r"|watch|pc|laptop|ipados|macbook|mac|surface|airmail|spark|newton|proton|tutanota|aol|yahoo|gmail"
    r"|thunderbird|k-9|fairemail|bluemail|edison|superhuman|hey|verizon|t-mobile|vodafone|o2|ee|at&t"
    r"|wireless|4g|5g|lte|wi-?fi)",
    re.IGNORECASE,
)
# ... the words that join them ("my", "for", "on", "mon", "meinem", "gesendet") ...
_SIGNOFF_GLUE = frozenset("""
    my a an the for on from with via using by app application new little trusty
    mon ma mes de depuis avec par à mein meinem meiner von vom mit gesendet mijn vanaf vanuit met
    verzonden verstuurd min mitt från med skickat sendt fra mi mis desde con enviado meu minha do da pelo
    mio mia dal inviato tramite mojego mojej z przez wysłane odesláno мого моего с из отправлено з
    надіслано fy o gyda drwy
    pro max plus mini ultra lite note edge air series smart octacore
    """.split())
# ... and model numbers ("S5", "TI-85", "Flash2", "Windows 10"): a token with a letter and a
# digit, or a number. One other word is allowed ("my Samsung Galaxy Octacore device").
_MODEL_TOKEN = re.compile(r"(?=[^\d]*\d)(?=[\W\d_]*[^\W\d_])[\w'’.+-]{1,12}")
_ORDINAL = re.compile(r"\d+(?:st|nd|rd|th|s)")  # "2nd", "1990s": not models
_SIGNOFF_UNKNOWN_WORDS = 1
# "..., please excuse any typos": the apology some sign-offs end with (cut before the rule applies).
_SIGNOFF_APOLOGY = re.compile(
    r"[\s.,;:!-]*(?:please\s+|pls\s+|sorry\s+for\s+)?(?:excuse|forgive|pardon|ignore|brevity|typos?\b)[^\n]*$",
    re.IGNORECASE,
)


def _names_a_device(words: list[str]) -> bool:
    """Are these words a device or mail app, in the closed vocabulary above?

    Every word is a device or app name, a joining word, or a model number, except at most
    _SIGNOFF_UNKNOWN_WORDS other word; and at least one names a device or app (or is a model
    number, as in "my TI-85"). "my desk", "a magnificent torch of pixels" are not devices."""
    named, unknown = False, 0
    for word in words:
        word = word.strip(".!:()[]<>\"'*_").lower().removesuffix("'s").removesuffix("'a")
        if not word:
            continue
        if _DEVICE_WORD.fullmatch(word):
            named = True
        elif word.isdigit() or word in _SIGNOFF_GLUE:
            continue  # "Windows 10"; "my", "for"
        elif _MODEL_TOKEN.fullmatch(word) and not _ORDINAL.fullmatch(word):
            named = True  # "TI-85", "S5", "Flash2"
            continue
        else:
            unknown += 1
    return named and unknown <= _SIGNOFF_UNKNOWN_WORDS


def _is_signoff(line: str) -> bool:
    """ "Sent from my iPhone", "Von meinem iPad gesendet", "<<sent by galaxy>>"...

    The rule: a line of at most _SIGNOFF_MAX_WORDS words that begins with a sign-off lead ("Sent
    from", "Envoyé de", ...; or a word and "from (my) <phone>", as "Greetings from my phone")
    and whose other words all name a device or mail app, from a closed vocabulary
    (`_names_a_device`), with no comma or semicolon (a clause there is the member writing: "Sent
    from my desk, is much easier than my phone"); "Get Outlook for iOS/Android"; or a CJK fixed
    form. Where it stands is judged by _drop_signoffs.
    """
    if len(line) > 1000:
        return False  # (bounded work per line; no sign-off is that long, links included)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line)  # Markdown link: keep its text
    text = re.sub(r"<(?:https?:|mailto:)[^>]*>|https?://\S+", "", text)  # drop URLs
    text = _squash(text).strip(" <>()[]*_~\"'").rstrip(".!")
    if not text or len(text) > _SIGNOFF_MAX_CHARS:
        return False
    if re.match(r"get outlook for (?:ios|android)\b", text, re.IGNORECASE):
        return True  # Outlook mobile (its link is glued on: "Get Outlook for iOShttps://...")
    lead = _SIGNOFF_LEAD.match(text) or _SIGNOFF_OTHER_LEAD.match(text)
    if lead:
        rest = _SIGNOFF_APOLOGY.sub("", text[lead.end():])
        words = len(lead.group().split()) + len(rest.split())
        if "," not in rest and ";" not in rest and words <= _SIGNOFF_MAX_WORDS:
            return _names_a_device(rest.split())
        return False
    return any(p.fullmatch(text) for p in _SIGNOFF_FIXED)


# --- classifying lines -------------------------------------------------------------------------

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")


def _fenced(lines: list[str]) -> list[bool]:
    """Which lines are inside (or open or close) a closed ``` or ~~~ code fence: code, never cut."""
    inside = [False] * len(lines)
    unclosed: dict[str, int] = {}  # mark character -> shortest fence length already found unclosed
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening and len(opening.group(1)) < unclosed.get(opening.group(1)[0], 1 << 30):
            mark = opening.group(1)
            close = next(
                (j for j in range(i + 1, len(lines)) if lines[j].strip().startswith(mark[0] * len(mark))
                 and not lines[j].strip().strip(mark[0])),
                None,
            )
            if close is not None:
                for j in range(i, close + 1):
                    inside[j] = True
                i = close + 1
                continue
            # No closing fence of this length below: no longer fence can close either (linear).
            unclosed[mark[0]] = len(mark)
        i += 1
    return inside


def _find_heads(lines: list[str], exclude: list[bool]) -> dict[int, Kind]:
    """Where earlier messages begin: header blocks, banners and attributions, line by line."""
    heads: dict[int, Kind] = {}
    taken = list(exclude)
    for i in range(len(lines)):
        if taken[i] or _QUOTE.match(lines[i]):
            continue
        end = _header_block_end(lines, i)
        if end is not None:
            for j in range(i, end + 1):
                heads[j], taken[j] = Kind.HEADER, True
        elif _is_banner(lines[i]):
            heads[i], taken[i] = Kind.BANNER, True
    facts = _LineFacts(lines)
    for end in range(len(lines)):
        if taken[end]:
            continue
        start = _attribution_span(lines, end, taken, facts)
        if start is not None:
            for j in range(start, end + 1):
                heads[j], taken[j] = Kind.ATTRIBUTION, True
    return heads


def _line_kind(line: str) -> Kind:
    if not line.strip():
        return Kind.BLANK
    if _QUOTE.match(line):
        return Kind.QUOTE
    if _SIG_DASHES.match(line):
        return Kind.SIG_DASHES
    if _RULE.match(line):
        return Kind.RULE
    if _is_signoff(line):
        return Kind.SIGNOFF
    return Kind.TEXT


def _classify(lines: list[str], hints: dict[int, Kind]) -> list[Kind]:
    fenced = _fenced(lines)
    heads = _find_heads(lines, fenced)
    kinds = []
    for i, line in enumerate(lines):
        if i in hints:
            kinds.append(hints[i])
        elif fenced[i]:
            kinds.append(Kind.BLANK if not line.strip() else Kind.TEXT)
        else:
            kinds.append(heads.get(i) or _line_kind(line))
    return kinds


# --- the rules ---------------------------------------------------------------------------------


class _Reply:
    """The lines of a reply, their kinds, and which of them are still visible."""

    def __init__(self, lines: list[str], kinds: list[Kind], limited: bool = False, hinted=frozenset()):
        self.lines, self.kinds = lines, kinds
        self.hinted = hinted  # lines whose kind the HTML markup gave
        self.keep = [True] * len(lines)
        self.limited = limited  # more lines follow that were not read: "the end" is not known
        self.cut = False  # everything from some line to the end was dropped (earlier message, signature)

    def visible(self, start: int = 0, stop: int | None = None):
        """Indices of visible lines in [start, stop)."""
        stop = len(self.lines) if stop is None else stop
        return (i for i in range(start, stop) if self.keep[i])

    def next_visible(self, after: int, skip=frozenset({Kind.BLANK})) -> int | None:
        return next((i for i in self.visible(after + 1) if self.kinds[i] not in skip), None)

    def own_text(self, start: int = 0, stop: int | None = None) -> list[int]:
        return [i for i in self.visible(start, stop) if self.kinds[i] is Kind.TEXT]

    def has_own_text(self, start: int = 0, stop: int | None = None) -> bool:
        return any(self.kinds[i] is Kind.TEXT for i in self.visible(start, stop))

    def drop(self, indices) -> None:
        for i in indices:
            self.keep[i] = False

    def cut_from(self, start: int) -> None:
        """Drop everything from `start` on, with the blank lines and rules just above it."""
        above = [i for i in self.visible(0, start)]
        while above and self.kinds[above[-1]] in (Kind.BLANK, Kind.RULE):
            start = above.pop()
        self.drop(range(start, len(self.lines)))
        self.cut = True


class _Below:
    """For each visible line, the block of lines under it up to the next earlier message (an
    attribution, banner, header block or quote) or the end: where that block stops, how many
    non-blank lines it has, and how many of them are prose rather than contact details.

    Worked out in one pass from the end, so that judging every rule line stays linear."""

    def __init__(self, reply: "_Reply"):
        self.stop: dict[int, int] = {}  # index of the head or quote ending the block; len(lines) at the end
        self.lines: dict[int, int] = {}
        self.prose: dict[int, int] = {}
        stop, lines, prose = len(reply.lines), 0, 0
        for i in reversed(list(reply.visible())):
            self.stop[i], self.lines[i], self.prose[i] = stop, lines, prose
            kind = reply.kinds[i]
            if kind in HEAD_KINDS or kind is Kind.QUOTE:
                stop, lines, prose = i, 0, 0
            elif kind is not Kind.BLANK:
                lines += 1
                prose += _is_prose(reply.lines[i])
        self.end = len(reply.lines)


def _is_prose(line: str) -> bool:
    """A line of sentences, not a signature's name, role, phone, address or link."""
    text = line.strip()
    return len(text) > SIGNATURE_LINE_MAX_CHARS or (
        text.endswith((".", "?", "!")) and len(text.split()) > 4)


def _is_signature_block(lines: int, prose: int) -> bool:
    """A few lines of anything, or a longer block of contact details (short lines, no sentences)."""
    return lines <= SIGNATURE_MAX_LINES or (lines <= CONTACT_BLOCK_MAX_LINES and not prose)


def _cut_at_signature_dashes(reply: _Reply, below: _Below) -> None:
    """ "-- " starts a signature (RFC 3676): what is under it goes (and the earlier message below
    it), when it is at most SIG_DASHES_MAX_LINES lines before the earlier message or the end.
    A longer block under "-- " is not certainly a signature: it stays."""
    dashes = next((i for i in reply.visible() if reply.kinds[i] is Kind.SIG_DASHES), None)
    if dashes is not None and below.lines[dashes] <= SIG_DASHES_MAX_LINES:
        reply.drop(range(dashes, len(reply.lines)))
        reply.cut = True


# What may follow a sign-off: the earlier message, the signature, or more sign-off lines.
_AFTER_SIGNOFF = frozenset({Kind.QUOTE, Kind.SIG_DASHES, Kind.RULE}) | HEAD_KINDS


def _drop_signoffs(reply: _Reply) -> None:
    """ "Sent from my iPhone" goes when it ends the member's writing: nothing but blank lines,
    other sign-offs, a signature, a rule or the earlier message follows it. A line like it with
    the member's own text below is their words, and stays (as text). Lines the markup marks as a
    signature go wherever they are."""
    after: dict[int, Kind | None] = {}
    following: Kind | None = None
    for i in reversed(list(reply.visible())):
        kind = reply.kinds[i]
        after[i] = following
        if kind not in (Kind.BLANK, Kind.SIGNOFF):
            following = kind
    for i, next_kind in after.items():
        if reply.kinds[i] is not Kind.SIGNOFF:
            continue
        if i in reply.hinted or next_kind is None or next_kind in _AFTER_SIGNOFF:
            reply.keep[i] = False
        else:
            reply.kinds[i] = Kind.TEXT


def _cut_at_closing_rule(reply: _Reply) -> None:
    """A rule under the member's text with only a few lines below it starts a signature.

    With more lines below, the rule is the member's own section break and stays (and when the
    reply was too long to read to its end, the lines below are not known: it stays too).
    """
    if reply.limited:
        return
    visible = list(reply.visible())
    below = _Below(reply)
    # How many visible non-blank lines follow each visible line (one pass from the end: linear).
    below_count: dict[int, int] = {}
    count = 0
    for i in reversed(visible):
        below_count[i] = count
        if reply.kinds[i] is not Kind.BLANK:
            count += 1
    seen_text = False
    for i in visible:
        if reply.kinds[i] is Kind.TEXT:
            seen_text = True
        if reply.kinds[i] is not Kind.RULE or not seen_text:
            continue
        if i > 0 and reply.kinds[i - 1] is Kind.TEXT and _SETEXT_UNDERLINE.match(reply.lines[i]):
            continue  # "Agenda\n------" underlines a heading
        if below_count[i] <= SIGNATURE_MAX_LINES or (
                below.stop[i] == below.end and _is_signature_block(below.lines[i], below.prose[i])):
            reply.drop(range(i, len(reply.lines)))  # the signature, and the few lines under it
            reply.cut = True
            return
        stop = below.stop[i]
        if stop < below.end and reply.kinds[stop] in HEAD_KINDS and _is_signature_block(below.lines[i], below.prose[i]):
            reply.drop(range(i, stop))  # the signature above the earlier message: that is judged on its own
            return


def _quote_block_end(reply: _Reply, start: int) -> int:
    """The last quote line of the quote block starting at `start` (blank lines don't end it)."""
    end = start
    for i in reply.visible(start):
        if reply.kinds[i] is Kind.QUOTE:
            end = i
        elif reply.kinds[i] is not Kind.BLANK:
            break
    return end


def _quoted_head(reply: _Reply, start: int, end: int) -> list[int]:
    """The lines of an attribution, banner or header that opens the quote block [start, end]."""
    block = list(reply.visible(start, end + 1))
    inner = [_dequote(reply.lines[i]) for i in block]
    heads = _find_heads(inner, [False] * len(inner))
    first = next((k for k, text in enumerate(inner) if text.strip()), None)
    if first not in heads:
        return []
    head = []
    for k in range(first, len(inner)):  # the head, with any blank lines inside it
        if k in heads:
            head.append(block[k])
        elif inner[k].strip():
            break
    return head


def _next_earlier_message(reply: _Reply, after: int):
    """The next place an earlier message begins, as (start, head lines, quote body end or None).

    That is an attribution, banner or header block (with the quote block under it, if any), or a
    quote block that opens with one (e.g. "> On Mon, 1 Jun 2020, Ann wrote:").
    """
    i = after
    while (i := reply.next_visible(i)) is not None:
        kind = reply.kinds[i]
        if kind in HEAD_KINDS:
            head = [i]
            while (j := reply.next_visible(head[-1])) is not None and reply.kinds[j] in HEAD_KINDS:
                head.append(j)
            below = reply.next_visible(head[-1])
            body_end = None
            if below is not None and reply.kinds[below] is Kind.QUOTE:
                body_end = _quote_block_end(reply, below)
            return i, head, body_end
        if kind is Kind.QUOTE:
            end = _quote_block_end(reply, i)
            head = _quoted_head(reply, i, end)
            if head:
                return i, head, end
            i = end
    return None


def _writing_below(reply: _Reply, quote_end: int) -> tuple[bool, int]:
    """What the member writes below a quote, up to the next earlier message.

    Returns whether their text is followed by another quote (point-by-point answers), and how
    many lines of text they write.
    """
    text_lines = 0
    for i in reply.visible(quote_end + 1):
        kind = reply.kinds[i]
        if kind in HEAD_KINDS:
            break  # the next earlier message: it gets judged on its own
        if kind is Kind.TEXT:
            text_lines += 1
        elif kind is Kind.QUOTE and text_lines:
            return True, text_lines
    return False, text_lines


def _remove_earlier_messages(reply: _Reply) -> None:
    """Find each earlier message in turn and decide what of it goes (step d of the docstring)."""
    position = -1
    # The member's own lines above each line. Only heads and quotes are dropped until the loop
    # ends, never TEXT lines, so this is computed once (not once per earlier message: quadratic).
    text_above, count = [], 0
    for i, kind in enumerate(reply.kinds):
        text_above.append(count)
        if kind is Kind.TEXT and reply.keep[i]:
            count += 1
    while (found := _next_earlier_message(reply, position)) is not None:
        start, head, body_end = found
        end = body_end if body_end is not None else head[-1]
        in_head = set(head)
        body = [i for i in reply.visible(start, end + 1) if i not in in_head]
        answers_between, lines_below = (False, 0) if body_end is None else _writing_below(reply, body_end)
        if not text_above[start]:
            # Nothing of the member's above: a bottom-posted reply (or a bare forward): the
            # attribution and the quote under it go. Unless the member answers inside the quote
            # (their text, then more quotes): an inline reply from its first line, where both
            # stay, the attribution saying whose words the kept quotes are.
            if not answers_between:
                reply.drop(head + body)
        elif body_end is not None and (answers_between or lines_below > SIGNATURE_MAX_LINES):
            # Under the member's opening words, they answer between the quoted lines: only the
            # attribution goes. (A few lines alone under the quote are the sender's signature.)
            reply.drop(head)
        else:
            # Top-posted: everything from here on is the earlier message, or the thread before it.
            reply.cut_from(start)
            return
        position = end


def _drop_trailing_quote(reply: _Reply) -> None:
    """A quote left at the very end, under the member's text, is the earlier message."""
    own = reply.own_text()
    if not own or reply.limited:
        return  # a quote and nothing else: show it rather than nothing; or the end was not read
    trailing = [i for i in reply.visible(own[-1] + 1)]
    if all(reply.kinds[i] in (Kind.QUOTE, Kind.BLANK) for i in trailing):
        reply.drop(trailing)


def _strip_blank_ends(lines: list[str]) -> str:
    """Lines joined, without the blank lines at either end; the lines themselves are untouched."""
    start, stop = 0, len(lines)
    while start < stop and not lines[start].strip():
        start += 1
    while stop > start and not lines[stop - 1].strip():
        stop -= 1
    return "\n".join(lines[start:stop])


def _trim_lines(lines: list[str], hints: dict[int, Kind] | None = None) -> Trimmed:
    """Trim at most TRIM_MAX_LINES lines (TRIM_MAX_CHARS characters); the rest follows what they showed."""
    read, chars = 0, 0
    for line in lines:
        if read >= TRIM_MAX_LINES or chars + len(line) > TRIM_MAX_CHARS:
            break
        read, chars = read + 1, chars + len(line) + 1
    if read == len(lines):
        return _trim_read(lines, hints, limited=False)[0]
    head, tail = lines[:read], lines[read:]
    trimmed, cut = _trim_read(head, hints, limited=True)
    rest = "\n".join(tail)
    if cut:  # the earlier message or the signature began above: the rest is part of it
        quoted = f"{trimmed.quoted}\n{rest}" if trimmed.quoted else rest
        return Trimmed(visible=trimmed.visible, quoted=_strip_blank_ends(quoted.split("\n")), limited=True)
    visible = f"{trimmed.visible}\n{rest}" if trimmed.visible else rest
    return Trimmed(visible=_strip_blank_ends(visible.split("\n")), quoted=trimmed.quoted, limited=True)


def _trim_read(lines: list[str], hints: dict[int, Kind] | None, limited: bool) -> tuple[Trimmed, bool]:
    hints = hints or {}
    reply = _Reply(lines, _classify(lines, hints), limited, frozenset(hints))
    _cut_at_signature_dashes(reply, _Below(reply))
    _drop_signoffs(reply)
    _cut_at_closing_rule(reply)
    _remove_earlier_messages(reply)
    _drop_trailing_quote(reply)
    visible = [line for line, keep in zip(lines, reply.keep) if keep]
    quoted = [line for line, keep in zip(lines, reply.keep) if not keep]
    return Trimmed(visible=_strip_blank_ends(visible), quoted=_strip_blank_ends(quoted)), reply.cut


def _split_lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


_SOFT_BREAK = re.compile(r"=\r?\n")
_NOT_QP = re.compile(r"=(?![0-9A-F]{2}|\r?\n|$)", re.MULTILINE)


def _undo_quoted_printable(text: str) -> str:
    """Text still in quoted-printable ("w=\nrote:"), decoded; any other text as it is.

    The rule: the text has soft line breaks ("=" at a line end) and every "=" in it is either
    that or "=" with two upper-case hex digits (RFC 2045 6.7). Ordinary prose with an "=" in it
    ("a = b") fails the second test and is left alone."""
    if "=" not in text or not _SOFT_BREAK.search(text) or _NOT_QP.search(text):
        return text
    import quopri

    data = quopri.decodestring(text.encode("utf-8", "surrogateescape"))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def trim_text(text: str) -> Trimmed:
    """Split a plain-text reply into the member's own words and everything else."""
    if not text or not text.strip():
        return Trimmed(visible="", quoted="")
    return _trim_lines(_split_lines(_undo_quoted_printable(text)))


# --- HTML --------------------------------------------------------------------------------------

_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt", "fieldset",
    "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "li",
    "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "thead", "tfoot", "tr", "ul",
})
_VOID_TAGS = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
})
_SKIPPED_TAGS = frozenset({"head", "style", "script", "title", "template", "noscript"})

# What the clients' markup says (class and id names; Outlook on the web prefixes quoted ones "x_").
_QUOTE_CLASSES = frozenset({"yahoo_quoted", "protonmail_quote"})  # quote levels besides <blockquote>
_ATTRIBUTION_CLASSES = frozenset({"gmail_attr", "moz-cite-prefix"})
_SIGNATURE_CLASSES = frozenset({"gmail_signature", "moz-signature", "protonmail_signature_block"})
_SIGNATURE_IDS = frozenset({"signature", "ms-outlook-mobile-signature"})
# Outlook's reply header (and what precedes it): an earlier message starts here.
_EARLIER_MESSAGE_IDS = frozenset({
    "divrplyfwdmsg", "appendonsend", "mail-editor-reference-message-container",
    "olk_src_body_section", "zwchr",
})
_EARLIER_MESSAGE_CLASSES = frozenset({"outlookmessageheader"})
# Outlook for Windows draws its reply header in a div with a thin rule on top, in one of these colours.
_EARLIER_MESSAGE_STYLE = re.compile(r"border-top:solid#(?:e1e1e1|b5c4df)")


@dataclass
class _Element:
    tag: str
    quote: bool = False  # a quote level: its lines are rendered "> ..."
    hint: Kind | None = None  # what every line inside it is
    skip: bool = False  # not rendered (head, style, display:none)
    pre: bool = False
    paragraph: bool = False  # a <p> with margins: a blank line before and after


def _names(value: str | None) -> set[str]:
    """Class or id names, lower-cased, without Outlook on the web's "x_" prefix."""
    return {n.lower().removeprefix("x_") for n in (value or "").split()}


class _HtmlLines(HTMLParser):
    """Renders HTML to text lines, each with the kind the markup says it has (if it says)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.hints: dict[int, Kind] = {}
        self._open: list[_Element] = []
        # What the open elements add up to, kept as they open and close: asking the whole stack
        # on every piece of text was quadratic in unclosed elements ("<b@example.org>" x 4,000).
        self._quotes = self._skips = self._pres = 0
        self._hints: list[Kind] = []
        self._tags: dict[str, int] = {}
        self._words: list[str] = []
        self._words_have_text = False  # some of self._words is not white space
        self._line_hint: Kind | None = None  # the hint in force where the current line began
        self._line_depth = 0
        self._pending: Kind | None = None  # a hint for the next line (an empty marker element)
        self._ol_counters: list[int] = []

    # state of the open elements
    def _depth(self) -> int:
        return self._quotes

    def _hint(self) -> Kind | None:
        return self._hints[-1] if self._hints else None

    def _skipping(self) -> bool:
        return self._skips > 0

    def _in_pre(self) -> bool:
        return self._pres > 0

    def _push(self, element: _Element) -> None:
        self._open.append(element)
        self._quotes += element.quote
        self._skips += element.skip
        self._pres += element.pre
        if element.hint:
            self._hints.append(element.hint)
        self._tags[element.tag] = self._tags.get(element.tag, 0) + 1

    def _pop(self) -> _Element:
        element = self._open.pop()
        self._quotes -= element.quote
        self._skips -= element.skip
        self._pres -= element.pre
        if element.hint:
            self._hints.pop()
        self._tags[element.tag] -= 1
        return element

    # output
    def _emit(self, text: str, depth: int, hint: Kind | None) -> None:
        prefix = ">" * depth
        line = f"{prefix} {text}" if prefix and text else (prefix or text)
        if not text and self.lines and self.lines[-1] == line:
            return  # one blank line is enough
        if self._pending and text:  # the first line after an empty marker element
            hint, self._pending = hint or self._pending, None
        if hint is not None:
            self.hints[len(self.lines)] = hint
        self.lines.append(line)

    def _break(self) -> None:
        """End the current line, if anything is on it."""
        text = "".join(self._words).strip()
        self._words, self._words_have_text = [], False
        if text:
            self._emit(text, self._line_depth, self._line_hint)

    def _blank(self) -> None:
        self._break()
        if self.lines and self.lines[-1].strip(">"):
            self._emit("", self._depth(), None)

    def _add(self, text: str) -> None:
        if not self._words_have_text:  # (a flag: joining the words on every add was quadratic)
            self._line_hint, self._line_depth = self._hint(), self._depth()
        self._words.append(text)
        self._words_have_text = self._words_have_text or bool(text.strip())

    # parser callbacks
    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes, ids = _names(attrs.get("class")), _names(attrs.get("id"))
        style = (attrs.get("style") or "").replace(" ", "").lower()
        if tag == "br":
            if self._words_have_text:
                self._break()
            else:
                self._words = []
                self._emit("", self._depth(), None)
            return
        earlier = bool(ids & _EARLIER_MESSAGE_IDS or classes & _EARLIER_MESSAGE_CLASSES
                       or _EARLIER_MESSAGE_STYLE.search(style))
        if earlier:
            self._break()
            self._pending = Kind.BANNER
        if tag == "hr":
            self._break()
            self._emit("_" * 32, self._depth(), self._hint())
            return
        if tag in _VOID_TAGS:
            return
        element = _Element(tag)
        element.skip = tag in _SKIPPED_TAGS or "display:none" in style
        element.quote = tag == "blockquote" or bool(classes & _QUOTE_CLASSES)
        element.pre = tag == "pre"
        element.paragraph = tag == "p" and "msonormal" not in classes  # Outlook's have no margins
        if classes & _ATTRIBUTION_CLASSES:
            element.hint = Kind.ATTRIBUTION
        elif classes & _SIGNATURE_CLASSES or ids & _SIGNATURE_IDS:
            element.hint = Kind.SIGNOFF
        elif earlier:
            element.hint = Kind.BANNER
        if tag in _BLOCK_TAGS or element.quote:
            self._break()
        if element.paragraph:
            self._blank()
        self._push(element)
        if tag == "ol":
            self._ol_counters.append(0)
        elif tag == "li":
            if self._ol_counters and self._tags.get("ol"):
                self._ol_counters[-1] += 1
                self._add(f"{self._ol_counters[-1]}. ")
            else:
                self._add("- ")
        elif tag in ("td", "th"):
            self._add(" ")

    def handle_endtag(self, tag):
        if not self._tags.get(tag):
            return  # a stray end tag
        closing = []  # the elements this end tag closes (each element is closed once: linear)
        for element in reversed(self._open):
            closing.append(element)
            if element.tag == tag:
                break
        if tag in _BLOCK_TAGS or any(e.quote for e in closing if e.tag == tag):
            self._break()
        while self._open:
            element = self._pop()
            if element.tag == "ol" and self._ol_counters:
                self._ol_counters.pop()
            if element.tag == tag:
                break
        if element.paragraph:
            self._blank()

    def handle_data(self, data):
        if self._skipping():
            return
        if self._in_pre():
            parts = data.split("\n")
            for k, part in enumerate(parts):
                if k:
                    self._break()
                self._add(part)
            return
        text = re.sub(r"\s+", " ", data)
        if text.strip() or self._words:
            self._add(text)

    def close(self):
        super().close()
        self._break()


def trim_html(html: str) -> Trimmed:
    """Split an HTML reply into the member's own words and everything else, as plain text."""
    if not html or not html.strip():
        return Trimmed(visible="", quoted="")
    from mailer.inbound.htmlbound import bound_html, text_of

    html, _, limited = bound_html(html)  # linear; html.parser can stall on hostile markup
    if limited:  # too big or busy to render: its text, trimmed as text
        trimmed = trim_text(text_of(html))
        return Trimmed(trimmed.visible, trimmed.quoted, limited=True)
    parser = _HtmlLines()
    parser.feed(html)
    parser.close()
    return _trim_lines(parser.lines, parser.hints)


def trim_message(parsed) -> Trimmed:
    """A parsed message trimmed as Mailer shows it: its HTML when it has no text part and the HTML
    is within its bounds, else its text. The one rule processing, `inbound parse` and `evaluate` share."""
    if parsed.html_only and parsed.html and not parsed.html_limited:
        return trim_html(parsed.html)
    return trim_text(parsed.text or "")
