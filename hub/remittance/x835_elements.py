"""The 835 reader's bottom layer: bytes to segments' elements, and element values.

    _blocks, _texts, _chain, _element_lists
                              bytes or text, a chunk at a time, to each segment's element list
    _amount, _date            an X12 decimal and a CCYYMMDD, cached (both immutable, bounded)
    _adjustments              a CAS segment's (group, reason, amount, quantity) adjustments

Used by ``x835`` (the claim loops) and ``x835_transaction`` (header, PLB, trailer) only; the
names stay private to the 835 reader. A value that cannot be read raises ``_Malformed``, whose
message names the element (e.g. CAS03) and at most a code, never a value that could identify a
patient; the reader quarantines the claim it belongs to.
"""

from __future__ import annotations

import codecs
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import BinaryIO, Iterable, Iterator

from bhhub.remittance.x835_events import Adjustment, _new_adjustment
from bhhub.x12.envelope import Delimiters
from bhhub.x12.tokens import ISA_LENGTH

GROUP_CODES = frozenset({"CO", "OA", "PI", "PR"})  # 5010 has no CR (4010) and no OI (6.3)
CHUNK_SIZE = 1 << 18
ZERO = Decimal(0)
_WHITESPACE = " \t\r\n\ufeff"


def _blocks(stream: BinaryIO) -> Iterator[bytes]:
    while block := stream.read(CHUNK_SIZE):
        yield block


class _Malformed(Exception):
    """A segment of a claim that cannot be read; the claim becomes a BadClaim."""


def _texts(blocks: Iterator[bytes | str]) -> tuple[str, Iterator[str]]:
    """The first piece of text (through the ISA), and the rest of the text piece by piece."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def decode(block: bytes | str) -> str:
        return block if isinstance(block, str) else decoder.decode(block)

    head = ""
    for block in blocks:
        head += decode(block)
        if len(head.lstrip(_WHITESPACE)) >= ISA_LENGTH:
            break

    def rest() -> Iterator[str]:
        for block in blocks:
            yield decode(block)
        yield decoder.decode(b"", final=True)

    return head.lstrip(_WHITESPACE), rest()


def _element_lists(texts: Iterable[str], delimiters: Delimiters) -> Iterator[list[str]]:
    """Each segment split into its elements (``[0]`` the id). Line breaks are not data in X12,
    so unless one is the terminator they are dropped wholesale, a chunk at a time."""
    terminator, separator = delimiters.segment, delimiters.element
    breaks = [c for c in "\r\n" if c != terminator]
    rest = ""
    for text in texts:
        for character in breaks:
            if character in text:
                text = text.replace(character, "")
        pieces = (rest + text).split(terminator)
        rest = pieces.pop()
        for piece in pieces:
            if not piece or piece[0] <= " " or piece[-1] <= " ":
                piece = piece.strip(_WHITESPACE)
                if not piece:
                    continue
            yield piece.split(separator)
    rest = rest.strip(_WHITESPACE)
    if rest:
        yield rest.split(separator)


# Values repeat a great deal in an 835 (charges, fee-schedule amounts, service dates): a small
# cache spares most Decimal and date constructions. Both are immutable; the caches are bounded.
_AMOUNTS: dict[str, Decimal] = {}
_DATES: dict[str, date] = {}
_CACHE_LIMIT = 8192


def _amount(text: str, name: str) -> Decimal:
    value = _AMOUNTS.get(text)
    if value is None:
        if not text:
            raise _Malformed(f"{name} is missing")
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise _Malformed(f"{name} is not a number") from None
        # Decimal() also takes "NaN", "1e3", "1_000" and spaces; an X12 decimal (R) is none of them.
        if not (value.is_finite() and text.isascii() and text.lstrip("-").replace(".", "", 1).isdigit()):
            raise _Malformed(f"{name} is not a number")
        if len(_AMOUNTS) >= _CACHE_LIMIT:
            _AMOUNTS.clear()
        _AMOUNTS[text] = value
    return value


def _date(text: str) -> date | None:
    """CCYYMMDD as a date; None when it is not one."""
    value = _DATES.get(text)
    if value is None:
        if len(text) != 8 or not text.isdigit():
            return None
        try:
            value = date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            return None
        if len(_DATES) >= _CACHE_LIMIT:
            _DATES.clear()
        _DATES[text] = value
    return value


def _element(el: list[str], position: int) -> str:
    return el[position] if position < len(el) else ""


def _adjustments(el: list[str]) -> list[Adjustment]:
    """CAS: the group code, then up to six (reason, amount, quantity) triplets."""
    group = el[1] if len(el) > 1 else ""
    if group not in GROUP_CODES:
        raise _Malformed(f"CAS01 group code {group or '(empty)'} is not one of CO, OA, PI, PR")
    count = len(el)
    if count == 4 and el[2]:  # by far the commonest: one reason and its amount
        return [_new_adjustment(group, el[2], _amount(el[3], "CAS03"), None)]
    if count > 20:
        raise _Malformed(f"it has {count - 1} elements; a CAS has at most 19 (six adjustments)")
    found = []
    for position in range(2, count, 3):
        reason = el[position]
        amount = el[position + 1] if position + 1 < count else ""
        quantity = el[position + 2] if position + 2 < count else ""
        if not reason:
            if amount or quantity:
                raise _Malformed(f"CAS{position + 1:02d} has an amount without a reason code in CAS{position:02d}")
            continue
        if not amount:
            raise _Malformed(f"CAS{position:02d} reason {reason} has no amount in CAS{position + 1:02d}")
        found.append(_new_adjustment(group, reason, _amount(amount, _CAS_NAMES[position + 1]),
                                     _amount(quantity, _CAS_NAMES[position + 2]) if quantity else None))
    if not found:
        raise _Malformed("it has no adjustment reason and amount")
    return found


_CAS_NAMES = tuple(f"CAS{position:02d}" for position in range(21))


def _chain(head: str, rest: Iterator[str]) -> Iterator[str]:
    yield head
    yield from rest
