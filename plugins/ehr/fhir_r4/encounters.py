"""A FHIR Encounter and what points at it, as the canonical ``Encounter`` the hub codes.

The visit (US Core Encounter) gives the date of service (period.start), the patient (subject),
the billing organization (serviceProvider), the rendering clinician (participant), the
diagnoses (Encounter.diagnosis → Condition, ranked; else Conditions whose ``encounter`` is this
visit) and the telehealth facts (class VR, audio-only codings). Services are the ChargeItems
whose ``context`` is this visit; without any, the session length (extension, length, or
period) lets the hub's coding stage derive the psychotherapy code.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from bhhub.errors import InputError
from bhhub.model import Encounter, Provider, ServiceLine

from bhhub.plugins.ehr.fhir_r4 import people
from bhhub.plugins.ehr.fhir_r4.authorizations import authorization_grants, covering_authorizations
from bhhub.plugins.ehr.fhir_r4.elements import (
    as_code, as_date, code_in, coding_code, extension_value, extension_values, first_code, has_coding, icd10cm,
    minutes_of, money, period_minutes,
)
from bhhub.plugins.ehr.fhir_r4.fieldmap import TABLE, FieldMap
from bhhub.plugins.ehr.fhir_r4.providers import RENDERING_TYPES, billing_provider, rendering_provider
from bhhub.plugins.ehr.fhir_r4.references import BundleIndex

MAX_POINTERS = 4  # SV107: a line points to at most four diagnoses


def billable(fmap: FieldMap, encounter: Any) -> bool:
    return encounter.status in fmap.encounter_statuses


def map_encounter(index: BundleIndex, fmap: FieldMap, resource: Any) -> Encounter:
    where = index.label(resource)
    service_date = as_date(resource.period.start) if resource.period is not None else None
    if service_date is None:
        raise InputError("no date of service (Encounter.period.start with a full date)", where=where,
                         fix="export the visit's start date and time in Encounter.period.start")
    patient_resource = index.require(resource.subject, resource, "Encounter.subject", ("Patient",))
    patient = people.patient(index, fmap, patient_resource)
    coverages = people.coverages_on(index, fmap, patient_resource, service_date, where)
    organization = index.require(resource.serviceProvider, resource, "Encounter.serviceProvider",
                                 ("Organization",))
    billing = billing_provider(index, fmap, resource.serviceProvider, resource, "Encounter.serviceProvider")
    rendering = _rendering(index, fmap, resource, organization)
    diagnoses = _diagnoses(index, fmap, resource, where)
    services = tuple(_charge_line(index, fmap, item, service_date, diagnoses)
                     for item in index.referring("ChargeItem", resource)
                     if item.status in fmap.charge_item_statuses)
    minutes = _minutes(fmap, resource)
    covering = covering_authorizations(index, fmap, patient_resource, service_date, coverages[0].payer)
    visit_authorization, services = _authorized(services, covering)
    if not services and minutes is None:
        raise InputError(
            "nothing billed: no ChargeItem for this encounter and no session length", where=where,
            fix="send the service as a ChargeItem (context = this Encounter), or the session minutes in "
                "Encounter.length or Encounter.period start and end")
    class_code = coding_code(resource.class_fhir, fmap.class_systems)
    # Encounter.serviceType is one CodeableConcept in R4 (a list only from R5 on).
    service_type = [resource.serviceType] if resource.serviceType is not None else None
    audio_only = has_coding(resource.type, fmap.audio_only) or has_coding(service_type, fmap.audio_only)
    virtual = class_code in fmap.virtual_classes or audio_only
    return Encounter(
        key=people.resource_key(index, resource),
        source_ref=where,
        service_date=service_date,
        patient=patient,
        coverages=coverages,
        billing_provider=billing,
        rendering_provider=rendering,
        diagnoses=diagnoses,
        services=services,
        # Telehealth: only where the EHR says the patient was; the hub applies the payer's rule.
        place_of_service=_place_of_service(index, fmap, resource, class_code, virtual),
        virtual=virtual,
        audio_only=audio_only,
        minutes=minutes,
        prior_authorization=visit_authorization,
        authorizations=authorization_grants(index, fmap, patient_resource),
    )


def check_charge_contexts(index: BundleIndex, fmap: FieldMap) -> None:
    """A billable ChargeItem whose visit is not in the bundle would be lost: refuse instead."""
    for item in index.of_type("ChargeItem"):
        if item.status in fmap.charge_item_statuses and item.context is not None:
            index.resolve(item.context, item)


def _rendering(index: BundleIndex, fmap: FieldMap, resource: Any, organization: Any) -> Provider | None:
    """The participant typed PPRF (primary performer), else the first clinician participant."""
    clinicians = []
    for participant in resource.participant or ():
        individual = index.resolve(participant.individual, resource)
        if individual is not None and individual.__resource_type__ in RENDERING_TYPES:
            types = set()
            for concept in participant.type or ():
                types.update(c.code for c in concept.coding or () if (c.system or "") in fmap.participant_type_systems)
            clinicians.append((types, individual))
    if not clinicians:
        return None  # the billing provider rendered the service
    chosen = next((ind for wanted in fmap.rendering_participant_types
                   for types, ind in clinicians if wanted in types), clinicians[0][1])
    return rendering_provider(index, fmap, chosen, billing_org=organization)


def _diagnoses(index: BundleIndex, fmap: FieldMap, resource: Any, where: str) -> tuple[str, ...]:
    ranked = []
    for position, diagnosis in enumerate(resource.diagnosis or ()):
        condition = index.resolve(diagnosis.condition, resource)
        if condition is not None and condition.__resource_type__ == "Condition":  # not a Procedure
            ranked.append((diagnosis.rank or 10**6, position, condition))
    conditions = [c for _, _, c in sorted(ranked, key=lambda r: r[:2])]
    codes = _icd_codes(fmap, conditions)
    if not codes:  # no Encounter.diagnosis: the Conditions recorded at this visit
        codes = _icd_codes(fmap, index.referring("Condition", resource))
    if not codes:
        raise InputError("no diagnoses: no ICD-10-CM coded Condition for this encounter", where=where,
                         fix="code the visit's diagnoses in ICD-10-CM (http://hl7.org/fhir/sid/icd-10-cm) "
                             "and link them through Encounter.diagnosis")
    return codes


def _icd_codes(fmap: FieldMap, conditions: list[Any]) -> tuple[str, ...]:
    codes: list[str] = []
    for condition in conditions:
        if first_code(condition.verificationStatus) in fmap.excluded_condition_verification:
            continue
        code = code_in(condition.code, fmap.icd10cm)
        if code is not None and icd10cm(code) not in codes:
            codes.append(icd10cm(code))
    return tuple(codes)


def _charge_line(index: BundleIndex, fmap: FieldMap, item: Any, service_date: date,
                 diagnoses: tuple[str, ...]) -> ServiceLine:
    """A ChargeItem as a service line: code, units (quantity), charge (priceOverride, the total)."""
    where = index.label(item)
    code = code_in(item.code, fmap.procedure)
    if code is None:
        raise InputError("the ChargeItem has no CPT or HCPCS code", where=where,
                         fix="code the service in CPT (http://www.ama-assn.org/go/cpt) or HCPCS, or list "
                             f"your EHR's code system under [systems] in mappings/{TABLE}")
    line_date = as_date(item.occurrenceDateTime) or (
        as_date(item.occurrencePeriod.start) if item.occurrencePeriod is not None else None) or service_date
    modifiers = tuple(m for m in (as_code(v) for v in extension_values(item.extension, fmap.modifier_extensions)) if m)
    units = item.quantity.value if item.quantity is not None and item.quantity.value is not None else Decimal(1)
    return ServiceLine(
        procedure_code=code,
        service_date=line_date,
        modifiers=modifiers,
        charge=money(item.priceOverride),  # None: priced from the practice's fee schedule
        units=units,
        diagnosis_pointers=_pointers(fmap, item, diagnoses),
        minutes=minutes_of(extension_value(item.extension, fmap.line_minutes_extensions)),
        source_ref=where,
    )


def _authorized(services: tuple[ServiceLine, ...], covering: list[tuple[str, frozenset[str]]]
                ) -> tuple[str | None, tuple[ServiceLine, ...]]:
    """(the visit's authorization, the lines with theirs). Each line is covered by the most recent
    of the payer's authorizations that names its code, or names no codes at all (its codes could
    not be read); a line none covers has none. One authorization covering every line is the
    visit's (2300 REF*G1); otherwise each line carries its own and the visit none (2400 REF*G1),
    so an authorization is never claimed for a line it does not cover."""
    if not services or not covering:
        return (covering[0][0] if covering else None), services
    numbers = [next((number for number, codes in covering if not codes or line.procedure_code in codes), None)
               for line in services]
    if len(set(numbers)) == 1:
        return numbers[0], services
    return None, tuple(replace(line, prior_authorization=number) for line, number in zip(services, numbers))


def _pointers(fmap: FieldMap, item: Any, diagnoses: tuple[str, ...]) -> tuple[int, ...]:
    """ChargeItem.reason (ICD-10-CM) points to those diagnoses; without it, to the first four."""
    reasons = [icd10cm(code) for concept in item.reason or () for code in
               [code_in(concept, fmap.icd10cm)] if code]
    pointers = tuple(dict.fromkeys(diagnoses.index(r) + 1 for r in reasons if r in diagnoses))[:MAX_POINTERS]
    return pointers or tuple(range(1, min(len(diagnoses), MAX_POINTERS) + 1))


def _minutes(fmap: FieldMap, resource: Any) -> int | None:
    """Session minutes: the EHR's minutes extension, else Encounter.length, else period end - start."""
    return (minutes_of(extension_value(resource.extension, fmap.encounter_minutes_extensions))
            or minutes_of(resource.length)
            or period_minutes(resource.period))


def _place_of_service(index: BundleIndex, fmap: FieldMap, resource: Any, class_code: str | None,
                      virtual: bool) -> str | None:
    """The CMS place of service the EHR gave the visit: an extension the field map names, else a
    POS coding on one of its Locations; else, in person only, the class's POS from the field map.

    For a telehealth visit the place tells where the patient was (02 not at home, 10 at home),
    which decides how the payer pays, so a Location saying that comes before one that names the
    clinician's office; its class (VR) says nothing about the patient: None, the payer decides.
    """
    explicit = as_code(extension_value(resource.extension, fmap.place_of_service_extensions))
    if explicit:
        return explicit
    places = []
    for location in resource.location or ():
        place = index.resolve(location.location, resource)
        if place is not None and place.__resource_type__ == "Location":
            places += [code for code in (code_in(concept, fmap.place_of_service) for concept in place.type or ())
                       if code]
    if virtual:
        return next((p for p in places if p in fmap.telehealth_places_of_service), places[0] if places else None)
    if places:
        return places[0]
    return fmap.class_place_of_service.get(class_code) if class_code else None
