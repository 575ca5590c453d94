"""What a 271 says about one patient's coverage, as typed records (005010X279A1).

    response.active                          # True, False, or None when the 271 does not say
    response.benefits["A6"].copay()          # Decimal("30"): in-network copay for psychotherapy
    response.benefits["A6"].visits_remaining()
    response.mental_health_summary()         # domain reference 8.3 "Hub logic", one record
    coverage(response.benefits, ("A6", "MH"))  # covered, not covered (EB01 I, E), or unclear
    response.to_json()                       # plain dicts (Decimal as text, dates ISO)

One ``BenefitEntry`` per 2110C/D loop (one EB with its HSD, REF, DTP, AAA, MSG and 2120 loop),
kept in file order. ``ServiceBenefits`` groups the entries naming one service type (EB03) and
combines them: a value is looked for in the network asked for, then in "both" (EB12 W), then in
"unknown" (EB12 absent or U), never in the other network; the individual level (EB02 IND, or
none) wins over family; an entry for one procedure (EB13) never stands for the general value.
Money is ``Decimal``; percentages are ``Decimal`` fractions (0.2 is 20%).

Names, birth dates and addresses of the subscriber and dependent are not read at all: the
records carry member ids and trace numbers, which is what matching and logs need.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

from bhhub.eligibility import codes, conditions
from bhhub.eligibility.conditions import AuthRule
from bhhub.eligibility.coverage import REFUSING_CODES, NotCovered, coverage

ACTIVE_CODES = frozenset({"1", "2", "3", "4", "5"})  # EB01, domain reference 8.3
INACTIVE_CODES = frozenset({"6", "7", "8"})
REMAINING_PERIODS = frozenset({"29", "33"})  # EB06 remaining, lifetime remaining
MET_PERIODS = frozenset({"24"})  # EB06 year to date: what has been spent or met so far
UNSPECIFIED = "unspecified"  # the key of entries with no service type (EB03 absent)
_INDIVIDUAL = ("IND", "")  # EB02 levels that describe the patient alone
_NETWORK_ORDER = {
    "in": ("in", "both", "unknown"),
    "out": ("out", "both", "unknown"),
    "both": ("both", "unknown"),
    "unknown": ("unknown",),
}
_COPAY, _COINSURANCE, _DEDUCTIBLE, _OUT_OF_POCKET = "B", "A", "C", "G"


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _number(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


@dataclass(frozen=True)
class DatePeriod:
    """A DTP: a date or a range (RD8), with its qualifier (291 plan, 356 eligibility begin...)."""

    qualifier: str
    start: date
    end: date | None = None  # only for a range

    @property
    def meaning(self) -> str:
        return codes.describe("date", self.qualifier)

    def to_json(self) -> dict[str, Any]:
        return {"qualifier": self.qualifier, "meaning": self.meaning, "start": self.start.isoformat(),
                "end": self.end.isoformat() if self.end else None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DatePeriod:
        return cls(data["qualifier"], date.fromisoformat(data["start"]),
                   date.fromisoformat(data["end"]) if data.get("end") else None)


# DTP qualifiers that bound when coverage or a benefit is in effect (005010X279A1 2100C/D and
# 2110C/D DTP01): a range (RD8) of plan (291), benefit (292) or eligibility (307) dates, or one
# end of it. A single D8 291/292/307 is the day the answer is about, not a limit.
_RANGE_DATES = frozenset({"291", "292", "307"})
_BEGIN_DATES = frozenset({"346", "348", "356"})  # plan, benefit, eligibility begin
_END_DATES = frozenset({"347", "349", "357"})  # plan, benefit, eligibility end


def in_effect(dates, day: date | None) -> bool:
    """Whether ``day`` is inside every limit these DTPs set (True when ``day`` is None or none limits)."""
    if day is None:
        return True
    for period in dates:
        if period.qualifier in _RANGE_DATES and period.end is not None:
            if not period.start <= day <= period.end:
                return False
        elif period.qualifier in _BEGIN_DATES:
            if day < period.start:
                return False
        elif period.qualifier in _END_DATES:
            if day > (period.end or period.start):
                return False
    return True


def limits_before(dates, day: date) -> date | None:
    """The last day these DTPs allow when it is before ``day`` (coverage that had ended), else None."""
    ends = [p.end for p in dates if p.qualifier in _RANGE_DATES and p.end is not None]
    ends += [p.end or p.start for p in dates if p.qualifier in _END_DATES]
    ended = [e for e in ends if e < day]
    return min(ended) if ended else None


@dataclass(frozen=True)
class Rejection:
    """An AAA: the payer could not answer (part of) the request, and what to do next."""

    loop: str  # 2000A, 2100A, 2100B, 2100C, 2100D, 2110C, 2110D
    code: str  # AAA03 reject reason, e.g. 75 subscriber not found
    follow_up_code: str  # AAA04, e.g. C correct and resubmit
    valid_request: bool | None = None  # AAA01: Y the request was valid, N it was not

    @property
    def meaning(self) -> str:
        return codes.describe("reject_reason", self.code)

    @property
    def follow_up(self) -> str:
        return codes.describe("follow_up", self.follow_up_code)

    def describe(self) -> str:
        text = f"loop {self.loop}: {self.meaning} ({self.code})"
        return f"{text}; {self.follow_up} ({self.follow_up_code})" if self.follow_up_code else text

    def to_json(self) -> dict[str, Any]:
        return {"loop": self.loop, "code": self.code, "meaning": self.meaning,
                "follow_up_code": self.follow_up_code, "follow_up": self.follow_up,
                "valid_request": self.valid_request}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Rejection:
        return cls(data["loop"], data["code"], data.get("follow_up_code") or "", data.get("valid_request"))


@dataclass(frozen=True)
class RelatedEntity:
    """A 2120C/D loop: another party the benefit names (carve-out payer, PCP, other payer)."""

    entity_code: str  # NM101, e.g. PR payer, Y2 managed care organization, P3 primary care provider
    name: str | None  # NM103 of an organisation; None for a person (names are not kept)
    id_qualifier: str  # NM108, e.g. PI payer id, XX NPI
    id: str  # NM109

    @property
    def entity(self) -> str:
        return codes.describe("entity", self.entity_code)

    def to_json(self) -> dict[str, Any]:
        return {"entity_code": self.entity_code, "entity": self.entity, "name": self.name,
                "id_qualifier": self.id_qualifier, "id": self.id}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RelatedEntity:
        return cls(data["entity_code"], data.get("name"), data.get("id_qualifier") or "", data.get("id") or "")


@dataclass(frozen=True)
class Delivery:
    """An HSD: quantity and frequency, e.g. ``HSD*VS*20***23*1`` = 20 visits per 1 calendar year."""

    quantity_qualifier: str  # HSD01: VS visits, DY days, HS hours...
    quantity: Decimal | None  # HSD02
    unit: str = ""  # HSD03: DA days, WK week, MO months, YR years, VS visit
    sample_size: Decimal | None = None  # HSD04
    time_period: str = ""  # HSD05: 23 calendar year, 29 remaining...
    period_count: Decimal | None = None  # HSD06
    frequency: str = ""  # HSD07
    pattern: str = ""  # HSD08

    @property
    def remaining(self) -> bool:
        return self.time_period in REMAINING_PERIODS

    def describe(self) -> str:
        what = codes.describe("quantity", self.quantity_qualifier) if self.quantity_qualifier else ""
        text = f"{self.quantity if self.quantity is not None else ''} {what}".strip()
        if self.time_period:
            count = f"{self.period_count} " if self.period_count is not None else ""
            text += f" per {count}{codes.describe('time_period', self.time_period)}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"quantity_qualifier": self.quantity_qualifier, "quantity": _text(self.quantity),
                "unit": self.unit, "sample_size": _text(self.sample_size), "time_period": self.time_period,
                "period_count": _text(self.period_count), "frequency": self.frequency, "pattern": self.pattern,
                "remaining": self.remaining}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Delivery:
        return cls(data["quantity_qualifier"], _number(data.get("quantity")), data.get("unit") or "",
                   _number(data.get("sample_size")), data.get("time_period") or "", _number(data.get("period_count")),
                   data.get("frequency") or "", data.get("pattern") or "")


@dataclass(frozen=True)
class BenefitEntry:
    """One 2110C/D loop: an EB segment and the segments that refine it."""

    code: str  # EB01: 1 active, 6 inactive, A coinsurance, B copay, C deductible, G out of pocket...
    service_types: tuple[str, ...] = ()  # EB03, split on the repetition separator
    coverage_level: str = ""  # EB02: IND, FAM...
    insurance_type: str = ""  # EB04
    plan_description: str = ""  # EB05
    time_period: str = ""  # EB06: 27 visit, 23 calendar year, 29 remaining...
    amount: Decimal | None = None  # EB07
    percent: Decimal | None = None  # EB08, as a fraction
    quantity_qualifier: str = ""  # EB09: VS visits...
    quantity: Decimal | None = None  # EB10
    auth_required: bool | None = None  # EB11: Y True, N False, U or absent None
    network: str = "unknown"  # EB12: in, out, both (W), unknown (U or absent)
    procedure: str | None = None  # EB13 qualifier and code, e.g. "HC:90837" (modifiers after)
    deliveries: tuple[Delivery, ...] = ()  # HSD
    references: tuple[tuple[str, str], ...] = ()  # REF qualifier, value
    dates: tuple[DatePeriod, ...] = ()  # DTP
    rejections: tuple[Rejection, ...] = ()  # AAA
    messages: tuple[str, ...] = ()  # MSG01
    additional_information: tuple[str, ...] = ()  # 2115 III, e.g. "ZZ:11" (place of service)
    related_entities: tuple[RelatedEntity, ...] = ()  # 2120 loops
    segment_number: int = 0  # where the EB is in the interchange

    @property
    def meaning(self) -> str:
        return codes.describe("benefit", self.code)

    @property
    def active(self) -> bool:
        return self.code in ACTIVE_CODES

    @property
    def inactive(self) -> bool:
        return self.code in INACTIVE_CODES

    @property
    def remaining(self) -> bool:
        """EB06 says the amount or quantity is what is left (29, or 33 for the lifetime)."""
        return self.time_period in REMAINING_PERIODS

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code, "meaning": self.meaning, "service_types": list(self.service_types),
            "coverage_level": self.coverage_level, "insurance_type": self.insurance_type,
            "plan_description": self.plan_description, "time_period": self.time_period,
            "amount": _text(self.amount), "percent": _text(self.percent),
            "quantity_qualifier": self.quantity_qualifier, "quantity": _text(self.quantity),
            "auth_required": self.auth_required, "network": self.network, "procedure": self.procedure,
            "deliveries": [d.to_json() for d in self.deliveries],
            "references": [list(r) for r in self.references], "dates": [d.to_json() for d in self.dates],
            "rejections": [r.to_json() for r in self.rejections], "messages": list(self.messages),
            "additional_information": list(self.additional_information),
            "related_entities": [e.to_json() for e in self.related_entities],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BenefitEntry:
        """The entry as ``to_json`` stored it (a check's answer read back from the store)."""
        return cls(
            code=data["code"], service_types=tuple(data.get("service_types") or ()),
            coverage_level=data.get("coverage_level") or "", insurance_type=data.get("insurance_type") or "",
            plan_description=data.get("plan_description") or "", time_period=data.get("time_period") or "",
            amount=_number(data.get("amount")), percent=_number(data.get("percent")),
            quantity_qualifier=data.get("quantity_qualifier") or "", quantity=_number(data.get("quantity")),
            auth_required=data.get("auth_required"), network=data.get("network") or "unknown",
            procedure=data.get("procedure"),
            deliveries=tuple(Delivery.from_json(d) for d in data.get("deliveries", ())),
            references=tuple(tuple(r) for r in data.get("references", ())),
            dates=tuple(DatePeriod.from_json(d) for d in data.get("dates", ())),
            rejections=tuple(Rejection.from_json(r) for r in data.get("rejections", ())),
            messages=tuple(data.get("messages", ())),
            additional_information=tuple(data.get("additional_information", ())),
            related_entities=tuple(RelatedEntity.from_json(r) for r in data.get("related_entities", ())),
        )

    @property
    def procedure_code(self) -> str | None:
        """The code of EB13 ("HC:90837" -> "90837"), without qualifier or modifiers."""
        if not self.procedure:
            return None
        parts = self.procedure.split(":")
        return parts[1] if len(parts) > 1 else parts[0]

    @property
    def places_of_service(self) -> tuple[str, ...]:
        """The places of service a 2115 III limits the benefit to (III01 ZZ, III02 the code)."""
        return tuple(i.split(":", 1)[1] for i in self.additional_information if i.startswith("ZZ:"))

    def applies(self, procedure_code: str | None = None, place_of_service: str | None = None,
                service_date: date | None = None) -> bool:
        """Whether the entry speaks for a service billed in network with this code at this place
        on this day: an out-of-network benefit (EB12 N) does not, nor one for another procedure
        (EB13) or limited to other places (2115 III), nor a limited one when the place is not
        known, nor one whose dates (2110 DTP) leave the day out."""
        if self.network == "out":
            return False
        if not in_effect(self.dates, service_date):
            return False
        if self.procedure is not None and self.procedure_code != procedure_code:
            return False
        places = self.places_of_service
        return not places or place_of_service in places


def benefits_from_json(response: dict[str, Any]) -> dict[str, ServiceBenefits]:
    """A stored answer's benefits per service type, as typed records again (``to_json`` kept
    every entry), so a claim is judged by the same rules the answer was summarised with."""
    return {stc: ServiceBenefits(stc, tuple(BenefitEntry.from_json(e) for e in found.get("entries", ())))
            for stc, found in (response.get("benefits") or {}).items()}


@dataclass(frozen=True)
class CarveOut:
    """The benefit is administered by another payer (often a managed behavioral health
    organization): eligibility must be checked, and claims sent, there (else CARC 109)."""

    service_type: str
    benefit_code: str  # EB01 of the entry that says so (U, MC, or 1 with a 2120 payer)
    entity: RelatedEntity | None  # the 2120 payer or organisation, None when only MSG says who
    messages: tuple[str, ...] = ()

    @property
    def payer_id(self) -> str | None:
        return self.entity.id if self.entity and self.entity.id else None

    @property
    def payer_name(self) -> str | None:
        return self.entity.name if self.entity else None

    def to_json(self) -> dict[str, Any]:
        return {"service_type": self.service_type, "benefit_code": self.benefit_code,
                "payer_id": self.payer_id, "payer_name": self.payer_name,
                "entity": self.entity.to_json() if self.entity else None, "messages": list(self.messages)}


@dataclass(frozen=True)
class ServiceBenefits:
    """Everything a 271 says about one service type (EB03), combined from its entries."""

    service_type: str
    entries: tuple[BenefitEntry, ...]

    @property
    def description(self) -> str:
        return "no service type given" if self.service_type == UNSPECIFIED else codes.describe(
            "service_type", self.service_type)

    @property
    def active(self) -> bool | None:
        """True when an entry says active (EB01 1-5), False when one says inactive (6-8)."""
        if any(e.active for e in self.entries):
            return True
        return False if any(e.inactive for e in self.entries) else None

    @property
    def non_covered(self) -> bool:
        return any(e.code == "I" for e in self.entries)

    @property
    def insurance_types(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.insurance_type for e in self.entries if e.insurance_type))

    @property
    def plan_descriptions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.plan_description for e in self.entries if e.plan_description))

    @property
    def in_network(self) -> bool | None:
        """Whether the benefits given are in-network ones: True when any entry is EB12 Y,
        False when all that say are out-of-network, None when none says."""
        networks = {e.network for e in self.entries}
        if "in" in networks or "both" in networks:
            return True
        return False if "out" in networks else None

    def copay(self, network: str = "in") -> Decimal | None:
        """The copay (EB01 B, EB07) in ``network``; per visit when EB06 is 27."""
        return self._amount(_COPAY, network, remaining=False)

    def coinsurance(self, network: str = "in") -> Decimal | None:
        """The coinsurance (EB01 A, EB08) as a fraction: 0.2 is 20%."""
        return self._value(_COINSURANCE, network, lambda e: e.percent, remaining=False)

    def deductible(self, network: str = "in", *, remaining: bool = False) -> Decimal | None:
        """The deductible for the period (EB06 23, 22...), or what is left of it (EB06 29)."""
        return self._amount(_DEDUCTIBLE, network, remaining=remaining)

    def out_of_pocket(self, network: str = "in", *, remaining: bool = False) -> Decimal | None:
        """The out-of-pocket maximum (EB01 G), or what is left of it (EB06 29)."""
        return self._amount(_OUT_OF_POCKET, network, remaining=remaining)

    def visits_allowed(self, network: str = "in") -> Decimal | None:
        """Visits per period, from EB09/EB10 (VS) or an HSD (HSD01 VS), not the remaining ones."""
        return self._visits(network, remaining=False)

    def visits_remaining(self, network: str = "in") -> Decimal | None:
        """Visits left: EB09 VS with EB06 29, or an HSD with HSD05 29."""
        return self._visits(network, remaining=True)

    @property
    def auth_required(self) -> bool | None:
        """EB11 of the general entries that apply in network at any place: True when any says Y,
        False when some say N and none Y, else None. An entry for one procedure (EB13) speaks for
        it alone (``for_procedure``); one for other places (2115 III) or out of network (EB12 N)
        only for a claim there (``auth_required_for``)."""
        return self.auth_required_for()

    def auth_required_for(self, place_of_service: str | None = None, service_date: date | None = None) -> bool | None:
        """EB11 of the general entries that apply to a visit at this place on this day."""
        flags = {e.auth_required for e in self.entries
                 if e.procedure is None and e.applies(None, place_of_service, service_date)}
        if True in flags:
            return True
        return False if False in flags else None

    @property
    def carve_out(self) -> CarveOut | None:
        """The first entry that sends this benefit to another payer (domain reference 8.3)."""
        benefit_codes, entity_codes = codes.carve_out_rules()
        for entry in self.entries:
            if entry.code == "R":  # other or additional payer: coordination of benefits, not a carve-out
                continue
            payers = [r for r in entry.related_entities if r.entity_code in entity_codes]
            # EB01 U ("contact the following entity") says so by itself; MC (managed care
            # coordinator) only with a 2120 payer or organisation naming who administers it.
            if (entry.code in benefit_codes and (entry.code != "MC" or entry.related_entities)) or payers:
                entity = (payers or list(entry.related_entities) or [None])[0]
                return CarveOut(self.service_type, entry.code, entity, entry.messages)
        return None

    @property
    def procedures(self) -> tuple[str, ...]:
        """The procedures (EB13) some entries are specific to, e.g. ("HC:90837",)."""
        return tuple(dict.fromkeys(e.procedure for e in self.entries if e.procedure))

    def for_procedure(self, procedure: str) -> ServiceBenefits:
        """The entries specific to one procedure (``"HC:90837"``), combined the same way."""
        return ServiceBenefits(self.service_type, tuple(
            _general(e) for e in self.entries if e.procedure == procedure))

    @property
    def messages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m for e in self.entries for m in e.messages))

    @property
    def related_entities(self) -> tuple[RelatedEntity, ...]:
        return tuple(dict.fromkeys(r for e in self.entries for r in e.related_entities))

    def to_json(self) -> dict[str, Any]:
        carve_out = self.carve_out
        data = {
            "service_type": self.service_type, "description": self.description, "active": self.active,
            "non_covered": self.non_covered, "in_network": self.in_network,
            "insurance_types": list(self.insurance_types), "plan_descriptions": list(self.plan_descriptions),
            **_cost_share_json(self),
            "carve_out": carve_out.to_json() if carve_out else None,
            "procedures": {p: _cost_share_json(self.for_procedure(p)) for p in self.procedures},
            "messages": list(self.messages),
            "entries": [e.to_json() for e in self.entries],
        }
        return data

    # --- combining -------------------------------------------------------------------------------

    def _amount(self, code: str, network: str, *, remaining: bool) -> Decimal | None:
        return self._value(code, network, lambda e: e.amount, remaining=remaining)

    def _value(self, code: str, network: str, value, *, remaining: bool) -> Decimal | None:
        candidates = [
            e for e in self.entries
            if e.code == code and e.procedure is None and value(e) is not None
            and e.remaining == remaining and e.time_period not in MET_PERIODS
        ]
        chosen = _preferred(candidates, network, lambda e: e.network, lambda e: e.coverage_level)
        return value(chosen) if chosen is not None else None

    def _visits(self, network: str, *, remaining: bool) -> Decimal | None:
        found: list[tuple[str, str, Decimal]] = []  # network, coverage level, quantity
        for e in self.entries:
            if e.procedure is not None:
                continue
            if e.quantity_qualifier == "VS" and e.quantity is not None and e.remaining == remaining:
                found.append((e.network, e.coverage_level, e.quantity))
            for d in e.deliveries:
                if d.quantity_qualifier == "VS" and d.quantity is not None and d.remaining == remaining:
                    found.append((e.network, e.coverage_level, d.quantity))
        chosen = _preferred(found, network, lambda f: f[0], lambda f: f[1])
        return chosen[2] if chosen is not None else None


