"""Loop 2300 (Claim Information) of the 005010X222A1 837P and the loops inside it.

In the order the implementation guide puts them: CLM, REF*G1, REF*F8, HI; 2310B rendering
provider; 2320/2330A/2330B other payers; 2400 service lines, each with a 2430 per payer that
adjudicated it. Problems with the claim raise ``ValueError`` (``ClaimProblem`` when there is a
fix to suggest); ``write_837p`` names the claim in the ``InputError`` it raises.

Coordination of benefits (a claim to the secondary carrying the primary's adjudication) follows
the 005010X222A1 COB balancing rules (TR3 section 1.4.4), as X12 restates them in RFIs 524, 1294,
1555 and 2168, for each payer that adjudicated:

- line: SV102 (line charge) = 2430 SVD02 (paid) + the line's 2430 CAS amounts;
- claim, with 2430 loops: 2320 AMT*D (paid) = sum of SVD02 - the 2320 CAS amounts, so 2320 CAS
  carries only the claim-level adjustments (never a line's again: RFI 689) and
  CLM02 = AMT*D + 2320 CAS + all 2430 CAS;
- claim, without 2430 (claim-level adjudication only): CLM02 = AMT*D + 2320 CAS (RFI 1115).

The remaining patient liability (AMT*EAF) and the adjudication date (DTP*573) go at line level
(2430) when the payer's line adjudication is reported, else at claim level (2320 AMT*EAF, 2330B
DTP*573); never both (RFIs 1391, 1517).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal

from bhhub.model import Claim, Coverage, LineAdjudication, PayerAdjustment, PriorPayerAdjudication, Provider, ServiceLine
from bhhub.x12 import parties
from bhhub.x12.segments import SegmentList, date8, decimal_text, identifier, money

MAX_DIAGNOSES = 12  # HI01-HI12
MAX_LINES = 50  # loop 2400 repeats at most 50 times
MAX_OTHER_PAYERS = 10  # loop 2320 repeats at most 10 times
MAX_MODIFIERS = 4  # SV101-03 .. SV101-06
MAX_POINTERS = 4  # SV107-01 .. SV107-04
MAX_PATIENT_CONTROL_NUMBER = 20  # what receivers must keep and echo (X12 RFI 525)
MAX_LINE_CONTROL_NUMBER = 30  # what the 835 and 277CA echo back (domain reference 5.5)

# SBR01 from the coverage's order: 1 primary, 2 secondary, 3 tertiary, 4-11 payers four to eleven.
PAYER_RESPONSIBILITY = dict(zip(range(1, 12), "PSTABCDEFGH"))
CLAIM_FILING_INDICATORS = frozenset(
    "11 12 13 14 15 16 17 AM BL CH CI DS FI HM LM MA MB MC OF TV VA WC ZZ".split()
)
DEFAULT_CLAIM_FILING_INDICATOR = "CI"  # commercial insurance
RELATIONSHIPS = frozenset("01 18 19 20 21 39 40 53 G8".split())  # 2320 SBR02 (PAT01 without 18)
FREQUENCIES = {"1": "an original claim", "7": "a replacement", "8": "a void"}  # CLM05-3 on an 837P
ADJUSTMENT_GROUPS = frozenset({"CO", "OA", "PI", "PR"})  # CAS01 in 5010; CR was 4010 only
PATIENT_RESPONSIBILITY = "PR"
MAX_ADJUSTMENTS_PER_CAS = 6  # reason/amount/quantity triples CAS02-CAS19
MAX_CAS = 5  # 2320 CAS and 2430 CAS are each used at most 5 times
ZERO = Decimal(0)
_ICD10 = re.compile(r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$")

_FIX_BALANCE = "copy the amounts from the payer's 835 as they are: per line, paid + adjustments = charge"


class ClaimProblem(ValueError):
    """A claim the writer refuses, with the fix a biller can apply (``InputError.fix``)."""

    def __init__(self, message: str, fix: str | None = None):
        super().__init__(message)
        self.fix = fix


def check_claim(claim: Claim) -> None:
    """The limits the guide sets on one claim, checked before anything is written."""
    if not claim.lines:
        raise ValueError("the claim has no service lines")
    if len(claim.lines) > MAX_LINES:
        raise ValueError(
            f"the claim has {len(claim.lines)} service lines; an 837P claim carries at most {MAX_LINES}"
        )
    if not claim.diagnoses:
        raise ValueError("the claim has no diagnosis")
    if len(claim.diagnoses) > MAX_DIAGNOSES:
        raise ValueError(
            f"the claim has {len(claim.diagnoses)} diagnoses; an 837P claim carries at most {MAX_DIAGNOSES}"
        )
    if len(claim.other_coverages) > MAX_OTHER_PAYERS:
        raise ValueError(f"the claim names {len(claim.other_coverages)} other payers; at most {MAX_OTHER_PAYERS}")
    if claim.assignment not in ("A", "B", "C"):
        raise ValueError(f"assignment (CLM07) must be A, B or C, not {claim.assignment!r}")
    if claim.benefits_assigned not in ("Y", "N", "W"):
        raise ValueError(f"benefits assignment (CLM08) must be Y, N or W, not {claim.benefits_assigned!r}")
    if claim.release_of_information not in ("Y", "I"):
        raise ValueError(f"release of information (CLM09) must be Y or I, not {claim.release_of_information!r}")
    _check_frequency(claim)
    for number, line in enumerate(claim.lines, start=1):
        if line.charge is None:
            raise ValueError(f"service line {number} has no charge (price it from the fee schedule first)")
        if line.charge < 0:
            raise ValueError(f"service line {number} has a negative charge")
    _check_prior_adjudications(claim)


def _check_frequency(claim: Claim) -> None:
    code = claim.frequency_code
    if code not in FREQUENCIES:
        raise ClaimProblem(f"claim frequency code (CLM05-3) {code!r} is not 1, 7 or 8",
                           fix="send 1 for a new claim, 7 to replace or 8 to void a claim the payer has")
    if code in ("7", "8") and not (claim.payer_claim_control_number or "").strip():
        raise ClaimProblem(
            f"{FREQUENCIES[code]} (frequency {code}) needs the payer claim control number of the claim it "
            f"{'replaces' if code == '7' else 'cancels'} (REF*F8)",
            fix="copy the payer's claim number from its 835 (CLP07) or 277CA (REF*1K)",
        )


def _check_prior_adjudications(claim: Claim) -> None:
    """Each adjudication belongs to one other payer of the claim, names valid adjustments, balances."""
    seen: list[Coverage] = []
    for adjudication in claim.prior_adjudications:
        payer = adjudication.payer.payer_id
        if not any(same_coverage(adjudication.coverage, other) for other in claim.other_coverages):
            raise ClaimProblem(f"payer {payer} adjudicated the claim but is not one of its other payers",
                               fix="list the adjudicating coverage among the claim's other coverages")
        if any(same_coverage(adjudication.coverage, earlier) for earlier in seen):
            raise ClaimProblem(f"payer {payer} has two adjudications of the claim",
                               fix="keep the payer's latest adjudication only")
        seen.append(adjudication.coverage)
        _check_adjustments(adjudication.claim_adjustments, f"payer {payer}'s claim-level adjustments")
        lines = adjudicated_lines(claim, adjudication)
        for number, (line, adjudicated) in enumerate(zip(claim.lines, lines), start=1):
            where = f"payer {payer}'s adjudication of service line {number}"
            _check_adjustments(adjudicated.adjustments, where)
            assert line.charge is not None  # checked above
            accounted = adjudicated.paid_amount + _total(adjudicated.adjustments)
            if accounted != line.charge:
                raise ClaimProblem(f"{where} does not balance: paid {adjudicated.paid_amount} + adjustments "
                                   f"{_total(adjudicated.adjustments)} is not the line charge {line.charge}",
                                   fix=_FIX_BALANCE)
        _check_adjudication_dates(claim, adjudication, lines)
        claim_level = _total(adjudication.claim_adjustments)
        if lines:
            paid_on_lines = sum((a.paid_amount for a in lines), ZERO)
            if adjudication.paid_amount != paid_on_lines - claim_level:
                raise ClaimProblem(
                    f"payer {payer} paid {adjudication.paid_amount} on the claim, but its lines paid "
                    f"{paid_on_lines} less claim-level adjustments of {claim_level}",
                    fix="put each adjustment the 835 gives on a line with that line, not at claim level",
                )
        elif adjudication.paid_amount + claim_level != claim.total_charge:
            raise ClaimProblem(
                f"payer {payer}'s adjudication does not balance: paid {adjudication.paid_amount} + "
                f"adjustments {claim_level} is not the claim charge {claim.total_charge}", fix=_FIX_BALANCE,
            )


def _check_adjudication_dates(
    claim: Claim, adjudication: PriorPayerAdjudication, lines: Sequence[LineAdjudication]
) -> None:
    """A payer cannot have adjudicated a service before it was rendered (receivers reject that)."""
    payer = adjudication.payer.payer_id
    if not lines and adjudication.adjudication_date < claim.service_date:
        raise ClaimProblem(f"payer {payer}'s adjudication date is before the date of service",
                           fix="use the remittance date of the payer's 835")
    for number, (line, adjudicated) in enumerate(zip(claim.lines, lines), start=1):
        if (adjudicated.adjudication_date or adjudication.adjudication_date) < line.service_date:
            raise ClaimProblem(f"payer {payer}'s adjudication of service line {number} is dated before the service",
                               fix="use the remittance date of the payer's 835")


def _check_adjustments(adjustments: Sequence[PayerAdjustment], where: str) -> None:
    for adjustment in adjustments:
        if adjustment.group not in ADJUSTMENT_GROUPS:
            raise ClaimProblem(f"{where}: adjustment group {adjustment.group!r} is not CO, OA, PI or PR",
                               fix="use the group code the 835 gives (CR existed only in 4010)")
    if len(_cas_segments(adjustments)) > MAX_CAS:
        raise ClaimProblem(f"{where}: more adjustments than {MAX_CAS} CAS segments of "
                           f"{MAX_ADJUSTMENTS_PER_CAS} can carry",
                           fix="add up adjustments with the same group and reason code")


def same_coverage(one: Coverage, other: Coverage) -> bool:
    """The same plan membership: same payer and member id (order and names may be updated)."""
    return one.payer.payer_id == other.payer.payer_id and one.member_id == other.member_id


def adjudicated_lines(claim: Claim, adjudication: PriorPayerAdjudication) -> tuple[LineAdjudication, ...]:
    """The payer's adjudication of each service line, in the claim's order; () at claim level only.

    Every line must be adjudicated exactly once (a professional 835 reports every line: domain
    reference 6.1).
    Lines are paired by line number, else control number (REF*6R), else procedure, modifiers and
    date, the first line not yet paired (an 835 lists lines in the order they were billed).
    """
    if not adjudication.lines:
        return ()
    payer = adjudication.payer.payer_id
    paired: list[LineAdjudication | None] = [None] * len(claim.lines)
    for position, adjudicated in enumerate(adjudication.lines, start=1):
        number = _claim_line_of(claim, adjudicated, paired)
        if number is None:
            raise ClaimProblem(f"line {position} of payer {payer}'s adjudication matches no service line of the claim",
                               fix="give the line number the payer adjudicated, as the claim was sent")
        if paired[number - 1] is not None:
            raise ClaimProblem(f"payer {payer}'s adjudication has service line {number} twice",
                               fix="give each line's adjudication once")
        paired[number - 1] = adjudicated
    missing = [str(number) for number, found in enumerate(paired, start=1) if found is None]
    if missing:
        raise ClaimProblem(f"payer {payer}'s adjudication has no line for service line {', '.join(missing)}",
                           fix="give the payer's adjudication of every line (its 835 SVC loops)")
    return tuple(a for a in paired if a is not None)


def _claim_line_of(claim: Claim, adjudicated: LineAdjudication, paired: list[LineAdjudication | None]) -> int | None:
    if adjudicated.line_number is not None:
        return adjudicated.line_number if 1 <= adjudicated.line_number <= len(claim.lines) else None
    if adjudicated.control_number is not None:
        return next((n for n, line in enumerate(claim.lines, start=1)
                     if line.control_number == adjudicated.control_number), None)
    if adjudicated.procedure_code is None:
        raise ClaimProblem("an adjudicated line names no service line",
                           fix="set its line number, control number or procedure code")
    return next((
        n for n, line in enumerate(claim.lines, start=1)
        if paired[n - 1] is None
        and line.procedure_code.upper() == adjudicated.procedure_code.upper()
        and tuple(m.upper() for m in line.modifiers) == tuple(m.upper() for m in adjudicated.modifiers)
        and adjudicated.service_date in (None, line.service_date)
    ), None)


def _total(adjustments: Sequence[PayerAdjustment]) -> Decimal:
    return sum((a.amount for a in adjustments), ZERO)


def _patient_share(adjustments: Sequence[PayerAdjustment]) -> Decimal:
    return _total([a for a in adjustments if a.group == PATIENT_RESPONSIBILITY])


def _cas_segments(adjustments: Sequence[PayerAdjustment]) -> list[tuple[str, list[PayerAdjustment]]]:
    """One CAS per group code (in the order first seen), six adjustments each at most."""
    by_group: dict[str, list[PayerAdjustment]] = {}
    for adjustment in adjustments:
        by_group.setdefault(adjustment.group, []).append(adjustment)
    return [
        (group, found[start:start + MAX_ADJUSTMENTS_PER_CAS])
        for group, found in by_group.items()
        for start in range(0, len(found), MAX_ADJUSTMENTS_PER_CAS)
    ]


def payer_responsibility(coverage: Coverage) -> str:
    try:
        return PAYER_RESPONSIBILITY[coverage.order]
    except KeyError:
        raise ValueError(f"coverage order {coverage.order} is not 1-11") from None


def claim_filing_indicator(coverage: Coverage) -> str:
    code = coverage.payer.claim_filing_indicator or DEFAULT_CLAIM_FILING_INDICATOR
    if code not in CLAIM_FILING_INDICATORS:
        raise ValueError(f"payer {coverage.payer.payer_id}: {code!r} is not a claim filing indicator (SBR09)")
    return code


def claim_loop(out: SegmentList, claim: Claim) -> None:
    """Loop 2300 and everything inside it, for one claim already under its 2000B/2000C."""
    d = out.delimiters
    control_number = identifier(
        claim.patient_control_number, d, "patient control number (CLM01)", MAX_PATIENT_CONTROL_NUMBER
    )
    total = sum((line.charge for line in claim.lines if line.charge is not None), Decimal(0))
    frequency = identifier(claim.frequency_code, d, "claim frequency code (CLM05-3)", 1)
    out.add(
        "CLM", control_number, money(total), None, None,
        (identifier(claim.place_of_service, d, "place of service", 2), "B", frequency),
        "Y" if claim.provider_signature_on_file else "N",
        claim.assignment, claim.benefits_assigned, claim.release_of_information,
    )
    claim_authorization, line_authorizations = prior_authorizations(claim)
    if claim_authorization:
        out.add("REF", "G1", identifier(claim_authorization, d, "prior authorization", 50))
    if frequency in ("7", "8"):
        # Required with a replacement or void: the payer's number for the claim it replaces.
        out.add("REF", "F8", identifier(
            claim.payer_claim_control_number, d, "payer claim control number (needed to replace or void)", 50
        ))
    out.add("HI", *(
        ("ABK" if position == 0 else "ABF", _diagnosis(code))
        for position, code in enumerate(claim.diagnoses)
    ))
    rendering = claim.rendering_provider
    if rendering is not None and rendering.npi != claim.billing_provider.npi:
        _rendering_provider(out, rendering)
    adjudications = [(other, _adjudication_by(claim, other)) for other in claim.other_coverages]
    for other, adjudication in adjudications:
        _other_payer(out, claim, other, adjudication)
    line_adjudications = [
        (adjudication, adjudicated_lines(claim, adjudication))
        for _, adjudication in adjudications if adjudication is not None and adjudication.lines
    ]
    for number, (line, authorization) in enumerate(zip(claim.lines, line_authorizations), start=1):
        _service_line(out, claim, number, line, authorization)
        for adjudication, lines in line_adjudications:
            _line_adjudication(out, adjudication, line, lines[number - 1], f"service line {number}")


def prior_authorizations(claim: Claim) -> tuple[str | None, tuple[str | None, ...]]:
    """The 2300 REF*G1 and each line's 2400 REF*G1.

    A line's authorization is its own, else the claim's. One authorization covering every line
    goes once, at claim level; otherwise the claim's goes at claim level when a line relies on
    it, and a line sends its own only where it differs from that (TR3 2400 REF*G1: "required
    when ... different than the number reported at the claim level").
    """
    covering = [line.prior_authorization or claim.prior_authorization for line in claim.lines]
    if len(set(covering)) == 1:
        return covering[0], (None,) * len(covering)
    claim_level = claim.prior_authorization if claim.prior_authorization in covering else None
    return claim_level, tuple(None if number == claim_level else number for number in covering)


def _adjudication_by(claim: Claim, other: Coverage) -> PriorPayerAdjudication | None:
    return next((a for a in claim.prior_adjudications if same_coverage(a.coverage, other)), None)


def _diagnosis(code: str) -> str:
    """HI carries ICD-10-CM codes without their dot (F33.1 -> F331)."""
    cleaned = code.strip().upper()
    if not _ICD10.match(cleaned):
        raise ValueError(f"{code!r} is not an ICD-10-CM code")
    return cleaned.replace(".", "")


def _rendering_provider(out: SegmentList, provider: Provider) -> None:
    """2310B: required when the clinician who rendered differs from the billing provider."""
    npi = identifier(provider.npi, out.delimiters, "rendering provider NPI", 10, 10)
    if provider.name is not None:
        parties.person_name(out, "82", provider.name, "rendering provider", "XX", npi)
    elif provider.organization_name:
        parties.organization_name(out, "82", provider.organization_name, "rendering provider", "XX", npi)
    else:
        raise ValueError(f"rendering provider {npi} has no name")
    if provider.taxonomy:
        out.add("PRV", "PE", "PXC", identifier(provider.taxonomy, out.delimiters, "rendering taxonomy", 50))


def _other_payer(out: SegmentList, claim: Claim, other: Coverage, adjudication: PriorPayerAdjudication | None) -> None:
    """2320 (SBR, CAS, AMT, OI) with 2330A other subscriber and 2330B other payer.

    2320 SBR02 is the patient's relationship to *that* payer's subscriber (18 when the patient
    is the subscriber there). OI03 and OI06 repeat the claim's benefits assignment and release.
    When that payer adjudicated the claim: its claim-level CAS, AMT*D (what it paid, zero
    included) and, when it reported no lines, AMT*EAF and 2330B DTP*573 (see the module notes).
    """
    d = out.delimiters
    if other.relationship not in RELATIONSHIPS:
        raise ValueError(f"other coverage {other.order}: {other.relationship!r} is not a relationship code")
    group = identifier(other.group_number, d, "other payer group number", 50) if other.group_number else None
    out.add("SBR", payer_responsibility(other), other.relationship, group, None, None, None, None, None,
            claim_filing_indicator(other))
    claim_level_only = adjudication is not None and not adjudication.lines
    if adjudication is not None:
        _adjustment_segments(out, adjudication.claim_adjustments, "other payer claim-level")
        out.add("AMT", "D", money(adjudication.paid_amount))
        if claim_level_only:
            remaining = adjudication.patient_responsibility
            if remaining is None:
                remaining = _patient_share(adjudication.claim_adjustments)
            out.add("AMT", "EAF", money(remaining))
    out.add("OI", None, None, claim.benefits_assigned, None, None, claim.release_of_information)
    subscriber = claim.patient if other.patient_is_subscriber else other.subscriber
    if subscriber is None:
        raise ValueError(f"other coverage {other.order}: the patient is a dependent but the subscriber is unknown")
    member_id = identifier(other.member_id, d, "other payer member id", 80, 2)
    parties.person_name(out, "IL", subscriber.name, "other subscriber", "MI", member_id)
    if subscriber.address is not None:  # 2330A N3/N4: required when the information is available
        parties.address(out, subscriber.address, "other subscriber")
    payer_id = identifier(other.payer.payer_id, d, "other payer id", 80, 2)
    parties.organization_name(out, "PR", other.payer.name, "other payer", "PI", payer_id)
    if adjudication is not None:
        if claim_level_only:
            out.add("DTP", "573", "D8", date8(adjudication.adjudication_date))
        if adjudication.payer_claim_control_number:  # the prior payer's own claim number (835 CLP07)
            out.add("REF", "F8", identifier(adjudication.payer_claim_control_number, d,
                                            "other payer claim control number", 50))


def _adjustment_segments(out: SegmentList, adjustments: Sequence[PayerAdjustment], what: str) -> None:
    """CAS: one segment per group code with up to six reason/amount/quantity triples."""
    d = out.delimiters
    for group, found in _cas_segments(adjustments):
        triples: list[str | None] = []
        for adjustment in found:
            triples += [
                identifier(adjustment.reason, d, f"{what} adjustment reason code", 5),
                money(adjustment.amount),
                decimal_text(adjustment.quantity) if adjustment.quantity is not None else None,
            ]
        out.add("CAS", group, *triples)


def _line_adjudication(
    out: SegmentList, adjudication: PriorPayerAdjudication, line: ServiceLine, adjudicated: LineAdjudication,
    where: str,
) -> None:
    """2430: SVD (payer, paid, procedure as adjudicated, units), CAS, DTP*573, AMT*EAF.

    SVD01 is the other payer's id exactly as in its 2330B NM109, which is how the receiver ties
    the line's adjudication to that payer.
    """
    d = out.delimiters
    payer_id = identifier(adjudication.payer.payer_id, d, "other payer id", 80, 2)
    if adjudicated.procedure_code is not None:
        code, modifiers = adjudicated.procedure_code, adjudicated.modifiers
    else:
        code, modifiers = line.procedure_code, line.modifiers
    if len(modifiers) > MAX_MODIFIERS:
        raise ValueError(f"{where}: the adjudicated procedure has {len(modifiers)} modifiers; at most {MAX_MODIFIERS}")
    units = adjudicated.paid_units if adjudicated.paid_units is not None else line.units
    if units < 0:
        raise ValueError(f"{where}: the other payer's paid units are negative")
    procedure = (
        "HC",
        identifier(code, d, f"{where} adjudicated procedure code", 48),
        *(identifier(m, d, f"{where} adjudicated modifier", 2, 2) for m in modifiers),
    )
    out.add("SVD", payer_id, money(adjudicated.paid_amount), procedure, None, decimal_text(units))
    _adjustment_segments(out, adjudicated.adjustments, f"{where} other payer")
    out.add("DTP", "573", "D8", date8(adjudicated.adjudication_date or adjudication.adjudication_date))
    remaining = adjudicated.remaining_patient_liability
    if remaining is None:
        remaining = _patient_share(adjudicated.adjustments)
    out.add("AMT", "EAF", money(remaining))


def _service_line(out: SegmentList, claim: Claim, number: int, line: ServiceLine, authorization: str | None) -> None:
    """2400: LX, SV1, DTP*472, then the line's own prior authorization and control number."""
    d = out.delimiters
    where = f"service line {number}"
    if len(line.modifiers) > MAX_MODIFIERS:
        raise ValueError(f"{where} has {len(line.modifiers)} modifiers; at most {MAX_MODIFIERS}")
    pointers = line.diagnosis_pointers
    if not 1 <= len(pointers) <= MAX_POINTERS:
        raise ValueError(f"{where} needs 1-{MAX_POINTERS} diagnosis pointers")
    if any(not 1 <= p <= len(claim.diagnoses) for p in pointers):
        raise ValueError(f"{where} points at a diagnosis the claim does not have")
    if line.units <= 0:
        raise ValueError(f"{where} has no units")
    procedure = (
        "HC",
        identifier(line.procedure_code, d, f"{where} procedure code", 48),
        *(identifier(m, d, f"{where} modifier", 2, 2) for m in line.modifiers),
    )
    place = line.place_of_service if line.place_of_service != claim.place_of_service else None
    assert line.charge is not None  # check_claim refused lines without one
    out.add("LX", str(number))
    out.add(
        "SV1", procedure, money(line.charge), "UN", decimal_text(line.units),
        identifier(place, d, f"{where} place of service", 2) if place else None, None,
        tuple(str(p) for p in pointers),
    )
    out.add("DTP", "472", "D8", date8(line.service_date))
    if authorization:
        out.add("REF", "G1", identifier(authorization, d, f"{where} prior authorization", 50))
    if line.control_number:
        control_number = identifier(line.control_number, d, f"{where} control number", MAX_LINE_CONTROL_NUMBER)
        out.add("REF", "6R", control_number)
