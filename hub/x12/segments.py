"""Building X12 segments that cannot break the file they are written into.

Two kinds of values go into elements. Free text (names, addresses) is cleaned: accents folded to
ASCII, upper-cased, reduced to the X12 basic character set minus the delimiters in force, spaces
collapsed, cut to the element's maximum length. Identifiers (member ids, control numbers, codes)
are never altered, since a payer or an 835 must echo them back exactly: one that cannot be sent
as it stands raises ``ValueError``, which the writer turns into an ``InputError`` naming the claim.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

from bhhub.x12.delimiters import Delimiters

# X12 basic character set (X12.6): upper-case letters, digits, space and these.
_BASIC_PUNCTUATION = "!\"&'()*+,-./:;?="
# The 5010 extended set adds lower case and these; identifiers may use any of them.
_EXTENDED_PUNCTUATION = _BASIC_PUNCTUATION + "%~@[]_{}\\|<>^`#$"

# Letters NFKD does not decompose into an ASCII base letter.
_FOLD = str.maketrans({"Ø": "O", "ø": "o", "Æ": "AE", "æ": "ae", "Œ": "OE", "œ": "oe", "ß": "ss",
                       "Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Þ": "TH", "þ": "th", "ı": "i"})

Element = str | Sequence[str] | None  # a sequence is a composite, joined by the component separator


def text(value: str | None, delimiters: Delimiters, max_length: int) -> str:
    """Free text made safe for an element: '' when nothing printable is left."""
    if not value:
        return ""
    if not value.isascii():
        decomposed = unicodedata.normalize("NFKD", value.translate(_FOLD))
        value = decomposed.encode("ascii", "ignore").decode("ascii")
    kept = value.upper().translate(_text_table(delimiters))
    return " ".join(kept.split())[:max_length].rstrip()


@lru_cache(maxsize=8)
def _text_table(delimiters: Delimiters) -> dict[int, str]:
    """ASCII characters outside the basic set, or that are delimiters, become spaces."""
    return {
        i: " " for i in range(128)
        if not ((chr(i).isalnum() or chr(i) in _BASIC_PUNCTUATION) and chr(i) not in delimiters)
    }


def identifier(value: str | None, delimiters: Delimiters, what: str, max_length: int, min_length: int = 1) -> str:
    """An id sent exactly as given, or ``ValueError`` saying why it cannot be."""
    if value is None or not value.strip():
        raise ValueError(f"{what} is missing")
    if value != value.strip():
        raise ValueError(f"{what} has leading or trailing spaces")
    if not min_length <= len(value) <= max_length:
        raise ValueError(f"{what} must be {min_length}-{max_length} characters, it has {len(value)}")
    if not _identifier_pattern(delimiters).fullmatch(value):
        bad = sorted({c for c in value if c in delimiters or not _extended(c)})
        raise ValueError(f"{what} contains characters X12 cannot carry here: {''.join(bad)!r}")
    return value


@lru_cache(maxsize=8)
def _identifier_pattern(delimiters: Delimiters) -> re.Pattern[str]:
    allowed = "".join(c for c in _EXTENDED_PUNCTUATION + " " if c not in delimiters)
    return re.compile(f"[A-Za-z0-9{re.escape(allowed)}]*")


def _extended(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char == " " or char in _EXTENDED_PUNCTUATION)


@lru_cache(maxsize=4096)
def decimal_text(amount: Decimal) -> str:
    """An X12 ``R`` value: no exponent, no trailing zeros (180, 180.5, 180.25)."""
    if not amount.is_finite():
        raise ValueError(f"{amount} is not a number")
    if amount == amount.to_integral_value():
        return str(amount.quantize(Decimal(1)))
    return format(amount.normalize(), "f")


@lru_cache(maxsize=4096)
def money(amount: Decimal) -> str:
    """A monetary ``R`` value; more precision than cents is an input mistake, not rounded away."""
    if amount.is_finite() and amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"amount {amount} has fractions of a cent")
    return decimal_text(amount)


@lru_cache(maxsize=4096)
def date8(day: date) -> str:
    """D8 / CCYYMMDD."""
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


def time4(moment: datetime) -> str:
    """HHMM."""
    return moment.strftime("%H%M")


class SegmentList:
    """The segments of one interchange, in order, joined only at the end."""

    def __init__(self, delimiters: Delimiters, *, line_break: bool = True):
        self.delimiters = delimiters
        self.terminator = delimiters.segment + ("\n" if line_break else "")
        self.segments: list[str] = []
        self._unsafe = re.compile("[" + re.escape("".join(
            (delimiters.element, delimiters.repetition, delimiters.component, delimiters.segment))) + "]|[^\x00-\x7f]")

    def add(self, segment_id: str, *elements: Element) -> None:
        """Append one segment; trailing empty elements (and components) are dropped."""
        rendered: list[str] = []
        values: list[str] = []  # every value as given, checked at once below
        component = self.delimiters.component
        for element in elements:
            if element is None:
                rendered.append("")
            elif type(element) is str:
                rendered.append(element)
                values.append(element)
            else:
                parts = [v or "" for v in element]
                while parts and not parts[-1]:
                    parts.pop()
                rendered.append(component.join(parts))
                values.extend(parts)
        while rendered and not rendered[-1]:
            rendered.pop()
        # Every value is cleaned or checked before it gets here; a delimiter now is a bug.
        if self._unsafe.search("".join(values)):
            raise AssertionError(f"unsafe X12 element value in {segment_id}")
        self.segments.append(self.delimiters.element.join([segment_id, *rendered]))

    def add_fixed(self, segment_id: str, *elements: str) -> None:
        """A fixed-width segment (ISA): every element kept, padding included.

        Not checked for delimiters: ISA11 and ISA16 *are* delimiters; the caller checks the rest.
        """
        self.segments.append(self.delimiters.element.join([segment_id, *elements]))

    def __len__(self) -> int:
        return len(self.segments)

    def to_text(self) -> str:
        return "".join(s + self.terminator for s in self.segments)

    def to_bytes(self) -> bytes:
        return self.to_text().encode("ascii")