def by_service_type(entries: tuple[BenefitEntry, ...]) -> dict[str, ServiceBenefits]:
    """The benefit entries grouped per service type they name (``UNSPECIFIED`` when none), as
    ``EligibilityResponse.benefits`` holds them, whether they came from a 271 or a portal."""
    grouped: dict[str, list[BenefitEntry]] = {}
    for entry in entries:
        for service_type in entry.service_types or (UNSPECIFIED,):
            grouped.setdefault(service_type, []).append(entry)
    return {stc: ServiceBenefits(stc, tuple(found)) for stc, found in grouped.items()}


def coverage_active(entries: tuple[BenefitEntry, ...]) -> bool | None:
    """True when any entry says active coverage, False when one says inactive and none active,
    None when the entries do not say."""
    if any(e.active for e in entries):
        return True
    return False if any(e.inactive for e in entries) else None


def _preferred(candidates: list, network: str, network_of, level_of):
    """The first candidate in ``network`` (then both, then unknown), individual before family."""
    for wanted in _NETWORK_ORDER.get(network, (network,)):
        in_network = [c for c in candidates if network_of(c) == wanted]
        if in_network:
            individual = [c for c in in_network if level_of(c) in _INDIVIDUAL]
            return (individual or in_network)[0]
    return None


def _general(entry: BenefitEntry) -> BenefitEntry:
    """The entry as if it were not procedure-specific (to combine one procedure's entries)."""
    return replace(entry, procedure=None)


