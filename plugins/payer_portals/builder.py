"""A portal's answer as the same ``EligibilityResponse`` the 271 reader makes.

``bhhub.eligibility.benefit_entries`` has no constructor from plain values (its records are built
by the 271 reader from EB segments), so this module writes the entries an equivalent 271 would carry
and groups them exactly as ``read_271`` does. Then ``ServiceBenefits.copay()``,
``mental_health_summary()`` and ``to_json()`` combine them by the same rules whichever path
the answer came by:

    copay                 EB01 B, EB06 27 (per visit), EB07
    coinsurance           EB01 A, EB08 (a fraction: 0.2 is 20%)
    deductible            EB01 C, EB06 = the benefit's period (23 calendar year unless said)
    deductible_remaining  EB01 C, EB06 29            deductible_met  EB01 C, EB06 24
    out_of_pocket         EB01 G, EB06 period        out_of_pocket_remaining  EB01 G, EB06 29
    visits_allowed        EB01 F, EB06 period, EB09 VS, EB10
    visits_remaining      EB01 F, EB06 29, EB09 VS, EB10
    active                EB01 1 (or 6 when False)
    non_covered           EB01 I
    carve_out             EB01 U with the other payer as a related entity (a 2120 loop)

``auth_required`` (EB11), ``network`` (EB12), ``coverage_level`` (EB02), ``procedure`` (EB13)
and ``messages`` (MSG) go on every entry of the benefit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from bhhub.eligibility.benefit_entries import BenefitEntry, Rejection, RelatedEntity
from bhhub.eligibility.benefits import EligibilityResponse
from bhhub.eligibility.service_benefits import by_service_type, coverage_active

PER_VISIT, CALENDAR_YEAR, YEAR_TO_DATE, REMAINING = "27", "23", "24", "29"  # EB06 time periods
PORTAL_LOOP = "portal"  # Rejection.loop of a refusal a portal gave (not an X12 loop)


@dataclass(frozen=True)
class PortalBenefit:
    """What a portal says about one service type, in one network, at one coverage level."""

    service_type: str  # an X12 service type code (EB03): A6, MH, 30...
    network: str = "unknown"  # in, out, both, unknown
    coverage_level: str = ""  # IND, FAM ("" reads as the individual)
    period: str = CALENDAR_YEAR  # EB06 of the deductible, out of pocket and visit limit
    active: bool | None = None
    non_covered: bool = False  # EB01 I: the plan does not cover this service type
    copay: Decimal | None = None
    coinsurance: Decimal | None = None  # a fraction
    deductible: Decimal | None = None
    deductible_remaining: Decimal | None = None
    deductible_met: Decimal | None = None
    out_of_pocket: Decimal | None = None
    out_of_pocket_remaining: Decimal | None = None
    visits_allowed: Decimal | None = None
    visits_remaining: Decimal | None = None
    auth_required: bool | None = None
    procedure: str | None = None  # "HC:90837" for a benefit of one procedure
    carve_out: RelatedEntity | None = None
    messages: tuple[str, ...] = ()
    insurance_type: str = ""
    plan_description: str = ""


def entries_for(benefit: PortalBenefit) -> list[BenefitEntry]:
    """The benefit as 271 entries (the table at the top of this module), in a stable order."""
    common = dict(service_types=(benefit.service_type,), coverage_level=benefit.coverage_level,
                  auth_required=benefit.auth_required, network=benefit.network, procedure=benefit.procedure,
                  messages=benefit.messages)
    entries: list[BenefitEntry] = []
    if benefit.active is not None:
        entries.append(BenefitEntry(code="1" if benefit.active else "6", insurance_type=benefit.insurance_type,
                                    plan_description=benefit.plan_description, **common))
    if benefit.non_covered:
        entries.append(BenefitEntry(code="I", **common))
    amounts = (("B", PER_VISIT, benefit.copay), ("C", benefit.period, benefit.deductible),
               ("C", REMAINING, benefit.deductible_remaining), ("C", YEAR_TO_DATE, benefit.deductible_met),
               ("G", benefit.period, benefit.out_of_pocket), ("G", REMAINING, benefit.out_of_pocket_remaining))
    for code, period, amount in amounts:
        if amount is not None:
            entries.append(BenefitEntry(code=code, time_period=period, amount=amount, **common))
    if benefit.coinsurance is not None:
        entries.append(BenefitEntry(code="A", percent=benefit.coinsurance, **common))
    for period, visits in ((benefit.period, benefit.visits_allowed), (REMAINING, benefit.visits_remaining)):
        if visits is not None:
            entries.append(BenefitEntry(code="F", time_period=period, quantity_qualifier="VS", quantity=visits,
                                        **common))
    if benefit.carve_out is not None:
        entries.append(BenefitEntry(code="U", related_entities=(benefit.carve_out,), **common))
    if not entries and benefit.messages:  # only words: keep them (EB01 D, benefit description)
        entries.append(BenefitEntry(code="D", **common))
    return entries


def eligibility_response(*, payer_id: str, payer_name: str, member_id: str, benefits: Iterable[PortalBenefit] = (),
                         rejections: Sequence[Rejection] = (), dependent: bool = False,
                         dependent_member_id: str | None = None,
                         plan_number: str | None = None, group_number: str | None = None,
                         group_name: str | None = None, plan_description: str | None = None,
                         insurance_type: str | None = None, reference: str = "") -> EligibilityResponse:
    """One ``EligibilityResponse`` from a portal's answer, combined as ``read_271`` combines.
    ``dependent``: the patient is not the subscriber (``member_id`` is then the subscriber's,
    unless the dependent has an id of their own)."""
    entries = tuple(e for b in benefits for e in entries_for(b))
    active_entries = [e for e in entries if e.active]
    return EligibilityResponse(
        payer_id=payer_id, payer_name=payer_name, payer_id_qualifier="PI",
        receiver_id="", receiver_id_qualifier="",
        subscriber_member_id=member_id, dependent_member_id=dependent_member_id,
        patient="dependent" if dependent or dependent_member_id else "subscriber",
        traces=(), active=coverage_active(entries),
        plan_number=plan_number, group_number=group_number, group_name=group_name,
        plan_description=plan_description or next(
            (e.plan_description for e in active_entries + list(entries) if e.plan_description), None),
        insurance_type=insurance_type or next((e.insurance_type for e in active_entries if e.insurance_type), None),
        rejections=tuple(rejections) + tuple(r for e in entries for r in e.rejections),
        benefits=by_service_type(entries), entries=entries,
        messages=tuple(dict.fromkeys(m for e in entries for m in e.messages)),
        reference=reference,
    )


def percent_as_fraction(value: Decimal) -> Decimal:
    """Coinsurance given as 20 (percent) or 0.2 (fraction) → 0.2, as the 271 reader reads EB08."""
    return value / 100 if value > 1 else value
