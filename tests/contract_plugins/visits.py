"""A small, correct EHR reader (a JSON export of visits) that the broken test plugins are made from.

``{"kit_visits": 1, "visits": [...]}``: each visit has its patient, coverage, clinician, its
diagnoses (principal first; the dot may be missing) and its service lines. The practice's billing
identity is in ``visits.toml``. ``plugin_parts`` turns a ``VisitReader`` (or a subclass that
breaks one rule of the contract on purpose) into what a plugin module exports.
"""

from __future__ import annotations

import json
import logging
import tomllib
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from bhhub import hookimpl
from bhhub.errors import InputError, MappingError
from bhhub.model import Address, Coverage, Encounter, Patient, Payer, PersonName, Provider, ServiceLine
from bhhub.types import IntakeContext, IntakeFormat

log = logging.getLogger(__name__)

MAPPING_FILE = Path(__file__).with_name("visits.toml")
GOLDENS = Path(__file__).with_name("goldens")
MARK = b'{"kit_visits"'
BILLING = ("npi", "organization_name", "tin", "street", "city", "state", "postal_code")


def validate_mapping(table: dict[str, Any]) -> None:
    problems = []
    provider = table.get("billing_provider")
    if not isinstance(provider, dict):
        problems.append("[billing_provider] is missing")
        provider = {}
    problems += [f"[billing_provider] {k} is missing" for k in BILLING if not isinstance(provider.get(k), str)]
    sex = table.get("sex")
    if not isinstance(sex, dict) or any(v not in ("M", "F", "U") for v in sex.values()):
        problems.append("[sex] must map the export's values to M, F or U")
    if problems:
        raise MappingError("visits.toml: " + "; ".join(problems))


def load_mapping() -> dict[str, Any]:
    table = tomllib.loads(MAPPING_FILE.read_text(encoding="utf-8"))
    validate_mapping(table)
    return table


