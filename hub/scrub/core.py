"""The hub's built-in claim checks: what clearinghouses reject a professional claim for.

A built-in plugin, registered through the ``bhhub`` entry point like any vendor's. Each finding
names the claim or line and says how to fix it. Behavioral-health coding rules (time-based
codes, add-ons, same-day pairs, authorizations) live in their own rule pack.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import simple_icd_10_cm as icd

from hub import hookimpl
from hub.identifiers import npi_is_valid, tin_is_valid
from hub.model import Claim, Finding, Person, Provider, Severity
from hub.types import ClaimCheck

MAX_DIAGNOSES = 12  # HI01..HI12
MAX_LINES = 50  # 2400 repeat
MAX_POINTERS = 4  # SV107-1..4
MAX_CONTROL_NUMBER = 20  # CLM01 length receivers must keep


def _error(code: str, message: str, fix: str, line: int | None = None) -> Finding:
    return Finding(code, Severity.ERROR, message, fix, line)


def _warning(code: str, message: str, fix: str, line: int | None = None) -> Finding:
    return Finding(code, Severity.WARNING, message, fix, line)


def check_providers(claim: Claim, _context: Any = None) -> Iterator[Finding]:
    billing = claim.billing_provider
    yield from _npi(billing, "billing provider")
    if billing.tin is None or not tin_is_valid(billing.tin):
        yield _error(
            "provider.tin", "billing provider has no valid tax id (9 digits)",
            "add the practice's EIN to its Organization (urn:oid:2.16.840.1.113883.4.4)",
        )
    if billing.address is None:
        yield _error("provider.address", "billing provider has no address",
                     "add the practice's street address to its Organization")
    elif len(billing.address.postal_code) != 9:
        # TR3 2010AA note: a 9-digit ZIP (domain reference 5.2; widely enforced).
        yield _warning("provider.zip9", "billing provider ZIP code is not 9 digits",
                       "use the ZIP+4 of the practice's street address")
    if claim.rendering_provider is not None:
        yield from _npi(claim.rendering_provider, "rendering provider")
        if claim.rendering_provider.npi != billing.npi and not claim.rendering_provider.taxonomy:
            yield _warning("provider.taxonomy", "rendering provider has no taxonomy code",
                           "add the clinician's NUCC taxonomy (PractitionerRole.specialty)")


def _npi(provider: Provider, role: str) -> Iterator[Finding]:
    if not npi_is_valid(provider.npi):
        yield _error("provider.npi", f"{role} NPI {provider.npi!r} fails the NPI check digit",
                     f"correct the {role}'s NPI in the EHR (check it in NPPES)")


def check_people(claim: Claim, _context: Any = None) -> Iterator[Finding]:
    coverage = claim.coverage
    if not coverage.member_id.strip():
        yield _error("coverage.member_id", "no member id for the payer",
                     "add the subscriber id from the insurance card to the Coverage")
    if not coverage.payer.payer_id.strip():
        yield _error("coverage.payer_id", "no payer id", "add the payer's id (NIIP identifier)")
    if coverage.order > 1 and not any(o.order < coverage.order for o in claim.other_coverages):
        # A secondary claim needs the primary's adjudication (2320 AMT*D, CAS): bill the
        # primary first; the secondary claim is built from its 835.
        yield _error("coverage.primary_missing",
                     f"the only coverage sent is number {coverage.order} in order; the primary is unknown",
                     "add the patient's primary coverage to the export, or correct Coverage.order to 1 "
                     "if this is the primary plan")
    # DMG and N3/N4 are required for whoever is the patient: 2010BA when the patient is the
    # subscriber, else 2010CA.
    yield from _demographics(claim.patient, "patient")
    if not coverage.patient_is_subscriber and coverage.subscriber is None:
        yield _error("coverage.subscriber", "the patient is a dependent but the subscriber is unknown",
                     "add the subscriber (Patient or RelatedPerson) to the Coverage")


def _demographics(person: Person, role: str) -> Iterator[Finding]:
    if person.birth_date is None:
        yield _error(f"{role}.birth_date", f"{role} has no date of birth", f"add the {role}'s birth date")
    if person.address is None:
        yield _error(f"{role}.address", f"{role} has no address", f"add the {role}'s home address")
    if not person.name.family.strip():
        yield _error(f"{role}.name", f"{role} has no family name", f"add the {role}'s name")


def check_diagnoses(claim: Claim, _context: Any = None) -> Iterator[Finding]:
    if not claim.diagnoses:
        yield _error("diagnosis.missing", "no diagnosis on the claim",
                     "add the encounter's ICD-10-CM diagnoses")
    if len(claim.diagnoses) > MAX_DIAGNOSES:
        yield _error("diagnosis.too_many", f"{len(claim.diagnoses)} diagnoses; an 837P carries at most 12",
                     "keep the 12 most relevant diagnoses")
    for position, code in enumerate(claim.diagnoses, start=1):
        yield from _icd10(code, position)


def _icd10(code: str, position: int) -> Iterator[Finding]:
    # ICD-10-CM validity against the code set simple-icd-10-cm ships; dated code-set versions
    # by date of service belong to the rule pack.
    if not icd.is_valid_item(code):
        yield _error("diagnosis.invalid", f"diagnosis {position} ({code}) is not an ICD-10-CM code",
                     "correct the diagnosis code in the EHR")
    elif not icd.is_leaf(code):
        leaves = [icd.add_dot(c) for c in icd.get_descendants(code) if icd.is_leaf(c)][:6]
        yield _error(
            "diagnosis.not_billable",
            f"diagnosis {position} ({code}) is a category, not a billable code",
            "use a billable code, e.g. " + ", ".join(leaves),
        )


def check_lines(claim: Claim, _context: Any = None) -> Iterator[Finding]:
    if not claim.lines:
        yield _error("claim.no_lines", "the claim has no service lines", "add the billed services")
    if len(claim.lines) > MAX_LINES:
        yield _error("claim.too_many_lines", f"{len(claim.lines)} lines; an 837P claim carries at most 50",
                     "split the services into two claims")
    if len(claim.patient_control_number) > MAX_CONTROL_NUMBER:
        yield _error("claim.control_number", "patient control number longer than 20 characters",
                     "shorten the claim's control number")
    for number, line in enumerate(claim.lines, start=1):
        if line.charge is not None and line.charge <= 0:
            yield _error("line.charge", f"line {number} ({line.procedure_code}) has no positive charge",
                         "set the charge or add the code to the fee schedule", number)
        if line.units <= 0:
            yield _error("line.units", f"line {number} has {line.units} units",
                         "bill at least one unit", number)
        pointers = line.diagnosis_pointers
        if not pointers or len(pointers) > MAX_POINTERS or any(
            p < 1 or p > len(claim.diagnoses) for p in pointers
        ):
            yield _error("line.diagnosis_pointer",
                         f"line {number} ({line.procedure_code}) points to diagnoses {list(pointers)} "
                         f"but the claim has {len(claim.diagnoses)}",
                         "point each line to one to four of the claim's diagnoses", number)


@hookimpl
def bhhub_register_claim_checks() -> list[ClaimCheck]:
    return [
        ClaimCheck("core.providers", "billing and rendering provider NPI, tax id, address, taxonomy",
                   lambda c, ctx: list(check_providers(c, ctx))),
        ClaimCheck("core.people", "member id, payer id, patient and subscriber demographics",
                   lambda c, ctx: list(check_people(c, ctx))),
        ClaimCheck("core.diagnoses", "ICD-10-CM codes valid and billable, at most 12",
                   lambda c, ctx: list(check_diagnoses(c, ctx))),
        ClaimCheck("core.lines", "lines present, charges, units, diagnosis pointers",
                   lambda c, ctx: list(check_lines(c, ctx))),
    ]
