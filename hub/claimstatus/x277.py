"""Reading a 277 claim status response (005010X212), the payer's answer to a 276.

    read_277(content) -> [ClaimStatusResult]    one per claim loop (2200D/2200E), in order,
                                                then one per refused level with no claim under it

Not the 277CA (005010X214), the claim acknowledgment ``bhhub.acknowledgments.x277ca.read_277ca`` reads: both
are transaction set 277 with GS01 HN, and only GS08 (005010X212 here) and BHT (0010 ... DG
here; 0085 ... TH on a 277CA) tell them apart. A 277CA given to this reader is refused with
an ``InputError`` saying so, since reading one as the other would file acknowledgments as
claim statuses.

Hierarchy: 2000A payer (2100A), 2000B information receiver (2100B, 2200B TRN/STC when the
request was refused at that level), 2000C provider (2100C, 2200C), 2000D subscriber (2100D)
with its claims (2200D: TRN*2, STC, REF*1K/EJ/D9, DTP*472, 2220D lines), 2000E dependent
(2100E, 2200E, 2220E). The meaning of each STC code comes from ``mappings/x12/ack_codes.toml``
(shared with the 277CA reader); the hub's status word from ``mappings/x12/claim_status.toml``.

Subscriber and patient names and birth dates are read past and never kept (PHI); ids are
kept. Segments the reader does not interpret are kept as ``OtherSegment`` on the claim (or on
every claim of the level they came in), not dropped. ``InputError`` messages name segments,
their numbers and loops, never values.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from bhhub.errors import InputError
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.acknowledgments.codes import Code, lookup
from bhhub.x12.tokens import Segment, segments

from bhhub.claimstatus.records import (
    ClaimStatusResult,
    LineStatus,
    OtherSegment,
    RequestRejection,
    StatusCode,
    StatusReport,
)

CLAIM_STATUS_TABLE = "x12/claim_status.toml"
IMPLEMENTATION_GUIDE = "005010X212"
ACKNOWLEDGMENT_GUIDE = "005010X214"
# HL03 -> (loop letter, level name). 005010X212 table 2.
_LEVELS = {"20": ("A", "payer"), "21": ("B", "receiver"), "19": ("C", "provider"),
           "22": ("D", "subscriber"), "23": ("E", "dependent")}
_CLAIM_LEVELS = frozenset({"22", "23"})
_NOT_ACKNOWLEDGMENT = "read it as a claim acknowledgment (bhhub.acknowledgments.x277ca.read_277ca), not as a claim status response"


@functools.cache
def claim_status_table() -> dict[str, Any]:
    """``mappings/x12/claim_status.toml``, parsed once."""
    return MappingSet().load(CLAIM_STATUS_TABLE)


def hub_status(category: str) -> str:
    """The hub's word for a claim status category (STC01-1): F1 -> paid, P3 -> pending ..."""
    table = claim_status_table()
    return (table.get("status_by_category", {}).get(category)
            or table.get("status_by_category_family", {}).get(category[:1])
            or "unknown")


def read_277(content: bytes | str) -> list[ClaimStatusResult]:
    """Every claim status of a 277 claim status response, in order.

    One result per claim loop (2200D/2200E), then one per level (payer, receiver, provider,
    subscriber) that refused the request with an STC or AAA and has no claim loop under it.
    Raises ``InputError`` when ``content`` is not X12, not a 277, a 277CA, or not 005010X212.
    """
    results: list[ClaimStatusResult] = []
    reader: _Reader | None = None
    saw_transaction = False
    for segment in segments(content):
        if segment.id == "GS":
            _check_group(segment)
        elif segment.id in ("ISA", "GE", "IEA", "TA1"):
            continue
        elif segment.id == "ST":
            _check_transaction(segment)
            reader, saw_transaction = _Reader(), True
        elif reader is None:
            raise InputError("segment outside a 277 transaction set (no ST before it)", where=str(segment))
        elif segment.id == "SE":
            results.extend(reader.finished())
            reader = None
        else:
            reader.read(segment)
    if reader is not None:
        raise InputError("the 277 transaction set has no SE (the file is cut short)",
                         fix="ask the sender for the whole file")
    if not saw_transaction:
        raise InputError("the interchange holds no transaction set (no ST)", fix="check the file is a 277")
    return results


def _check_group(gs: Segment) -> None:
    version = gs[8]
    if gs[1] != "HN":
        raise InputError(f"this is not a 277 claim status response: the functional group is {gs[1] or 'unnamed'}, "
                         "not HN", where=str(gs), fix="give the claim status reader only 277 files")
    if ACKNOWLEDGMENT_GUIDE[6:] in version:
        raise InputError(f"this 277 is a claim acknowledgment (277CA, {version}), not an answer to a 276",
                         where=str(gs), fix=_NOT_ACKNOWLEDGMENT)
    if not version.startswith(IMPLEMENTATION_GUIDE):
        raise InputError(f"the 277 is version {version or 'unnamed'} (GS08); the claim status reader reads "
                         f"{IMPLEMENTATION_GUIDE}", where=str(gs),
                         fix=f"ask the payer or clearinghouse for {IMPLEMENTATION_GUIDE} claim status responses")


