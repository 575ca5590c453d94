"""The code tables of eligibility (``mappings/x12/eligibility_codes.toml``), loaded once.

    describe("service_type", "A6")      # "psychotherapy"; "service type ZZ" when unknown
    carve_out_rules()                   # the EB01 codes and 2120 entities that mean a carve-out
    authorization_patterns()            # how MSG text says an authorization is needed, and when

A practice overrides the table like any other (``<home>/mappings/x12/eligibility_codes.toml``),
by passing its ``MappingSet`` to ``use_mappings`` once at start-up.
"""

from __future__ import annotations

from typing import Any

from bhhub.runtime.mapping_tables import MappingSet

ELIGIBILITY_CODES = "x12/eligibility_codes.toml"

_mappings = MappingSet()
_table: dict[str, Any] | None = None

# How an unknown code of each table reads: "<label> <code>".
_LABELS = {
    "service_type": "service type", "benefit": "benefit code", "coverage_level": "coverage level",
    "insurance_type": "insurance type", "time_period": "time period", "quantity": "quantity",
    "unit": "unit", "reject_reason": "reject reason", "follow_up": "follow-up action",
    "entity": "entity", "date": "date qualifier",
}


def use_mappings(mappings: MappingSet) -> None:
    """Read the tables through ``mappings`` (a practice's overrides) from now on."""
    global _mappings, _table
    _mappings, _table = mappings, None


def table() -> dict[str, Any]:
    global _table
    if _table is None:
        _table = _mappings.load(ELIGIBILITY_CODES)
    return _table


def describe(kind: str, code: str) -> str:
    """The meaning of ``code`` in table ``kind``; "<label> <code>" when the table lacks it."""
    if not code:
        return ""
    return table().get(kind, {}).get(code) or f"{_LABELS.get(kind, kind)} {code}"


def default_service_types() -> tuple[str, ...]:
    return tuple(table()["inquiry"]["default_service_types"])


def inquiry_service_types() -> dict[str, str]:
    """The service types a 270 may ask about (mental health and the baseline)."""
    return dict(table()["inquiry"]["mental_health_service_types"])


def mental_health_preference() -> tuple[str, ...]:
    return tuple(table()["mental_health"]["preference"])


def coverage_order() -> tuple[str, ...]:
    """The service types that decide whether outpatient mental health is covered, in order."""
    return tuple(table()["mental_health"]["coverage_order"])


def mental_health_service_types() -> frozenset[str]:
    """The service types whose "not covered" (EB01 I, E) the summary lists."""
    return frozenset(table()["mental_health"]["service_types"])


def authorization_patterns() -> dict[str, Any]:
    """The ``[authorization]`` patterns: how MSG text says an authorization is (not) required,
    and under which condition (``bhhub.eligibility.conditions``)."""
    return table()["authorization"]


def carve_out_rules() -> tuple[frozenset[str], frozenset[str]]:
    """(EB01 codes that mean a carve-out, 2120 NM101 entity codes that do)."""
    section = table()["carve_out"]
    return frozenset(section["benefit_codes"]), frozenset(section["entity_codes"])


def network(code: str) -> str:
    """EB12 as a network name: in, out, both or unknown (absent reads unknown)."""
    return table()["network"].get(code, "unknown")
