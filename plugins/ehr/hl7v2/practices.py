"""Practice profiles (``mappings/ehr/practices.toml``): the billing provider for a sending facility.

HL7 feeds carry the rendering clinician but not the billing provider's NPI, tax id, address and
taxonomy; a practice profile keyed by MSH-4 supplies them. The table is checked when loaded,
every problem reported at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bhhub.errors import InputError, MappingError
from bhhub.common.identifiers import npi_is_valid, tin_is_valid
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.model import Address, Provider

from bhhub.plugins.ehr.hl7v2.schema import cached
from bhhub.plugins.ehr.hl7v2.shown import IDENTIFIER, shown

TABLE = "ehr/practices.toml"
_MODEL = None


def _model():
    """The file's model, built when a practice table is first read (pydantic stays out of start-up)."""
    global _MODEL
    if _MODEL is None:
        from pydantic import Field

        from bhhub.configuration.problems import Strict

        class PracticeAddress(Strict):
            line1: str = Field(min_length=1)  # a street address, not a PO box (2010AA N3)
            line2: str | None = None
            city: str = Field(min_length=1)
            state: str = Field(min_length=1)
            postal_code: str = Field(min_length=1)

        class Clinician(Strict):
            taxonomy: str = Field(min_length=1)  # NUCC taxonomy (2310B PRV03)

        class PracticeEntry(Strict):
            npi: str = Field(min_length=1)
            organization_name: str = Field(min_length=1)
            tin: str = Field(min_length=1)
            taxonomy: str | None = None
            place_of_service: str | None = None
            clinicians: dict[str, Clinician] = {}
            address: PracticeAddress

        class PracticesTable(Strict):
            practices: dict[str, PracticeEntry] = {}

        _MODEL = PracticesTable
    return _MODEL


@dataclass(frozen=True)
class Practice:
    name: str
    billing_provider: Provider
    place_of_service: str | None
    clinician_taxonomy: dict[str, str]  # rendering NPI -> NUCC taxonomy (2310B PRV03)


def load_practices(mappings: MappingSet) -> dict[str, Practice]:
    return cached(mappings, TABLE, _build)


def practice_for(mappings: MappingSet, namespace: str, universal: str, where: str) -> Practice:
    """The profile for MSH-4, by its namespace id, else its universal id; refused when none."""
    practices = load_practices(mappings)
    for name in (namespace, universal):
        if name and name in practices:
            return practices[name]
    name = shown(namespace or universal, IDENTIFIER) if (namespace or universal) else "(empty)"
    raise InputError(
        f"MSH-4 sending facility {name!r} has no practice profile, so the billing provider (NPI, tax id, "
        f"address) is unknown", where=where,
        fix=f"add [practices.\"{name}\"] with npi, organization_name, tin and address to "
            f"<home>/mappings/{TABLE} (see the packaged file for an example), then `bhhub inbox retry`")


def _build(table: dict[str, Any]) -> dict[str, Practice]:
    from pydantic import ValidationError

    from bhhub.configuration.problems import describe

    problems: list[str] = []
    try:
        _model().model_validate(table)
    except ValidationError as exc:  # every key of the wrong shape, each named by its dotted path
        problems = [describe(e, _model()) for e in exc.errors(include_input=False, include_url=False)]
    practices = table.get("practices") if isinstance(table.get("practices"), dict) else {}
    if not problems:
        for name, entry in practices.items():
            if not npi_is_valid(entry["npi"]):
                problems.append(f"practices.{name}.npi {entry['npi']!r} is not a valid NPI (check digit)")
            if not tin_is_valid(entry["tin"]):
                problems.append(f"practices.{name}.tin must be nine digits with no dash")
            for npi in entry.get("clinicians", {}):
                if not npi_is_valid(npi):
                    problems.append(f"practices.{name}.clinicians.{npi} is not a valid NPI (check digit)")
    if problems:
        raise MappingError(f"{TABLE} has {len(problems)} problem(s): " + "; ".join(problems),
                           fix=f"correct <home>/mappings/{TABLE} (the packaged file documents every key)")
    return {name: _practice(name, entry) for name, entry in practices.items()}


def _practice(name: str, entry: dict[str, Any]) -> Practice:
    a = entry["address"]
    provider = Provider(
        npi=entry["npi"], organization_name=entry["organization_name"], tin=entry["tin"],
        taxonomy=entry.get("taxonomy") or None,
        address=Address(a["line1"], a["city"], a["state"], a["postal_code"], a.get("line2") or None),
    )
    taxonomy = {npi: c["taxonomy"] for npi, c in entry.get("clinicians", {}).items()}
    return Practice(name, provider, entry.get("place_of_service") or None, taxonomy)
