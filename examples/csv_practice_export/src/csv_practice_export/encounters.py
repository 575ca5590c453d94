"""The rows of one visit (one row per service) to one canonical ``bhhub.model.Encounter``.

A visit is the rows with the same chart number, date of service and rendering NPI: a
psychiatrist's E/M and its psychotherapy add-on are two rows of one claim. Every refusal names
the row and the column, never the value: values are patient data, and refusals are shown and
stored (no PHI in messages or logs).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from bhhub.errors import InputError
from bhhub.model import Address, Coverage, Encounter, Patient, Payer, PersonName, Provider, ServiceLine

from csv_practice_export.mapping import ColumnMap

SOURCE = "csv_practice_export"
MAX_DIAGNOSES = 12  # an 837P claim carries at most 12 (HI segment)
MAX_POINTERS = 4  # and a service line points at most at 4 of them (SV107)
TELEHEALTH_POS = ("02", "10")
_SEPARATORS = re.compile(r"[\s,;:]+")


class Row:
    """One CSV row: its values by canonical field, and where it is (``row 7``)."""

    def __init__(self, values: dict[str, str], cmap: ColumnMap, where: str):
        self.values, self.cmap, self.where = values, cmap, where

    def get(self, name: str, *, required: bool = True) -> str | None:
        column = self.cmap.columns.get(name)
        value = (self.values.get(column) or "").strip() if column else ""
        if not value:
            if required:
                raise InputError(f"column {column!r} is empty", where=self.where,
                                 fix=f"fill {column!r} in the practice-management tool and export again")
            return None
        return value

    def column(self, name: str) -> str:
        return repr(self.cmap.columns[name])

    def date(self, name: str) -> date:
        value = self.get(name)
        for parse in (lambda v: datetime.strptime(v, self.cmap.date_format).date(), date.fromisoformat):
            try:
                return parse(value)
            except ValueError:
                continue
        raise InputError(f"column {self.column(name)} is not a date ({self.cmap.date_format} or YYYY-MM-DD)",
                         where=self.where, fix="correct the date, or [csv] date_format in the mapping")

    def money(self, name: str) -> Decimal | None:
        value = self.get(name, required=False)
        if value is None:
            return None
        try:
            amount = Decimal(value.replace("$", "").replace(",", ""))
        except InvalidOperation:
            amount = Decimal("NaN")
        if not amount.is_finite() or amount < 0:
            raise InputError(f"column {self.column(name)} is not an amount", where=self.where)
        return amount.quantize(Decimal("0.01"))

    def minutes(self) -> int | None:
        value = self.get("minutes", required=False)
        if value is None:
            return None
        if not value.isdigit() or not 0 < int(value) < 24 * 60:
            raise InputError(f"column {self.column('minutes')} is not a number of minutes", where=self.where)
        return int(value)

    def codes(self, name: str, pattern: str) -> tuple[str, ...]:
        value = self.get(name, required=False) or ""
        found = tuple(code.upper() for code in _SEPARATORS.split(value) if code)
        bad = [code for code in found if not re.fullmatch(pattern, code)]
        if bad:
            raise InputError(f"column {self.column(name)} has {len(bad)} value(s) that are not codes", where=self.where)
        return found

    def visit(self) -> tuple[str, date, str]:
        return self.get("chart_number"), self.date("service_date"), self.get("rendering_npi")


def _icd10(code: str) -> str:
    """ICD-10-CM with its dot (F331 -> F33.1): the canonical model's convention."""
    return code if "." in code or len(code) <= 3 else f"{code[:3]}.{code[3:]}"


def _rendering(row: Row) -> Provider:
    family, _, given = row.get("rendering_name").partition(",")
    return Provider(npi=row.get("rendering_npi"), name=PersonName(family.strip(), given.strip() or None),
                    taxonomy=row.get("rendering_taxonomy", required=False))


def to_encounter(rows: list[Row]) -> Encounter:
    """The encounter the rows of one visit describe (``rows`` share chart, date and NPI)."""
    first = rows[0]
    chart, service_date, _ = first.visit()
    sex = first.cmap.sex.get(first.get("sex"))
    if sex is None:
        raise InputError(f"column {first.column('sex')} has a value the mapping's [sex] table does not list",
                         where=first.where, fix="add the value to [sex] in the mapping")
    for row in rows[1:]:
        if (row.get("payer_id"), row.get("member_id")) != (first.get("payer_id"), first.get("member_id")):
            raise InputError(f"has another payer or member id than {first.where} of the same visit", where=row.where,
                             fix="bill one coverage per visit; correct the rows in the tool")
    diagnoses: list[str] = []
    lines = []
    for row in rows:
        codes = [_icd10(code) for code in row.codes("diagnoses", r"[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?")]
        if not codes:
            raise InputError(f"column {row.column('diagnoses')} is empty", where=row.where,
                             fix="record the diagnosis in the practice-management tool")
        diagnoses += [code for code in codes if code not in diagnoses]
        row.get("procedure_code")  # required: refused naming the column when empty
        procedure = row.codes("procedure_code", r"[0-9A-Z]{5}")
        if len(procedure) != 1:
            raise InputError(f"column {row.column('procedure_code')} must hold one code", where=row.where,
                             fix="one row per service: put each code on its own row")
        lines.append(ServiceLine(
            procedure_code=procedure[0],
            service_date=service_date,
            modifiers=row.codes("modifiers", r"[0-9A-Z]{2}")[:4],
            charge=row.money("charge"),
            diagnosis_pointers=tuple(diagnoses.index(code) + 1 for code in codes[:MAX_POINTERS]),
            minutes=row.minutes(),
            source_ref=row.where,
        ))
    if len(diagnoses) > MAX_DIAGNOSES:
        raise InputError(f"the visit has {len(diagnoses)} diagnoses; a claim carries at most {MAX_DIAGNOSES}",
                         where=first.where)
    billing = first.cmap.billing_provider
    place_of_service = first.get("place_of_service", required=False)
    wheres = [row.where for row in rows]
    return Encounter(
        key=f"{SOURCE}:visit|{chart}|{service_date.isoformat()}|{first.get('rendering_npi')}",
        source_ref=wheres[0] if len(wheres) == 1 else f"{wheres[0]}-{wheres[-1].split()[-1]}",
        service_date=service_date,
        patient=Patient(
            name=PersonName(first.get("patient_last"), first.get("patient_first")),
            birth_date=first.date("birth_date"),
            gender=sex,
            address=Address(first.get("street"), first.get("city"), first.get("state").upper(),
                            first.get("postal_code").replace("-", "")),
            key=f"{SOURCE}:chart|{chart}",
        ),
        coverages=(Coverage(order=1, payer=Payer(first.get("payer_id"), first.get("payer_name")),
                            member_id=first.get("member_id")),),
        billing_provider=Provider(
            npi=billing["npi"], organization_name=billing["organization_name"], tin=billing["tin"],
            taxonomy=billing.get("taxonomy"),
            address=Address(billing["street"], billing["city"], billing["state"], billing["postal_code"]),
        ),
        rendering_provider=_rendering(first),
        diagnoses=tuple(diagnoses),
        services=tuple(lines),
        place_of_service=place_of_service,
        virtual=place_of_service in TELEHEALTH_POS,
    )
