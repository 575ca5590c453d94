"""One 2110C/D loop of a 271 as a typed record (005010X279A1): ``BenefitEntry`` (an EB with
its HSD, REF, DTP, AAA, MSG, 2115 III and 2120 loop) and the records it is made of
(``DatePeriod``, ``Rejection``, ``RelatedEntity``, ``Delivery``), with whether a DTP's dates
leave a day out (``in_effect``, ``limits_before``).

The records are combined per service type in ``bhhub.eligibility.service_benefits`` and make up
the answer about one patient in ``bhhub.eligibility.benefits``. Money is ``Decimal``;
percentages are ``Decimal`` fractions (0.2 is 20%).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from bhhub.eligibility import codes

ACTIVE_CODES = frozenset({"1", "2", "3", "4", "5"})  # EB01, domain reference 8.3
INACTIVE_CODES = frozenset({"6", "7", "8"})
REMAINING_PERIODS = frozenset({"29", "33"})  # EB06 remaining, lifetime remaining
MET_PERIODS = frozenset({"24"})  # EB06 year to date: what has been spent or met so far


def decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def parse_decimal(text: str | None) -> Decimal | None:
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
        return {"quantity_qualifier": self.quantity_qualifier, "quantity": decimal_text(self.quantity),
                "unit": self.unit, "sample_size": decimal_text(self.sample_size), "time_period": self.time_period,
                "period_count": decimal_text(self.period_count), "frequency": self.frequency, "pattern": self.pattern,
                "remaining": self.remaining}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Delivery:
        return cls(data["quantity_qualifier"], parse_decimal(data.get("quantity")), data.get("unit") or "",
                   parse_decimal(data.get("sample_size")), data.get("time_period") or "",
                   parse_decimal(data.get("period_count")), data.get("frequency") or "", data.get("pattern") or "")


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
            "amount": decimal_text(self.amount), "percent": decimal_text(self.percent),
            "quantity_qualifier": self.quantity_qualifier, "quantity": decimal_text(self.quantity),
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
            amount=parse_decimal(data.get("amount")), percent=parse_decimal(data.get("percent")),
            quantity_qualifier=data.get("quantity_qualifier") or "", quantity=parse_decimal(data.get("quantity")),
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