def _check_transaction(st: Segment) -> None:
    if st[1] != "277":
        raise InputError(f"the transaction set is a {st[1] or 'unnamed'}, not a 277", where=str(st),
                         fix="give the claim status reader only 277 files")
    if ACKNOWLEDGMENT_GUIDE[6:] in st[3]:
        raise InputError(f"this 277 is a claim acknowledgment (277CA, {st[3]}), not an answer to a 276",
                         where=str(st), fix=_NOT_ACKNOWLEDGMENT)
    if st[3] and not st[3].startswith(IMPLEMENTATION_GUIDE):
        raise InputError(f"the 277 is version {st[3]} (ST03); the claim status reader reads {IMPLEMENTATION_GUIDE}",
                         where=str(st), fix=f"ask for {IMPLEMENTATION_GUIDE} claim status responses")


@dataclass
class _Level:
    """One HL of the 277 and what its loops said."""

    code: str
    parent: _Level | None
    reports: list[StatusReport] = field(default_factory=list)  # 2200B/2200C STCs
    rejections: list[RequestRejection] = field(default_factory=list)  # AAA
    other: list[OtherSegment] = field(default_factory=list)
    trace: str = ""  # TRN02 of 2200B/2200C
    name: str = ""  # 2100A NM103 (the payer's name; never a person's)
    identifier: str = ""  # NM109
    has_claims: bool = False

    @property
    def letter(self) -> str:
        return _LEVELS.get(self.code, ("?", ""))[0]

    @property
    def level_name(self) -> str:
        return _LEVELS.get(self.code, ("", f"level {self.code}"))[1]

    def chain(self) -> list[_Level]:
        """This level and its ancestors, the top (payer) first."""
        found: list[_Level] = []
        level: _Level | None = self
        while level is not None:
            found.append(level)
            level = level.parent
        return found[::-1]

    def up(self, code: str) -> _Level | None:
        return next((level for level in self.chain() if level.code == code), None)


