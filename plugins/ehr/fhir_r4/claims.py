"""A FHIR Claim (use = claim) as the canonical ``Encounter`` with ``as_billed`` set.

The EHR already coded this claim, so it is taken as it stands (R4 Claim): each item's
productOrService (CPT/HCPCS), modifier, quantity, net (else unitPrice x quantity), servicedDate
and locationCodeableConcept (CMS place of service); diagnosis in sequence order, with each
item's diagnosisSequence becoming its pointers; the careTeam member with role ``primary`` (else
the first) renders; insurance sequence gives the coverage order; provider bills.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from decimal import Decimal
from typing import Any

from bhhub.errors import InputError
from bhhub.model import Encounter, Provider, ServiceLine

from bhhub.plugins.ehr.fhir_r4 import people
from bhhub.plugins.ehr.fhir_r4.authorizations import authorization_grants, prior_authorization
from bhhub.plugins.ehr.fhir_r4.elements import as_date, code_in, icd10cm, money
from bhhub.plugins.ehr.fhir_r4.fieldmap import TABLE, FieldMap
from bhhub.plugins.ehr.fhir_r4.providers import RENDERING_TYPES, billing_provider, rendering_provider
from bhhub.plugins.ehr.fhir_r4.references import BundleIndex


def billable(fmap: FieldMap, claim: Any) -> bool:
    return claim.use in fmap.claim_uses and claim.status in fmap.claim_statuses


def encounters_billed_by(index: BundleIndex, claim: Any) -> list[Any]:
    """The visits a Claim bills (Claim.item.encounter): they must not be billed a second time."""
    found = []
    for item in claim.item or ():
        for reference in item.encounter or ():
            encounter = index.resolve(reference, claim)
            if encounter is not None:
                found.append(encounter)
    return found


def map_claim(index: BundleIndex, fmap: FieldMap, claim: Any) -> Encounter:
    where = index.label(claim)
    patient_resource = index.require(claim.patient, claim, "Claim.patient", ("Patient",))
    coverages, focal_ref = _coverages(index, fmap, claim, where)
    diagnoses, positions = _diagnoses(index, fmap, claim, where)
    lines = [_line(index, fmap, claim, item, positions, where)
             for item in sorted(claim.item or (), key=lambda i: i.sequence or 0)]
    if not lines:
        raise InputError("nothing billed: the Claim has no items", where=where,
                         fix="send the Claim with its service lines (Claim.item)")
    places = [place for _, place in lines if place]
    place = Counter(places).most_common(1)[0][0] if places else fmap.claim_default_place_of_service
    if place is None:
        raise InputError(
            "no place of service: no Claim.item has locationCodeableConcept", where=where,
            fix="send the CMS place-of-service code in Claim.item.locationCodeableConcept, or set "
                f"claim.default_place_of_service in mappings/{TABLE}")
    # A line keeps its own place of service only where it differs from the claim's.
    services = tuple(line if line_place in (None, place) else _with_place(line, line_place)
                     for line, line_place in lines)
    service_date = as_date(claim.billablePeriod.start) if claim.billablePeriod is not None else None
    service_date = service_date or min(line.service_date for line in services)
    return Encounter(
        key=people.resource_key(index, claim),
        source_ref=where,
        service_date=service_date,
        patient=people.patient(index, fmap, patient_resource),
        coverages=coverages,
        billing_provider=billing_provider(index, fmap, claim.provider, claim, "Claim.provider"),
        rendering_provider=_rendering(index, fmap, claim),
        diagnoses=diagnoses,
        services=services,
        place_of_service=place,
        virtual=place in fmap.telehealth_places_of_service,
        audio_only=any(m in fmap.audio_only_modifiers for line in services for m in line.modifiers),
        prior_authorization=(focal_ref or prior_authorization(index, fmap, patient_resource, service_date,
                                                              coverages[0].payer)),
        authorizations=authorization_grants(index, fmap, patient_resource),
        as_billed=True,
    )


def _coverages(index: BundleIndex, fmap: FieldMap, claim: Any, where: str):
    """Claim.insurance in sequence order; the focal one must be the primary.

    The canonical model sends a claim to its lowest-order coverage; a Claim addressed to a
    secondary payer needs the primary's adjudication, which a FHIR Claim does not carry here.
    """
    found, focal, focal_ref = [], None, None
    for insurance in sorted(claim.insurance or (), key=lambda i: i.sequence or 0):
        resource = index.require(insurance.coverage, claim, "Claim.insurance.coverage", ("Coverage",))
        mapped = people.coverage(index, fmap, resource, order=insurance.sequence)
        if mapped is None:  # self-pay
            continue
        found.append(mapped)
        if insurance.focal and focal is None:
            focal, focal_ref = mapped, (insurance.preAuthRef or [None])[0]
    if not found:
        raise InputError("no coverage: the Claim names no insurance with a payer", where=where,
                         fix="add Claim.insurance with the patient's Coverage")
    if focal is not None and focal.order != found[0].order:
        raise InputError(
            f"the Claim is addressed to insurance sequence {focal.order}, not the primary",
            where=where, fix="send the claim for the primary payer; the hub bills secondaries from the "
                             "primary's remittance")
    return tuple(found), focal_ref


def _diagnoses(index: BundleIndex, fmap: FieldMap, claim: Any, where: str):
    """ICD-10-CM codes in Claim.diagnosis.sequence order, and sequence → 1-based position."""
    codes: list[str] = []
    positions: dict[int, int] = {}
    for diagnosis in sorted(claim.diagnosis or (), key=lambda d: d.sequence or 0):
        code = code_in(diagnosis.diagnosisCodeableConcept, fmap.icd10cm)
        if code is None and diagnosis.diagnosisReference is not None:
            condition = index.require(diagnosis.diagnosisReference, claim, "Claim.diagnosis.diagnosisReference",
                                      ("Condition",))
            code = code_in(condition.code, fmap.icd10cm)
        if code is None:
            continue
        code = icd10cm(code)
        if code not in codes:
            codes.append(code)
        positions[diagnosis.sequence] = codes.index(code) + 1
    if not codes:
        raise InputError("no diagnoses: the Claim has no ICD-10-CM diagnosis", where=where,
                         fix="code Claim.diagnosis in ICD-10-CM (http://hl7.org/fhir/sid/icd-10-cm)")
    return tuple(codes), positions


def _line(index: BundleIndex, fmap: FieldMap, claim: Any, item: Any, positions: dict[int, int],
          where: str) -> tuple[ServiceLine, str | None]:
    number = item.sequence
    code = code_in(item.productOrService, fmap.procedure)
    if code is None:
        raise InputError(f"item {number} has no CPT or HCPCS code", where=where,
                         fix="code Claim.item.productOrService in CPT or HCPCS, or list your EHR's code "
                             f"system under [systems] in mappings/{TABLE}")
    units = item.quantity.value if item.quantity is not None and item.quantity.value is not None else Decimal(1)
    charge = money(item.net)
    if charge is None and money(item.unitPrice) is not None:
        charge = money(item.unitPrice) * units * (item.factor if item.factor is not None else 1)
    served = as_date(item.servicedDate) or (as_date(item.servicedPeriod.start) if item.servicedPeriod else None) \
        or (as_date(claim.billablePeriod.start) if claim.billablePeriod is not None else None)
    if served is None:
        raise InputError(f"item {number} has no date of service", where=where,
                         fix="set Claim.item.servicedDate (or Claim.billablePeriod)")
    missing = [s for s in item.diagnosisSequence or () if s not in positions]
    if missing:
        raise InputError(f"item {number} points to diagnosis {missing[0]}, which the Claim has no ICD-10-CM code for",
                         where=where, fix="correct Claim.item.diagnosisSequence or Claim.diagnosis")
    pointers = tuple(dict.fromkeys(positions[s] for s in item.diagnosisSequence or ())) or (1,)
    modifiers = tuple(m for m in (code_in(concept, fmap.modifier) for concept in item.modifier or ()) if m)
    line = ServiceLine(
        procedure_code=code, service_date=served, modifiers=modifiers,
        charge=charge, units=units, diagnosis_pointers=pointers, source_ref=f"{where} item {number}",
    )
    return line, code_in(item.locationCodeableConcept, fmap.place_of_service)


def _with_place(line: ServiceLine, place: str) -> ServiceLine:
    return replace(line, place_of_service=place)


def _rendering(index: BundleIndex, fmap: FieldMap, claim: Any) -> Provider | None:
    team = sorted(claim.careTeam or (), key=lambda m: m.sequence or 0)
    if not team:
        return None
    chosen = next((m for wanted in fmap.rendering_care_team_roles for m in team
                   if code_in(m.role, fmap.care_team_role_systems) == wanted), team[0])
    member = index.require(chosen.provider, claim, "Claim.careTeam.provider", RENDERING_TYPES + ("Organization",))
    if member.__resource_type__ == "Organization":
        return None  # an organization renders nothing itself: the billing provider stands
    # CARIN and X12-derived Claims put the clinician's NUCC taxonomy in careTeam.qualification.
    return rendering_provider(index, fmap, member, taxonomy=code_in(chosen.qualification, fmap.taxonomy))
