"""Reading a message's MSH and writing the HL7 v2 ACK that answers it (original acknowledgment mode).

Pure functions on bytes, no sockets. Bytes are decoded as latin-1 so every byte of the
sender's MSH fields comes back unchanged in the ACK, whatever MSH-18 names.

    MSH|^~\\&|<MSH-5>|<MSH-6>|<MSH-3>|<MSH-4>|<now>||ACK^<trigger>^ACK|<new id>|<MSH-11>|<MSH-12>
    MSA|AA|<MSH-10>                                                 stored and usable (or held already)
    MSA|AE|<MSH-10>|<reason>   ERR ...                              stored, quarantined with the reason
    MSA|AR|<MSH-10>|<reason>   ERR ...                              not stored: send again, or fix it

The ACK uses the message's own field separator and encoding characters (MSH-1, MSH-2).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

ACCEPT, ERROR, REJECT = "AA", "AE", "AR"

DEFAULT_VERSION = "2.5.1"  # what an AR says when the message had no MSH to echo
DEFAULT_SEPARATOR = "|"
DEFAULT_ENCODING = "^~\\&"

# HL7 table 0357, message error condition codes.
SEGMENT_SEQUENCE_ERROR = "100"  # no MSH where one must be
UNSUPPORTED_MESSAGE_TYPE = "200"  # no installed plugin reads this message
APPLICATION_INTERNAL_ERROR = "207"  # the hub could not store or use it

MSA_TEXT_MAX = 80  # MSA-3 is ST(80) in v2.3-v2.5
ERR_TEXT_MAX = 250


class NotHL7(ValueError):
    """The bytes do not start with an MSH segment."""


@dataclass(frozen=True)
class MessageHeader:
    """The MSH fields an ACK needs. ``field(n)`` is MSH-n, counted as the standard counts."""

    separator: str  # MSH-1
    encoding: str  # MSH-2: component, repetition, escape, subcomponent (and, from v2.7, truncation)
    fields: tuple[str, ...]  # fields[0] is "MSH"; fields[n - 1] is MSH-n for n >= 2

    def field(self, n: int) -> str:
        if n == 1:
            return self.separator
        return self.fields[n - 1] if n - 1 < len(self.fields) else ""

    @property
    def component(self) -> str:
        return self.encoding[0] if self.encoding else "^"

    @property
    def escape(self) -> str:
        return self.encoding[2] if len(self.encoding) > 2 else ""

    @property
    def control_id(self) -> str:  # MSH-10
        return self.field(10)

    @property
    def version(self) -> str:  # MSH-12, first component (v2.5 made it a VID)
        return self.field(12).split(self.component)[0]

    @property
    def trigger(self) -> str:  # MSH-9.2
        parts = self.field(9).split(self.component)
        return parts[1] if len(parts) > 1 else ""


_SEGMENT_END = re.compile(r"[\r\n]")


def read_header(message: bytes) -> MessageHeader:
    """The MSH of ``message`` (leading blank lines allowed); NotHL7 when there is none.

    Also reads the MSH of a message cut short (an oversized one), as long as its first segment
    is there: the ACK then still names the message it refuses.
    """
    text = message.lstrip(b" \t\r\n").decode("latin-1")
    if not text.startswith("MSH") or len(text) < 8:
        raise NotHL7("the message does not start with an MSH segment")
    separator = text[3]
    if separator.isalnum() or separator in " \r\n":
        raise NotHL7("MSH-1 (the field separator) is not a separator character")
    segment = _SEGMENT_END.split(text, 1)[0]
    fields = tuple(segment.split(separator))
    encoding = fields[1] if len(fields) > 1 else ""
    if not 4 <= len(encoding) <= 5 or separator in encoding or len(set(encoding)) != len(encoding):
        raise NotHL7("MSH-2 (the encoding characters) is not four or five distinct characters")
    return MessageHeader(separator, encoding, fields)


def escape_text(text: str, header: MessageHeader | None = None) -> str:
    """``text`` safe inside one HL7 field: delimiters as escape sequences (HL7 v2 2.7.4),
    line breaks and other control characters as spaces."""
    separator = header.separator if header else DEFAULT_SEPARATOR
    encoding = header.encoding if header else DEFAULT_ENCODING
    esc = encoding[2] if len(encoding) > 2 else "\\"
    names = {separator: "F", encoding[0]: "S", encoding[1]: "R", esc: "E", encoding[3]: "T"}
    if len(encoding) > 4:
        names[encoding[4]] = "P"
    out = []
    for ch in text:
        if ch in names:
            out.append(f"{esc}{names[ch]}{esc}")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def new_control_id() -> str:
    """MSH-10 of an ACK: unique without any state; 20 characters, MSH-10's length in v2.3."""
    return uuid.uuid4().hex[:20].upper()


