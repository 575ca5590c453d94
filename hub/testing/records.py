"""What an EHR plugin's ``Encounter`` must carry for the hub to bill it on an 837P.

``encounter_problems(encounter)`` lists, in plain words, each field the 837P needs that is
missing or has the wrong type or shape; an empty list means the record is complete. The hub's
own checks (NPI check digits, code sets, payer rules) run later, on the claim; these are the
conventions of ``bhhub.model`` a plugin must follow so that those checks can run at all.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal

from bhhub.common.identifiers import npi_is_valid, tin_is_valid
from bhhub.model import SELF, Address, Coverage, Encounter, Patient, Person, Provider, ServiceLine

ICD10_WITH_DOT = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")
PROCEDURE = re.compile(r"^[0-9A-Z]{5}$")  # CPT or HCPCS level II
MODIFIER = re.compile(r"^[0-9A-Z]{2}$")
GENDERS = ("M", "F", "U")


def _is_date(value: object) -> bool:
    return isinstance(value, date) and not isinstance(value, datetime)


def _address_problems(address: object, who: str) -> list[str]:
    if not isinstance(address, Address):
        return [f"{who} address is missing (bhhub.model.Address: line1, city, state, postal_code)"]
    problems = [f"{who} address has no {name}" for name in ("line1", "city", "state", "postal_code")
                if not getattr(address, name)]
    if address.state and not re.fullmatch(r"[A-Z]{2}", address.state):
        problems.append(f"{who} address state is not a two-letter code")
    if address.postal_code and not re.fullmatch(r"\d{5}(\d{4})?", address.postal_code):
        problems.append(f"{who} postal code is not 5 or 9 digits without a dash")
    return problems


def _person_problems(person: object, who: str) -> list[str]:
    if not isinstance(person, Person):
        return [f"{who} is not a bhhub.model.Person"]
    problems = []
    if not person.name or not person.name.family:
        problems.append(f"{who} has no family name")
    if not _is_date(person.birth_date):
        problems.append(f"{who} birth date is not a datetime.date")
    if person.gender not in GENDERS:
        problems.append(f"{who} gender is not M, F or U")
    return problems + _address_problems(person.address, who)


def _provider_problems(provider: object, who: str) -> list[str]:
    if not isinstance(provider, Provider):
        return [f"{who} is not a bhhub.model.Provider"]
    problems = []
    if not npi_is_valid(str(provider.npi)):
        problems.append(f"{who} NPI is not 10 digits with a valid check digit")
    if not provider.organization_name and not (provider.name and provider.name.family):
        problems.append(f"{who} has neither organization_name nor name.family")
    return problems


def _coverage_problems(coverage: object, n: int) -> list[str]:
    who = f"coverage {n}"
    if not isinstance(coverage, Coverage):
        return [f"{who} is not a bhhub.model.Coverage"]
    problems = []
    if not coverage.payer or not coverage.payer.payer_id or not coverage.payer.name:
        problems.append(f"{who} payer needs payer_id (the clearinghouse payer id) and name")
    if not coverage.member_id:
        problems.append(f"{who} has no member_id")
    if coverage.relationship != SELF:
        problems += _person_problems(coverage.subscriber, f"{who} subscriber (patient is not the subscriber)")
    return problems


def _line_problems(line: object, n: int, diagnoses: int) -> list[str]:
    who = f"service line {n}"
    if not isinstance(line, ServiceLine):
        return [f"{who} is not a bhhub.model.ServiceLine"]
    problems = []
    if not PROCEDURE.match(str(line.procedure_code)):
        problems.append(f"{who} procedure code is not a 5-character CPT/HCPCS code")
    if not _is_date(line.service_date):
        problems.append(f"{who} service_date is not a datetime.date")
    if not isinstance(line.modifiers, tuple) or not all(MODIFIER.match(str(m)) for m in line.modifiers):
        problems.append(f"{who} modifiers are not a tuple of 2-character codes")
    if line.charge is not None and not isinstance(line.charge, Decimal):
        problems.append(f"{who} charge is {type(line.charge).__name__}, not Decimal (money is never float)")
    if not isinstance(line.units, Decimal) or line.units <= 0:
        problems.append(f"{who} units are not a positive Decimal")
    if not line.diagnosis_pointers or not all(
            isinstance(p, int) and 1 <= p <= diagnoses for p in line.diagnosis_pointers):
        problems.append(f"{who} diagnosis pointers are not 1-based positions in the encounter's diagnoses")
    return problems


def encounter_problems(encounter: object) -> list[str]:
    """Every reason ``encounter`` cannot become an 837P claim as it stands; empty when complete."""
    if not isinstance(encounter, Encounter):
        return [f"a {type(encounter).__name__} was returned, not a bhhub.model.Encounter"]
    problems = []
    if not isinstance(encounter.key, str) or not encounter.key:
        problems.append("key is empty (a source-scoped identity, stable across re-sends)")
    if not encounter.source_ref:
        problems.append("source_ref is empty (what a biller is told to look at, e.g. 'row 3')")
    if not _is_date(encounter.service_date):
        problems.append("service_date is not a datetime.date")
    if not isinstance(encounter.patient, Patient):
        problems.append("patient is not a bhhub.model.Patient")
    else:
        problems += _person_problems(encounter.patient, "patient")
        if not encounter.patient.key:
            problems.append("patient key is empty (a source-scoped identity, e.g. the chart number)")
    if not isinstance(encounter.coverages, tuple) or not encounter.coverages:
        problems.append("coverages is not a non-empty tuple (a claim needs a payer)")
    else:
        for n, coverage in enumerate(encounter.coverages, start=1):
            problems += _coverage_problems(coverage, n)
        orders = [getattr(c, "order", None) for c in encounter.coverages]
        if len(set(orders)) != len(orders):
            problems.append("two coverages share the same order (1 primary, 2 secondary, ...)")
    problems += _provider_problems(encounter.billing_provider, "billing provider")
    if isinstance(encounter.billing_provider, Provider):
        if not tin_is_valid(str(encounter.billing_provider.tin or "")):
            problems.append("billing provider TIN is not 9 digits without a dash")
        problems += _address_problems(encounter.billing_provider.address, "billing provider")
    if encounter.rendering_provider is not None:
        problems += _provider_problems(encounter.rendering_provider, "rendering provider")
    if not isinstance(encounter.diagnoses, tuple) or not encounter.diagnoses:
        problems.append("diagnoses is not a non-empty tuple of ICD-10-CM codes")
    elif not all(ICD10_WITH_DOT.match(str(d)) for d in encounter.diagnoses):
        problems.append("diagnoses are not ICD-10-CM codes with their dot (F33.1)")
    diagnoses = len(encounter.diagnoses) if isinstance(encounter.diagnoses, tuple) else 0
    if not isinstance(encounter.services, tuple):
        problems.append("services is not a tuple")
    else:
        for n, line in enumerate(encounter.services, start=1):
            problems += _line_problems(line, n, diagnoses)
        if not encounter.services and not (isinstance(encounter.minutes, int) and encounter.minutes > 0):
            problems.append("no services and no minutes: the hub cannot tell what to bill")
    return problems
