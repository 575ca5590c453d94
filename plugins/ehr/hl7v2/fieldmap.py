"""The HL7 v2 field map (``mappings/ehr/hl7v2.toml``), checked against its schema when loaded.

Every problem in the table is found before any is reported (unknown keys, missing keys, wrong
types, field paths that are not paths or point past a segment's last field), and they come as
one ``MappingError`` listing them all, so an integrator fixes an edited copy in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bhhub.errors import MappingError
from bhhub.runtime.mapping_tables import MappingSet

from bhhub.plugins.ehr.hl7v2.paths import Path, parse_path
from bhhub.plugins.ehr.hl7v2.schema import check, cached

TABLE = "ehr/hl7v2.toml"

# The schema: a key's kind, or a nested table. "paths" takes a path or a list of them.
PATHS, STRINGS, STRING, CODES, NUMBERS = "paths", "strings", "string", "codes", "numbers"
SCHEMA: dict[str, Any] = {
    "messages": {"charges": STRINGS, "registrations": STRINGS, "appointments": STRINGS, "versions": STRINGS},
    "patient": {
        "identifier": PATHS, "identifier_types": STRINGS,
        "family_name": PATHS, "given_name": PATHS, "middle_name": PATHS, "suffix": PATHS,
        "birth_date": PATHS, "sex": PATHS,
        "address": {"line1": PATHS, "line2": PATHS, "city": PATHS, "state": PATHS, "postal_code": PATHS},
        "gender": CODES,
    },
    "coverage": {
        "payer_id": PATHS, "payer_name": PATHS, "member_id": PATHS, "patient_member_id": PATHS,
        "group_number": PATHS, "plan_name": PATHS,
        "order": PATHS, "plan_type": PATHS, "effective_date": PATHS, "expiration_date": PATHS,
        "relationship": PATHS, "relationship_default": STRING, "relationship_codes": CODES,
        "claim_filing_indicator": CODES,
        "subscriber": {
            "family_name": PATHS, "given_name": PATHS, "middle_name": PATHS, "birth_date": PATHS, "sex": PATHS,
            "address": {"line1": PATHS, "line2": PATHS, "city": PATHS, "state": PATHS, "postal_code": PATHS},
        },
    },
    "charge": {
        "transaction_type": PATHS, "billed_transaction_types": STRINGS, "service_date": PATHS,
        "procedure_code": PATHS, "modifiers": PATHS, "quantity": PATHS, "amount": PATHS, "unit_amount": PATHS,
        "diagnoses": PATHS, "minutes": PATHS, "place_of_service": PATHS, "prior_authorization": PATHS,
        "rendering_npi": PATHS, "rendering_family_name": PATHS, "rendering_given_name": PATHS,
    },
    "diagnosis": {"code": PATHS, "system": PATHS, "priority": PATHS, "icd10cm_systems": STRINGS},
    "encounter": {"minutes": PATHS, "place_of_service": PATHS, "prior_authorization": PATHS,
                  "telehealth": PATHS, "telehealth_video": STRINGS, "telehealth_audio_only": STRINGS},
    "appointment": {
        "id": PATHS, "start": PATHS, "duration": PATHS, "duration_units": PATHS, "minutes_per_unit": NUMBERS,
        "provider": PATHS, "type": PATHS, "status_by_event": CODES,
    },
}


@dataclass(frozen=True)
class Address:
    line1: tuple[Path, ...]
    line2: tuple[Path, ...]
    city: tuple[Path, ...]
    state: tuple[Path, ...]
    postal_code: tuple[Path, ...]


@dataclass(frozen=True)
class FieldMap:
    """The table, with every path parsed. Sections are plain dicts of parsed values."""

    data: dict[str, Any]
    charges: frozenset[str]
    registrations: frozenset[str]
    appointments: frozenset[str]
    versions: frozenset[str]

    def paths(self, dotted: str) -> tuple[Path, ...]:
        return _lookup(self.data, dotted)

    def codes(self, dotted: str) -> dict[str, Any]:
        return _lookup(self.data, dotted)

    def strings(self, dotted: str) -> tuple[str, ...]:
        return tuple(_lookup(self.data, dotted))

    def string(self, dotted: str) -> str:
        return _lookup(self.data, dotted)

    def address(self, dotted: str) -> Address:
        table = _lookup(self.data, dotted)
        return Address(table["line1"], table["line2"], table["city"], table["state"], table["postal_code"])


def _lookup(data: dict[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        node = node[part]
    return node


def load_field_map(mappings: MappingSet) -> FieldMap:
    """The field map in effect for this practice (its override laid over the packaged one)."""
    return cached(mappings, TABLE, _build)


def _build(table: dict[str, Any]) -> FieldMap:
    problems = check(table, SCHEMA, required=True)
    if problems:
        raise MappingError(f"{TABLE} has {len(problems)} problem(s): " + "; ".join(problems),
                           fix=f"correct the practice's copy of mappings/{TABLE} (see the packaged one for "
                               f"every key, documented)")
    data = _parsed(table, SCHEMA)
    messages = table["messages"]
    return FieldMap(data, frozenset(messages["charges"]), frozenset(messages["registrations"]),
                    frozenset(messages["appointments"]), frozenset(messages["versions"]))


def _parsed(table: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, kind in schema.items():
        value = table[key]
        if isinstance(kind, dict):
            out[key] = _parsed(value, kind)
        elif kind == PATHS:
            texts = [value] if isinstance(value, str) else value
            out[key] = tuple(parse_path(t) for t in texts)
        else:
            out[key] = value
    return out
