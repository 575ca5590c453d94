"""Patients, subscribers, coverages and payers (US Core Patient, R4 Coverage).

Each mapper memoises its result per resource in the bundle index, so a patient seen by ten
encounters in a day's export is read once.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from bhhub.errors import InputError, MappingError
from bhhub.model import SELF, Address, Coverage, Patient, Payer, Person, PersonName

from bhhub.plugins.ehr.fhir_r4.elements import (
    as_date, code_in, first_identifier, identifier_value, period_covers, typed_identifier,
)
from bhhub.plugins.ehr.fhir_r4.fieldmap import TABLE, FieldMap
from bhhub.plugins.ehr.fhir_r4.references import BundleIndex

_NAME_USES = ("official", "usual", None)  # US Core: the official name is the legal one
_ADDRESS_USES = ("home", "billing", None, "work")


def resource_key(index: BundleIndex, resource: Any) -> str:
    """A source-scoped key stable across re-sends: ``fhir:Type|system|value``, else ``fhir:Type/id``.

    ``Identifier.system`` scopes the value to the issuing EHR; the resource id is the fallback.
    A resource with neither cannot be recognised when sent again, so it is refused.
    """
    rtype = resource.__resource_type__
    identifier = first_identifier(resource.identifier)
    if identifier is not None:
        return f"fhir:{rtype}|{identifier.system}|{identifier.value}"
    if resource.id:
        return f"fhir:{rtype}/{resource.id}"
    raise InputError(f"the {rtype} has neither an identifier nor an id, so a re-send could not be recognised",
                     where=index.label(resource), fix=f"export {rtype}.identifier (or the resource id)")


def patient(index: BundleIndex, fmap: FieldMap, resource: Any) -> Patient:
    memo_key = ("patient", id(resource))
    if memo_key not in index.memo:
        # The model's key convention is fhir:MR|system|value for the chart number (US Core
        # Patient.identifier, type MR), else the first identifier, else Patient/id.
        mrn = typed_identifier(resource.identifier, fmap.medical_record_types, fmap.identifier_type)
        key = f"fhir:MR|{mrn.system}|{mrn.value}" if mrn is not None else resource_key(index, resource)
        person = person_of(fmap, resource)
        index.memo[memo_key] = Patient(person.name, person.birth_date, person.gender, person.address, key=key)
    return index.memo[memo_key]


def person_of(fmap: FieldMap, resource: Any) -> Person:
    """A Patient or RelatedPerson as the claim needs them (name, birth date, gender, address)."""
    return Person(
        name=person_name(resource.name),
        birth_date=as_date(resource.birthDate),
        gender=fmap.gender.get(resource.gender or "unknown", "U"),
        address=address(resource.address),
    )


def person_name(names: Any) -> PersonName:
    chosen = None
    for use in _NAME_USES:
        chosen = next((n for n in names or () if n.use == use and (n.family or n.given)), None)
        if chosen is not None:
            break
    if chosen is None:  # an empty name: the scrubber reports it with a fix
        return PersonName(family="")
    given = list(chosen.given or ())
    return PersonName(
        family=chosen.family or "",
        given=given[0] if given else None,
        middle=" ".join(given[1:]) or None,
        suffix=(chosen.suffix or [None])[0],
    )


def address(addresses: Any) -> Address | None:
    """The first complete, current address, home first (US Core Address: line, city, state, postalCode)."""
    for use in _ADDRESS_USES:  # "old" and "temp" addresses are never billed to
        for candidate in addresses or ():
            # An address with an end date is one the person has left (or is about to leave).
            if candidate.use != use or candidate.period is not None and candidate.period.end is not None:
                continue
            lines = [line for line in candidate.line or () if line]
            if lines and candidate.city and candidate.state and candidate.postalCode:
                return Address(
                    line1=lines[0], line2=lines[1] if len(lines) > 1 else None, city=candidate.city,
                    state=candidate.state, postal_code=candidate.postalCode.replace("-", "").replace(" ", ""),
                )
    return None


def coverages_on(index: BundleIndex, fmap: FieldMap, patient_resource: Any, day: date,
                 where: str) -> tuple[Coverage, ...]:
    """The patient's coverages in force on ``day``, primary first; refused when there are none.

    R4 Coverage: beneficiary is the patient, status active, period covering the date of
    service, payor an Organization (a payor that is the patient or a relative is self-pay).
    """
    found = []
    for resource in index.referring("Coverage", patient_resource):
        if resource.status not in fmap.coverage_statuses or not period_covers(resource.period, day):
            continue
        mapped = coverage(index, fmap, resource, order=None)
        if mapped is not None:
            found.append((resource, mapped))
    if not found:
        raise InputError("no coverage: the patient has no active Coverage with a payer on the date of service",
                         where=where, fix="add the patient's insurance (Coverage with payor and status active) "
                                          "to the export, or bill the patient directly")
    return ordered(index, found)


def ordered(index: BundleIndex, found: list[tuple[Any, Coverage]]) -> tuple[Coverage, ...]:
    """Coverages by Coverage.order; those without one follow, in bundle order.

    Two coverages claiming the same order leave the primary payer unknown, so they are refused.
    """
    explicit = [c for _, c in found if c.order > 0]
    seen: dict[int, Any] = {}
    for resource, mapped in found:
        if mapped.order > 0:
            if mapped.order in seen:
                raise InputError(
                    f"{index.label(seen[mapped.order])} and {index.label(resource)} both have order "
                    f"{mapped.order}, so the primary payer is unknown",
                    where=index.label(resource), fix="set Coverage.order: 1 primary, 2 secondary")
            seen[mapped.order] = resource
    next_order = max((c.order for c in explicit), default=0) + 1
    result = sorted(explicit, key=lambda c: c.order)
    for _, mapped in found:
        if mapped.order <= 0:
            result.append(replace(mapped, order=next_order))
            next_order += 1
    return tuple(result)


def coverage(index: BundleIndex, fmap: FieldMap, resource: Any, *, order: int | None) -> Coverage | None:
    """One Coverage; None for self-pay. ``order`` (from Claim.insurance.sequence) wins over Coverage.order.

    An order of 0 means "not given" and is resolved by ``ordered``.
    """
    memo_key = ("coverage", id(resource))
    if memo_key not in index.memo:
        index.memo[memo_key] = _coverage(index, fmap, resource)
    mapped = index.memo[memo_key]
    if mapped is not None and order is not None:
        mapped = replace(mapped, order=order)
    return mapped


def _coverage(index: BundleIndex, fmap: FieldMap, resource: Any) -> Coverage | None:
    where = index.label(resource)
    payer_ref = (resource.payor or [None])[0]
    payer_resource = index.resolve(payer_ref, resource)
    if payer_resource is not None and payer_resource.__resource_type__ != "Organization":
        return None  # self-pay: the patient or a relative pays
    the_payer = payer(index, fmap, payer_resource, payer_ref, resource.type, where)
    relationship, subscriber = _subscriber(index, fmap, resource, where)
    member_id = resource.subscriberId or identifier_value(
        resource.identifier, types=fmap.member_id_types, type_systems=fmap.identifier_type) or ""
    own_id = identifier_value(resource.identifier, types=fmap.patient_member_id_types,
                              type_systems=fmap.identifier_type)
    if relationship != SELF and own_id and resource.subscriberId and own_id.strip() != resource.subscriberId.strip():
        # The payer knows this dependent by a member id of their own, so on the claim they are
        # the subscriber (837P TR3 2000C: only for a patient who "cannot be uniquely identified
        # to the payer using the subscriber's identifier").
        relationship, subscriber, member_id = SELF, None, own_id
    group = plan = None
    for cls in resource.class_fhir or ():
        kind = code_in(cls.type, fmap.coverage_class_systems)
        if kind == fmap.group_class and group is None:
            group = cls.value
        elif kind == fmap.plan_class and plan is None:
            plan = cls.name or cls.value
    return Coverage(
        order=resource.order or 0, payer=the_payer, member_id=member_id.strip(), relationship=relationship,
        subscriber=subscriber, group_number=group, plan_name=plan,
    )


def payer(index: BundleIndex, fmap: FieldMap, organization: Any, reference: Any, coverage_type: Any,
          where: str) -> Payer:
    """The payer: an Organization whose identifier typed NIIP (v2-0203) is the payer id.

    A payor given only as a logical reference (Reference.identifier) is read the same way. The
    claim filing indicator (SBR09) comes from Coverage.type through the field map.
    """
    if organization is not None:
        identifiers, name = organization.identifier, organization.name or ""
        where = index.label(organization)
    elif reference is not None and reference.identifier is not None:
        identifiers, name = [reference.identifier], reference.display or ""
    else:
        raise InputError("the Coverage names no payor", where=where,
                         fix="set Coverage.payor to the insurer's Organization")
    payer_id = identifier_value(identifiers, systems=fmap.payer_id_systems, types=fmap.payer_id_types,
                                type_systems=fmap.identifier_type)
    if not payer_id:
        raise InputError(
            "the payer has no payer id", where=where,
            fix="add the clearinghouse payer id to the payer Organization as an identifier typed NIIP "
                f"(v2-0203), or list its identifier system in payer.id_systems of mappings/{TABLE}")
    return Payer(payer_id=payer_id, name=name, claim_filing_indicator=_filing_indicator(fmap, coverage_type))


def _filing_indicator(fmap: FieldMap, coverage_type: Any) -> str | None:
    for coding in getattr(coverage_type, "coding", None) or ():
        if coding.code:
            found = fmap.filing_indicator(coding.system or "", coding.code)
            if found:
                return found
    return None


def _subscriber(index: BundleIndex, fmap: FieldMap, resource: Any, where: str) -> tuple[str, Person | None]:
    """X12 relationship of the patient to the subscriber, and the subscriber when not the patient."""
    subscriber = index.resolve(resource.subscriber, resource)
    if subscriber is not None and subscriber.__resource_type__ not in ("Patient", "RelatedPerson"):
        raise InputError(f"Coverage.subscriber points to a {subscriber.__resource_type__}", where=where,
                         fix="point Coverage.subscriber to a Patient or RelatedPerson")
    beneficiary = index.resolve(resource.beneficiary, resource)
    code = code_in(resource.relationship, fmap.relationship_systems)
    if code is None:
        relationship = SELF if subscriber is None or subscriber is beneficiary else fmap.relationship_unknown
    else:
        relationship = fmap.relationship.get(code)
        if relationship is None:
            raise MappingError("Coverage.relationship code has no X12 relationship code (the code is not "
                               "quoted: it comes from the bundle)", where=where,
                               fix=f"add the Coverage's relationship code to [coverage.relationship] in mappings/{TABLE}")
    if subscriber is None or subscriber is beneficiary:
        return relationship, None
    # A "self" coverage naming another person is kept as the EHR says it, subscriber and all:
    # the hub's checks flag the contradiction (coverage.self_subscriber) rather than bill the
    # patient as a subscriber the payer may know as someone else.
    return relationship, person_of(fmap, subscriber)