def _cost_share_json(benefits: ServiceBenefits) -> dict[str, Any]:
    return {
        "copay": _text(benefits.copay()),
        "copay_out_of_network": _text(benefits.copay("out")),
        "coinsurance": _text(benefits.coinsurance()),
        "coinsurance_out_of_network": _text(benefits.coinsurance("out")),
        "deductible": _text(benefits.deductible()),
        "deductible_remaining": _text(benefits.deductible(remaining=True)),
        "out_of_pocket": _text(benefits.out_of_pocket()),
        "out_of_pocket_remaining": _text(benefits.out_of_pocket(remaining=True)),
        "visits_allowed": _text(benefits.visits_allowed()),
        "visits_remaining": _text(benefits.visits_remaining()),
        "auth_required": benefits.auth_required,
    }


@dataclass(frozen=True)
class Trace:
    """A TRN: TRN01 2 is the inquirer's trace echoed back, 1 one the payer assigned."""

    type: str  # TRN01
    number: str  # TRN02
    originator: str = ""  # TRN03: who assigned it ("1" + EIN for a provider)
    supplemental: str = ""  # TRN04

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "number": self.number, "originator": self.originator,
                "supplemental": self.supplemental}


@dataclass(frozen=True)
class UnrecognizedSegment:
    """A segment the reader does not interpret, kept whole (it may hold member data: never log
    ``text``; ``str()`` names only the segment, its number and loop)."""

    loop: str
    segment_id: str
    number: int
    text: str  # the segment's elements joined by "*"

    def __str__(self) -> str:
        return f"{self.segment_id} (segment {self.number}, loop {self.loop})"

    def to_json(self) -> dict[str, Any]:
        return {"loop": self.loop, "segment_id": self.segment_id, "number": self.number, "text": self.text}


