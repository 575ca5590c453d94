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
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

from hub.x12.envelope import Delimiters

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
    decomposed = unicodedata.normalize("NFKD", value.translate(_FOLD))
    folded = decomposed.encode("ascii", "ignore").decode("ascii").upper()
    kept = "".join(
        c if (c.isalnum() or c in _BASIC_PUNCTUATION) and c not in delimiters else " " for c in folded
    )
    return re.sub(r"\s+", " ", kept).strip()[:max_length].rstrip()


def identifier(value: str | None, delimiters: Delimiters, what: str, max_length: int, min_length: int = 1) -> str:
    """An id sent exactly as given, or ``ValueError`` saying why it cannot be."""
    if value is None or not value.strip():
        raise ValueError(f"{what} is missing")
    if value != value.strip():
        raise ValueError(f"{what} has leading or trailing spaces")
    if not min_length <= len(value) <= max_length:
        raise ValueError(f"{what} must be {min_length}-{max_length} characters, it has {len(value)}")
    bad = sorted({c for c in value if c in delimiters or not _extended(c)})
    if bad:
        raise ValueError(f"{what} contains characters X12 cannot carry here: {''.join(bad)!r}")
    return value


def _extended(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char == " " or char in _EXTENDED_PUNCTUATION)


def decimal_text(amount: Decimal) -> str:
    """An X12 ``R`` value: no exponent, no trailing zeros (180, 180.5, 180.25)."""
    if not amount.is_finite():
        raise ValueError(f"{amount} is not a number")
    if amount == amount.to_integral_value():
        return str(amount.quantize(Decimal(1)))
    return format(amount.normalize(), "f")


def money(amount: Decimal) -> str:
    """A monetary ``R`` value; more precision than cents is an input mistake, not rounded away."""
    if amount.is_finite() and amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"amount {amount} has fractions of a cent")
    return decimal_text(amount)


def date8(day: date) -> str:
    """D8 / CCYYMMDD."""
    return day.strftime("%Y%m%d")


def time4(moment: datetime) -> str:
    """HHMM."""
    return moment.strftime("%H%M")


class SegmentList:
    """The segments of one interchange, in order, joined only at the end."""

    def __init__(self, delimiters: Delimiters, *, line_break: bool = True):
        self.delimiters = delimiters
        self.terminator = delimiters.segment + ("\n" if line_break else "")
        self.segments: list[str] = []

    def add(self, segment_id: str, *elements: Element) -> None:
        """Append one segment; trailing empty elements (and components) are dropped."""
        rendered = [self._element(e) for e in elements]
        while rendered and not rendered[-1]:
            rendered.pop()
        self.segments.append(self.delimiters.element.join([segment_id, *rendered]))

    def add_fixed(self, segment_id: str, *elements: str) -> None:
        """A fixed-width segment (ISA): every element kept, padding included.

        Not checked for delimiters: ISA11 and ISA16 *are* delimiters; the caller checks the rest.
        """
        self.segments.append(self.delimiters.element.join([segment_id, *elements]))

    def __len__(self) -> int:
        return len(self.segments)

    def to_bytes(self) -> bytes:
        return "".join(s + self.terminator for s in self.segments).encode("ascii")

    def _element(self, value: Element) -> str:
        if value is None:
            return ""
        if isinstance(value, str):
            return self._check(value)
        parts = [self._check(v or "") for v in value]
        while parts and not parts[-1]:
            parts.pop()
        return self.delimiters.component.join(parts)

    def _check(self, value: str) -> str:
        # Every value is cleaned or checked before it gets here; a delimiter now is a bug.
        if any(c in self.delimiters for c in value) or not value.isascii():
            raise AssertionError(f"unsafe X12 element value {value!r}")
        return value
