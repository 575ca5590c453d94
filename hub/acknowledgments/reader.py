"""Reading the acknowledgments an 837 earns: TA1, 999 (005010X231A1) and 277CA (005010X214).

    read_ta1(data)     -> [InterchangeAck]    one per TA1: was the envelope readable (ref. 7.1)
    read_999(data)     -> [FunctionalAck]     one per 999: which transaction sets passed (7.2)
    read_277ca(data)   -> [ClaimStatusAck]    one per claim: accepted into adjudication? (7.3)

Pure functions over the bytes of an interchange. Code meanings come from
``mappings/x12/ack_codes.toml``; a code missing there reads "code N". Every error, status and
acknowledgment has ``describe()``: one plain sentence for the biller.

What is kept is chosen for PHI: the 999's copy of the bad data (IK404), the business unit
values of a CTX other than CLM01 (member ids, names), and the 277CA's patient and subscriber
names, member ids and service dates are read past and never stored. Messages of
``InputError`` name the segment, its number and the loop, never a value.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, Iterator

from bhhub.errors import InputError
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.x12.tokens import Segment, segments

ACK_CODES = "x12/ack_codes.toml"

# 277CA claim status categories (STC01-1), domain reference 7.3: A2 is acceptance; A3, A6,
# A7, A8 reject. ``accepted``/``rejected`` below are the reader's coarse view (A0/A1/A5 not
# refused, A4 refused); what a claim's answer means for its status is ``outcome``.
ACCEPTED_CATEGORIES = frozenset({"A0", "A1", "A2", "A5"})
REJECTED_CATEGORIES = frozenset({"A3", "A4", "A6", "A7", "A8"})
# What each category means for the claim (7.3 "Hub status"), least decisive first: a claim with
# several statuses (STC01, STC10, STC11, its provider's or receiver's) is decided by the most
# decisive one. A1 is receipt only, not acceptance; A4 (not found) is neither accepted nor
# rejected: someone must find out why. Other categories (pending, finalized) decide nothing here.
RECEIVED, ACCEPTED, NOT_FOUND, REJECTED = "received", "accepted", "not_found", "rejected"
OUTCOME_ORDER = (RECEIVED, ACCEPTED, NOT_FOUND, REJECTED)
OUTCOMES = {"A0": RECEIVED, "A1": RECEIVED, "A2": ACCEPTED, "A5": ACCEPTED, "A4": NOT_FOUND,
            "A3": REJECTED, "A6": REJECTED, "A7": REJECTED, "A8": REJECTED}
# 2100A NM101: who is speaking (005010X214 allows only these two).
_SOURCE_KINDS = {"PR": "payer", "AY": "clearinghouse"}
_NOTES = {
    "A0": "forwarded to another entity: the next payer's acknowledgment will follow",
    "A5": "split on acceptance: expect more than one payment (835 claim) for this claim",
}
# 277CA hierarchical levels (HL03): which loops a segment belongs to.
_LOOPS = {"20": "2000A", "21": "2000B", "19": "2000C", "PT": "2000D", "22": "2000D", "23": "2000E"}
_CLAIM_LEVELS = frozenset({"PT", "22", "23"})  # PT in 005010X214; 22/23 in a 277 response
_LEVEL_NAMES = {"21": "receiver", "19": "provider"}


@functools.cache
def ack_codes() -> dict[str, Any]:
    """The code tables of ``mappings/x12/ack_codes.toml``, parsed once."""
    return MappingSet().load(ACK_CODES)


@dataclass(frozen=True)
class Code:
    """A code from an acknowledgment and what it means."""

    value: str
    description: str

    def __str__(self) -> str:
        return f"{self.description} ({self.value})"


def lookup(table: str, value: str) -> Code:
    """``value`` of the code list ``table`` of ack_codes.toml, with its meaning."""
    return Code(value, ack_codes().get(table, {}).get(value) or f"code {value}")


# --- TA1 -----------------------------------------------------------------------------------------


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
                interchange_control_number=_required(segment, 1, "TA101 interchange control number"),
                interchange_date=_yymmdd(segment, 2),
                interchange_time=_hhmm(segment, 3),
                result=lookup("interchange_ack", _required(segment, 4, "TA104 acknowledgment code")),
                note=lookup("interchange_note", _required(segment, 5, "TA105 note code")),
            ))
    return acks


# --- 999 -----------------------------------------------------------------------------------------


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
            raise InputError("the AK2 loop before this segment has no IK5", where=_at(segment, self.open.loop))
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
            group_control_number=_required(self.ak1, 2, "AK102 group control number"),
            version=self.ak1[3],
            transactions=tuple(self.transactions),
            result=lookup("group_ack", _required(ak9, 1, "AK901 acknowledgment code")),
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
                "segment_id": _required(segment, 1, "IK301 segment id", self.loop),
                "position": _number(segment, 2, "IK302 segment position", self.loop),
                "loop_id": segment[3],
                "error": lookup("segment_error", segment[4]) if segment[4] else None,
                "triggers": [], "element_errors": [],
            }
        elif self.segment is None:
            raise InputError(f"{segment.id} before any IK3 of its AK2 loop", where=_at(segment, "2000"))
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
                "error": lookup("element_error", _required(segment, 3, "IK403 error code", self.loop)),
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
            control_number=_required(self.ak2, 2, "AK202 transaction set control number", "2000"),
            implementation_reference=self.ak2[3],
            result=lookup("transaction_ack", _required(ik5, 1, "IK501 acknowledgment code", "2000")),
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


# --- 277CA ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """One claim status triple (STC01, STC10 or STC11) with the STC's date, action and amount."""

    category: str  # STC01-1: A2 accepted, A3/A6/A7/A8 rejected ...
    code: str  # STC01-2: what about it, e.g. 562 (an NPI)
    entity: str  # STC01-3: whose, e.g. 82 rendering provider; "" when not given
    date: date | None  # STC02
    action: str  # STC03: WQ accepted, U rejected
    amount: Decimal | None  # STC04, on STC01 only
    description: str  # one sentence for the biller
    level: str = "claim"  # claim, line, or inherited from a provider (2200C) or receiver (2200B)

    @property
    def rejected(self) -> bool:
        return self.category in REJECTED_CATEGORIES

    def describe(self) -> str:
        return self.description if self.level in ("claim", "line") else f"{self.level} level: {self.description}"