@dataclass
class _Reader:
    """One 277 transaction set (ST to SE) being read."""

    levels: dict[str, _Level] = field(default_factory=dict)
    order: list[_Level] = field(default_factory=list)
    level: _Level | None = None
    claim: dict[str, Any] | None = None
    line: dict[str, Any] | None = None
    results: list[ClaimStatusResult] = field(default_factory=list)

    def read(self, segment: Segment) -> None:
        if segment.id == "HL":
            self._open_level(segment)
            return
        if segment.id == "BHT":
            # BHT01 0085 / BHT06 TH mark a 277CA even when GS08 says otherwise.
            if segment[1] == "0085" or segment[6] == "TH":
                raise InputError("this 277 is a claim acknowledgment (277CA: BHT 0085 ... TH), not an answer "
                                 "to a 276", where=str(segment), fix=_NOT_ACKNOWLEDGMENT)
            return
        if self.level is None:
            raise InputError("segment before the first HL", where=str(segment))
        loop = self._loop()
        handler = {"NM1": self._name, "TRN": self._trace, "STC": self._status, "REF": self._reference,
                   "DTP": self._date, "SVC": self._service_line, "AAA": self._rejection,
                   "DMG": self._demographics}.get(segment.id)
        if handler is None or not handler(segment, loop):
            self._keep(segment, loop)

    def finished(self) -> list[ClaimStatusResult]:
        self._close_claim()
        for level in self.order:
            # A refusal with no claim under it is a result of its own, so it is never lost.
            if (level.reports or level.rejections) and not level.has_claims:
                self.results.append(self._result(level, None))
        return self.results

    # --- levels ----------------------------------------------------------------------------------

    def _open_level(self, segment: Segment) -> None:
        self._close_claim()
        parent_id = segment[2]
        if parent_id and parent_id not in self.levels:
            raise InputError("HL02 names a parent HL that does not come before it", where=str(segment))
        if not segment[1]:
            raise InputError("HL01, the hierarchical id, is missing", where=str(segment))
        self.level = _Level(segment[3], self.levels.get(parent_id))
        self.levels[segment[1]] = self.level
        self.order.append(self.level)

    def _loop(self) -> str:
        assert self.level is not None
        letter = self.level.letter
        if self.line is not None:
            return f"2220{letter}"
        if self.claim is not None:
            return f"2200{letter}"
        return f"2000{letter}"

    # --- segment handlers: True when the segment was interpreted ---------------------------------

    def _name(self, segment: Segment, loop: str) -> bool:
        assert self.level is not None
        if self.claim is not None:
            return False
        if self.level.code == "20":
            self.level.name = segment[3]  # an organisation: the payer
        # Subscriber and patient names are PHI: only the id is kept; the dependent has none.
        if self.level.code != "23":
            self.level.identifier = segment[9]
        return True

    def _demographics(self, segment: Segment, loop: str) -> bool:
        return self.level is not None and self.level.code in _CLAIM_LEVELS  # birth dates: not kept

    def _trace(self, segment: Segment, loop: str) -> bool:
        assert self.level is not None
        if self.level.code in _CLAIM_LEVELS:
            self._close_claim()
            letter = self.level.letter
            trace = _required(segment, 2, "TRN02, the trace number", f"2200{letter}")
            self.claim = {"trace_number": trace, "reports": [], "lines": [], "other": []}
            return True
        if self.level.code in ("21", "19"):
            self.level.trace = segment[2]
            return True
        return False

    def _status(self, segment: Segment, loop: str) -> bool:
        assert self.level is not None
        if self.line is not None:
            self.line["reports"].append(_report(segment, "line", loop))
        elif self.claim is not None:
            self.claim["reports"].append(_report(segment, "claim", loop))
        elif self.level.code in _CLAIM_LEVELS:
            raise InputError("claim status (STC) with no claim (no TRN before it)", where=_at(segment, loop))
        else:
            self.level.reports.append(_report(segment, self.level.level_name, f"2200{self.level.letter}"))
        return True

    def _reference(self, segment: Segment, loop: str) -> bool:
        if self.line is not None and segment[1] == "FJ":
            self.line["line_item_control_number"] = segment[2] or None
            return True
        if self.line is None and self.claim is not None:
            name = {"1K": "payer_claim_control_number", "EJ": "patient_control_number",
                    "D9": "clearinghouse_trace_number"}.get(segment[1])
            if name:
                self.claim[name] = segment[2] or None
                return True
        return False

    def _date(self, segment: Segment, loop: str) -> bool:
        target = self.line if self.line is not None else self.claim
        if target is None or segment[1] != "472":
            return False
        target["service_date_from"], target["service_date_to"] = _period(segment, loop)
        return True

    def _service_line(self, segment: Segment, loop: str) -> bool:
        if self.claim is None:
            raise InputError("service line (SVC) with no claim (no TRN before it)", where=_at(segment, loop))
        self._close_line()
        line_loop = f"2220{loop[-1]}"
        procedure = segment.components(1)
        self.line = {
            "procedure_qualifier": procedure[0] if procedure else "",
            "procedure_code": procedure[1] if len(procedure) > 1 else "",
            "modifiers": tuple(m for m in procedure[2:6] if m),
            "charge": _amount(segment, 2, line_loop),
            "paid_amount": _amount(segment, 3, line_loop),
            "revenue_code": segment[4] or None,
            "units": _amount(segment, 7, line_loop),
            "reports": [],
            "other": [],
        }
        return True

    def _rejection(self, segment: Segment, loop: str) -> bool:
        assert self.level is not None
        if self.claim is not None:
            return False
        table = claim_status_table()
        reason = segment[3]
        follow_up = segment[4]
        self.level.rejections.append(RequestRejection(
            level=self.level.level_name,
            valid_request=segment[1] == "Y",
            reason=Code(reason, table.get("request_rejection_reason", {}).get(reason) or f"code {reason}"),
            follow_up=(Code(follow_up, table.get("request_follow_up", {}).get(follow_up) or f"code {follow_up}")
                       if follow_up else None),
        ))
        return True

    def _keep(self, segment: Segment, loop: str) -> None:
        assert self.level is not None
        kept = OtherSegment(loop, segment.number, segment.elements)
        if self.line is not None:
            self.line["other"].append(kept)
        elif self.claim is not None:
            self.claim["other"].append(kept)
        else:
            self.level.other.append(kept)

    # --- closing loops ---------------------------------------------------------------------------

    def _close_line(self) -> None:
        if self.line is not None and self.claim is not None:
            line = self.line
            self.claim["other"].extend(line.pop("other"))
            reports = tuple(line.pop("reports"))
            self.claim["lines"].append(LineStatus(**line, reports=reports))
        self.line = None

    def _close_claim(self) -> None:
        self._close_line()
        if self.claim is not None and self.level is not None:
            for level in self.level.chain():
                level.has_claims = True
            self.results.append(self._result(self.level, self.claim))
        self.claim = None

    def _result(self, level: _Level, claim: dict[str, Any] | None) -> ClaimStatusResult:
        chain = level.chain()  # a claim inherits what every level above it said
        level_reports = tuple(r for lvl in chain for r in lvl.reports)
        rejections = tuple(r for lvl in chain for r in lvl.rejections)
        other = tuple(s for lvl in chain for s in lvl.other)
        payer, receiver = level.up("20"), level.up("21")
        provider, subscriber = level.up("19"), level.up("22")
        ids = {
            "payer_id": payer.identifier if payer else "",
            "payer_name": payer.name if payer else "",
            "receiver_id": receiver.identifier if receiver else "",
            "provider_id": provider.identifier if provider else "",
            "member_id": subscriber.identifier if subscriber else "",
        }
        if claim is None:
            own = level.reports or level_reports
            # An AAA alone says the request could not be answered: the E family's "error".
            status = own[0].status if own else "error"
            return ClaimStatusResult(
                trace_number=level.trace, status=status, reports=(), level=level.level_name,
                level_reports=level_reports, rejections=rejections, other_segments=other, **ids,
            )
        reports = tuple(claim["reports"])
        if reports:
            status = reports[0].status
        elif level_reports:
            status = level_reports[0].status
        else:
            status = "error" if rejections else "unknown"
        return ClaimStatusResult(
            trace_number=claim["trace_number"],
            status=status,
            reports=reports,
            patient_control_number=claim.get("patient_control_number"),
            payer_claim_control_number=claim.get("payer_claim_control_number"),
            clearinghouse_trace_number=claim.get("clearinghouse_trace_number"),
            service_date_from=claim.get("service_date_from"),
            service_date_to=claim.get("service_date_to"),
            service_lines=tuple(claim["lines"]),
            level_reports=level_reports,
            rejections=rejections,
            patient_is_dependent=level.code == "23",
            other_segments=other + tuple(claim["other"]),
            **ids,
        )