class VisitReader:
    """Reads the export; every refusal an ``InputError`` naming the visit and the key, never a value."""

    def recognizes(self, content: bytes) -> bool:
        return content.lstrip(b" \t\r\n\xef\xbb\xbf").startswith(MARK)

    def parse(self, content: bytes, context: IntakeContext) -> list[Encounter]:
        try:
            document = json.loads(content.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError):
            raise InputError("the export is not JSON", fix="export again") from None
        if not isinstance(document, dict) or document.get("kit_visits") != 1:
            raise InputError("not a kit-visits export (no \"kit_visits\": 1)")
        visits = document.get("visits")
        if not isinstance(visits, list) or not visits:
            raise InputError("the export has no visits", fix="export a day with finished visits")
        mapping = self.mapping()
        return self.encounters(visits, mapping)

    def mapping(self) -> dict[str, Any]:
        return load_mapping()

    def encounters(self, visits: list, mapping: dict[str, Any]) -> list[Encounter]:
        return [self.encounter(visit, mapping, f"visit {n}") for n, visit in enumerate(visits, start=1)]

    # --- one visit -------------------------------------------------------------------------

    def text(self, record: Any, key: str, where: str) -> str:
        if not isinstance(record, dict):
            raise InputError("is not an object", where=where)
        value = record.get(key)
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{key} is missing or not text", where=where, fix=f"fill {key} in the EHR")
        return value.strip()

    def part(self, record: dict, key: str, where: str) -> dict:
        value = record.get(key)
        if not isinstance(value, dict):
            raise InputError(f"{key} is missing or not an object", where=where)
        return value

    def day(self, record: dict, key: str, where: str) -> date:
        try:
            return date.fromisoformat(self.text(record, key, where))
        except ValueError:
            raise InputError(f"{key} is not a date (YYYY-MM-DD)", where=where) from None

    def amount(self, line: dict, key: str, where: str) -> Decimal:
        try:
            value = Decimal(self.text(line, key, where))
        except InvalidOperation:
            raise InputError(f"{key} is not a number", where=where) from None
        if not value.is_finite() or value <= 0:
            raise InputError(f"{key} is not a positive number", where=where)
        return value

    def units(self, line: dict, where: str) -> Decimal:
        return self.amount(line, "units", where)

    def diagnoses(self, visit: dict, where: str) -> tuple[str, ...]:
        codes = visit.get("diagnoses")
        if not isinstance(codes, list) or not codes or not all(isinstance(c, str) and c.strip() for c in codes):
            raise InputError("diagnoses must be a list of ICD-10-CM codes", where=where)
        codes = [c.strip().upper() for c in codes]
        return tuple(c if "." in c or len(c) <= 3 else f"{c[:3]}.{c[3:]}" for c in codes)

    def line(self, line: Any, where: str, service_date: date, pointers: tuple[int, ...]) -> ServiceLine:
        if not isinstance(line, dict):
            raise InputError("is not an object", where=where)
        modifiers = line.get("modifiers") or []
        if not isinstance(modifiers, list) or not all(isinstance(m, str) and len(m) == 2 for m in modifiers):
            raise InputError("modifiers must be a list of two-character codes", where=where)
        return ServiceLine(procedure_code=self.text(line, "code", where).upper(), service_date=service_date,
                           modifiers=tuple(m.upper() for m in modifiers), charge=self.amount(line, "charge", where),
                           units=self.units(line, where), diagnosis_pointers=pointers)

    def encounter(self, visit: Any, mapping: dict[str, Any], where: str) -> Encounter:
        if not isinstance(visit, dict):
            raise InputError("is not an object", where=where)
        service_date = self.day(visit, "date", where)
        person = self.part(visit, "patient", where)
        sex = mapping["sex"].get(self.text(person, "sex", where))
        if sex is None:
            raise InputError("patient sex is not a value [sex] in the mapping lists", where=where)
        patient = Patient(
            name=PersonName(self.text(person, "family", where), self.text(person, "given", where)),
            birth_date=self.day(person, "birth_date", where), gender=sex,
            address=Address(self.text(person, "street", where), self.text(person, "city", where),
                            self.text(person, "state", where), self.text(person, "zip", where)),
            key=f"kit:patient|{self.text(person, 'id', where)}")
        clinician = self.part(visit, "clinician", where)
        diagnoses = self.diagnoses(visit, where)
        pointers = tuple(range(1, min(len(diagnoses), 4) + 1))
        lines = visit.get("lines")
        if not isinstance(lines, list) or not lines:
            raise InputError("lines must be a non-empty list", where=where)
        billing = mapping["billing_provider"]
        return Encounter(
            key=f"kit:visit|{self.text(visit, 'visit_id', where)}", source_ref=where, service_date=service_date,
            patient=patient,
            coverages=(Coverage(order=1, payer=Payer(self.text(visit, "payer_id", where),
                                                     self.text(visit, "payer_name", where)),
                                member_id=self.text(visit, "member_id", where)),),
            billing_provider=Provider(npi=billing["npi"], organization_name=billing["organization_name"],
                                      tin=billing["tin"], address=Address(billing["street"], billing["city"],
                                                                          billing["state"], billing["postal_code"])),
            rendering_provider=Provider(npi=self.text(clinician, "npi", where),
                                        name=PersonName(self.text(clinician, "family", where),
                                                        self.text(clinician, "given", where))),
            diagnoses=diagnoses,
            services=tuple(self.line(line, f"{where} line {n}", service_date, pointers)
                           for n, line in enumerate(lines, start=1)),
        )


def plugin_parts(reader: VisitReader, name: str):
    """(FORMAT, the hook implementation) for a plugin module made of ``reader``."""
    fmt = IntakeFormat(name=name, description=f"{name}: a JSON export of visits (a contract-kit test plugin)",
                       recognizes=reader.recognizes, parse=reader.parse)

    @hookimpl
    def bhhub_register_intake_formats() -> list[IntakeFormat]:
        return [fmt]

    return fmt, bhhub_register_intake_formats
