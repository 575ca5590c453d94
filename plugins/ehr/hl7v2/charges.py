"""DFT^P03 (post detail financial transactions, HL7 v2.5.1 6.4.3) as canonical encounters.

Each FT1 whose transaction type is billed (FT1-6 CG) is a service line: date, procedure code
and modifiers, quantity, amount, diagnoses, performing clinician. The lines of one visit (the
same patient, date of service and rendering clinician) are one ``Encounter``: a DFT that
carries a day's charges for two clinicians makes two claims. The DG1 segments are the visit's
diagnoses (principal first), the IN1 groups its coverages, and the practice profile chosen by
MSH-4 its billing provider.

A message is read whole or refused whole, naming the segment and field at fault.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from bhhub.errors import InputError
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.model import Encounter, PersonName, Provider, ServiceLine

from bhhub.plugins.ehr.hl7v2 import people
from bhhub.plugins.ehr.hl7v2.fieldmap import FieldMap
from bhhub.plugins.ehr.hl7v2.paths import Path, Scope, groups
from bhhub.plugins.ehr.hl7v2.practices import Practice, practice_for
from bhhub.plugins.ehr.hl7v2.shown import set_id as shown_set_id
from bhhub.plugins.ehr.hl7v2.values import decimal, required_date
from bhhub.plugins.ehr.hl7v2.wire import Message, Segment

# The DFT_P03 FINANCIAL group: FT1 with its notes, procedures, orders and results (v2.5.1 to v2.8).
FINANCIAL_GROUP = frozenset({"FT1", "NTE", "PR1", "ROL", "ORC", "TQ1", "TQ2", "OBR", "OBX", "PRT"})
MAX_POINTERS = 4  # SV107: a line points to at most four diagnoses


@dataclass(frozen=True)
class _Line:
    service: ServiceLine
    diagnoses: tuple[str, ...]
    rendering: Provider | None
    group: list[Segment]
    set_id: str  # FT1-1 as sent when a sequence number, else the FT1's position


def encounters(message: Message, fmap: FieldMap, mappings: MappingSet) -> list[Encounter]:
    namespace, universal = people.facility(message)
    practice = practice_for(mappings, namespace, universal, message.where())
    patient = people.patient(message, fmap)
    visit_diagnoses = _dg1_diagnoses(message, fmap)
    billing = practice.billing_provider
    lines = _lines(message, fmap, practice)
    visits: dict[tuple[date, str], list[_Line]] = {}
    for line in lines:
        npi = line.rendering.npi if line.rendering else ""
        visits.setdefault((line.service.service_date, npi), []).append(line)
    if not message.all("IN1"):
        raise InputError("no IN1 segment: the charges name no insurance", where=message.where(),
                         fix="send the patient's coverages (IN1, with IN2) in the DFT; a DFT is billed from its own "
                             "PID and IN1 segments")
    result = []
    for (service_date, npi), visit_lines in visits.items():
        first = visit_lines[0]
        where = message.where(f"FT1 set {first.set_id}")
        in_effect = people.coverage_groups(message, fmap, service_date)
        coverages = tuple(coverage for coverage, _ in in_effect)
        if not coverages:
            raise InputError("no IN1 coverage is in effect on the date of service (IN1-12/IN1-13)", where=where,
                             fix="send the coverage in effect on the visit's date, or correct its dates")
        diagnoses = list(visit_diagnoses)
        for line in visit_lines:
            diagnoses += [code for code in line.diagnoses if code not in diagnoses]
        if not diagnoses:
            raise InputError("no ICD-10-CM diagnosis: no DG1 segment and no FT1-19 diagnosis code", where=where,
                             fix="send the visit's diagnoses in DG1-3 (coding system I10), principal first")
        services = tuple(_pointed(line, diagnoses) for line in visit_lines)
        scope = Scope(message, first.group)
        minutes = _minutes(scope, fmap.paths("encounter.minutes"), where)
        place = scope.first(fmap.paths("encounter.place_of_service")) or practice.place_of_service
        virtual, audio_only = _telehealth(scope, fmap)
        result.append(Encounter(
            key=f"{patient.key}|visit|{service_date.isoformat()}|{npi or billing.npi}",
            source_ref=f"{'^'.join(message.message_type)} {message.control_id} FT1 set {first.set_id}",
            service_date=service_date,
            patient=patient,
            coverages=coverages,
            billing_provider=billing,
            rendering_provider=first.rendering,
            diagnoses=tuple(diagnoses),
            services=services,
            place_of_service=place or None,
            virtual=virtual,
            audio_only=audio_only,
            minutes=minutes,
            prior_authorization=_prior_authorization(scope, fmap, in_effect[0][1]) or None,
        ))
    return result


def _prior_authorization(scope: Scope, fmap: FieldMap, primary: list[Segment]) -> str:
    """The visit's authorization number. A path into an insurance segment (IN1-14) is read in the
    primary's IN1 group only: the claim goes to the primary, and another payer's number on it
    is a wrong authorization (CO-15)."""
    for path in fmap.paths("encounter.prior_authorization"):
        found = people.in_group(primary, (path,)) if path.segment in people.INSURANCE_GROUP else scope.first((path,))
        if found:
            return found
    return ""


def _telehealth(scope: Scope, fmap: FieldMap) -> tuple[bool, bool]:
    """(virtual, audio only) from the field the mapping names, by its values; (False, False)
    when the mapping names none or the value is neither."""
    paths = fmap.paths("encounter.telehealth")
    if not paths:
        return False, False
    value = scope.first(paths).strip().upper()
    audio = value in {v.upper() for v in fmap.strings("encounter.telehealth_audio_only")}
    video = value in {v.upper() for v in fmap.strings("encounter.telehealth_video")}
    return bool(value) and (audio or video), bool(value) and audio


def _lines(message: Message, fmap: FieldMap, practice: Practice) -> list[_Line]:
    billed = {t.upper() for t in fmap.strings("charge.billed_transaction_types")}
    found: list[_Line] = []
    skipped: list[Segment] = []
    for group in groups(message, "FT1", FINANCIAL_GROUP):
        scope = Scope(message, group)
        set_id = shown_set_id(group[0].value(1), len(found) + len(skipped) + 1)
        where = message.where(f"FT1 set {set_id}")
        kind = scope.first(fmap.paths("charge.transaction_type")).upper()
        if kind not in billed:
            skipped.append(group[0])
            continue
        found.append(_line(scope, fmap, practice, where, group, set_id))
    if not found:
        seen = f" ({len(skipped)} FT1 with another transaction type)" if skipped else ""
        raise InputError(f"nothing to bill: no FT1 with a billed transaction type "
                         f"({', '.join(sorted(billed))} in FT1-6){seen}", where=message.where(),
                         fix="send the charges as FT1 segments with transaction type CG, or list your EHR's "
                             "charge type in [charge] billed_transaction_types")
    return found


def _line(scope: Scope, fmap: FieldMap, practice: Practice, where: str, group: list[Segment], set_id: str) -> _Line:
    dates = fmap.paths("charge.service_date")
    service_date = required_date(scope.first(dates), f"{_label(dates)} transaction date", where,
                                 "send the date of service in FT1-4")
    procedures = fmap.paths("charge.procedure_code")
    code = scope.first(procedures).upper()
    if not code:
        raise InputError(f"{_label(procedures)} procedure code is empty", where=where,
                         fix="send the CPT or HCPCS code of the service in FT1-25")
    quantities = fmap.paths("charge.quantity")
    units = decimal(scope.first(quantities), f"{_label(quantities)} quantity", where) or Decimal(1)
    if units <= 0:
        raise InputError(f"{_label(quantities)} quantity must be more than zero", where=where,
                         fix="send the units billed (a credit is a separate transaction type)")
    charge = decimal(scope.first(fmap.paths("charge.amount")), f"{_label(fmap.paths('charge.amount'))} amount", where)
    if charge is None:
        unit_amount = decimal(scope.first(fmap.paths("charge.unit_amount")), "unit amount", where)
        charge = unit_amount * units if unit_amount is not None else None
    if charge is not None and charge < 0:
        raise InputError(f"{_label(fmap.paths('charge.amount'))} amount is negative on a charge", where=where,
                         fix="send a credit as its own transaction type (FT1-6 CD), not a negative charge")
    if charge == 0:
        charge = None  # no price sent: the fee schedule prices it
    modifiers = tuple(m.upper() for m in scope.repeated(fmap.paths("charge.modifiers")))
    return _Line(
        service=ServiceLine(
            procedure_code=code,
            service_date=service_date,
            modifiers=modifiers,
            charge=charge.quantize(Decimal("0.01")) if charge is not None else None,
            units=units.normalize(),
            place_of_service=scope.first(fmap.paths("charge.place_of_service")) or None,
            minutes=_minutes(scope, fmap.paths("charge.minutes"), where),
            # Read in the FT1 group only: a line's own authorization, never the visit's or a payer's.
            prior_authorization=people.in_group(group, fmap.paths("charge.prior_authorization")) or None,
            source_ref=f"FT1 set {set_id}",
        ),
        diagnoses=_coded(scope, fmap, fmap.paths("charge.diagnoses"), where),
        rendering=_rendering(scope, fmap, practice, where),
        group=group,
        set_id=set_id,
    )


def _pointed(line: _Line, diagnoses: list[str]) -> ServiceLine:
    pointers = tuple(diagnoses.index(code) + 1 for code in line.diagnoses)[:MAX_POINTERS] or (1,)
    return replace(line.service, diagnosis_pointers=pointers)


def _rendering(scope: Scope, fmap: FieldMap, practice: Practice, where: str) -> Provider | None:
    npi, path = scope.value(fmap.paths("charge.rendering_npi"))
    if not npi or npi == practice.billing_provider.npi:
        return None  # the billing provider rendered the service
    # The name is read from the field the id came from (FT1-20 or PV1-7), never mixed.
    family = _beside(scope, fmap.paths("charge.rendering_family_name"), path)
    if not family:
        raise InputError(f"{path.label} performing provider has an id but no family name", where=where,
                         fix="send the clinician as id ^ family name ^ given name (XCN) in FT1-20")
    given = _beside(scope, fmap.paths("charge.rendering_given_name"), path)
    return Provider(npi=npi, name=PersonName(family, given or None), taxonomy=practice.clinician_taxonomy.get(npi))


def _beside(scope: Scope, paths: tuple[Path, ...], anchor: Path) -> str:
    """The value at the first of ``paths`` in the same field as ``anchor``, else the first value."""
    same = tuple(p for p in paths if (p.segment, p.field) == (anchor.segment, anchor.field))
    return scope.first(same) if same else scope.first(paths)


def _minutes(scope: Scope, paths: tuple[Path, ...], where: str) -> int | None:
    text, path = scope.value(paths)
    if not text:
        return None
    number = decimal(text, f"{path.label} minutes", where)
    if number is None or number < 0 or number != number.to_integral_value():
        raise InputError(f"{path.label} minutes must be a whole number", where=where,
                         fix="send the session's face-to-face minutes as a whole number")
    return int(number)


def _dg1_diagnoses(message: Message, fmap: FieldMap) -> list[str]:
    ranked: list[tuple[int, int, str]] = []
    for position, segment in enumerate(message.all("DG1")):
        scope = Scope(message, [segment])
        where = message.where(f"DG1 set {shown_set_id(segment.value(1), position + 1)}")
        code, path = scope.value(fmap.paths("diagnosis.code"))
        if not code:
            continue
        system = scope.first(fmap.paths("diagnosis.system"))
        _check_icd10(fmap, system, path, where)
        priority = scope.first(fmap.paths("diagnosis.priority"))
        ranked.append((int(priority) if priority.isdigit() and int(priority) > 0 else 10**6, position, icd10(code)))
    codes: list[str] = []
    for _, _, code in sorted(ranked):
        if code not in codes:
            codes.append(code)
    return codes


def _coded(scope: Scope, fmap: FieldMap, paths: tuple[Path, ...], where: str) -> tuple[str, ...]:
    """A repeating coded field (CE/CWE: code ^ text ^ system): every ICD-10-CM code in it."""
    for path in paths:
        segment = scope.segment(path.segment)
        if segment is None:
            continue
        codes = []
        for repetition in range(len(segment.repetitions(path.field))):
            code = segment.value(path.field, 1, None, repetition)
            if code:
                _check_icd10(fmap, segment.value(path.field, 3, None, repetition), path, where)
                codes.append(icd10(code))
        if codes:
            return tuple(dict.fromkeys(codes))
    return ()


def _check_icd10(fmap: FieldMap, system: str, path: Path | None, where: str) -> None:
    accepted = {s.upper() for s in fmap.strings("diagnosis.icd10cm_systems")}
    if system.upper() not in accepted:
        label = path.label if path else "DG1-3"
        what = "names no coding system" if not system else "is coded in another system"
        raise InputError(f"{label} diagnosis {what}, not ICD-10-CM", where=where,
                         fix="send ICD-10-CM diagnoses (coding system I10), or list your EHR's name for it in "
                             "[diagnosis] icd10cm_systems of mappings/ehr/hl7v2.toml")


def icd10(code: str) -> str:
    """ICD-10-CM with its dot, as the model keeps it (``F331`` → ``F33.1``)."""
    code = code.strip().upper()
    if "." not in code and len(code) > 3:
        return f"{code[:3]}.{code[3:]}"
    return code


def _label(paths: tuple[Path, ...]) -> str:
    return "/".join(dict.fromkeys(p.label for p in paths))
