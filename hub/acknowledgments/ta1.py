"""Reading a TA1: the X12 005010 interchange acknowledgment (domain reference 7.1).

    read_ta1(data)     -> [InterchangeAck]    one per TA1: was the envelope (ISA/IEA) readable

A pure function over the bytes of an interchange. Code meanings come from
``mappings/x12/ack_codes.toml`` (``codes.lookup``); an acknowledgment's ``describe()`` is one plain
sentence for the biller. Messages of ``InputError`` name the segment and its number, never a value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from bhhub.acknowledgments.codes import Code, lookup
from bhhub.acknowledgments.elements import required
from bhhub.errors import InputError
from bhhub.x12.tokens import Segment, segments


@dataclass(frozen=True)
class InterchangeAck:
    """A TA1: whether an interchange's envelope (ISA/IEA) could be read."""

    interchange_control_number: str  # TA101: the ISA13 acknowledged
    interchange_date: date  # TA102
    interchange_time: time  # TA103
    result: Code  # TA104: A accepted, E accepted with errors, R rejected
    note: Code  # TA105: what was wrong (000 nothing)

    @property
    def accepted(self) -> bool:
        return self.result.value in ("A", "E")

    @property
    def duplicate(self) -> bool:
        """The interchange control number was used before (TA105 025): nothing was processed."""
        return self.note.value == "025"

    def describe(self) -> str:
        text = f"interchange {self.interchange_control_number} {self.result.description}"
        return text if self.note.value == "000" else f"{text}: {self.note.description} (note {self.note.value})"


def read_ta1(data: bytes | str) -> list[InterchangeAck]:
    """Every TA1 of an interchange, alone or in front of its functional groups."""
    acks = []
    in_transaction = False
    for segment in segments(data):
        if segment.id in ("ST", "SE"):
            in_transaction = segment.id == "ST"
        elif segment.id == "TA1":
            if in_transaction:
                raise InputError("a TA1 belongs to the interchange, not inside a transaction set",
                                 where=str(segment))
            acks.append(InterchangeAck(
                interchange_control_number=required(segment, 1, "TA101 interchange control number"),
                interchange_date=_yymmdd(segment, 2),
                interchange_time=_hhmm(segment, 3),
                result=lookup("interchange_ack", required(segment, 4, "TA104 acknowledgment code")),
                note=lookup("interchange_note", required(segment, 5, "TA105 note code")),
            ))
    return acks


# --- element readers: messages name the element and segment, never the value ----------------------


def _yymmdd(segment: Segment, position: int) -> date:
    # TA102 has a two-digit year; acknowledgments are about recent interchanges, so 20YY.
    try:
        return datetime.strptime("20" + segment[position], "%Y%m%d").date()
    except ValueError:
        raise InputError(f"{segment.id}{position:02d} is not a date (YYMMDD)", where=str(segment)) from None


def _hhmm(segment: Segment, position: int) -> time:
    try:
        return datetime.strptime(segment[position], "%H%M").time()
    except ValueError:
        raise InputError(f"{segment.id}{position:02d} is not a time (HHMM)", where=str(segment)) from None