@dataclass(frozen=True)
class ServiceLineStatus:
    """A 2220D loop: the status of one service line of the claim."""

    procedure_qualifier: str  # SVC01-1, HC for CPT/HCPCS
    procedure_code: str  # SVC01-2
    modifiers: tuple[str, ...]  # SVC01-3..6
    charge: Decimal | None  # SVC02
    units: Decimal | None  # SVC07
    line_item_control_number: str | None  # REF*FJ: the 837's REF*6R
    statuses: tuple[Status, ...]

    @property
    def rejected(self) -> bool:
        return any(s.rejected for s in self.statuses)

    def describe(self) -> str:
        line = f"service line {self.procedure_code}" + "".join(f":{m}" for m in self.modifiers)
        if self.line_item_control_number:
            line += f" ({self.line_item_control_number})"
        return f"{line}: " + "; ".join(s.describe() for s in self.statuses)


@dataclass(frozen=True)
class ClaimStatusAck:
    """A 2200D loop of a 277CA: what the payer or clearinghouse did with one claim."""

    patient_control_number: str  # TRN02: the 837's CLM01
    statuses: tuple[Status, ...]  # the claim's own, then rejections inherited from 2200C/2200B
    payer_claim_control_number: str | None = None  # REF*1K: the payer's claim number
    clearinghouse_trace: str | None = None  # REF*D9
    total_charge: Decimal | None = None  # STC04 of the claim's first STC
    service_lines: tuple[ServiceLineStatus, ...] = ()
    batch_reference: str = ""  # 2200B TRN02: the 837's BHT03, when the sender echoes it
    billing_provider_id: str = ""  # 2100C NM109, the billing provider's NPI
    information_source: str = ""  # 2100A NM103: the payer or clearinghouse that says this
    information_source_kind: str = ""  # 2100A NM101: "payer" (PR) or "clearinghouse" (AY); "" if other
    information_source_id: str = ""  # 2100A NM109: the payer id or the clearinghouse's ETIN

    @property
    def category(self) -> str:
        """The category of the claim's first status (STC01-1)."""
        own = [s for s in self.statuses if s.level == "claim"]
        return own[0].category if own else ""

    @property
    def rejected(self) -> bool:
        """Rejected, by the claim's own statuses or its provider's or receiver's: fix and resend."""
        return any(s.rejected for s in self.statuses)

    @property
    def accepted(self) -> bool:
        return not self.rejected and self.category in ACCEPTED_CATEGORIES

    @property
    def deciding_status(self) -> Status | None:
        """The most decisive of the claim's statuses (rejection, then not found, acceptance,
        receipt); None when none of them is an acknowledgment category."""
        known = [s for s in self.statuses if s.category in OUTCOMES]
        return max(known, key=lambda s: OUTCOME_ORDER.index(OUTCOMES[s.category]), default=None)

    @property
    def outcome(self) -> str | None:
        """received | accepted | not_found | rejected, by the deciding status; None if none decides."""
        status = self.deciding_status
        return OUTCOMES[status.category] if status else None

    @property
    def note(self) -> str | None:
        """What an acceptance that is not plain acceptance means (A0 forwarded, A5 split)."""
        return _NOTES.get(self.category) if self.accepted else None

    def describe(self) -> str:
        return f"claim {self.patient_control_number}: " + "; ".join(s.describe() for s in self.statuses)


