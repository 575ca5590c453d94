"""Reading a 277CA (health care claim acknowledgment, 005010X214; domain reference 7.3).

    read_277ca(data)   -> [ClaimStatusAck]    one per claim: accepted into adjudication?

A pure function over the bytes of an interchange (a 277 claim status response reads too). Code
meanings come from ``mappings/x12/ack_codes.toml`` (``codes.lookup``); what a status category
means for the claim (received, accepted, not found, rejected) is ``codes.OUTCOMES``. Every
status and acknowledgment has ``describe()``: one plain sentence for the biller.

What is kept is chosen for PHI: the patient's and subscriber's names, member ids and service
dates are read past and never stored. Messages of ``InputError`` name the segment, its number
and the loop, never a value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Iterator

from bhhub.acknowledgments.codes import (
    ACCEPTED_CATEGORIES,
    OUTCOME_ORDER,
    OUTCOMES,
    REJECTED_CATEGORIES,
    lookup,
)
from bhhub.acknowledgments.elements import at, required
from bhhub.errors import InputError
from bhhub.x12.tokens import Segment, segments

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
                self.claim = {"patient_control_number": required(segment, 2, "TRN02 trace number",
                                                                  "2200" + loop[-1]),
                              "statuses": [], "lines": []}
            else:
                self.level.trace = segment[2]
        elif segment.id == "STC":
            self._status(segment, loop, claim_level)
        elif segment.id == "SVC":
            if self.claim is None:
                raise InputError("service line (SVC) with no claim (no TRN before it)",
                                 where=at(segment, "2220D"))
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
                                 where=at(segment, "2200D"))
            if self.line is not None:
                self.line["statuses"].extend(_statuses(segment, "line", "2220D"))
            else:
                self.claim["statuses"].extend(_statuses(segment, "claim", "2200" + loop[-1]))
        elif self.level.code in _LEVEL_NAMES:
            statuses = _statuses(segment, _LEVEL_NAMES[self.level.code], "2200" + loop[-1])
            self.level.rejections.extend(s for s in statuses if s.rejected)
        else:
            raise InputError("claim status (STC) outside a receiver, provider or claim loop",
                             where=at(segment, loop))

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
        raise InputError("STC01, the claim status, is missing", where=at(segment, loop))
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


def _amount(segment: Segment, position: int, loop: str) -> Decimal | None:
    if not segment[position]:
        return None
    try:
        return Decimal(segment[position])
    except InvalidOperation:
        raise InputError(f"{segment.id}{position:02d} is not an amount", where=at(segment, loop)) from None


def _ccyymmdd(segment: Segment, position: int, loop: str) -> date | None:
    if not segment[position]:
        return None
    try:
        return datetime.strptime(segment[position], "%Y%m%d").date()
    except ValueError:
        raise InputError(f"{segment.id}{position:02d} is not a date (CCYYMMDD)",
                         where=at(segment, loop)) from None
