"""Billing and rendering providers (US Core Organization, Practitioner, PractitionerRole).

Billing: the Organization of Encounter.serviceProvider or Claim.provider, with its NPI
(``http://hl7.org/fhir/sid/us-npi``), EIN (``urn:oid:2.16.840.1.113883.4.4``), address and
NUCC taxonomy (2000A PRV*BI); a department without an NPI bills under the nearest ``partOf``
parent that has one. A sole proprietor bills as a Practitioner. Rendering: a Practitioner with
an NPI; the taxonomy comes from a PractitionerRole specialty (or code) in the NUCC system, else
Practitioner.qualification.
"""

from __future__ import annotations

from typing import Any

from bhhub.errors import InputError
from bhhub.model import Provider

from bhhub.plugins.ehr.fhir_r4.elements import code_in, codes_in, identifier_value
from bhhub.plugins.ehr.fhir_r4.fieldmap import FieldMap
from bhhub.plugins.ehr.fhir_r4.people import address, person_name
from bhhub.plugins.ehr.fhir_r4.references import BundleIndex

_MAX_PART_OF = 5  # Organization.partOf hops followed to find the NPI-holding parent
BILLING_TYPES = ("Organization", "Practitioner", "PractitionerRole")
RENDERING_TYPES = ("Practitioner", "PractitionerRole")


def _npi(fmap: FieldMap, resource: Any) -> str | None:
    return identifier_value(resource.identifier, systems=fmap.npi, types=fmap.npi_types,
                            type_systems=fmap.identifier_type)


def _tin(fmap: FieldMap, resource: Any) -> str | None:
    tin = identifier_value(resource.identifier, systems=fmap.tin, types=fmap.tin_types,
                           type_systems=fmap.identifier_type)
    return tin.replace("-", "") if tin else None


def billing_provider(index: BundleIndex, fmap: FieldMap, reference: Any, source: Any, element: str) -> Provider:
    resource = index.require(reference, source, element, BILLING_TYPES)
    memo_key = ("billing", id(resource))
    if memo_key not in index.memo:
        index.memo[memo_key] = _billing(index, fmap, resource)
    return index.memo[memo_key]


def _billing(index: BundleIndex, fmap: FieldMap, resource: Any) -> Provider:
    role = None
    if resource.__resource_type__ == "PractitionerRole":
        role = resource
        target = resource.organization if resource.organization is not None else resource.practitioner
        resource = index.require(target, resource, "PractitionerRole.organization", ("Organization", "Practitioner"))
    if resource.__resource_type__ == "Practitioner":  # a sole proprietor (Type 1 NPI) bills
        npi = _npi(fmap, resource)
        if not npi:
            raise _no_npi(index, resource, "billing")
        taxonomy = practitioner_taxonomy(index, fmap, resource, role=role) or fmap.billing_taxonomy.get(npi)
        return Provider(npi=npi, name=person_name(resource.name), tin=_tin(fmap, resource),
                        taxonomy=taxonomy, address=address(resource.address))
    organization = resource
    for _ in range(_MAX_PART_OF):
        npi = _npi(fmap, organization)
        if npi:
            # The taxonomy PRV*BI sends must be the one enrolled with this NPI: this
            # organization's own, never a department's or a clinician's role there.
            taxonomy = organization_taxonomy(fmap, organization) or fmap.billing_taxonomy.get(npi)
            return Provider(npi=npi, organization_name=organization.name or "", tin=_tin(fmap, organization),
                            taxonomy=taxonomy, address=address(organization.address))
        parent = index.resolve(organization.partOf, organization)
        if parent is None:
            break
        organization = parent
    raise _no_npi(index, resource, "billing")


def organization_taxonomy(fmap: FieldMap, organization: Any) -> str | None:
    """An Organization's NUCC taxonomy: its qualification, else a NUCC coding of Organization.type.

    R4 Organization has no ``qualification`` (R5 added it): US implementation guides carry it
    as an extension whose ``code`` sub-extension holds the NUCC code (Da Vinci Plan-Net
    ``qualification``, the R5 cross-version extension); the field map lists their URLs.
    """
    for extension in organization.extension or ():
        if extension.url not in fmap.organization_qualification_extensions:
            continue
        concepts = [part.valueCodeableConcept for part in extension.extension or () if part.url == "code"]
        found = codes_in([c for c in [*concepts, extension.valueCodeableConcept] if c is not None], fmap.taxonomy)
        if found:
            return found[0]
    found = codes_in(organization.type, fmap.taxonomy)
    return found[0] if found else None


def _no_npi(index: BundleIndex, resource: Any, role: str) -> InputError:
    return InputError(
        f"the {role} provider has no NPI", where=index.label(resource),
        fix=f"add the {role} provider's NPI as an identifier with system http://hl7.org/fhir/sid/us-npi",
    )


def rendering_provider(index: BundleIndex, fmap: FieldMap, resource: Any, *, billing_org: Any = None,
                       taxonomy: str | None = None) -> Provider:
    """A Practitioner (or the practitioner of a PractitionerRole) as the rendering provider."""
    role = None
    if resource.__resource_type__ == "PractitionerRole":
        role = resource
        resource = index.require(role.practitioner, role, "PractitionerRole.practitioner", ("Practitioner",))
    memo_key = ("rendering", id(resource), id(role), taxonomy)
    if memo_key not in index.memo:
        npi = _npi(fmap, resource)
        if not npi:
            raise _no_npi(index, resource, "rendering")
        index.memo[memo_key] = Provider(
            npi=npi, name=person_name(resource.name),
            taxonomy=taxonomy or practitioner_taxonomy(index, fmap, resource, role=role, billing_org=billing_org),
        )
    return index.memo[memo_key]


def practitioner_taxonomy(index: BundleIndex, fmap: FieldMap, practitioner: Any, *, role: Any = None,
                          billing_org: Any = None) -> str | None:
    """NUCC taxonomy: the given role's, else a role at the billing organization, else any role's.

    US Core PractitionerRole binds both ``code`` and ``specialty`` to NUCC; specialty is the
    finer one (1041C0700X under 104100000X), so it is asked first.
    """
    roles = [role] if role is not None else []
    others = index.referring("PractitionerRole", practitioner)
    roles += [r for r in others if billing_org is not None and _points_to(index, r, billing_org)]
    roles += others
    for candidate in roles:
        found = codes_in(candidate.specialty, fmap.taxonomy) or codes_in(candidate.code, fmap.taxonomy)
        if found:
            return found[0]
    for qualification in practitioner.qualification or ():
        found = code_in(qualification.code, fmap.taxonomy)
        if found:
            return found
    return None


def _points_to(index: BundleIndex, role: Any, organization: Any) -> bool:
    try:
        return index.resolve(role.organization, role) is organization
    except InputError:
        return False
