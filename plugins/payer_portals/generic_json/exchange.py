"""One question to a generic JSON portal: the request body from the mapping's template, and the
answer read through the mapping's paths and translations into an ``EligibilityResponse``.

An answer that does not fit (no coverage status, benefits or errors where the mapping says;
a number that is not one; a word the translations do not list) is ``PortalAnswerUnreadable``
naming the path, never the value: no record is made from half an answer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from bhhub.eligibility import codes
from bhhub.eligibility.benefit_entries import Rejection, RelatedEntity
from bhhub.eligibility.benefits import EligibilityResponse
from bhhub.model import Coverage, Patient

from bhhub.connectors.http_api import jsonpath
from bhhub.plugins.payer_portals.builder import PORTAL_LOOP, PortalBenefit, eligibility_response, percent_as_fraction
from bhhub.plugins.payer_portals.generic_json.mapping import JsonPortal
from bhhub.connectors.http_api.client import PortalAnswer, PortalAnswerUnreadable
from bhhub.connectors.http_api.jsonpath import MISSING

log = logging.getLogger(__name__)
_FIX = "nothing was recorded; compare the portal's API with the mapping's [response] paths and [values]"


def request_body(portal: JsonPortal, patient: Patient, coverage: Coverage, service_date: date,
                 service_types: Sequence[str]) -> Any:
    """The mapping's ``[request.body]`` with the placeholders filled."""
    fmt = portal.request.get("date_format", "%Y-%m-%d")
    values: dict[str, Any] = {
        "member_id": coverage.member_id, "subscriber_member_id": coverage.member_id,
        "first_name": patient.name.given, "last_name": patient.name.family,
        "birth_date": patient.birth_date.strftime(fmt) if patient.birth_date else None,
        "service_date": service_date.strftime(fmt), "service_types": list(service_types),
        "payer_id": coverage.payer.payer_id, "group_number": coverage.group_number,
        "relationship": coverage.relationship,
    }
    holder = coverage.subscriber if coverage.subscriber is not None else patient
    values |= {"subscriber_first_name": holder.name.given, "subscriber_last_name": holder.name.family,
               "subscriber_birth_date": holder.birth_date.strftime(fmt) if holder.birth_date else None}
    return _fill(portal.request.get("body", {}), values)


