"""Reading a 999 (implementation acknowledgment for health care insurance, 005010X231A1;
domain reference 7.2).

    read_999(data)     -> [FunctionalAck]     one per 999: which transaction sets passed

A pure function over the bytes of an interchange. Code meanings come from
``mappings/x12/ack_codes.toml`` (``codes.lookup``); every error and acknowledgment has
``describe()``: one plain sentence for the biller.

What is kept is chosen for PHI: the copy of the bad data (IK404) and the business unit values of
a CTX other than CLM01 (member ids, names) are read past and never stored. Messages of
``InputError`` name the segment, its number and the loop, never a value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bhhub.acknowledgments.codes import Code, lookup
from bhhub.acknowledgments.elements import at, required
from bhhub.errors import InputError
from bhhub.x12.tokens import Segment, segments


@dataclass(frozen=True)
class SituationalTrigger:
    """A CTX situational trigger: the segment whose presence made another one required."""

    segment_id: str  # CTX02
    position: int | None  # CTX03, position in the transaction set
    loop_id: str  # CTX04
    element_position: int | None  # CTX05-1

    def describe(self) -> str:
        where = f"segment {self.segment_id}" + (f" at position {self.position}" if self.position else "")
        return where + (f" (element {self.element_position})" if self.element_position else "")


@dataclass(frozen=True)
class ElementError:
    """An IK4: one element in error. IK404, the copy of the bad value, is never kept."""

    position: int  # IK401-1: element position in the segment
    component: int | None  # IK401-2
    repetition: int | None  # IK401-3
    data_element: str  # IK402: data element reference number, e.g. "67"
    error: Code  # IK403
    triggers: tuple[SituationalTrigger, ...] = ()

    def location(self) -> str:
        parts = [f"element {self.position}"]
        if self.component:
            parts.append(f"component {self.component}")
        if self.repetition:
            parts.append(f"repetition {self.repetition}")
        return ", ".join(parts)

    def describe(self) -> str:
        return f"{self.error.description} ({self.location()})"


@dataclass(frozen=True)
class SegmentError:
    """An IK3 with its CTX and IK4s: a segment of the 837 in error."""

    segment_id: str  # IK301
    position: int  # IK302: position in the transaction set, ST is 1
    loop_id: str  # IK303, "" when not given
    error: Code | None  # IK304
    claim_reference: str | None = None  # CTX CLM01 value: the 837 patient control number
    business_unit: str = ""  # CTX01-1, e.g. CLM01 or NM109 (the value kept only for CLM01)
    triggers: tuple[SituationalTrigger, ...] = ()
    element_errors: tuple[ElementError, ...] = ()

    def describe(self) -> str:
        """E.g. "segment NM1 at position 22 in loop 2310 of claim PCN1: invalid code value (element 9)"."""
        where = f"segment {self.segment_id} at position {self.position}"
        if self.loop_id:
            where += f" in loop {self.loop_id}"
        if self.claim_reference:
            where += f" of claim {self.claim_reference}"
        problems = [e.describe() for e in self.element_errors]
        if self.error and not (self.error.value == "8" and problems):
            problems.insert(0, self.error.description)  # "has element errors" adds nothing to them
        return f"{where}: {'; '.join(problems) or 'in error (no reason given)'}"


@dataclass(frozen=True)
class TransactionAck:
    """An AK2 loop: the result for one transaction set (ST/SE) of the 837."""

    transaction_set_id: str  # AK201, e.g. 837
    control_number: str  # AK202: the 837's ST02
    implementation_reference: str  # AK203, e.g. 005010X222A1 ("" when not sent)
    result: Code  # IK501
    syntax_errors: tuple[Code, ...] = ()  # IK502-IK506
    errors: tuple[SegmentError, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.result.value in ("A", "E")

    @property
    def claim_references(self) -> tuple[str, ...]:
        """The patient control numbers (CLM01) the errors name, in order, each once."""
        return tuple(dict.fromkeys(e.claim_reference for e in self.errors if e.claim_reference))

    def describe(self) -> str:
        text = f"transaction set {self.transaction_set_id} {self.control_number} {self.result.description}"
        reasons = "; ".join(e.description for e in self.syntax_errors)
        return f"{text}: {reasons}" if reasons else text


@dataclass(frozen=True)
class FunctionalAck:
    """One 999: the result for a functional group (GS/GE) of the 837 and each of its sets."""

    control_number: str  # ST02 of this 999
    functional_id: str  # AK101, e.g. HC
    group_control_number: str  # AK102: the 837's GS06
    version: str  # AK103, e.g. 005010X222A1
    transactions: tuple[TransactionAck, ...]
    result: Code  # AK901
    sets_included: int  # AK902
    sets_received: int  # AK903
    sets_accepted: int  # AK904
    group_errors: tuple[Code, ...] = ()  # AK905-AK909

    @property
    def accepted(self) -> bool:
        return self.result.value in ("A", "E")

    @property
    def partially_accepted(self) -> bool:
        """Some transaction sets were rejected: look at each one's ``accepted``."""
        return self.result.value == "P"

    def describe(self) -> str:
        text = (f"functional group {self.group_control_number} ({self.functional_id}) {self.result.description}: "
                f"{self.sets_accepted} of {self.sets_received} transaction sets accepted")
        return text + "".join(f"; {e.description}" for e in self.group_errors)


