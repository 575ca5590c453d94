"""The column map: which CSV column holds what, how dates are written, the practice's billing identity.

The packaged ``mapping.toml`` is read first; a practice's
``<hub home>/mappings/ehr/csv_practice_export.toml`` is laid over it (tables merge key by key,
values and lists are replaced whole), so another tool's export needs a mapping file, not code.
``validate_mapping`` names every problem at once.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from bhhub.errors import MappingError
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.common.identifiers import npi_is_valid, tin_is_valid

OVERRIDE = Path("ehr") / "csv_practice_export.toml"
REQUIRED_COLUMNS = (
    "service_date", "chart_number", "patient_last", "patient_first", "birth_date", "sex", "street", "city",
    "state", "postal_code", "payer_id", "payer_name", "member_id", "rendering_npi", "rendering_name",
    "procedure_code", "diagnoses",
)
OPTIONAL_COLUMNS = ("rendering_taxonomy", "modifiers", "minutes", "charge", "place_of_service")
BILLING_PROVIDER = ("npi", "organization_name", "tin", "street", "city", "state", "postal_code")
GENDERS = ("M", "F", "U")


@dataclass(frozen=True)
class ColumnMap:
    columns: dict[str, str]  # canonical name -> the export's column header
    delimiter: str
    date_format: str
    header_has: tuple[str, ...]
    sex: dict[str, str]  # the export's value -> M, F or U
    billing_provider: dict[str, str]


def load_mapping(mappings: Any = None) -> ColumnMap:
    """The packaged map with the practice's ``<home>/mappings/ehr/csv_practice_export.toml`` laid
    over it (bhhub's ``MappingSet.load_plugin_table``: the same overlay as bhhub's own tables)."""
    if not isinstance(mappings, MappingSet):
        mappings = MappingSet(getattr(mappings, "override_dir", None))
    table = mappings.load_plugin_table(__package__, "mapping.toml", OVERRIDE.as_posix())
    validate_mapping(table)
    csv = table.get("csv", {})
    return ColumnMap(dict(table["columns"]), csv.get("delimiter", ","), csv.get("date_format", "%m/%d/%Y"),
                     tuple(table.get("recognize", {}).get("header_has", ())), dict(table.get("sex", {})),
                     dict(table["billing_provider"]))


@lru_cache(maxsize=1)
def packaged_table() -> dict[str, Any]:
    """The packaged mapping, read once: recognising runs for every file the hub receives."""
    packaged = resources.files(__package__).joinpath("mapping.toml")
    return _parse(packaged.read_text(encoding="utf-8"), "mapping.toml (packaged)")


def recognition_headers() -> list[tuple[str, ...]]:
    """The header sets that mark an export: the packaged one, and the one in
    ``$BHHUB_HOME/mappings/`` when that override exists (recognising gets no hub context)."""
    sets = [tuple(packaged_table().get("recognize", {}).get("header_has", ()))]
    home = os.environ.get("BHHUB_HOME")
    local = Path(home) / "mappings" / OVERRIDE if home else None
    if local is not None and local.is_file():
        try:
            table = tomllib.loads(local.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return sets  # parse() reports the broken override; recognising stays a cheap yes/no
        override = table.get("recognize", {}).get("header_has")
        if isinstance(override, list) and all(isinstance(h, str) for h in override):
            sets.append(tuple(override))
    return [s for s in sets if s]


def validate_mapping(table: dict[str, Any]) -> None:
    """Raise ``MappingError`` listing every problem in a column map; return None when usable."""
    problems: list[str] = []
    columns = table.get("columns")
    if not isinstance(columns, dict):
        problems.append("[columns] is missing")
        columns = {}
    for name in REQUIRED_COLUMNS:
        if not isinstance(columns.get(name), str) or not columns.get(name):
            problems.append(f"[columns] {name} must name the export's column")
    for name in OPTIONAL_COLUMNS:
        if name in columns and not isinstance(columns[name], str):
            problems.append(f"[columns] {name} must be a column header (a string)")
    unknown = sorted(set(columns) - set(REQUIRED_COLUMNS) - set(OPTIONAL_COLUMNS))
    if unknown:
        problems.append(f"[columns] has unknown keys: {', '.join(unknown)}")
    csv = table.get("csv", {})
    if not isinstance(csv, dict):
        problems.append("[csv] must be a table")
        csv = {}
    if not isinstance(csv.get("delimiter", ","), str) or len(csv.get("delimiter", ",")) != 1:
        problems.append("[csv] delimiter must be one character")
    if not isinstance(csv.get("date_format", "%m/%d/%Y"), str) or "%" not in csv.get("date_format", "%"):
        problems.append("[csv] date_format must be a strptime format such as %m/%d/%Y")
    header_has = table.get("recognize", {}).get("header_has")
    if not isinstance(header_has, list) or not header_has or not all(isinstance(h, str) for h in header_has):
        problems.append("[recognize] header_has must list the column headers that mark the export")
    sex = table.get("sex", {})
    if not isinstance(sex, dict) or any(value not in GENDERS for value in sex.values()):
        problems.append("[sex] values must be M, F or U")
    provider = table.get("billing_provider")
    if not isinstance(provider, dict):
        problems.append("[billing_provider] is missing")
        provider = {}
    for name in BILLING_PROVIDER:
        if not isinstance(provider.get(name), str) or not provider.get(name):
            problems.append(f"[billing_provider] {name} is missing")
    if isinstance(provider.get("npi"), str) and provider["npi"] and not npi_is_valid(provider["npi"]):
        problems.append("[billing_provider] npi is not a valid NPI (10 digits, check digit)")
    if isinstance(provider.get("tin"), str) and provider["tin"] and not tin_is_valid(provider["tin"]):
        problems.append("[billing_provider] tin must be 9 digits without a dash")
    if problems:
        raise MappingError("csv_practice_export mapping: " + "; ".join(problems),
                           fix=f"correct <hub home>/mappings/{OVERRIDE.as_posix()} (or the packaged mapping.toml)")


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{where} is not valid TOML: {exc}") from exc