@dataclass(frozen=True)
class MentalHealthSummary:
    """Outpatient mental-health coverage in one record, each value taken from the most specific
    service type that gives it (``sources`` says which), domain reference 8.3."""

    active: bool | None
    copay: Decimal | None
    coinsurance: Decimal | None
    deductible: Decimal | None
    deductible_remaining: Decimal | None
    out_of_pocket: Decimal | None
    out_of_pocket_remaining: Decimal | None
    visits_allowed: Decimal | None
    visits_remaining: Decimal | None
    auth_required: bool | None  # EB11 of the most specific type that says, or True when MSG says so
    carve_out: CarveOut | None
    messages: tuple[str, ...]
    sources: dict[str, str] = field(default_factory=dict)  # value name -> service type
    # Every "not covered" (EB01 I, E) on a mental-health service type; ``active`` is False when
    # the service types that decide outpatient mental health say so (``codes.coverage_order``).
    not_covered: tuple[NotCovered, ...] = ()
    # Authorizations required only under a condition (a visit count, a procedure, or one not
    # readable): ``auth_required`` stays unset for them, a claim is judged against each.
    auth_conditions: tuple[AuthRule, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name in ("active", "copay", "coinsurance", "deductible", "deductible_remaining", "out_of_pocket",
                     "out_of_pocket_remaining", "visits_allowed", "visits_remaining", "auth_required"):
            value = getattr(self, name)
            data[name] = _text(value) if isinstance(value, Decimal) else value
        data["carve_out"] = self.carve_out.to_json() if self.carve_out else None
        data["messages"] = list(self.messages)
        data["sources"] = dict(self.sources)
        data["not_covered"] = [n.to_json() for n in self.not_covered]
        data["auth_conditions"] = [r.to_json() for r in self.auth_conditions]
        return data


@dataclass(frozen=True)
class PatientIdentity:
    """Who a 2100C/D describes (NM103, DMG02), read only to tell apart the patients sharing a
    member id; never stored, logged or put in ``to_json``."""

    family_name: str = field(default="", repr=False)
    birth_date: date | None = field(default=None, repr=False)


@dataclass(frozen=True)
class EligibilityResponse:
    """A 271's answer about one patient: a 2000C subscriber, or a 2000D dependent under one.

    ``patient`` is "subscriber" or "dependent"; None for a response that never reached a
    patient (the payer or receiver level was rejected and no 2000C followed).
    """

    payer_id: str  # 2100A NM109
    payer_name: str  # 2100A NM103
    receiver_id: str  # 2100B NM109 (the NPI when receiver_id_qualifier is XX)
    receiver_id_qualifier: str
    subscriber_member_id: str  # 2100C NM109
    dependent_member_id: str | None  # 2100D NM109, when the dependent has an id of their own
    patient: str | None
    traces: tuple[Trace, ...]
    active: bool | None
    plan_number: str | None = None  # REF*18
    group_number: str | None = None  # REF*6P REF02
    group_name: str | None = None  # REF*6P REF03
    plan_description: str | None = None  # EB05 of the active coverage
    insurance_type: str | None = None  # EB04 of the active coverage
    dates: tuple[DatePeriod, ...] = ()  # 2100C/D DTP: 291 plan, 346 plan begin, 356/357 eligibility
    rejections: tuple[Rejection, ...] = ()
    benefits: dict[str, ServiceBenefits] = field(default_factory=dict)
    entries: tuple[BenefitEntry, ...] = ()  # every 2110 loop, in order
    messages: tuple[str, ...] = ()  # every MSG of the patient's benefits, in order, once each
    unrecognized: tuple[UnrecognizedSegment, ...] = ()
    reference: str = ""  # BHT03: a real-time 271 echoes the 270's
    control_number: str = ""  # ST02
    interchange_control_number: str = ""  # ISA13
    payer_id_qualifier: str = ""  # 2100A NM108: PI payer id, FI tax id, XV CMS plan id
    created: date | None = None  # BHT04: the day the payer made the answer (None from a portal)
    identity: PatientIdentity | None = field(default=None, repr=False, compare=False)

    @property
    def member_id(self) -> str:
        """The patient's own member id: the dependent's when they have one, else the subscriber's."""
        return self.dependent_member_id or self.subscriber_member_id

    @property
    def receiver_npi(self) -> str | None:
        return self.receiver_id if self.receiver_id_qualifier == "XX" else None

    @property
    def trace_numbers(self) -> tuple[str, ...]:
        return tuple(t.number for t in self.traces)

    def matches(self, trace_number: str) -> bool:
        """Whether this answers the inquiry whose 270 carried ``trace_number`` (TRN02)."""
        return any(t.number == trace_number for t in self.traces)

    @property
    def other_payers(self) -> tuple[RelatedEntity, ...]:
        """Payers named by EB01 R (other or additional payer): coordination of benefits."""
        return tuple(dict.fromkeys(r for e in self.entries if e.code == "R" for r in e.related_entities))

    @property
    def rejected(self) -> bool:
        """The request itself was rejected (an AAA above the benefit loops)."""
        return any(not r.loop.startswith("2110") for r in self.rejections)

    @property
    def coverage_dates(self) -> dict[str, DatePeriod]:
        """The patient's dates by DTP qualifier (the first of each)."""
        found: dict[str, DatePeriod] = {}
        for period in self.dates:
            found.setdefault(period.qualifier, period)
        return found

    def mental_health_summary(self) -> MentalHealthSummary:
        """Domain reference 8.3 "Hub logic": each value from the first service type in the
        preference order (A6, CF, MH ... 30, ``mappings/x12/eligibility_codes.toml``) that has it.

        ``active`` is whether outpatient mental health is covered: a plan active on 30 that says
        EB01 I (non-covered) or E (exclusion) on MH, A6 or CF is not (``coverage``)."""
        order = [s for s in codes.mental_health_preference() if s in self.benefits]
        sources: dict[str, str] = {}

        def first(name: str, get):
            for stc in order:
                value = get(self.benefits[stc])
                if value is not None:
                    sources[name] = stc
                    return value
            return None

        messages = tuple(dict.fromkeys(m for stc in order for m in self.benefits[stc].messages))
        # "Auth required if EB11=Y on the relevant STC, or MSG text says so" -- without a condition;
        # one with a condition holds only the claims that meet it (``auth_conditions``).
        auth = first("auth_required", lambda b: b.auth_required)
        rules = self.authorization_rules()
        if auth is not True and any(not r.conditional for r in rules):
            auth, sources["auth_required"] = True, "MSG"
        active = first("active", lambda b: b.active)
        covered, said = coverage(self.benefits, codes.coverage_order())
        if said is not None:
            active, sources["active"] = covered, said.service_type
        return MentalHealthSummary(
            active=active,
            copay=first("copay", lambda b: b.copay()),
            coinsurance=first("coinsurance", lambda b: b.coinsurance()),
            deductible=first("deductible", lambda b: b.deductible()),
            deductible_remaining=first("deductible_remaining", lambda b: b.deductible(remaining=True)),
            out_of_pocket=first("out_of_pocket", lambda b: b.out_of_pocket()),
            out_of_pocket_remaining=first("out_of_pocket_remaining", lambda b: b.out_of_pocket(remaining=True)),
            visits_allowed=first("visits_allowed", lambda b: b.visits_allowed()),
            visits_remaining=first("visits_remaining", lambda b: b.visits_remaining()),
            auth_required=auth,
            carve_out=first("carve_out", lambda b: b.carve_out),
            messages=messages,
            sources=sources,
            not_covered=self.not_covered_mental_health(),
            auth_conditions=tuple(r for r in rules if r.conditional),
        )

    def not_covered_mental_health(self) -> tuple[NotCovered, ...]:
        """Every EB01 I or E on a mental-health service type (in network), in file order."""
        wanted = codes.mental_health_service_types()
        found: list[NotCovered] = []
        for entry in self.entries:
            if entry.code not in REFUSING_CODES or entry.network == "out":
                continue
            for stc in entry.service_types:
                if stc not in wanted:
                    continue
                active = any(e.active and e.procedure is None and e.applies() for e in self.benefits[stc].entries)
                found.append(NotCovered(stc, entry.code, entry.procedure, entry.places_of_service, entry.messages,
                                        also_active=active))
        return tuple(dict.fromkeys(found))

    def authorization_rules(self) -> tuple[AuthRule, ...]:
        """The authorizations the mental-health benefits (the preference's service types, in
        network) require: every MSG that states one, and EB11 Y on a benefit of one procedure
        (EB13), each with the benefit's service types and the plan year's first day."""
        wanted = set(codes.mental_health_preference())
        start = self._plan_year_start()
        found: list[AuthRule] = []
        for entry in self.entries:
            if entry.network == "out" or not set(entry.service_types) & wanted:
                continue
            rules = [r for r in map(conditions.read, entry.messages) if r is not None]
            if entry.procedure is not None:
                if not rules and entry.auth_required is True:
                    rules = [conditions.AuthRule(source=conditions.EB11)]
                rules = [conditions.for_procedure(r, entry.procedure_code) for r in rules]
            found += [replace(r, service_types=entry.service_types, period_start=r.period_start or start)
                      for r in rules]
        return tuple(dict.fromkeys(found))

    def _plan_year_start(self) -> str:
        """The plan year's first day as "MM-DD": the plan begin date (DTP*346), or the start of
        the plan's dates when given as a range (DTP*291 RD8); else the calendar year's."""
        dates = self.coverage_dates
        begin = dates.get("346") or (dates["291"] if "291" in dates and dates["291"].end else None)
        return f"{begin.start:%m-%d}" if begin else conditions.CALENDAR_YEAR

    def describe(self) -> str:
        """One sentence for the biller: ids only."""
        who = f"member {self.member_id}" if self.patient else "the request"
        state = {True: "active", False: "inactive", None: "coverage not stated"}[self.active]
        text = f"payer {self.payer_id}: {who} {state}"
        if self.active and self.patient and self.mental_health_summary().active is False:
            text += ", mental health not covered"
        if self.rejections:
            text += "; " + "; ".join(r.describe() for r in self.rejections)
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "member_id": self.member_id,
            "subscriber_member_id": self.subscriber_member_id,
            "dependent_member_id": self.dependent_member_id,
            "patient": self.patient,
            "payer_id": self.payer_id,
            "payer_name": self.payer_name,
            "receiver_npi": self.receiver_npi,
            "trace_numbers": list(self.trace_numbers),
            "reference": self.reference,
            "created": self.created.isoformat() if self.created else None,
            "active": self.active,
            "plan_number": self.plan_number,
            "group_number": self.group_number,
            "group_name": self.group_name,
            "plan_description": self.plan_description,
            "insurance_type": self.insurance_type,
            "coverage_dates": {q: p.to_json() for q, p in self.coverage_dates.items()},
            "rejections": [r.to_json() for r in self.rejections],
            "benefits": {stc: b.to_json() for stc, b in self.benefits.items()},
            "mental_health": self.mental_health_summary().to_json(),
            "other_payers": [p.to_json() for p in self.other_payers],
            "messages": list(self.messages),
            "unrecognized": [u.to_json() for u in self.unrecognized],
        }