def timestamp(now: datetime | None = None) -> str:
    """MSH-7: ``YYYYMMDDHHMMSS+0000`` (UTC), a TS every version from 2.3 reads."""
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y%m%d%H%M%S+0000")


def build_ack(
    header: MessageHeader | None,
    code: str,
    text: str | None = None,
    *,
    error_code: str = APPLICATION_INTERNAL_ERROR,
    now: datetime | None = None,
    control_id: str | None = None,
) -> bytes:
    """The ACK (``AA``, ``AE`` or ``AR``) to ``header``'s message, segments ended by CR.

    ``text`` (no PHI: it is sent back as written) goes, escaped, into MSA-3 (shortened to its 80
    characters) and whole into the ERR segment. ``header`` None answers a payload with no MSH.
    """
    if code not in (ACCEPT, ERROR, REJECT):
        raise ValueError(f"not an acknowledgment code: {code!r}")
    sep = header.separator if header else DEFAULT_SEPARATOR
    enc = header.encoding if header else DEFAULT_ENCODING
    comp = enc[0]
    field = header.field if header else (lambda n: "")
    version = header.version if header else DEFAULT_VERSION
    msh = [
        "MSH", enc,
        field(5), field(6),  # the receiver of the message sends the ACK ...
        field(3), field(4),  # ... to its sender
        timestamp(now), "",
        _ack_type(header.trigger if header else "", version, comp),
        control_id or new_control_id(),
        field(11) if header else "P",
        field(12) if header else DEFAULT_VERSION,
    ]
    segments = [sep.join(msh)]
    msa = ["MSA", code, field(10)]
    if code != ACCEPT and text:
        msa.append(escape_text(_truncate(text, MSA_TEXT_MAX), header))
    segments.append(sep.join(msa))
    if code != ACCEPT and text:
        segments.append(_err_segment(header, text, error_code, version, sep, enc))
    return ("\r".join(segments) + "\r").encode("latin-1", errors="replace")


def _ack_type(trigger: str, version: str, comp: str) -> str:
    # MSH-9.3 (message structure) arrived in v2.3.1; an earlier receiver reads two components.
    if _before(version, (2, 3, 1)):
        return f"ACK{comp}{trigger}" if trigger else "ACK"
    return f"ACK{comp}{trigger}{comp}ACK"


def _err_segment(header, text: str, error_code: str, version: str, sep: str, enc: str) -> str:
    comp, sub = enc[0], enc[3]
    detail = escape_text(_truncate(text, ERR_TEXT_MAX), header)
    condition = f"{error_code}{comp}{_CONDITION_NAMES.get(error_code, '')}{comp}HL70357"
    if _before(version, (2, 5)):
        # v2.3/v2.4 ERR-1 (CM_ELD): segment^sequence^field^code&text&table
        return sep.join(["ERR", f"{comp}{comp}{comp}{error_code}{sub}{detail}{sub}HL70357"])
    # v2.5+: ERR-3 error code (CWE), ERR-4 severity, ERR-8 user message
    return sep.join(["ERR", "", "", condition, "E", "", "", "", detail])


_CONDITION_NAMES = {
    SEGMENT_SEQUENCE_ERROR: "Segment sequence error",
    UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    APPLICATION_INTERNAL_ERROR: "Application internal error",
}


def _before(version: str, than: tuple[int, ...]) -> bool:
    """True when the version id (``2.3``, ``2.5.1``) is older than ``than``; unknown: not older."""
    parts = re.findall(r"\d+", version)
    if not parts:
        return False
    return tuple(int(p) for p in parts) < than


def read_ack(ack: bytes) -> tuple[str, str, str]:
    """(MSA-1, MSA-2, MSA-3 as sent) of an ACK: what a sender, or a test, looks at."""
    header = read_header(ack)
    for segment in _SEGMENT_END.split(ack.decode("latin-1")):
        if segment.startswith("MSA"):
            fields = segment.split(header.separator) + ["", "", ""]
            return fields[1], fields[2], fields[3]
    raise NotHL7("the ACK has no MSA segment")
