"""What a 271 says about one patient's coverage, as typed records (005010X279A1).

    response.active                          # True, False, or None when the 271 does not say
    response.benefits["A6"].copay()          # Decimal("30"): in-network copay for psychotherapy
    response.benefits["A6"].visits_remaining()
    response.mental_health_summary()         # domain reference 8.3 "Hub logic", one record
    coverage(response.benefits, ("A6", "MH"))  # covered, not covered (EB01 I, E), or unclear
    response.to_json()                       # plain dicts (Decimal as text, dates ISO)

This module holds the answer about one patient, ``EligibilityResponse``, and what only it
carries (``Trace``, ``UnrecognizedSegment``, ``PatientIdentity``, ``MentalHealthSummary``). Its
parts live beside it: one ``BenefitEntry`` per 2110C/D loop (one EB with its HSD, REF, DTP, AAA,
MSG and 2120 loop), kept in file order, in ``bhhub.eligibility.benefit_entries``;
``ServiceBenefits``, which groups the entries naming one service type (EB03) and combines them
(a value is looked for in the network asked for, then in "both" (EB12 W), then in "unknown"
(EB12 absent or U), never in the other network; the individual level (EB02 IND, or none) wins
over family; an entry for one procedure (EB13) never stands for the general value), in
``bhhub.eligibility.service_benefits``. Money is ``Decimal``; percentages are ``Decimal``
fractions (0.2 is 20%).

Names, birth dates and addresses of the subscriber and dependent are not read at all: the
records carry member ids and trace numbers, which is what matching and logs need.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

from bhhub.eligibility import codes, conditions
from bhhub.eligibility.benefit_entries import BenefitEntry, DatePeriod, Rejection, RelatedEntity, decimal_text
from bhhub.eligibility.conditions import AuthRule
from bhhub.eligibility.coverage import REFUSING_CODES, NotCovered, coverage
from bhhub.eligibility.service_benefits import CarveOut, ServiceBenefits


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
            data[name] = decimal_text(value) if isinstance(value, Decimal) else value
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

