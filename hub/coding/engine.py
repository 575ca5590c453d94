"""The coding stage: from an encounter as recorded to the lines and place of service billed.

What the EHR sent wins (its codes, charges, place of service); the tables in ``mappings/``
fill what it left out: the psychotherapy code from documented minutes, the charge from the
practice fee schedule, the telehealth place of service and modifier from the payer's rule. For
a telehealth visit the place is where the patient was when the EHR says it (POS 02 or 10), else
the payer's default, and the modifier is what the payer wants with that place. A source claim
(``as_billed``) is taken as it stands but for missing charges.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bhhub.coding import rules
from bhhub.errors import MappingError
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.model import Encounter, Finding, Payer, ServiceLine, Severity

OFFICE = "11"
MAX_MODIFIERS = 4  # SV101-3 .. SV101-6
MAX_POINTERS = 4  # SV107-1 .. SV107-4


@dataclass(frozen=True)
class CodedEncounter:
    lines: tuple[ServiceLine, ...]
    place_of_service: str
    findings: tuple[Finding, ...]


def code_encounter(encounter: Encounter, payer: Payer, mappings: MappingSet) -> CodedEncounter:
    findings: list[Finding] = []
    lines = _with_visit_minutes(list(encounter.services), encounter) or _lines_from_minutes(encounter, mappings, findings)
    place = encounter.place_of_service or OFFICE
    if not encounter.as_billed:
        patient_at = _patient_location(encounter, lines, rules.patient_locations(mappings))
        if encounter.virtual or patient_at:
            billing = rules.telehealth_billing(mappings, payer, encounter.billing_provider,
                                               patient_at=patient_at, audio_only=encounter.audio_only)
            place = billing.place_of_service
            if billing.modifier:
                lines = [_with_modifier(line, billing.modifier) for line in lines]
    priced = [_priced(i, line, mappings, findings) for i, line in enumerate(lines, start=1)]
    return CodedEncounter(tuple(priced), place, tuple(findings))


def _patient_location(encounter: Encounter, lines: list[ServiceLine], locations: frozenset[str]) -> str | None:
    """Where a telehealth patient was, when the EHR says it: a place of service that tells it
    (02 not at home, 10 at home) on the visit, else on every line. Any other place on a virtual
    visit (an office, a practice's default) is the clinician's, not the patient's."""
    if encounter.place_of_service in locations:
        return encounter.place_of_service
    places = {line.place_of_service for line in lines}
    if len(places) == 1 and lines[0].place_of_service in locations:
        return lines[0].place_of_service
    return None


# Codes whose choice depends on the session's time; the visit's documented minutes are theirs
# when the visit has exactly one such line and no other timed service (an E/M visit's minutes
# are the whole visit's, not the psychotherapy add-on's, so those stay unset).
_TIMED = frozenset({"90832", "90834", "90837", "90839", "90846", "90847"})
_VISIT_TIME_SHARED = frozenset({"90833", "90836", "90838", "90840"})


def _with_visit_minutes(lines: list[ServiceLine], encounter: Encounter) -> list[ServiceLine]:
    if encounter.minutes is None or not lines:
        return lines
    timed = [i for i, line in enumerate(lines) if line.procedure_code in _TIMED]
    shared = any(line.procedure_code in _VISIT_TIME_SHARED or line.procedure_code.startswith("992") for line in lines)
    if len(timed) != 1 or shared or lines[timed[0]].minutes is not None:
        return lines
    lines[timed[0]] = replace(lines[timed[0]], minutes=encounter.minutes)
    return lines


def _lines_from_minutes(encounter: Encounter, mappings: MappingSet, findings: list[Finding]) -> list[ServiceLine]:
    try:
        minimum = rules.minimum_psychotherapy_minutes(mappings, encounter.service_date)
    except MappingError as exc:
        findings.append(Finding(
            "coding.no_table", Severity.ERROR,
            f"no psychotherapy code table in effect on {encounter.service_date.isoformat()} ({exc})",
            "check the date of service; for an older date add its codes to "
            "mappings/coding/psychotherapy.toml in the hub home, or send the billed code from the EHR",
        ))
        return []
    if encounter.minutes is None:
        findings.append(Finding(
            "coding.no_service", Severity.ERROR,
            f"{encounter.source_ref} has no billed service and no documented minutes",
            "send the service code (ChargeItem) or the session length from the EHR",
        ))
        return []
    code = rules.psychotherapy_code(mappings, encounter.minutes, encounter.service_date)
    if code is None:
        findings.append(Finding(
            "psychotherapy.under_minimum", Severity.ERROR,
            f"{encounter.minutes} minutes of psychotherapy documented; at least {minimum} are "
            "needed to bill a psychotherapy code",
            "check the documented session length; a session this short is not billable as psychotherapy",
        ))
        return []
    pointers = tuple(range(1, min(len(encounter.diagnoses), MAX_POINTERS) + 1)) or (1,)
    return [ServiceLine(
        procedure_code=code,
        service_date=encounter.service_date,
        diagnosis_pointers=pointers,
        minutes=encounter.minutes,
        source_ref=encounter.source_ref,
    )]


def _with_modifier(line: ServiceLine, modifier: str) -> ServiceLine:
    if modifier in line.modifiers or len(line.modifiers) >= MAX_MODIFIERS:
        return line
    return replace(line, modifiers=(*line.modifiers, modifier))


def _priced(number: int, line: ServiceLine, mappings: MappingSet, findings: list[Finding]) -> ServiceLine:
    if line.charge is not None:
        return line
    charge = rules.fee(mappings, line.procedure_code, line.service_date)
    if charge is None:
        findings.append(Finding(
            "fee.missing", Severity.ERROR,
            f"no charge sent and no fee for {line.procedure_code} in the fee schedule",
            f"add {line.procedure_code} to mappings/fee_schedule.toml in the hub home, then "
            "retry the inbox item",
            line=number,
        ))
        return line
    return replace(line, charge=charge * line.units if line.units > 1 else charge)
