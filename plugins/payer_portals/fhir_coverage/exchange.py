"""One eligibility question to a FHIR R4 payer API.

The request is a ``CoverageEligibilityRequest`` (purpose ``benefits``) with the patient, the
coverage and the payer contained (a payer's server holds none of the practice's resources),
``servicedDate``, and one ``item`` per service type asked about, its ``category`` an X12 service
type code. The answer is read with fhir.resources' R4B models (which read R4 content, as the
FHIR EHR reader does): ``insurance.inforce``, each ``insurance.item`` (category, network, unit,
term, excluded, authorizationRequired, productOrService, description) and its ``benefit``s
(copay, coinsurance, deductible, out of pocket, visits: allowed and used), and ``error``s.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from bhhub.eligibility.benefit_entries import Rejection
from bhhub.eligibility.benefits import EligibilityResponse
from bhhub.model import Coverage, Patient

from bhhub.plugins.payer_portals.builder import PORTAL_LOOP, PortalBenefit, eligibility_response, percent_as_fraction
from bhhub.plugins.payer_portals.fhir_coverage.mapping import FhirPortal
from bhhub.connectors.http_api.client import PortalAnswer, PortalAnswerUnreadable, PortalRefusedRequest

log = logging.getLogger(__name__)
_GENDER = {"M": "male", "F": "female", "U": "unknown"}
_RELATIONSHIP = {"18": "self", "01": "spouse", "19": "child"}  # X12 individual relationship → FHIR
_RELATIONSHIP_SYSTEM = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
_FIX = "nothing was recorded; if it persists, ask the payer whether its FHIR API changed"
_MAX_LISTED = 3


def coverage_eligibility_request(portal: FhirPortal, patient: Patient, coverage: Coverage, service_date: date,
                                 service_types: Sequence[str], *, created: datetime | None = None) -> dict[str, Any]:
    """The request as JSON-ready data, checked against the FHIR model before it is sent."""
    name: dict[str, Any] = {"family": patient.name.family}
    if patient.name.given:
        name["given"] = [patient.name.given]
    person = {"resourceType": "Patient", "id": "patient", "name": [name],
              "gender": _GENDER.get(patient.gender, "unknown")}
    if patient.birth_date:
        person["birthDate"] = patient.birth_date.isoformat()
    insurer = {"resourceType": "Organization", "id": "payer", "name": coverage.payer.name,
               "identifier": [{"system": portal.payer_id_system, "value": coverage.payer.payer_id}]}
    policy: dict[str, Any] = {
        "resourceType": "Coverage", "id": "coverage", "status": "active", "beneficiary": {"reference": "#patient"},
        "payor": [{"reference": "#payer"}], "subscriberId": coverage.member_id,
        "relationship": {"coding": [{"system": _RELATIONSHIP_SYSTEM,
                                     "code": _RELATIONSHIP.get(coverage.relationship, "other")}]},
    }
    contained = [person, insurer, policy]
    if coverage.subscriber is not None and not coverage.patient_is_subscriber:  # the patient is a dependent
        holder: dict[str, Any] = {"resourceType": "RelatedPerson", "id": "subscriber",
                                  "patient": {"reference": "#patient"},
                                  "name": [{"family": coverage.subscriber.name.family}]}
        if coverage.subscriber.name.given:
            holder["name"][0]["given"] = [coverage.subscriber.name.given]
        if coverage.subscriber.birth_date:
            holder["birthDate"] = coverage.subscriber.birth_date.isoformat()
        contained.append(holder)
        policy["subscriber"] = {"reference": "#subscriber"}
    if coverage.group_number:
        policy["class"] = [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class",
                                                 "code": "group"}]}, "value": coverage.group_number}]
    request = {
        "resourceType": "CoverageEligibilityRequest", "status": "active", "purpose": ["benefits"],
        "contained": contained,
        "patient": {"reference": "#patient"}, "insurer": {"reference": "#payer"},
        "created": (created or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        "servicedDate": service_date.isoformat(),
        "insurance": [{"focal": True, "coverage": {"reference": "#coverage"}}],
        "item": [{"category": {"coding": [{"system": portal.request_system, "code": stc}]}} for stc in service_types],
    }
    # fhir.resources costs about a second to import: loaded when a payer is asked, never when the
    # plugin is (every `bhhub plugins` and every hook lookup imports this module).
    from fhir.resources.R4B.coverageeligibilityrequest import CoverageEligibilityRequest

    CoverageEligibilityRequest.model_validate(request)  # a bug here must not reach a payer
    return request


def read_response(portal: FhirPortal, answer: PortalAnswer, coverage: Coverage,
                  service_types: Sequence[str]) -> EligibilityResponse:
    payer_id = coverage.payer.payer_id
    where = f"portal {portal.connection.name}, payer {payer_id}"
    resource = _the_response(answer, portal, payer_id, where)
    from fhir.resources.R4B.coverageeligibilityresponse import CoverageEligibilityResponse  # see above
    from pydantic import ValidationError

    try:
        response = CoverageEligibilityResponse.model_validate(resource)
    except ValidationError as exc:  # name the elements, never the values (pydantic's text quotes them)
        places = ["/".join(str(p) for p in e["loc"]) or "(root)" for e in exc.errors()[:_MAX_LISTED]]
        raise PortalAnswerUnreadable(f"the CoverageEligibilityResponse is not valid FHIR ({exc.error_count()} "
                                     f"problem(s), at {', '.join(places)})", where=where, fix=_FIX) from None
    except Exception as exc:  # noqa: BLE001 - fhir.resources raises KeyError/ValueError for odd content
        raise PortalAnswerUnreadable(f"the CoverageEligibilityResponse cannot be read ({type(exc).__name__})",
                                     where=where, fix=_FIX) from None
    rejections = [Rejection(loop=PORTAL_LOOP, code=_error_code(portal, e.code), follow_up_code="")
                  for e in response.error or []]
    if response.outcome == "error" and not response.insurance and not rejections:
        raise PortalRefusedRequest("the payer answered outcome error without saying why", where=where,
                                   fix="check the patient's member id, name and birth date against the card")
    benefits: list[PortalBenefit] = []
    plan = plan_name = group = group_name = None
    for insurance in response.insurance or []:
        plan, plan_name, group, group_name = _classes(resource, insurance) or (plan, plan_name, group, group_name)
        if insurance.inforce is not None:  # answers for the plan (30) and each type asked about
            benefits += [PortalBenefit(stc, active=bool(insurance.inforce), plan_description=plan_name or "")
                         for stc in dict.fromkeys(("30", *service_types))]
        for index, item in enumerate(insurance.item or []):
            benefit = _item(portal, item, f"insurance.item[{index}]", where)
            if benefit is not None:
                benefits.append(benefit)
    return eligibility_response(payer_id=payer_id, payer_name=coverage.payer.name, member_id=coverage.member_id,
                                dependent=not coverage.patient_is_subscriber, benefits=benefits,
                                rejections=rejections, plan_number=plan, group_number=group, group_name=group_name,
                                plan_description=plan_name, reference=response.id or "")


def _the_response(answer: PortalAnswer, portal: FhirPortal, payer_id: str, where: str) -> dict[str, Any]:
    data = answer.data
    if not isinstance(data, dict):
        if answer.status >= 300:
            raise PortalRefusedRequest(f"the payer refused the question (HTTP {answer.status})", where=where,
                                       fix="check the patient's member id, name and birth date against the card")
        raise PortalAnswerUnreadable("the answer is JSON but not a FHIR resource", where=where, fix=_FIX)
    if data.get("resourceType") == "Bundle":
        resources = [e.get("resource") for e in data.get("entry") or [] if isinstance(e, dict)]
        found = [r for r in resources if isinstance(r, dict) and r.get("resourceType") == "CoverageEligibilityResponse"]
        data = found[0] if found else next((r for r in resources if isinstance(r, dict)), {"resourceType": "Bundle"})
    kind = data.get("resourceType")
    if kind == "OperationOutcome" or answer.status >= 300:
        codes = sorted({str(i.get("code")) for i in data.get("issue") or [] if isinstance(i, dict) and i.get("code")})
        raise PortalRefusedRequest(f"the payer refused the question (HTTP {answer.status}"
                                   + (f", issue {', '.join(codes[:3])}" if codes else "") + ")", where=where,
                                   fix="check the patient's member id, name and birth date against the card")
    if kind != "CoverageEligibilityResponse":
        raise PortalAnswerUnreadable(f"the answer is a {kind or 'JSON object without resourceType'}, not a "
                                     "CoverageEligibilityResponse", where=where, fix=_FIX)
    return data


def _coding(concept) -> tuple[str, str] | None:
    for coding in (concept.coding or []) if concept is not None else []:
        if coding.code:
            return coding.system or "", coding.code
    return None


def _error_code(portal: FhirPortal, concept) -> str:
    found = _coding(concept)
    if found is None:
        return ""
    return portal.values["error_code"].get(found[1], found[1])


def _category(portal: FhirPortal, concept) -> str | None:
    for coding in (concept.coding or []) if concept is not None else []:
        if not coding.code:
            continue
        if (coding.system or "") in portal.x12_systems:
            return coding.code
        mapped = portal.category_codes.get(f"{coding.system or ''}|{coding.code}")
        if mapped:
            return mapped
    return None


def _item(portal: FhirPortal, item, at: str, where: str) -> PortalBenefit | None:
    stc = _category(portal, item.category)
    if stc is None:
        log.info("%s: %s has no category bhhub can map to an X12 service type; not read", where, at)
        return None
    values = portal.values

    def translated(kind: str, concept, default):
        found = _coding(concept)
        return values[kind].get(found[1], default) if found else default

    amounts: dict[str, Decimal] = {}
    for benefit in item.benefit or []:
        found = _coding(benefit.type)
        kind = values["benefit_type"].get(found[1]) if found else None
        allowed = _number(benefit.allowedMoney, benefit.allowedUnsignedInt, benefit.allowedString, at, where)
        used = _number(benefit.usedMoney, benefit.usedUnsignedInt, benefit.usedString, at, where)
        if kind == "copay" and allowed is not None:
            amounts.setdefault("copay", allowed)
        elif kind == "coinsurance" and allowed is not None:
            amounts.setdefault("coinsurance", percent_as_fraction(allowed))
        elif kind in ("deductible", "out_of_pocket", "visits"):
            name = "visits_allowed" if kind == "visits" else kind
            left = "visits_remaining" if kind == "visits" else f"{kind}_remaining"
            if allowed is not None:
                amounts.setdefault(name, allowed)
            if allowed is not None and used is not None:
                amounts.setdefault(left, max(Decimal(0), allowed - used))
            if kind == "deductible" and used is not None:
                amounts.setdefault("deductible_met", used)
    product = _coding(item.productOrService)
    return PortalBenefit(
        service_type=stc,
        network=translated("network", item.network, "unknown"),
        coverage_level=translated("unit", item.unit, ""),
        period=translated("term", item.term, "23"),
        non_covered=item.excluded is True,
        auth_required=item.authorizationRequired,
        procedure=f"HC:{product[1]}" if product else None,
        messages=(item.description,) if item.description else (),
        **amounts,
    )


def _number(money, unsigned, text, at: str, where: str) -> Decimal | None:
    if money is not None and money.value is not None:
        return Decimal(str(money.value))
    if unsigned is not None:
        return Decimal(int(unsigned))
    if text:
        try:
            return Decimal(text.strip().rstrip("%").lstrip("$").replace(",", ""))
        except ArithmeticError:
            raise PortalAnswerUnreadable(f"{at}: a benefit's allowed or used text is not a number", where=where,
                                         fix=_FIX) from None
    return None


def _classes(resource: dict[str, Any], insurance) -> tuple[str | None, ...] | None:
    """(plan, plan name, group, group name) from a contained Coverage the insurance names
    (``#id``), when there is one."""
    reference = insurance.coverage.reference if insurance.coverage else None
    if not reference or not reference.startswith("#"):
        return None
    contained = next((c for c in resource.get("contained") or [] if isinstance(c, dict)
                      and c.get("resourceType") == "Coverage" and c.get("id") == reference[1:]), None)
    if contained is None:
        return None
    found: dict[str, tuple[str | None, str | None]] = {}
    for entry in contained.get("class") or []:
        codings = ((entry.get("type") or {}).get("coding") or []) if isinstance(entry, dict) else []
        for coding in codings:
            if isinstance(coding, dict) and coding.get("code") in ("plan", "group"):
                found.setdefault(coding["code"], (entry.get("value"), entry.get("name")))
    plan, group = found.get("plan", (None, None)), found.get("group", (None, None))
    return plan[0], plan[1], group[0], group[1]
