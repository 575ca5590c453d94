"""Loop 2300 (Claim Information) of the 005010X222A1 837P and the loops inside it.

In the order the implementation guide puts them: CLM, REF*G1, REF*F8, HI; 2310B rendering
provider; 2320/2330A/2330B other payers; 2400 service lines. Problems with the claim raise
``ValueError``; ``write_837p`` names the claim in the ``InputError`` it raises.
"""

from __future__ import annotations

import re
from decimal import Decimal

from hub.model import Claim, Coverage, Provider, ServiceLine
from hub.x12 import parties
from hub.x12.segments import SegmentList, date8, decimal_text, identifier, money

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
_ICD10 = re.compile(r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$")


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
    for number, line in enumerate(claim.lines, start=1):
        if line.charge is None:
            raise ValueError(f"service line {number} has no charge (price it from the fee schedule first)")
        if line.charge < 0:
            raise ValueError(f"service line {number} has a negative charge")


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
    if claim.prior_authorization:
        out.add("REF", "G1", identifier(claim.prior_authorization, d, "prior authorization", 50))
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
    for other in claim.other_coverages:
        _other_payer(out, claim, other)
    for number, line in enumerate(claim.lines, start=1):
        _service_line(out, claim, number, line)


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


def _other_payer(out: SegmentList, claim: Claim, other: Coverage) -> None:
    """2320 (SBR, OI) with 2330A other subscriber and 2330B other payer.

    2320 SBR02 is the patient's relationship to *that* payer's subscriber (18 when the patient
    is the subscriber there). OI03 and OI06 repeat the claim's benefits assignment and release.
    """
    d = out.delimiters
    if other.relationship not in RELATIONSHIPS:
        raise ValueError(f"other coverage {other.order}: {other.relationship!r} is not a relationship code")
    group = identifier(other.group_number, d, "other payer group number", 50) if other.group_number else None
    out.add("SBR", payer_responsibility(other), other.relationship, group, None, None, None, None, None,
            claim_filing_indicator(other))
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


def _service_line(out: SegmentList, claim: Claim, number: int, line: ServiceLine) -> None:
    """2400: LX, SV1, DTP*472, then the line's prior authorization and control number."""
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
    if line.prior_authorization:
        out.add("REF", "G1", identifier(line.prior_authorization, d, f"{where} prior authorization", 50))
    if line.control_number:
        control_number = identifier(line.control_number, d, f"{where} control number", MAX_LINE_CONTROL_NUMBER)
        out.add("REF", "6R", control_number)
