"""HL7 v2 messages as bytes: framing, message boundaries, segments, fields, escapes.

The reader splits only what a mapping asks for: a message is cut into segments once, and a
segment into fields, components and sub-components only when a path reads it. The delimiters
come from each message's own MSH-1 and MSH-2 (HL7 v2.5.1 chapter 2, 2.5.4), so a feed that
uses ``#`` instead of ``&`` is read the same. Escape sequences (2.7) are decoded in the values
read: ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\``, ``\\Xhh\\``; formatting commands (``\\.br\\``) become a space.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bhhub.errors import InputError

from bhhub.plugins.ehr.hl7v2.shown import IDENTIFIER, shown

# MLLP framing (HL7 v2.5.1 appendix C): <VT> message <FS><CR>. Stripped wherever found.
_FRAMING = re.compile(rb"[\x0b\x1c]")
# A message starts at a segment named MSH; segments end with CR (the standard), LF or CRLF.
_MESSAGE_START = re.compile(rb"(?:^|(?<=[\r\n]))MSH(?=[^A-Za-z0-9\r\n])")
_SEGMENT_END = re.compile(r"\r\n|\r|\n")
# Batch envelope segments (file and batch headers and trailers) wrap messages; they are not one.
_BATCH_SEGMENTS = (b"FHS", b"BHS", b"BTS", b"FTS")
_BATCH_TRAILER = re.compile(rb"(?:^|[\r\n])(?:BTS|FTS)[^A-Za-z0-9\r\n]")


def strip_framing(content: bytes) -> bytes:
    if b"\x0b" in content or b"\x1c" in content:
        content = _FRAMING.sub(b"", content)
    return content.lstrip(b"\xef\xbb\xbf \t\r\n")


def looks_like_hl7(content: bytes) -> bool:
    head = strip_framing(content[:64])
    return len(head) > 8 and head[:3] in (b"MSH", b"FHS", b"BHS") and not head[3:4].isalnum()


def split_messages(content: bytes) -> list[bytes]:
    """The messages in a file, each from its MSH to the next: one inbox item each.

    A file holding one message is returned as it is (its bytes, hence its sha256, unchanged).
    Text before the first MSH that is not batch envelope is kept as a part of its own, so it is
    quarantined rather than silently dropped.
    """
    body = strip_framing(content)
    starts = [m.start() for m in _MESSAGE_START.finditer(body)]
    if not starts or (starts == [0] and not _BATCH_TRAILER.search(body)):
        return [content]  # one message (or not HL7 at all, for parse to refuse): as it came
    parts: list[bytes] = []
    if _has_leading_text(body, starts):
        parts.append(body[:starts[0]].strip())
    for number, start in enumerate(starts):
        end = starts[number + 1] if number + 1 < len(starts) else len(body)
        message = _without_batch_segments(body[start:end])
        if message:
            parts.append(message)
    return parts


def _has_leading_text(body: bytes, starts: list[int]) -> bool:
    leading = body[:starts[0]] if starts else body
    lines = [line for line in re.split(rb"[\r\n]+", leading) if line.strip()]
    return any(line[:3] not in _BATCH_SEGMENTS for line in lines)


def _without_batch_segments(message: bytes) -> bytes:
    """The message's bytes as in the file (framing aside), less batch envelope segments, ending
    with one segment terminator of its own kind."""
    found = re.search(rb"\r\n|\r|\n", message)
    terminator = found.group() if found else b"\r"
    body = message.rstrip(b"\r\n \t")
    if not _BATCH_TRAILER.search(body):
        return body + terminator
    lines = re.split(rb"\r\n|\r|\n", body)
    return terminator.join(line for line in lines if line and line[:3] not in _BATCH_SEGMENTS) + terminator


@dataclass(frozen=True)
class Delimiters:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"


@dataclass
class Segment:
    """One segment; fields are split on first use."""

    name: str
    raw: str
    delimiters: Delimiters
    position: int  # 0-based among the message's segments
    _fields: list[str] | None = field(default=None, repr=False)

    def fields(self) -> list[str]:
        if self._fields is None:
            parts = self.raw.split(self.delimiters.field)
            if self.name == "MSH":  # MSH-1 is the field separator itself
                parts.insert(1, self.delimiters.field)
            self._fields = parts
        return self._fields

    def field(self, number: int) -> str:
        """Field ``number`` as sent (repetitions, components and escapes untouched)."""
        parts = self.fields()
        return parts[number] if number < len(parts) else ""

    def repetitions(self, number: int) -> list[str]:
        raw = self.field(number)
        if not raw:
            return []
        if self.name == "MSH" and number in (1, 2):
            return [raw]
        return raw.split(self.delimiters.repetition)

    def value(self, number: int, component: int | None = None, subcomponent: int | None = None,
              repetition: int = 0) -> str:
        """One value: a field's first repetition, its component, its sub-component, decoded.

        A component read without a sub-component is its first sub-component (a TS inside a DR
        reads as its time), so ``FT1-4.1`` means the same in v2.3 and v2.5.1.
        """
        reps = self.repetitions(number)
        if repetition >= len(reps):
            return ""
        return read_value(reps[repetition], self.delimiters, component, subcomponent)


def read_value(raw: str, d: Delimiters, component: int | None, subcomponent: int | None) -> str:
    if component is None:
        value = raw.split(d.component, 1)[0].split(d.subcomponent, 1)[0]
    else:
        parts = raw.split(d.component)
        value = parts[component - 1] if component <= len(parts) else ""
        subs = value.split(d.subcomponent)
        index = (subcomponent or 1) - 1
        value = subs[index] if index < len(subs) else ""
    return unescape(value, d).strip() if d.escape in value else value.strip()


def unescape(value: str, d: Delimiters) -> str:
    e = d.escape
    if not e or e not in value:
        return value
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        end = value.find(e, i + 1) if ch == e else -1
        if ch != e or end < 0:
            out.append(ch)
            i += 1
            continue
        code = value[i + 1:end]
        out.append(getattr(d, _ESCAPES[code]) if code in _ESCAPES else _other(code))
        i = end + 1
    return "".join(out)


_ESCAPES = {"F": "field", "S": "component", "T": "subcomponent", "R": "repetition", "E": "escape"}


def _other(code: str) -> str:
    if code.startswith("X") and len(code) > 1:
        try:
            return bytes.fromhex(code[1:]).decode("latin-1")
        except ValueError:
            return ""
    if code.startswith("."):  # formatting commands (\.br\, \.sp\): a space keeps words apart
        return " "
    return ""  # \H\ \N\ (highlighting) and unknown sequences carry no text


@dataclass
class Message:
    """A message cut into segments, with its delimiters and MSH facts."""

    segments: list[Segment]
    delimiters: Delimiters
    _by_name: dict[str, list[Segment]] = field(default_factory=dict, repr=False)

    @property
    def msh(self) -> Segment:
        return self.segments[0]

    def all(self, name: str) -> list[Segment]:
        return self._by_name.get(name, [])

    def first(self, name: str) -> Segment | None:
        found = self._by_name.get(name)
        return found[0] if found else None

    @property
    def control_id(self) -> str:
        return self.msh.value(10) or "(no MSH-10)"

    @property
    def message_type(self) -> tuple[str, str]:
        return self.msh.value(9, 1), self.msh.value(9, 2)

    @property
    def version(self) -> str:
        return self.msh.value(12, 1)

    def where(self, label: str | None = None) -> str:
        """``FT1 set 2 in message MSG00042`` (or ``message MSG00042``): how refusals name the place.
        MSH-10 is quoted only when it looks like a control id (``bhhub.plugins.ehr.hl7v2.shown``)."""
        message = f"message {shown(self.msh.value(10), IDENTIFIER)}" if self.msh.value(10) else "message (no MSH-10)"
        return f"{label} in {message}" if label else message


def read_message(content: bytes) -> Message:
    """A message's segments, or ``InputError`` naming what makes it unreadable."""
    body = strip_framing(content)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("latin-1")  # HL7 v2 feeds are often ISO 8859-1 (MSH-18)
    if not text.startswith("MSH") or len(text) < 8:
        raise InputError("not an HL7 v2 message: it does not start with an MSH segment",
                         fix="send one message per item, starting with MSH")
    separator = text[3]
    chars = text[4:9].split(separator, 1)[0]
    if separator.isalnum() or separator.isspace() or not chars or any(c.isalnum() for c in chars):
        raise InputError("MSH-1/MSH-2 do not define the delimiters (expected e.g. MSH|^~\\&)",
                         fix="correct the MSH segment's field separator and encoding characters")
    delimiters = Delimiters(separator, chars[0:1] or "^", chars[1:2] or "~", chars[2:3], chars[3:4] or "&")
    segments: list[Segment] = []
    by_name: dict[str, list[Segment]] = {}
    for line in _SEGMENT_END.split(text):
        if not line.strip():
            continue
        name = line[:3]
        segment = Segment(name, line, delimiters, len(segments))
        segments.append(segment)
        by_name.setdefault(name, []).append(segment)
    return Message(segments, delimiters, by_name)
