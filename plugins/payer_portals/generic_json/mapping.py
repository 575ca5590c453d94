"""A generic JSON portal's mapping file: its schema, every problem at once, and the built portal.

The keys are documented in the example, ``mappings/payer_portals/example_json_portal.toml``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bhhub.connectors.http_api import connection as conn
from bhhub.connectors.http_api.connection import Connection
from bhhub.connectors.http_api.client import PortalClient
from bhhub.connectors.http_api.schema import check, raise_problems

PLACEHOLDERS = frozenset({"member_id", "first_name", "last_name", "birth_date", "service_date", "service_types",
                          "payer_id", "group_number", "subscriber_member_id", "relationship",
                          "subscriber_first_name", "subscriber_last_name", "subscriber_birth_date"})
BENEFIT_FIELDS = ("service_type", "network", "coverage_level", "active", "copay", "coinsurance", "deductible",
                  "deductible_remaining", "deductible_met", "out_of_pocket", "out_of_pocket_remaining",
                  "visits_allowed", "visits_remaining", "auth_required", "procedure", "carve_out_payer_id",
                  "carve_out_payer_name", "messages")
TRANSLATED = ("active", "service_type", "network", "coverage_level", "auth_required", "error_code")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")

SCHEMA: dict[str, Any] = {
    "portal": conn.PORTAL_SCHEMA,
    "auth": conn.AUTH_SCHEMA,
    "limits": {k: v for k, v in conn.LIMITS_SCHEMA.items()},
    "request": {"path": "string", "date_format": "string?", "body": "any"},
    "response": {
        "active": "path?", "plan_description": "path?", "plan_number": "path?", "group_number": "path?",
        "group_name": "path?", "insurance_type": "path?", "reference": "path?", "messages": "path?",
        "errors": "path?", "error_code": "path?", "benefits": "path",
        "benefit": {**{name: "path?" for name in BENEFIT_FIELDS}, "service_type": "path"},
    },
    "values": {"coinsurance_unit": "string?", **{name: "values?" for name in TRANSLATED}},
}


@dataclass
class JsonPortal:
    """One portal, built from a valid mapping table; keeps its client between checks."""

    connection: Connection
    request: dict[str, Any]
    response: dict[str, Any]
    values: dict[str, Any]
    source: str
    client: PortalClient | None = field(default=None, repr=False)

    @property
    def coinsurance_is_percent(self) -> bool:
        return self.values.get("coinsurance_unit", "percent") == "percent"


def mapping_problems(table: Any) -> list[str]:
    """Every problem in a portal mapping table (empty when it is usable)."""
    if not isinstance(table, dict):
        return ["the mapping must be a table"]
    problems = check(table, SCHEMA) + conn.problems(table)
    request = table.get("request")
    if isinstance(request, dict):
        if "body" in request and not isinstance(request["body"], dict):
            problems.append("request.body must be a table (the JSON object to send)")
        for name in sorted(set(_placeholders(request.get("body"))) - PLACEHOLDERS):
            problems.append(f"request.body uses {{{name}}}, which is not a value bhhub fills "
                            f"(known: {', '.join(sorted(PLACEHOLDERS))})")
        if isinstance(request.get("path"), str) and not request["path"].startswith("/"):
            problems.append("request.path must start with /")
    values = table.get("values")
    if isinstance(values, dict):
        if values.get("coinsurance_unit", "percent") not in ("percent", "fraction"):
            problems.append("values.coinsurance_unit must be percent or fraction")
        problems += _translation_problems(values)
    response = table.get("response")
    if isinstance(response, dict) and "errors" in response and "error_code" not in response:
        problems.append("response.error_code is needed with response.errors (the code inside one error)")
    return problems


_TRANSLATES_TO = {
    "active": ((bool,), "true or false"), "auth_required": ((bool,), "true or false"),
    "network": (("in", "out", "both", "unknown"), "in, out, both or unknown"),
    "service_type": ((str,), "an X12 service type code"), "coverage_level": ((str,), "an X12 coverage level"),
    "error_code": ((str,), "an AAA03 reject reason code"),
}


def _translation_problems(values: dict[str, Any]) -> list[str]:
    problems = []
    for kind, (allowed, says) in _TRANSLATES_TO.items():
        table = values.get(kind)
        if not isinstance(table, dict):
            continue
        for word, meaning in table.items():
            fits = meaning in allowed if isinstance(allowed[0], str) else (
                isinstance(meaning, allowed) and (allowed != (str,) or bool(meaning)))
            if not fits:
                problems.append(f"values.{kind}.{word} must be {says}")
    return problems


def _placeholders(value: Any):
    if isinstance(value, str):
        yield from _PLACEHOLDER.findall(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _placeholders(item)
    elif isinstance(value, list):
        for item in value:
            yield from _placeholders(item)


def validate_mapping(table: Any, source: str = "generic JSON portal mapping") -> None:
    """Raise ``MappingError`` naming every problem in ``table`` (the contract kit calls it too)."""
    raise_problems(source, mapping_problems(table))


def build_portal(table: dict[str, Any], source: str) -> JsonPortal:
    validate_mapping(table, source)
    return JsonPortal(connection=conn.connection(table), request=table["request"], response=table["response"],
                      values=table.get("values", {}), source=source)
