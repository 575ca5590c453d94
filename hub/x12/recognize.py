"""What kind of X12 an inbound payload is, from its first few kilobytes.

    recognize(data)          # Recognized(kind="999", version="005010X231A1", ...) or None

Called on every inbound payload (FHIR JSON and HL7 too), so content that does not start with
"ISA" (after whitespace or a byte-order mark) is turned away after looking at a few bytes.
Content that does start with "ISA" but whose ISA cannot be read raises ``InputError``, so the
intake can quarantine it with a reason instead of passing it to the next plugin.

The kind comes from the first functional group: GS01 (functional identifier) and GS08 (the
implementation guide), domain reference 5.1. An interchange with a TA1 and no GS is a TA1.
Given the registered transactions (``bhhub.x12.registry``), the one whose transaction set (ST01
of the first transaction) and guide match names the kind: that is how a plugin's 278 or
proprietary acknowledgment is told apart from what bhhub knows by itself.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from typing import TYPE_CHECKING

from bhhub.errors import InputError

if TYPE_CHECKING:
    from bhhub.x12.registry import TransactionRegistry

HEAD_SIZE = 4096  # an ISA, a TA1 or two and a GS fit many times over
_ISA_LENGTH = 106  # through the segment terminator
_WHITESPACE = b" \t\r\n"
_TEXT_WHITESPACE = " \t\r\n"

# GS01 -> kind, when GS08 does not decide it.
_KIND_BY_FUNCTIONAL_ID = {"HP": "835", "FA": "997", "HN": "277", "HB": "271", "HS": "270", "HR": "276"}
# (GS01, implementation guide in GS08) -> kind. GS08 is e.g. 005010X222A1: version 005010,
# guide X222 (837P), addenda A1.
# Two 277s share GS01 HN: the claim acknowledgment (277CA, X214) and the answer to a 276
# (claim status, X212); only GS08 tells them apart (bhhub.claimstatus.x277).
_KIND_BY_GUIDE = {
    ("HC", "X222"): "837P",
    ("HC", "X223"): "837I",
    ("FA", "X231"): "999",
    ("HN", "X214"): "277CA",
    ("HN", "X212"): "277",
    ("HB", "X279"): "271",
}


@dataclass(frozen=True)
class Recognized:
    """An X12 interchange's kind and envelope ids (no content beyond the envelope)."""

    kind: str  # 837P 837I 835 999 TA1 277CA 277 (claim status) 271 270 276 997, or X12 when unknown
    version: str  # GS08, e.g. 005010X231A1; "" when there is no GS
    interchange_control_number: str  # ISA13
    sender_id: str  # ISA06, without its padding
    receiver_id: str  # ISA08, without its padding
    usage_indicator: str  # ISA15: P production, T test, I information
    transaction_set: str = ""  # ST01 of the first transaction, "TA1" for a TA1 alone; "" when unseen


def recognize(data: bytes, transactions: TransactionRegistry | None = None) -> Recognized | None:
    """The kind of X12 ``data`` holds; None when it is not X12 at all. With ``transactions``,
    a registered transaction matching its ST01 and GS08 names the kind.

    Raises ``InputError`` when ``data`` starts with "ISA" but the ISA is malformed.
    """
    head = bytes(data[:HEAD_SIZE])
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8):]
    head = head.lstrip(_WHITESPACE)
    if not head.startswith(b"ISA"):
        return None
    text = head.decode("utf-8", errors="replace")
    isa, terminator, element = _interchange_header(text)
    kind, version = "X12", ""
    functional_id, transaction_set = None, ""
    saw_ta1 = False
    _check_separators(text[_ISA_LENGTH:], terminator, element)
    for piece in text[_ISA_LENGTH:].split(terminator):
        fields = piece.strip(_TEXT_WHITESPACE).split(element)
        if fields[0] == "TA1" and functional_id is None:
            saw_ta1 = True
        elif fields[0] == "GS" and functional_id is None:
            version = fields[8] if len(fields) > 8 else ""
            functional_id = fields[1] if len(fields) > 1 else ""
        elif fields[0] == "ST":
            # The first transaction's set (ST01), read only after a GS: without one it is malformed.
            transaction_set = (fields[1] if len(fields) > 1 else "") if functional_id is not None else ""
            break
        elif fields[0] == "IEA" or functional_id is not None:
            break
    if functional_id is not None:
        kind = _kind(functional_id, version)
    else:
        # No GS: a TA1 on its own, or malformed content the readers will name.
        kind = "TA1" if saw_ta1 else "X12"
        transaction_set = "TA1" if saw_ta1 else ""
    if transactions is not None and transaction_set:
        registered = transactions.match(transaction_set, version)
        if registered is not None:
            kind = registered.name
    return Recognized(
        kind=kind,
        version=version,
        interchange_control_number=isa[13],
        sender_id=isa[6].strip(),
        receiver_id=isa[8].strip(),
        usage_indicator=isa[15],
        transaction_set=transaction_set,
    )