def read_277ca(data: bytes | str) -> list[ClaimStatusAck]:
    """Every claim of a 277CA (or of a 277 claim status response), in order."""
    reader: _ClaimStatusReader | None = None
    claims: list[ClaimStatusAck] = []
    for segment in segments(data):
        if segment.id == "ST":
            if segment[1] != "277":
                raise InputError("the transaction set is not a 277", where=str(segment))
            reader = _ClaimStatusReader()
        elif segment.id in ("ISA", "GS", "GE", "IEA", "TA1"):
            continue
        elif reader is None:
            raise InputError("segment outside a 277 transaction set (no ST before it)", where=str(segment))
        elif segment.id == "SE":
            claims.extend(reader.finished())
            reader = None
        else:
            reader.read(segment)
    if reader is not None:
        raise InputError("the 277 transaction set has no SE (the file is cut short)")
    return claims


@dataclass
class _Level:
    """An HL of a 277 and the rejections its 2200B/2200C STCs pass down."""

    code: str
    parent: _Level | None
    rejections: list[Status] = field(default_factory=list)
    trace: str = ""  # TRN02 at this level
    name_or_id: str = ""  # 2100A NM103, 2100C NM109
    entity: str = ""  # 2100A NM101 (PR payer, AY clearinghouse)
    identifier: str = ""  # 2100A NM109

    def inherited(self) -> Iterator[Status]:
        level: _Level | None = self
        while level is not None:
            yield from level.rejections
            level = level.parent

    def up(self, code: str) -> _Level | None:
        level: _Level | None = self
        while level is not None and level.code != code:
            level = level.parent
        return level


@dataclass
class _ClaimStatusReader:
    levels: dict[str, _Level] = field(default_factory=dict)
    level: _Level | None = None
    claims: list[ClaimStatusAck] = field(default_factory=list)
    claim: dict[str, Any] | None = None
    line: dict[str, Any] | None = None

    def read(self, segment: Segment) -> None:
        if segment.id == "HL":
            self._close_claim()
            parent_id = segment[2]
            if parent_id and parent_id not in self.levels:
                raise InputError("HL02 names a parent HL that does not come before it", where=str(segment))
            self.level = _Level(segment[3], self.levels.get(parent_id))
            self.levels[segment[1]] = self.level
            return
        if segment.id == "BHT":
            return
        if self.level is None:
            raise InputError("segment before the first HL", where=str(segment))
        loop = _LOOPS.get(self.level.code, "2000")
        claim_level = self.level.code in _CLAIM_LEVELS
        if segment.id == "NM1" and not claim_level:  # patient and subscriber names are PHI: skipped
            self.level.name_or_id = segment[9] if self.level.code == "19" else segment[3]
            self.level.entity, self.level.identifier = segment[1], segment[9]
        elif segment.id == "TRN":
            if claim_level:
                self._close_claim()
                self.claim = {"patient_control_number": _required(segment, 2, "TRN02 trace number",
                                                                  "2200" + loop[-1]),
                              "statuses": [], "lines": []}
            else:
                self.level.trace = segment[2]
        elif segment.id == "STC":
            self._status(segment, loop, claim_level)
        elif segment.id == "SVC":
            if self.claim is None:
                raise InputError("service line (SVC) with no claim (no TRN before it)",
                                 where=_at(segment, "2220D"))
            self._close_line()
            procedure = segment.components(1)
            self.line = {
                "procedure_qualifier": procedure[0] if procedure else "",
                "procedure_code": procedure[1] if len(procedure) > 1 else "",
                "modifiers": tuple(m for m in procedure[2:6] if m),
                "charge": _amount(segment, 2, "2220D"),
                "units": _amount(segment, 7, "2220D"),
                "line_item_control_number": None,
                "statuses": [],
            }
        elif segment.id == "REF" and self.line is not None and segment[1] == "FJ":
            self.line["line_item_control_number"] = segment[2]
        elif segment.id == "REF" and self.claim is not None and self.line is None:
            if segment[1] == "1K":
                self.claim["payer_claim_control_number"] = segment[2]
            elif segment[1] == "D9":
                self.claim["clearinghouse_trace"] = segment[2]

    def finished(self) -> list[ClaimStatusAck]:
        self._close_claim()
        return self.claims

    def _status(self, segment: Segment, loop: str, claim_level: bool) -> None:
        assert self.level is not None
        if claim_level:
            if self.claim is None:
                raise InputError("claim status (STC) with no claim (no TRN before it)",
                                 where=_at(segment, "2200D"))
            if self.line is not None:
                self.line["statuses"].extend(_statuses(segment, "line", "2220D"))
            else:
                self.claim["statuses"].extend(_statuses(segment, "claim", "2200" + loop[-1]))
        elif self.level.code in _LEVEL_NAMES:
            statuses = _statuses(segment, _LEVEL_NAMES[self.level.code], "2200" + loop[-1])
            self.level.rejections.extend(s for s in statuses if s.rejected)
        else:
            raise InputError("claim status (STC) outside a receiver, provider or claim loop",
                             where=_at(segment, loop))

    def _close_line(self) -> None:
        if self.line is not None and self.claim is not None:
            statuses = tuple(self.line.pop("statuses"))
            self.claim["lines"].append(ServiceLineStatus(**self.line, statuses=statuses))
        self.line = None

    def _close_claim(self) -> None:
        self._close_line()
        if self.claim is None or self.level is None:
            self.claim = None
            return
        own = self.claim["statuses"]
        receiver, provider, source = self.level.up("21"), self.level.up("19"), self.level.up("20")
        self.claims.append(ClaimStatusAck(
            patient_control_number=self.claim["patient_control_number"],
            statuses=tuple(own) + tuple(self.level.inherited()),
            payer_claim_control_number=self.claim.get("payer_claim_control_number"),
            clearinghouse_trace=self.claim.get("clearinghouse_trace"),
            total_charge=own[0].amount if own else None,
            service_lines=tuple(self.claim["lines"]),
            batch_reference=receiver.trace if receiver else "",
            billing_provider_id=provider.name_or_id if provider else "",
            information_source=source.name_or_id if source else "",
            information_source_kind=_SOURCE_KINDS.get(source.entity, "") if source else "",
            information_source_id=source.identifier if source else "",
        ))
        self.claim = None


