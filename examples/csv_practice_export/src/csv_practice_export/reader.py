"""CSV exports of small practice-management tools: recognised by their header, parsed whole or
not at all.

One row per service. Which column holds what, the delimiter and the date format are in the
mapping (``mapping.toml``, and the practice's override), so another tool's export needs a
mapping file, not code.
"""

from __future__ import annotations

import csv
import io
import logging

from bhhub.errors import HubError, InputError
from bhhub.model import Encounter
from bhhub.types import IntakeContext

from csv_practice_export.encounters import Row, to_encounter
from csv_practice_export.mapping import REQUIRED_COLUMNS, load_mapping, recognition_headers

log = logging.getLogger(__name__)

FORMAT_NAME = "csv-practice-export"
_BOM = b"\xef\xbb\xbf"
_SNIFF = 4096
_DELIMITERS = (",", ";", "\t", "|")


def recognizes(content: bytes) -> bool:
    """True when the first line is a CSV header with every column of a ``[recognize]
    header_has`` list; cheap, and never raises."""
    head = content[:_SNIFF]
    if head.startswith(_BOM):
        head = head[len(_BOM):]
    first_line = head.replace(b"\r", b"\n").split(b"\n", 1)[0]  # HL7 v2 ends segments with \r only
    try:
        text = first_line.decode("utf-8")
        wanted = recognition_headers()
        for delimiter in _DELIMITERS:
            header = {name.strip() for name in next(csv.reader([text], delimiter=delimiter), [])}
            if any(names and set(names) <= header for names in wanted):
                return True
    except (UnicodeDecodeError, csv.Error, OSError, HubError):
        return False
    return False


def _rows(content: bytes, cmap) -> list[Row]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("the export is not UTF-8 text", fix="export again as UTF-8 (CSV UTF-8)") from None
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=cmap.delimiter, strict=True)
    try:
        header = [name.strip() for name in reader.fieldnames or []]
        reader.fieldnames = header
        missing = [cmap.columns[name] for name in REQUIRED_COLUMNS if cmap.columns[name] not in header]
        if missing:
            raise InputError(f"the header has no column {', '.join(map(repr, missing))}",
                             fix="map the export's own column names in <hub home>/mappings/ehr/"
                                 "csv_practice_export.toml [columns]")
        if len(set(header)) != len(header):
            raise InputError("the header repeats a column name", where="line 1")
        rows = []
        for record in reader:
            where = f"row {reader.line_num}"
            if None in record or None in record.values():
                raise InputError(f"has another number of fields than the header ({len(header)})", where=where,
                                 fix="export again; a value may contain the delimiter, or the file was cut short")
            if any(value.strip() for value in record.values()):
                rows.append(Row(record, cmap, where))
    except csv.Error as exc:
        raise InputError(f"is not readable CSV ({exc})", where=f"line {reader.line_num}") from None
    if not rows:
        raise InputError("the export has a header but no services", fix="export a day with billed services")
    return rows


def parse(content: bytes, context: IntakeContext) -> list[Encounter]:
    """Every visit in the export as an encounter, or ``InputError`` naming the first bad row."""
    cmap = load_mapping(context.mappings)
    visits: dict[tuple, list[Row]] = {}
    for row in _rows(content, cmap):
        visits.setdefault(row.visit(), []).append(row)
    encounters = [to_encounter(rows) for rows in visits.values()]
    log.info("%s: %d visits read", FORMAT_NAME, len(encounters))  # counts only: no PHI in logs
    return encounters