# --- element readers: messages name the element, segment and loop, never the value ----------------


def _report(segment: Segment, level: str, loop: str) -> StatusReport:
    """One STC: its status composites (STC01, STC10, STC11) and payment details (STC02-STC09)."""
    codes = []
    for position in (1, 10, 11):
        parts = segment.components(position)
        if not parts:
            if position == 1:
                raise InputError("STC01, the claim status, is missing", where=_at(segment, loop))
            continue
        category, status, entity, code_list = (parts + ["", "", ""])[:4]
        if not category:
            raise InputError(f"STC{position:02d}-1, the status category, is missing", where=_at(segment, loop))
        codes.append(StatusCode(
            category=lookup("claim_status_category", category),
            status=lookup("claim_status", status) if status else Code("", ""),
            entity=lookup("entity", entity) if entity else None,
            code_list=code_list,
        ))
    return StatusReport(
        codes=tuple(codes),
        status=hub_status(codes[0].category.value),
        effective_date=_date8(segment, 2, loop),
        total_charge=_amount(segment, 4, loop),
        paid_amount=_amount(segment, 5, loop),
        adjudication_date=_date8(segment, 6, loop),
        payment_method=segment[7] or None,
        payment_date=_date8(segment, 8, loop),
        check_or_eft_number=segment[9] or None,
        message=segment[12] or None,
        level=level,
    )


def _period(segment: Segment, loop: str) -> tuple[date, date]:
    """DTP03 as a (first, last) pair: D8 is one day, RD8 a range."""
    qualifier, value = segment[2], segment[3]
    try:
        if qualifier == "D8":
            day = datetime.strptime(value, "%Y%m%d").date()
            return day, day
        if qualifier == "RD8":
            first, _, last = value.partition("-")
            return datetime.strptime(first, "%Y%m%d").date(), datetime.strptime(last, "%Y%m%d").date()
    except ValueError:
        pass
    raise InputError("DTP03 is not a date (D8) or a date range (RD8)", where=_at(segment, loop))


def _amount(segment: Segment, position: int, loop: str) -> Decimal | None:
    if not segment[position]:
        return None
    try:
        value = Decimal(segment[position])
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        raise InputError(f"{segment.id}{position:02d} is not an amount", where=_at(segment, loop))
    return value


def _date8(segment: Segment, position: int, loop: str) -> date | None:
    if not segment[position]:
        return None
    try:
        return datetime.strptime(segment[position], "%Y%m%d").date()
    except ValueError:
        raise InputError(f"{segment.id}{position:02d} is not a date (CCYYMMDD)", where=_at(segment, loop)) from None


def _required(segment: Segment, position: int, name: str, loop: str) -> str:
    if not segment[position]:
        raise InputError(f"{name} is missing", where=_at(segment, loop))
    return segment[position]


def _at(segment: Segment, loop: str) -> str:
    return f"{segment.id} (segment {segment.number}, loop {loop})"