def read_999(data: bytes | str) -> list[FunctionalAck]:
    """Every 999 transaction set of an interchange, in order."""
    acks: list[FunctionalAck] = []
    group: _Group | None = None
    for segment in segments(data):
        if segment.id == "ST":
            if segment[1] != "999":
                raise InputError("the transaction set is not a 999", where=str(segment))
            group = _Group(control_number=segment[2])
        elif segment.id in ("ISA", "GS", "GE", "IEA", "TA1"):
            continue
        elif group is None:
            raise InputError("segment outside a 999 transaction set (no ST before it)", where=str(segment))
        elif segment.id == "SE":
            acks.append(group.finished(segment))
            group = None
        else:
            group.read(segment)
    if group is not None:
        raise InputError("the 999 transaction set has no SE (the file is cut short)")
    return acks


@dataclass
class _Group:
    """A 999 being read."""

    control_number: str
    ak1: Segment | None = None
    transactions: list[TransactionAck] = field(default_factory=list)
    open: _Transaction | None = None
    ak9: Segment | None = None

    def read(self, segment: Segment) -> None:
        if segment.id == "AK1":
            if self.ak1 is not None:
                raise InputError("a second AK1 in one 999", where=str(segment))
            self.ak1 = segment
        elif segment.id in ("AK2", "AK9") and self.ak1 is None:
            raise InputError("the 999 has no AK1 before this segment", where=str(segment))
        elif segment.id in ("AK2", "AK9") and self.open is not None:
            raise InputError("the AK2 loop before this segment has no IK5", where=at(segment, self.open.loop))
        elif segment.id == "AK2":
            self.open = _Transaction(segment)
        elif segment.id == "AK9":
            self.ak9 = segment
        elif segment.id in ("IK3", "IK4", "CTX", "IK5"):
            if self.open is None:
                raise InputError(f"{segment.id} outside an AK2 loop (no AK2 before it)", where=str(segment))
            if segment.id == "IK5":
                self.transactions.append(self.open.finished(segment))
                self.open = None
            else:
                self.open.read(segment)

    def finished(self, se: Segment) -> FunctionalAck:
        if self.ak1 is None:
            raise InputError("the 999 has no AK1", where=str(se))
        if self.open is not None:
            raise InputError("the last AK2 loop has no IK5", where=str(se))
        if self.ak9 is None:
            raise InputError("the 999 has no AK9", where=str(se))
        ak9 = self.ak9
        return FunctionalAck(
            control_number=self.control_number,
            functional_id=self.ak1[1],
            group_control_number=required(self.ak1, 2, "AK102 group control number"),
            version=self.ak1[3],
            transactions=tuple(self.transactions),
            result=lookup("group_ack", required(ak9, 1, "AK901 acknowledgment code")),
            sets_included=_count(ak9, 2),
            sets_received=_count(ak9, 3),
            sets_accepted=_count(ak9, 4),
            group_errors=tuple(lookup("group_error", ak9[i]) for i in range(5, 10) if ak9[i]),
        )


