"""A FHIR payer API's mapping file: schema, every problem at once, and the built portal.

The keys are documented in the example, ``mappings/payer_portals/fhir/example_fhir_payer.toml``.
Translations left out of a file fall back to the HL7 code systems' codes (benefit-type,
benefit-network, benefit-unit, benefit-term) listed in ``DEFAULT_VALUES``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bhhub.connectors.http_api import connection as conn
from bhhub.connectors.http_api.connection import Connection
from bhhub.connectors.http_api.client import PortalClient
from bhhub.connectors.http_api.schema import check, raise_problems

X12_SERVICE_TYPES = "https://codesystem.x12.org/005010/1365"  # as Da Vinci CRD/PAS name X12 code list 1365
EX_BENEFIT_CATEGORY = "http://terminology.hl7.org/CodeSystem/ex-benefitcategory"  # X12's codes, 28 of them
BENEFIT_KINDS = ("copay", "coinsurance", "deductible", "out_of_pocket", "visits")
DEFAULT_VALUES: dict[str, dict[str, str]] = {
    "benefit_type": {"copay": "copay", "copay-percent": "coinsurance", "deductible": "deductible", "visit": "visits"},
    "network": {"in": "in", "out": "out"},
    "unit": {"individual": "IND", "family": "FAM"},
    "term": {"annual": "23", "day": "7", "lifetime": "32"},
    "error_code": {},
}
NETWORKS = ("in", "out", "both", "unknown")

SCHEMA: dict[str, Any] = {
    "portal": conn.PORTAL_SCHEMA,
    "auth": conn.AUTH_SCHEMA,
    "limits": conn.LIMITS_SCHEMA,
    "request": {"path": "string", "payer_id_system": "string?"},
    "categories": {"request_system": "string?", "x12_systems": "strings?", "codes": "values?"},
    "values": {name: "values?" for name in DEFAULT_VALUES},
}


@dataclass
class FhirPortal:
    connection: Connection
    path: str
    payer_id_system: str
    request_system: str
    x12_systems: tuple[str, ...]
    category_codes: dict[str, str]  # "system|code" -> X12 service type
    values: dict[str, dict[str, str]]
    source: str
    client: PortalClient | None = field(default=None, repr=False)


def mapping_problems(table: Any) -> list[str]:
    if not isinstance(table, dict):
        return ["the mapping must be a table"]
    problems = check(table, SCHEMA) + conn.problems(table)
    request = table.get("request")
    if isinstance(request, dict) and isinstance(request.get("path"), str) and not request["path"].startswith("/"):
        problems.append("request.path must start with /")
    categories = table.get("categories", {})
    if isinstance(categories, dict) and isinstance(categories.get("codes"), dict):
        for key in categories["codes"]:
            if "|" not in key:
                problems.append(f"categories.codes key {key!r} must be \"system|code\"")
    values = table.get("values", {})
    if isinstance(values, dict):
        for code, kind in (values.get("benefit_type") or {}).items():
            if kind not in BENEFIT_KINDS:
                problems.append(f"values.benefit_type.{code} must be one of {', '.join(BENEFIT_KINDS)}")
        for code, network in (values.get("network") or {}).items():
            if network not in NETWORKS:
                problems.append(f"values.network.{code} must be one of {', '.join(NETWORKS)}")
    return problems


def validate_mapping(table: Any, source: str = "FHIR payer mapping") -> None:
    """Raise ``MappingError`` naming every problem in ``table`` (the contract kit calls it too)."""
    raise_problems(source, mapping_problems(table))


def build_portal(table: dict[str, Any], source: str) -> FhirPortal:
    validate_mapping(table, source)
    categories = table.get("categories", {})
    values = {name: {**default, **table.get("values", {}).get(name, {})} for name, default in DEFAULT_VALUES.items()}
    return FhirPortal(
        connection=conn.connection(table), path=table["request"]["path"],
        payer_id_system=table["request"].get("payer_id_system", "urn:bhhub:payer-id"),
        request_system=categories.get("request_system", X12_SERVICE_TYPES),
        x12_systems=tuple(categories.get("x12_systems", (X12_SERVICE_TYPES, EX_BENEFIT_CATEGORY))),
        category_codes=dict(categories.get("codes", {})), values=values, source=source,
    )
