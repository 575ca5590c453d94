"""The 005010X279A1 271 reader: one ``EligibilityResponse`` per patient the payer answered about.

One file on purpose (about 500 lines): it is one reader, a loop-aware walk over a transaction's
segments (``_Transaction``, its per-segment handlers, the HL levels it builds, and the element
readers whose messages name the segment and loop); split, following one loop through it would
go back and forth between files. The records it makes live in ``bhhub.eligibility.benefits``,
``benefit_entries`` and ``service_benefits``.

    read_271(content) -> [EligibilityResponse]

Loop-aware, by the HL hierarchy (domain reference 8.1): 2000A/2100A information source (the
payer, AAA), 2000B/2100B information receiver (the provider, AAA), 2000C/2100C subscriber
(TRN, NM1, REF, DTP, AAA...), 2110C benefit loops (EB with HSD, REF, DTP, AAA, MSG, 2115C III,
and LS/2120C NM1/LE), then 2000D/2100D/2110D for a dependent. Several ST/SE per interchange
are read in order. EB03 lists are split on the ISA11 repetition separator, EB13 on ISA16.

A response is made for every 2000D, and for every 2000C that has no dependent under it or
that carries benefits or rejections of its own. A 2000A or 2000B rejected with no subscriber
under it still gives one response (``patient`` None) so the rejection is not lost.

Segments the reader does not interpret are kept in ``unrecognized`` (with their loop); the
subscriber's and dependent's addresses are read past, and their family name and birth date are
held only in ``identity`` (never stored) to tell apart patients sharing a member id. BHT04, the
day the payer made the answer, is ``created``: an older answer arriving later does not replace it. Messages of
``InputError`` name segments and loops, never values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from bhhub.eligibility import codes
from bhhub.eligibility.benefit_entries import BenefitEntry, DatePeriod, Delivery, Rejection, RelatedEntity
from bhhub.eligibility.benefits import EligibilityResponse, PatientIdentity, Trace, UnrecognizedSegment
from bhhub.eligibility.service_benefits import by_service_type, coverage_active
from bhhub.errors import InputError
from bhhub.x12.tokens import Segment, segments

IMPLEMENTATION_GUIDES = ("005010X279A1", "005010X279")  # the addenda and the original guide
_FIX_VERSION = "ask the clearinghouse or payer for 005010X279A1 (HIPAA 5010) eligibility responses"
_LEVEL_LOOPS = {"20": "A", "21": "B", "22": "C", "23": "D"}  # HL03 -> loop letter
# Segments the guide allows that carry nothing the hub needs (or carry PHI it does not keep).
_READ_PAST = {
    "A": {"PER"},
    "B": {"REF", "N3", "N4", "PRV"},
    "C": {"N3", "N4", "PRV", "INS", "HI", "MPI"},
    "2120": {"N3", "N4", "PER", "PRV"},
}


def read_271(content: bytes | str) -> list[EligibilityResponse]:
    """Every patient answered about in a 271 interchange, in file order.

    Raises ``InputError`` (with a fix) when the content is not a 005010X279A1 271 or is cut short.
    """
    # A 271 is small: reading it whole lets a cut-short file be named as such before its broken
    # last segment is interpreted.
    parsed = list(segments(content))
    if parsed[-1].id != "IEA":
        raise InputError("the 271 is cut short: the interchange has no IEA", where=str(parsed[-1]),
                         fix="ask the sender for the complete file")
    responses: list[EligibilityResponse] = []
    interchange = ""
    reader: _Transaction | None = None
    in_group = False
    for segment in parsed:
        if segment.id == "ISA":
            interchange = segment[13]
        elif segment.id == "GS":
            _check_group(segment)
            in_group = True
        elif segment.id == "ST":
            if not in_group:
                raise InputError("a transaction set outside a functional group (no GS before it)",
                                 where=str(segment))
            _check_transaction(segment)
            reader = _Transaction(segment[2], interchange)
        elif segment.id == "SE":
            if reader is None:
                raise InputError("SE with no ST before it", where=str(segment))
            reader.check_count(segment)
            responses.extend(reader.finished())
            reader = None
        elif segment.id in ("GE", "IEA", "TA1"):
            if reader is not None:
                raise InputError(f"{segment.id} inside a transaction set: its SE is missing",
                                 where=str(segment), fix="ask the sender for the complete file")
            in_group = in_group and segment.id != "GE"
        elif reader is None:
            raise InputError("segment outside a 271 transaction set (no ST before it)", where=str(segment))
        else:
            reader.read(segment)
    return responses


def _check_group(gs: Segment) -> None:
    if gs[1] == "HS":
        raise InputError("this is a 270 (an eligibility inquiry), not a 271 (the payer's response)",
                         where=str(gs), fix="give the payer's 271 response, not the 270 that was sent")
    if gs[1] != "HB":
        raise InputError(f"the functional group is not eligibility responses (GS01 {gs[1] or 'missing'}, "
                         "expected HB)", where=str(gs), fix="give a 271 eligibility response")
    if gs[8] not in IMPLEMENTATION_GUIDES:
        raise InputError(f"the 271 is version {gs[8] or 'unknown'}; bhhub reads 005010X279A1",
                         where=str(gs), fix=_FIX_VERSION)


def _check_transaction(st: Segment) -> None:
    if st[1] == "270":
        raise InputError("this is a 270 (an eligibility inquiry), not a 271 (the payer's response)",
                         where=str(st), fix="give the payer's 271 response, not the 270 that was sent")
    if st[1] != "271":
        raise InputError(f"the transaction set is a {st[1] or 'blank'}, not a 271", where=str(st),
                         fix="give a 271 eligibility response")
    if st[3] and st[3] not in IMPLEMENTATION_GUIDES:
        raise InputError(f"the 271 is version {st[3]}; bhhub reads 005010X279A1", where=str(st),
                         fix=_FIX_VERSION)


@dataclass
class _Level:
    """One HL of a 271 and what was read in it."""

    hl_id: str
    code: str  # HL03: 20 payer, 21 receiver, 22 subscriber, 23 dependent
    parent: _Level | None
    letter: str  # loop letter: A, B, C, D
    name: str = ""  # 2100A NM103
    id: str = ""  # NM109
    id_qualifier: str = ""  # NM108
    has_name: bool = False  # the 2100 NM1 was read
    # 2100C/D NM103 and DMG02: only to tell which patient on a shared member id is meant (never stored)
    family_name: str = ""
    birth_date: date | None = None
    traces: list[Trace] = field(default_factory=list)
    references: list[tuple[str, str, str]] = field(default_factory=list)  # REF01-03
    dates: list[DatePeriod] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    entries: list[BenefitEntry] = field(default_factory=list)
    unrecognized: list[UnrecognizedSegment] = field(default_factory=list)
    children: int = 0

    def chain(self) -> list[_Level]:
        """This level and its ancestors, the payer first."""
        levels, level = [], self
        while level is not None:
            levels.append(level)
            level = level.parent
        return levels[::-1]

    def up(self, code: str) -> _Level | None:
        return next((level for level in self.chain() if level.code == code), None)


class _Transaction:
    """One 271 (ST to SE) being read."""

    def __init__(self, control_number: str, interchange: str):
        self.control_number = control_number
        self.interchange = interchange
        self.reference = ""
        self.created: date | None = None  # BHT04: the day the payer made the answer
        self.levels: list[_Level] = []
        self.by_id: dict[str, _Level] = {}
        self.level: _Level | None = None
        self.entry: dict[str, Any] | None = None  # the 2110 loop being read
        self.related: list[RelatedEntity] | None = None  # inside LS ... LE
        self.count = 1  # ST
        self.header_unrecognized: list[UnrecognizedSegment] = []  # before the first HL

    @property
    def loop(self) -> str:
        if self.level is None:
            return "header"
        if self.related is not None:
            return "2120" + self.level.letter
        if self.entry is not None:
            return "2110" + self.level.letter
        return ("2100" if self.level.has_name else "2000") + self.level.letter

    def read(self, segment: Segment) -> None:
        self.count += 1
        handler = self._handlers.get(segment.id)
        if segment.id == "BHT":
            self.reference = segment[3]
            try:
                self.created = _day(segment[4]) if segment[4] else None
            except ValueError:
                self.created = None  # a malformed BHT04: the day received stands in for it
        elif segment.id == "HL":
            self._hl(segment)
        elif self.level is None:
            self._unrecognized(segment)
        elif self.related is not None:
            if segment.id in ("NM1", "LE"):
                handler(self, segment)
            elif segment.id not in _READ_PAST["2120"]:
                self._unrecognized(segment)
        elif handler is not None:
            handler(self, segment)
        elif segment.id not in _READ_PAST.get("C" if self.level.letter in "CD" else self.level.letter, ()):
            self._unrecognized(segment)

    def check_count(self, se: Segment) -> None:
        """SE01 counts ST through SE: a mismatch means segments were lost or added."""
        if se[1] != str(self.count + 1):
            raise InputError(f"SE01 says {se[1] or 'nothing'} segments but the transaction set has "
                             f"{self.count + 1}: segments were lost or added", where=str(se),
                             fix="ask the sender for the complete, unaltered file")

    # --- hierarchy -------------------------------------------------------------------------------

    def _hl(self, segment: Segment) -> None:
        self._close_entry()
        code = segment[3]
        if code not in _LEVEL_LOOPS:
            raise InputError(f"HL03 {code or 'missing'} is not a 271 level (20, 21, 22 or 23)",
                             where=_at(segment, self.loop))
        parent = self.by_id.get(segment[2]) if segment[2] else None
        if segment[2] and parent is None:
            raise InputError("HL02 names a parent HL that does not come before it", where=str(segment))
        expected = {"20": None, "21": "20", "22": "21", "23": "22"}[code]
        if (parent.code if parent else None) != expected:
            raise InputError(f"an HL of level {code} must be under level {expected or 'none'}",
                             where=_at(segment, "2000" + _LEVEL_LOOPS[code]))
        level = _Level(segment[1], code, parent, _LEVEL_LOOPS[code])
        if parent is not None:
            parent.children += 1
        self.levels.append(level)
        self.by_id[segment[1]] = level
        self.level = level

    def _nm1(self, segment: Segment) -> None:
        level = self.level
        if self.related is not None:
            # 2120: keep an organisation's name; a person's (NM102 1) is not kept.
            self.related.append(RelatedEntity(
                entity_code=segment[1], name=segment[3] if segment[2] == "2" and segment[3] else None,
                id_qualifier=segment[8], id=segment[9],
            ))
        elif self.entry is not None or level.has_name:
            self._unrecognized(segment)
        else:
            level.has_name = True
            level.id_qualifier, level.id = segment[8], segment[9]
            if level.letter in "AB" and segment[2] == "2":
                level.name = segment[3]
            elif level.letter in "CD":
                level.family_name = segment[3]

    def _dmg(self, segment: Segment) -> None:
        if self.level.letter not in "CD" or self.entry is not None:
            self._unrecognized(segment)
            return
        try:
            self.level.birth_date = _day(segment[2]) if segment[1] == "D8" and segment[2] else None
        except ValueError:
            self.level.birth_date = None  # a birth date that is not one matches no patient

    def _trn(self, segment: Segment) -> None:
        if self.level.letter not in "CD" or self.entry is not None:
            self._unrecognized(segment)
            return
        self.level.traces.append(Trace(segment[1], _required(segment, 2, "TRN02 trace number", self.loop),
                                       segment[3], segment[4]))

    def _aaa(self, segment: Segment) -> None:
        rejection = Rejection(loop=self.loop, code=segment[3], follow_up_code=segment[4],
                              valid_request={"Y": True, "N": False}.get(segment[1]))
        if self.entry is not None:
            self.entry["rejections"].append(rejection)
        else:
            self.level.rejections.append(rejection)

    def _ref(self, segment: Segment) -> None:
        if self.entry is not None:
            self.entry["references"].append((segment[1], segment[2]))
        elif self.level.letter in "CD":
            self.level.references.append((segment[1], segment[2], segment[3]))
        elif self.level.letter == "B":
            pass  # the receiver's own ids
        else:
            self._unrecognized(segment)

    def _dtp(self, segment: Segment) -> None:
        period = _date_period(segment, self.loop)
        if self.entry is not None:
            self.entry["dates"].append(period)
        elif self.level.letter in "CD":
            self.level.dates.append(period)
        else:
            self._unrecognized(segment)

    # --- 2110: benefits --------------------------------------------------------------------------

    def _eb(self, segment: Segment) -> None:
        if self.level.letter not in "CD":
            self._unrecognized(segment)
            return
        self._close_entry()
        loop = "2110" + self.level.letter
        procedure = segment.components(13)
        self.entry = {
            "code": _required(segment, 1, "EB01 benefit code", loop),
            "coverage_level": segment[2],
            "service_types": tuple(segment.repetitions(3)),
            "insurance_type": segment[4],
            "plan_description": segment[5],
            "time_period": segment[6],
            "amount": _decimal(segment, 7, loop),
            "percent": _percent(segment, 8, loop),
            "quantity_qualifier": segment[9],
            "quantity": _decimal(segment, 10, loop),
            "auth_required": {"Y": True, "N": False}.get(segment[11]),
            "network": codes.network(segment[12]),
            "procedure": ":".join(p for p in procedure if p) if procedure else None,
            "deliveries": [], "references": [], "dates": [], "rejections": [], "messages": [],
            "additional_information": [], "related_entities": [], "segment_number": segment.number,
        }

    def _hsd(self, segment: Segment) -> None:
        if self.entry is None:
            self._unrecognized(segment)
            return
        loop = self.loop
        self.entry["deliveries"].append(Delivery(
            quantity_qualifier=segment[1], quantity=_decimal(segment, 2, loop), unit=segment[3],
            sample_size=_decimal(segment, 4, loop), time_period=segment[5],
            period_count=_decimal(segment, 6, loop), frequency=segment[7], pattern=segment[8],
        ))

    def _msg(self, segment: Segment) -> None:
        if self.entry is None:
            self._unrecognized(segment)
        elif segment[1]:
            self.entry["messages"].append(segment[1])

    def _iii(self, segment: Segment) -> None:
        if self.entry is None:
            self._unrecognized(segment)
            return
        # 2115: III01 qualifier and III02 code (ZZ with a place of service), or III03 free text.
        value = ":".join(v for v in (segment[1], segment[2]) if v) or segment[3]
        if value:
            self.entry["additional_information"].append(value)

    def _ls(self, segment: Segment) -> None:
        if self.entry is None or self.related is not None:
            self._unrecognized(segment)
            return
        self.related = []

    def _le(self, segment: Segment) -> None:
        if self.related is None:
            self._unrecognized(segment)
            return
        self.entry["related_entities"].extend(self.related)
        self.related = None

    def _unrecognized(self, segment: Segment) -> None:
        kept = UnrecognizedSegment(self.loop, segment.id, segment.number,
                                   "*".join(segment.elements))
        (self.level.unrecognized if self.level is not None else self.header_unrecognized).append(kept)

    def _close_entry(self) -> None:
        if self.related is not None:  # an LS with no LE: keep what it named
            self.entry["related_entities"].extend(self.related)
            self.related = None
        if self.entry is None:
            return
        entry = self.entry
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()}
        self.level.entries.append(BenefitEntry(**fields))
        self.entry = None

    _handlers = {
        "NM1": _nm1, "DMG": _dmg, "TRN": _trn, "AAA": _aaa, "REF": _ref, "DTP": _dtp, "EB": _eb, "HSD": _hsd,
        "MSG": _msg, "III": _iii, "LS": _ls, "LE": _le,
    }

    # --- responses -------------------------------------------------------------------------------

    def finished(self) -> list[EligibilityResponse]:
        self._close_entry()
        responses: list[EligibilityResponse] = []
        for level in self.levels:
            if level.code == "23":
                responses.append(self._response(level))
            elif level.code == "22" and (not level.children or level.entries or level.rejections):
                responses.append(self._response(level))
            elif level.code in ("20", "21") and level.rejections and not self._has_subscriber(level):
                responses.append(self._response(level))
        return responses

    def _has_subscriber(self, level: _Level) -> bool:
        return any(other.code == "22" and level in other.chain() for other in self.levels)

    def _response(self, level: _Level) -> EligibilityResponse:
        chain = level.chain()
        payer, receiver = level.up("20"), level.up("21")
        subscriber, dependent = level.up("22"), level.up("23")
        patient = dependent or subscriber
        entries = tuple(patient.entries) if patient else ()
        rejections = tuple(r for lv in chain for r in lv.rejections) + tuple(
            r for e in entries for r in e.rejections)
        traces = (dependent.traces if dependent and dependent.traces else []) or (
            subscriber.traces if subscriber else [])
        references = [r for lv in chain if lv.code in ("22", "23") for r in lv.references]
        active_entries = [e for e in entries if e.active]
        return EligibilityResponse(
            payer_id=payer.id if payer else "",
            payer_name=payer.name if payer else "",
            payer_id_qualifier=payer.id_qualifier if payer else "",
            receiver_id=receiver.id if receiver else "",
            receiver_id_qualifier=receiver.id_qualifier if receiver else "",
            subscriber_member_id=subscriber.id if subscriber else "",
            dependent_member_id=(dependent.id or None) if dependent else None,
            patient=("dependent" if dependent else "subscriber") if subscriber else None,
            traces=tuple(traces),
            active=coverage_active(entries),
            plan_number=_reference(references, "18"),
            group_number=_reference(references, "6P"),
            group_name=next((r[2] for r in reversed(references) if r[0] == "6P" and r[2]), None),
            plan_description=next((e.plan_description for e in active_entries + list(entries)
                                   if e.plan_description), None),
            insurance_type=next((e.insurance_type for e in active_entries if e.insurance_type), None),
            dates=tuple(patient.dates) if patient else (),
            rejections=rejections,
            benefits=by_service_type(entries),
            entries=entries,
            messages=tuple(dict.fromkeys(m for e in entries for m in e.messages)),
            unrecognized=tuple(self.header_unrecognized) + tuple(u for lv in chain for u in lv.unrecognized),
            reference=self.reference,
            created=self.created,
            identity=PatientIdentity(patient.family_name, patient.birth_date) if patient else None,
            control_number=self.control_number,
            interchange_control_number=self.interchange,
        )


def _reference(references: list[tuple[str, str, str]], qualifier: str) -> str | None:
    """The dependent's own REF when it has one (it comes last), else the subscriber's."""
    return next((r[1] for r in reversed(references) if r[0] == qualifier and r[1]), None)


# --- element readers: messages name the element and loop, never the value ---------------------------


def _at(segment: Segment, loop: str) -> str:
    return f"{segment.id} (segment {segment.number}, loop {loop})"


def _required(segment: Segment, position: int, name: str, loop: str) -> str:
    if not segment[position]:
        raise InputError(f"{name} is missing", where=_at(segment, loop))
    return segment[position]


def _decimal(segment: Segment, position: int, loop: str) -> Decimal | None:
    value = segment[position]
    if not value:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise InputError(f"{segment.id}{position:02d} is not a number", where=_at(segment, loop))
    return number


def _percent(segment: Segment, position: int, loop: str) -> Decimal | None:
    """EB08 is a fraction (.2 is 20%); a value above 1 is read as a percent (20 is 20%), since a
    coinsurance above 100% does not exist and some payers send it that way."""
    value = _decimal(segment, position, loop)
    if value is not None and value > 1:
        return value / 100
    return value


def _date_period(segment: Segment, loop: str) -> DatePeriod:
    """DTP*qualifier*D8*CCYYMMDD or DTP*qualifier*RD8*CCYYMMDD-CCYYMMDD."""
    qualifier, form, value = segment[1], segment[2], segment[3]
    try:
        if form == "RD8":
            start, end = value.split("-")
            return DatePeriod(qualifier, _day(start), _day(end))
        if form == "D8":
            return DatePeriod(qualifier, _day(value))
    except ValueError:
        pass
    raise InputError(f"DTP03 is not a date in the {form or 'missing'} format", where=_at(segment, loop))


def _day(text: str) -> date:
    if len(text) != 8:
        raise ValueError(text)
    return datetime.strptime(text, "%Y%m%d").date()