def _interchange_header(text: str) -> tuple[list[str], str, str]:
    """The ISA's 16 elements (ISA01 at index 1), its segment terminator and element separator."""
    where = "ISA (segment 1)"
    if len(text) < _ISA_LENGTH:
        raise InputError(f"the ISA segment is cut short ({len(text)} of {_ISA_LENGTH} characters)",
                         where=where)
    element, terminator = text[3], text[_ISA_LENGTH - 1]
    if element.isalnum() or element.isspace():
        raise InputError("the ISA does not start with an element separator after 'ISA'", where=where)
    # ISA is fixed width: exactly 16 separators in its 106 characters (domain reference 5.1).
    if text.count(element, 0, _ISA_LENGTH) != 16:
        raise InputError(f"the ISA segment is not the fixed {_ISA_LENGTH} characters its 16 elements "
                         "need (the separators cannot be read from it)", where=where)
    if terminator.isalnum() or terminator.isspace() or terminator == element:
        raise InputError("the ISA has no usable segment terminator after ISA16", where=where)
    isa = text[: _ISA_LENGTH - 1].split(element)
    if not (isa[13].isdigit() and len(isa[13]) == 9):
        raise InputError("ISA13, the interchange control number, is not 9 digits", where=where)
    if isa[15] not in ("P", "T", "I"):
        raise InputError("ISA15, the usage indicator, is not P, T or I", where=where)
    return isa, terminator, element


# Segments that may follow an ISA, with how many elements each has (GS and TA1 are fixed width).
_AFTER_ISA = {"GS": 8, "TA1": 5, "IEA": 2}


def _check_separators(body: str, terminator: str, element: str) -> None:
    """``InputError`` when the segment after the ISA is not written with the ISA's separators.

    The ISA is fixed width, so its separators can always be read; a body written with others (two
    files joined, a hand edit, a translator's bug) cannot be split into segments at all, and a
    reason saying so helps the sender more than "unknown kind". Never quotes the content.
    """
    first = body.lstrip(_TEXT_WHITESPACE).split(terminator, 1)[0].strip(_TEXT_WHITESPACE)
    if not first:
        return  # nothing after the ISA: the readers say the interchange is cut short
    fields = first.split(element)
    expected = _AFTER_ISA.get(fields[0])
    if expected is None or len(fields) - 1 != expected:
        shown = {"\n": "line feed", "\r": "carriage return"}
        said = shown.get(repr(terminator)[1:-1], repr(terminator))
        raise InputError(
            f"the segments after the ISA are not written with the separators the ISA announces "
            f"(element separator {element!r}, segment terminator {said}): the file mixes separators, "
            "so its segments cannot be read", where="segment 2",
            fix="ask the sender for the file again, written with one set of separators")


def _kind(functional_id: str, version: str) -> str:
    guide = version[6:10]  # 005010X222A1 -> X222
    return _KIND_BY_GUIDE.get((functional_id, guide)) or _KIND_BY_FUNCTIONAL_ID.get(functional_id, "X12")
