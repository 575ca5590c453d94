"""The hub's built-in claim checks: what clearinghouses reject a professional claim for.

A built-in plugin, registered through the ``bhhub`` entry point like any vendor's. Each finding
names the claim or line and says how to fix it. Behavioral-health coding rules (time-based
codes, add-ons, same-day pairs, authorizations) live in their own rule pack.

This module registers the five checks and holds the providers', people's and lines' ones; the
diagnoses' check is ``bhhub.scrub.diagnosis_checks``, timely filing's ``bhhub.scrub.filing_checks``,
and what they share (the tables, the finding helpers, :func:`~bhhub.scrub.core_common.today`,
which tests replace) ``bhhub.scrub.core_common``.

Tables: ``mappings/rules/validity.toml`` (severities, place-of-service codes, EIN prefixes,
timely-filing warning window), ``mappings/rules/icd10cm_versions.toml`` (ICD-10-CM changes by
release, for the code set in effect on the date of service) and the filing windows by payer kind
and claim type in ``mappings/rules/filing_windows.toml`` (``bhhub.remittance.deadlines``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from bhhub import hookimpl
from bhhub.common.identifiers import npi_is_valid, tin_is_valid
from bhhub.common.memo import IdentityMemo
from bhhub.model import Claim, Finding, Person, Provider
from bhhub.scrub import core_common
from bhhub.scrub.core_common import error, severity_of, validity_table, warning
from bhhub.scrub.diagnosis_checks import check_diagnoses
from bhhub.scrub.filing_checks import check_timely_filing
from bhhub.types import ClaimCheck

MAX_LINES = 50  # 2400 repeat
MAX_POINTERS = 4  # SV107-1..4
MAX_CONTROL_NUMBER = 20  # CLM01 length receivers must keep
# NUCC taxonomy: ten characters, the last always X (e.g. 1041C0700X, 2084P0800X).
_TAXONOMY = re.compile(r"^[0-9]{3}[0-9A-Z]{6}X$")


def check_providers(claim: Claim, context: Any = None) -> list[Finding]:
    """The providers' findings. Claims of one practice share a few providers: the answer is
    kept per (table, billing provider, rendering provider), the providers compared by value."""
    rules = validity_table(context).get("provider", {})
    return list(_PROVIDERS.get(rules, (claim.billing_provider, claim.rendering_provider),
                               _provider_findings_of, claim, rules))


_PROVIDERS: IdentityMemo[tuple[Finding, ...]] = IdentityMemo(limit=10_000)


def _provider_findings_of(claim: Claim, rules: Mapping[str, Any]) -> tuple[Finding, ...]:
    return tuple(_provider_findings(claim, rules))


def _provider_findings(claim: Claim, rules: Mapping[str, Any]) -> Iterator[Finding]:
    billing = claim.billing_provider
    yield from _npi(billing, "billing provider")
    yield from _tin(billing.tin, rules)
    if billing.address is None:
        yield error("provider.address", "billing provider has no address",
                     "add the practice's street address to its Organization")
    elif len(billing.address.postal_code) != 9:
        # TR3 2010AA note: a 9-digit ZIP (domain reference 5.2; widely enforced).
        yield warning("provider.zip9", "billing provider ZIP code is not 9 digits",
                       "use the ZIP+4 of the practice's street address")
    rendering = claim.rendering_provider
    if rendering is not None:
        yield from _npi(rendering, "rendering provider")
        # 2310B (and its PRV) is sent only when the renderer is not the billing provider.
        if rendering.npi != billing.npi and not rendering.taxonomy:
            yield Finding("provider.taxonomy", severity_of(rules.get("taxonomy_missing_severity", "warning")),
                          "rendering provider has no taxonomy code",
                          "add the clinician's NUCC taxonomy (PractitionerRole.specialty)")
    for role, provider in (("billing provider", billing), ("rendering provider", rendering)):
        if provider is not None and provider.taxonomy and not _TAXONOMY.match(provider.taxonomy):
            yield error("provider.taxonomy_shape",
                         f"{role} taxonomy {provider.taxonomy!r} is not a NUCC code (10 characters ending in X)",
                         f"correct the {role}'s taxonomy, e.g. 1041C0700X (clinical social worker); "
                         "check it in NPPES")


def _tin(tin: str | None, rules: Mapping[str, Any]) -> Iterator[Finding]:
    fix = "add the practice's EIN to its Organization (urn:oid:2.16.840.1.113883.4.4)"
    if tin is None or not tin_is_valid(tin):
        yield error("provider.tin", "billing provider has no valid tax id (9 digits)", fix)
    elif len(set(tin)) == 1:  # 000000000, 999999999 ...: placeholders the IRS never issues
        yield error("provider.tin", f"billing provider tax id {tin} is a placeholder", fix)
    elif tin[:2] in rules.get("invalid_ein_prefixes", ()):
        # Never an EIN; may still be a sole proprietor's SSN, hence a warning.
        yield warning("provider.tin_prefix",
                       f"billing provider tax id starts with {tin[:2]}, a prefix the IRS does not assign to EINs",
                       "check the EIN on the practice's IRS letter (CP 575); ignore if it is the owner's SSN")


def _npi(provider: Provider, role: str) -> Iterator[Finding]:
    if not npi_is_valid(provider.npi):
        yield error("provider.npi", f"{role} NPI {provider.npi!r} fails the NPI check digit",
                     f"correct the {role}'s NPI in the EHR (check it in NPPES)")


def check_people(claim: Claim, _context: Any = None) -> Iterator[Finding]:
    coverage = claim.coverage
    if not coverage.member_id.strip():
        yield error("coverage.member_id", "no member id for the payer",
                     "add the subscriber id from the insurance card to the Coverage")
    if not coverage.payer.payer_id.strip():
        yield error("coverage.payer_id", "no payer id", "add the payer's id (NIIP identifier)")
    if coverage.order > 1 and not any(o.order < coverage.order for o in claim.other_coverages):
        # A secondary claim needs the primary's adjudication (2320 AMT*D, CAS): bill the
        # primary first; the secondary claim is built from its 835.
        yield error("coverage.primary_missing",
                     f"the only coverage sent is number {coverage.order} in order; the primary is unknown",
                     "add the patient's primary coverage to the export, or correct Coverage.order to 1 "
                     "if this is the primary plan")
    # DMG and N3/N4 are required for whoever is the patient: 2010BA when the patient is the
    # subscriber, else 2010CA.
    yield from _demographics(claim.patient, "patient")
    if not coverage.patient_is_subscriber and coverage.subscriber is None:
        yield error("coverage.subscriber", "the patient is a dependent but the subscriber is unknown",
                     "add the subscriber (Patient or RelatedPerson) to the Coverage")
    elif coverage.patient_is_subscriber and coverage.subscriber is not None \
            and not _same_person(coverage.subscriber, claim.patient):
        # SBR02 18 puts the patient in 2010BA as the subscriber (TR3 2000B/2010BA); a coverage
        # whose relationship says "self" but names someone else as subscriber would send the
        # payer a subscriber it may not know by that member id. Which field is wrong cannot be
        # told here; the fields are named, never their values.
        yield error("coverage.self_subscriber",
                     "the coverage says the patient is the subscriber (relationship self) but names another "
                     "person as subscriber (name or date of birth differ from the patient's)",
                     "correct the coverage in the EHR: the relationship (Coverage.relationship, IN1-17) if the "
                     "patient is a dependent, or the subscriber (Coverage.subscriber) if the patient holds "
                     "the policy")


def _same_person(one: Person, other: Person) -> bool:
    """The same person as far as a claim can tell: family and given names (ignoring case and
    spacing) and, when both are known, the birth date."""
    def names(person: Person) -> tuple[str, str]:
        return (" ".join(person.name.family.upper().split()), " ".join((person.name.given or "").upper().split()))
    if names(one) != names(other):
        return False
    return one.birth_date is None or other.birth_date is None or one.birth_date == other.birth_date


def _demographics(person: Person, role: str) -> Iterator[Finding]:
    if person.birth_date is None:
        yield error(f"{role}.birth_date", f"{role} has no date of birth", f"add the {role}'s birth date")
    if person.address is None:
        yield error(f"{role}.address", f"{role} has no address", f"add the {role}'s home address")
    elif not all(part.strip() for part in (person.address.line1, person.address.city, person.address.state,
                                           person.address.postal_code)):
        yield error(f"{role}.address", f"{role}'s address lacks a street, city, state or ZIP code",
                     f"complete the {role}'s home address")
    if not person.name.family.strip():
        yield error(f"{role}.name", f"{role} has no family name", f"add the {role}'s name")


def check_lines(claim: Claim, context: Any = None) -> Iterator[Finding]:
    validity = validity_table(context)
    places = validity.get("place_of_service", {})
    frequencies = validity.get("claim", {}).get("frequency_codes", ["1", "7", "8"])
    if claim.frequency_code not in frequencies:
        yield error("claim.frequency_code",
                     f"claim frequency code {claim.frequency_code!r} is not one of {', '.join(frequencies)}",
                     "send 1 for an original claim, 7 to replace or 8 to void an earlier one")
    if claim.place_of_service not in places:
        yield error("claim.place_of_service",
                     f"place of service {claim.place_of_service!r} is not a CMS place-of-service code",
                     "use the two-digit code, e.g. 11 office, 02 or 10 telehealth")
    if not claim.lines:
        yield error("claim.no_lines", "the claim has no service lines", "add the billed services")
    if len(claim.lines) > MAX_LINES:
        yield error("claim.too_many_lines", f"{len(claim.lines)} lines; an 837P claim carries at most 50",
                     "split the services into two claims")
    if len(claim.patient_control_number) > MAX_CONTROL_NUMBER:
        yield error("claim.control_number", "patient control number longer than 20 characters",
                     "shorten the claim's control number")
    now = core_common.today()  # asked once per claim, not per line
    birth = claim.patient.birth_date
    diagnoses = len(claim.diagnoses)
    for number, line in enumerate(claim.lines, start=1):
        if line.charge is not None and line.charge <= 0:
            yield error("line.charge", f"line {number} ({line.procedure_code}) has no positive charge",
                         "set the charge or add the code to the fee schedule", number)
        if line.units <= 0:
            yield error("line.units", f"line {number} has {line.units} units",
                         "bill at least one unit", number)
        if line.place_of_service is not None and line.place_of_service not in places:
            yield error("line.place_of_service",
                         f"line {number} place of service {line.place_of_service!r} is not a CMS code",
                         "use the two-digit code, or leave it empty to use the claim's", number)
        service_date = line.service_date
        if service_date > now:
            yield error("line.service_date_future",
                         f"line {number} is dated {service_date.isoformat()}, in the future",
                         "bill the service after it took place; correct the date if it is a typo", number)
        if birth is not None and service_date < birth:
            yield error("line.service_date_before_birth",
                         # the birth date is the patient's: named, never quoted (STYLE 10)
                         f"line {number} is dated {service_date.isoformat()}, before the patient's date of birth",
                         "correct the date of service or the patient's birth date in the EHR", number)
        pointers = line.diagnosis_pointers
        if not pointers or len(pointers) > MAX_POINTERS or min(pointers) < 1 or max(pointers) > diagnoses:
            yield error("line.diagnosis_pointer",
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
        ClaimCheck("core.diagnoses", "ICD-10-CM codes valid and billable on the date of service, at most 12, "
                   "no Z-code first", lambda c, ctx: list(check_diagnoses(c, ctx))),
        ClaimCheck("core.lines", "frequency, place of service, lines, charges, units, dates, diagnosis pointers",
                   lambda c, ctx: list(check_lines(c, ctx))),
        ClaimCheck("core.timely_filing", "the filing window for the payer's kind and the claim type, from the date "
                   "of service or the remittance it answers",
                   lambda c, ctx: list(check_timely_filing(c, ctx))),
    ]