def _statuses(segment: Segment, level: str, loop: str) -> list[Status]:
    """The status triples of one STC: STC01, then STC10 and STC11 when present."""
    if not segment.components(1):
        raise InputError("STC01, the claim status, is missing", where=_at(segment, loop))
    when = _ccyymmdd(segment, 2, loop)
    statuses = []
    for position in (1, 10, 11):
        parts = segment.components(position)
        if not parts:
            continue
        category, status, entity = (parts + ["", ""])[:3]
        statuses.append(Status(
            category=category, code=status, entity=entity, date=when, action=segment[3],
            amount=_amount(segment, 4, loop) if position == 1 else None,
            description=status_description(category, status, entity), level=level,
        ))
    return statuses


def status_description(category: str, status: str, entity: str = "") -> str:
    """E.g. "rejected for invalid information: rendering provider's National Provider Identifier (NPI)"."""
    what = lookup("claim_status", status).description if status else ""
    who = lookup("entity", entity).description if entity else ""
    if "Entity" in what:  # the code list's "Entity's NPI" is about the entity STC01-3 names
        what = what.replace("Entity", who or "entity")
    elif who:
        what = f"{what} ({who})"
    text = lookup("claim_status_category", category).description
    return f"{text}: {what}" if what else text


# --- element readers: messages name the element and segment, never the value ----------------------


def _at(segment: Segment, loop: str) -> str:
    return f"{segment.id} (segment {segment.number}, loop {loop})"


def _where(segment: Segment, loop: str | None) -> str:
    return _at(segment, loop) if loop else str(segment)


def _required(segment: Segment, position: int, name: str, loop: str | None = None) -> str:
    value = segment[position]
    if not value:
        raise InputError(f"{name} is missing", where=_where(segment, loop))
    return value


def _number(segment: Segment, position: int, name: str, loop: str, value: str | None = None) -> int:
    value = segment[position] if value is None else value
    if not value.isdigit():
        raise InputError(f"{name} is missing or not a number", where=_at(segment, loop))
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


def _amount(segment: Segment, position: int, loop: str) -> Decimal | None:
    if not segment[position]:
        return None
    try:
        return Decimal(segment[position])
    except InvalidOperation:
        raise InputError(f"{segment.id}{position:02d} is not an amount", where=_at(segment, loop)) from None


def _ccyymmdd(segment: Segment, position: int, loop: str) -> date | None:
    if not segment[position]:
        return None
    try:
        return datetime.strptime(segment[position], "%Y%m%d").date()
    except ValueError:
        raise InputError(f"{segment.id}{position:02d} is not a date (CCYYMMDD)",
                         where=_at(segment, loop)) from None


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