def _fill(template: Any, values: dict[str, Any]) -> Any:
    if isinstance(template, dict):
        return {key: _fill(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [_fill(value, values) for value in template]
    if isinstance(template, str):
        if template.startswith("{") and template.endswith("}") and template[1:-1] in values:
            return values[template[1:-1]]
        for name, value in values.items():
            if f"{{{name}}}" in template:
                template = template.replace(f"{{{name}}}", "" if value is None else str(value))
    return template


class _Reader:
    def __init__(self, portal: JsonPortal, payer_id: str):
        self.portal, self.payer_id = portal, payer_id

    def fail(self, problem: str) -> PortalAnswerUnreadable:
        return PortalAnswerUnreadable(problem, where=f"portal {self.portal.connection.name}, payer {self.payer_id}",
                                      fix=_FIX)

    def get(self, data: Any, path: str | None, where: str = "") -> Any:
        if not path:
            return MISSING
        try:
            return jsonpath.get(data, path)
        except jsonpath.WrongShape as exc:
            raise self.fail(f"the answer is not shaped as the mapping says: {where}{exc}") from None

    def translate(self, kind: str, value: Any, where: str) -> Any:
        if value is MISSING or value is None:
            return None
        table = self.portal.values.get(kind, {})
        if isinstance(value, str) and value in table:
            return table[value]
        if isinstance(value, bool) and kind in ("active", "auth_required"):
            return value
        if kind == "service_type" and isinstance(value, str) and value in codes.table().get("service_type", {}):
            return value  # already an X12 service type code
        if kind == "error_code" and isinstance(value, (str, int)):
            return str(value)  # kept as the portal's code: "reject reason X"
        raise self.fail(f"{where} holds a value [values.{kind}] does not list")

    def decimal(self, value: Any, where: str) -> Decimal | None:
        if value is MISSING or value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise self.fail(f"{where} is not a number")
        try:
            number = Decimal(str(value).strip().lstrip("$").replace(",", ""))
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            raise self.fail(f"{where} is not a number")
        return number

    def text(self, value: Any, where: str) -> str | None:
        if value is MISSING or value is None:
            return None
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
        raise self.fail(f"{where} is not text")

    def texts(self, value: Any, where: str) -> tuple[str, ...]:
        if value is MISSING or value is None:
            return ()
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in items):
            raise self.fail(f"{where} is not text or a list of texts")
        return tuple(v for v in items if v)


def read_answer(portal: JsonPortal, answer: PortalAnswer, coverage: Coverage,
                service_types: Sequence[str]) -> EligibilityResponse | None:
    """The answer as a record; None when a 4xx carries no refusal the mapping can read."""
    payer_id = coverage.payer.payer_id
    reader = _Reader(portal, payer_id)
    data, paths = answer.data, portal.response
    if answer.status >= 300 and not isinstance(data, (dict, list)):
        return None  # a refusal with no readable body
    if not isinstance(data, (dict, list)):
        raise reader.fail("the answer is JSON but not an object")
    rejections = _rejections(reader, data)
    if answer.status >= 300:
        return eligibility_response(payer_id=payer_id, payer_name=coverage.payer.name, member_id=coverage.member_id,
                                    dependent=not coverage.patient_is_subscriber,
                                    rejections=rejections) if rejections else None
    raw_benefits = reader.get(data, paths["benefits"])
    active_value = reader.get(data, paths.get("active"))
    if raw_benefits is MISSING and active_value is MISSING and not rejections:
        raise reader.fail("the answer has no coverage status, benefits or errors at the mapping's paths ("
                          + ", ".join(p for p in (paths.get("active"), paths["benefits"], paths.get("errors")) if p)
                          + ")")
    if raw_benefits not in (MISSING, None) and not isinstance(raw_benefits, list):
        raise reader.fail(f"{paths['benefits']} is not a list of benefits")
    benefits: list[PortalBenefit] = []
    active = reader.translate("active", active_value, paths.get("active", ""))
    plan = reader.text(reader.get(data, paths.get("plan_description")), paths.get("plan_description", ""))
    insurance = reader.text(reader.get(data, paths.get("insurance_type")), paths.get("insurance_type", ""))
    if active is not None:  # the plan's status answers for the plan (30) and each type asked about
        for service_type in dict.fromkeys(("30", *service_types)):
            benefits.append(PortalBenefit(service_type, active=bool(active), plan_description=plan or "",
                                          insurance_type=insurance or ""))
    for index, item in enumerate(raw_benefits if isinstance(raw_benefits, list) else []):
        benefit = _benefit(reader, item, f"{paths['benefits']}[{index}]")
        if benefit is not None:
            benefits.append(benefit)
    messages = reader.texts(reader.get(data, paths.get("messages")), paths.get("messages", ""))
    if messages:
        benefits.append(PortalBenefit("30", messages=messages))
    return eligibility_response(
        payer_id=payer_id, payer_name=coverage.payer.name, member_id=coverage.member_id,
        dependent=not coverage.patient_is_subscriber,
        benefits=benefits, rejections=rejections, plan_description=plan, insurance_type=insurance,
        plan_number=reader.text(reader.get(data, paths.get("plan_number")), paths.get("plan_number", "")),
        group_number=reader.text(reader.get(data, paths.get("group_number")), paths.get("group_number", "")),
        group_name=reader.text(reader.get(data, paths.get("group_name")), paths.get("group_name", "")),
        reference=reader.text(reader.get(data, paths.get("reference")), paths.get("reference", "")) or "",
    )


def _rejections(reader: _Reader, data: Any) -> list[Rejection]:
    paths = reader.portal.response
    errors = reader.get(data, paths.get("errors"))
    if errors is MISSING or errors is None:
        return []
    if not isinstance(errors, list):
        raise reader.fail(f"{paths['errors']} is not a list of errors")
    found = []
    for index, error in enumerate(errors):
        where = f"{paths['errors']}[{index}].{paths['error_code']}"
        code = reader.translate("error_code", reader.get(error, paths["error_code"], where + ": "), where)
        if code is None:
            raise reader.fail(f"{where} is missing")
        found.append(Rejection(loop=PORTAL_LOOP, code=code, follow_up_code=""))
    return found


def _benefit(reader: _Reader, item: Any, where: str) -> PortalBenefit | None:
    paths = reader.portal.response["benefit"]

    def value(name: str) -> Any:
        return reader.get(item, paths.get(name), f"{where}: ")

    def at(name: str) -> str:
        return f"{where}.{paths.get(name)}"

    service_type = reader.translate("service_type", value("service_type"), at("service_type"))
    if service_type is None:
        raise reader.fail(f"{at('service_type')} is missing")
    if not isinstance(service_type, str):
        raise reader.fail(f"[values.service_type] must translate to an X12 service type ({at('service_type')})")
    amounts = {name: reader.decimal(value(name), at(name)) for name in (
        "copay", "deductible", "deductible_remaining", "deductible_met", "out_of_pocket", "out_of_pocket_remaining",
        "visits_allowed", "visits_remaining")}
    coinsurance = reader.decimal(value("coinsurance"), at("coinsurance"))
    if coinsurance is not None:
        coinsurance = coinsurance / 100 if reader.portal.coinsurance_is_percent else percent_as_fraction(coinsurance)
    procedure = reader.text(value("procedure"), at("procedure"))
    carve_id = reader.text(value("carve_out_payer_id"), at("carve_out_payer_id"))
    carve_name = reader.text(value("carve_out_payer_name"), at("carve_out_payer_name"))
    active = reader.translate("active", value("active"), at("active"))
    auth = reader.translate("auth_required", value("auth_required"), at("auth_required"))
    return PortalBenefit(
        service_type=service_type,
        network=reader.translate("network", value("network"), at("network")) or "unknown",
        coverage_level=reader.translate("coverage_level", value("coverage_level"), at("coverage_level")) or "",
        active=None if active is None else bool(active),
        coinsurance=coinsurance,
        auth_required=None if auth is None else bool(auth),
        procedure=(procedure if ":" in procedure else f"HC:{procedure}") if procedure else None,
        carve_out=RelatedEntity("PR", carve_name, "PI" if carve_id else "", carve_id or "")
        if carve_id or carve_name else None,
        messages=reader.texts(value("messages"), at("messages")),
        **amounts,
    )
