"""What each line of a reply is: the first step of trimming (mailer.inbound.trim).

Every line is given a kind (`Kind`): blank, text, quote ("> ..."), attribution ("On <date>,
<someone> wrote:" in a dozen languages, also when a client wrapped it over several lines), banner
("-----Original Message-----", "Begin forwarded message:"), header block ("From: / Sent: / To: /
Subject:"), signature separator ("-- "), horizontal rule ("_____"), or sign-off ("Sent from my
iPhone", "Envoyé de mon iPad", "Get Outlook for Android"...). Each kind is recognised by line
scans and anchored patterns over one line (or a few wrapped ones), never by backtracking over the
message. trim.py decides from these kinds which lines stay visible.

Over 400 lines on purpose: it is the vocabulary of replies (the words of attributions, banners,
header fields and sign-offs in a dozen languages) with one small recogniser per kind; split
further, each piece would be a table and a function that only classify_lines calls.
"""

from __future__ import annotations

import re
from enum import Enum

__all__ = ["Kind", "HEAD_KINDS", "SETEXT_UNDERLINE", "classify_lines", "dequote", "find_heads"]


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

# An attribution wrapped by a client spans at most this many lines.
ATTRIBUTION_MAX_LINES = 5


def _words(*words: str) -> str:
    """A regex alternation of literal words, longest first so that the longest one wins."""
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


# --- quotes ------------------------------------------------------------------------------------

# "> text" (any depth), "| text" (some webmails; not a Markdown table row, which has more pipes),
# and Supercite's "Name> text". Four spaces or more of indentation is code, not a quote.
_QUOTE = re.compile(r"^[ \t]{0,3}(?:>|\|(?!.*\|)|[A-Za-z]{1,12}>(?=\s|$))")
_ONE_QUOTE_LEVEL = re.compile(r"^[ \t]{0,3}(?:>|\||[A-Za-z]{1,12}>) ?")


def dequote(line: str) -> str:
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
SETEXT_UNDERLINE = re.compile(r"^\s*(?:=+|-+)\s*$")  # "Agenda\n======" is a heading, not a rule

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


def find_heads(lines: list[str], exclude: list[bool]) -> dict[int, Kind]:
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


def classify_lines(lines: list[str], hints: dict[int, Kind]) -> list[Kind]:
    fenced = _fenced(lines)
    heads = find_heads(lines, fenced)
    kinds = []
    for i, line in enumerate(lines):
        if i in hints:
            kinds.append(hints[i])
        elif fenced[i]:
            kinds.append(Kind.BLANK if not line.strip() else Kind.TEXT)
        else:
            kinds.append(heads.get(i) or _line_kind(line))
    return kinds