@dataclass
class _Transaction:
    """An AK2 loop being read."""

    ak2: Segment
    errors: list[SegmentError] = field(default_factory=list)
    segment: dict[str, Any] | None = None  # the IK3 being read
    element: dict[str, Any] | None = None  # its IK4 being read
    loop: str = "2000"

    def read(self, segment: Segment) -> None:
        if segment.id == "IK3":
            self._close_segment()
            self.loop = "2100"
            self.segment = {
                "segment_id": required(segment, 1, "IK301 segment id", self.loop),
                "position": _number(segment, 2, "IK302 segment position", self.loop),
                "loop_id": segment[3],
                "error": lookup("segment_error", segment[4]) if segment[4] else None,
                "triggers": [], "element_errors": [],
            }
        elif self.segment is None:
            raise InputError(f"{segment.id} before any IK3 of its AK2 loop", where=at(segment, "2000"))
        elif segment.id == "IK4":
            self._close_element()
            self.loop = "2110"
            position = segment.components(1)
            self.element = {
                "position": _number(segment, 1, "IK401 element position", self.loop,
                                    position[0] if position else ""),
                "component": _optional_number(segment, position, 1),
                "repetition": _optional_number(segment, position, 2),
                "data_element": segment[2],
                "error": lookup("element_error", required(segment, 3, "IK403 error code", self.loop)),
                "triggers": [],
            }
            # IK404 (the bad value itself) is deliberately not read.
        elif segment.component(1, 1) == "SITUATIONAL TRIGGER":
            trigger = SituationalTrigger(
                segment_id=segment[2],
                position=_optional_number(segment, [segment[3]], 0),
                loop_id=segment[4],
                element_position=_optional_number(segment, segment.components(5), 0),
            )
            (self.element or self.segment)["triggers"].append(trigger)
        else:  # business unit: CLM01 names the claim; other units (NM109...) carry PHI
            self.segment["business_unit"] = segment.component(1, 1)
            if segment.component(1, 1) == "CLM01":
                self.segment["claim_reference"] = segment.component(1, 2) or None

    def finished(self, ik5: Segment) -> TransactionAck:
        self._close_segment()
        return TransactionAck(
            transaction_set_id=self.ak2[1],
            control_number=required(self.ak2, 2, "AK202 transaction set control number", "2000"),
            implementation_reference=self.ak2[3],
            result=lookup("transaction_ack", required(ik5, 1, "IK501 acknowledgment code", "2000")),
            syntax_errors=tuple(lookup("transaction_error", ik5[i]) for i in range(2, 7) if ik5[i]),
            errors=tuple(self.errors),
        )

    def _close_element(self) -> None:
        if self.element is not None and self.segment is not None:
            triggers = tuple(self.element.pop("triggers"))
            self.segment["element_errors"].append(ElementError(**self.element, triggers=triggers))
        self.element = None

    def _close_segment(self) -> None:
        self._close_element()
        if self.segment is not None:
            fields = {**self.segment, "triggers": tuple(self.segment["triggers"]),
                      "element_errors": tuple(self.segment["element_errors"])}
            self.errors.append(SegmentError(**fields))
        self.segment = None
        self.loop = "2000"


# --- element readers: messages name the element and segment, never the value ----------------------


def _number(segment: Segment, position: int, name: str, loop: str, value: str | None = None) -> int:
    value = segment[position] if value is None else value
    if not value.isdigit():
        raise InputError(f"{name} is missing or not a number", where=at(segment, loop))
    return int(value)


def _optional_number(segment: Segment, parts: list[str], index: int) -> int | None:
    value = parts[index] if index < len(parts) else ""
    if not value:
        return None
    if not value.isdigit():
        raise InputError(f"{segment.id} has a position that is not a number", where=str(segment))
    return int(value)


def _count(ak9: Segment, position: int) -> int:
    return _number(ak9, position, f"AK90{position} transaction set count", "2000")
