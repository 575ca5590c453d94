"""Loading CMS's quarterly NCCI files into a hub's mappings (`bhhub rules load-ncci` / `load-mue`).

Accepted layouts (CMS's text/CSV exports, alone or in the ZIP CMS publishes; Excel files are not
read: use the .txt/.csv in the same download):

- PTP, practitioner (Medicare, and the Medicaid NCCI publication files): title and copyright lines,
  then a header row naming "Column 1", "Column 2", "* = In existence prior to 1996", "Effective
  Date", "Deletion Date *=no data", "Modifier 0=not allowed 1=allowed 9=not applicable", "PTP Edit
  Rationale"; tab- or comma-separated; dates YYYYMMDD, "*" or empty for no deletion date.
- MUE, practitioner services: a quoted copyright cell, then a header "HCPCS/CPT Code" (the name may
  span two lines), "Practitioner Services MUE Values", "MUE Adjudication Indicator" ("3 Date of
  Service Edit: Clinical": its first digit is the MAI), "MUE Rationale".

Columns are found by their header names, not their positions (assumed stable in meaning, as the
Medicaid NCCI Edit Design Manual documents them). Only the codes behavioral health bills are kept
(``mappings/rules/ncci.toml`` [load]) unless every code is asked for. A file with a bad row loads
nothing. The table is written whole and atomically to ``<home>/mappings/rules/``, laid over the
packaged subset: packaged entries the loaded file lacks are written as no edit, so the file rules.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from bhhub.errors import InputError
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.scrub.ncci import MUE, PTP, SETTINGS

_PTP_COLUMNS = {"column1": "column1", "column2": "column2", "effective": "effectivedate",
                "deleted": "deletiondate", "modifier": "modifier", "rationale": "ptpeditrationale"}
_MUE_COLUMNS = {"code": "hcpcs", "units": "muevalue", "mai": "adjudicationindicator", "rationale": "rationale"}
_MAX_PROBLEMS = 5


@dataclass(frozen=True)
class LoadResult:
    rows: int  # data rows read from the files
    kept: int  # pairs (PTP rows) or codes written
    withdrawn: int  # packaged entries the files lack, written as no edit
    path: Path


def load_ptp(mappings_dir: Path, files: Sequence[Path], *, all_codes: bool = False) -> LoadResult:
    scope = _scope(mappings_dir, all_codes)
    pairs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    rows = kept = 0
    problems: list[str] = []
    for name, table in _tables(files, _PTP_COLUMNS, ("column1", "column2", "effective", "modifier")):
        for line, row in table:
            rows += 1
            try:
                first, second = row["column1"].strip().upper(), row["column2"].strip().upper()
                edit = {"effective": _yyyymmdd(row["effective"], "effective date")}
                deleted = row.get("deleted", "").strip()
                if deleted not in ("", "*"):
                    edit["deleted"] = _yyyymmdd(deleted, "deletion date")
                edit["modifier"] = _modifier(row["modifier"])
                edit["rationale"] = row.get("rationale", "").strip()
            except ValueError as exc:
                problems.append(f"{name} line {line}: {exc}")
                continue
            if not first or not second:
                problems.append(f"{name} line {line}: a column-1 or column-2 code is empty")
            elif scope(first) and scope(second):
                pairs.setdefault(first, {}).setdefault(second, []).append(edit)
                kept += 1
    _refuse(problems, files)
    withdrawn = 0
    for first, seconds in _packaged(PTP).get("pairs", {}).items():
        for second in seconds:
            if second not in pairs.get(first, {}):
                pairs.setdefault(first, {})[second] = [{"effective": date(1996, 1, 1), "modifier": 9,
                                                        "rationale": "not an edit in the loaded CMS file"}]
                withdrawn += 1
    lines = _header("NCCI procedure-to-procedure edits", files, rows, kept)
    for first in sorted(pairs):
        lines.append(f"\n[pairs.{_quote(first)}]")
        for second in sorted(pairs[first]):
            edits = sorted(pairs[first][second], key=lambda e: (e["effective"], e.get("deleted") or date.max))
            lines.append(f"{_quote(second)} = [" + ", ".join(_inline(e) for e in edits) + "]")
    return LoadResult(rows, kept, withdrawn, _write(mappings_dir / PTP, lines))


def load_mue(mappings_dir: Path, files: Sequence[Path], *, all_codes: bool = False) -> LoadResult:
    scope = _scope(mappings_dir, all_codes)
    codes: dict[str, dict[str, Any]] = {}
    rows = 0
    problems: list[str] = []
    for name, table in _tables(files, _MUE_COLUMNS, ("code", "units", "mai")):
        for line, row in table:
            rows += 1
            code = row["code"].strip().upper()
            try:
                units = Decimal(row["units"].strip())
                if units < 0 or units != units.to_integral_value():
                    raise InvalidOperation
                mai = row["mai"].strip()[:1]
                if mai not in ("1", "2", "3"):
                    raise ValueError(f"MUE adjudication indicator {row['mai']!r} does not start with 1, 2 or 3")
            except InvalidOperation:
                problems.append(f"{name} line {line}: MUE value {row['units']!r} is not a whole number of units")
                continue
            except ValueError as exc:
                problems.append(f"{name} line {line}: {exc}")
                continue
            if code and scope(code):
                codes[code] = {"units": int(units), "mai": int(mai), "rationale": row.get("rationale", "").strip()}
    _refuse(problems, files)
    withdrawn = 0
    for code in _packaged(MUE).get("codes", {}):
        if code not in codes:
            codes[code] = {"withdrawn": True}
            withdrawn += 1
    lines = _header("NCCI medically unlikely edits", files, rows, len(codes) - withdrawn)
    for code in sorted(codes):
        lines.append(f"\n[codes.{_quote(code)}]")
        lines.extend(f"{key} = {_value(value)}" for key, value in codes[code].items())
    return LoadResult(rows, len(codes) - withdrawn, withdrawn, _write(mappings_dir / MUE, lines))


# ---- reading --------------------------------------------------------------------------------

def _tables(files: Sequence[Path], columns: Mapping[str, str], required: Sequence[str]
            ) -> Iterator[tuple[str, Iterator[tuple[int, dict[str, str]]]]]:
    for path in files:
        for name, text in _texts(Path(path)):
            yield name, _rows(name, text, columns, required)


def _texts(path: Path) -> Iterator[tuple[str, str]]:
    if not path.is_file():
        raise InputError(f"{path} is not a file", fix="give the path of the CMS .txt/.csv file (or its .zip)")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if m.lower().endswith((".txt", ".csv"))]
            if not members:
                raise InputError(f"{path.name} holds no .txt or .csv file",
                                 fix="use the text or CSV export CMS publishes beside the Excel one")
            for member in sorted(members):
                yield f"{path.name}:{member}", _decode(archive.read(member))
        return
    yield path.name, _decode(path.read_bytes())


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # CMS's files are often Windows text


def _rows(name: str, text: str, columns: Mapping[str, str], required: Sequence[str]
          ) -> Iterator[tuple[int, dict[str, str]]]:
    first_line = next((ln for ln in text.splitlines() if "\t" in ln), None)
    reader = csv.reader(io.StringIO(text), delimiter="\t" if first_line is not None else ",")
    where: dict[str, int] | None = None
    for cells in reader:
        if where is None:
            where = _header_positions(cells, columns, required)
            continue
        if not any(cell.strip() for cell in cells):
            continue
        yield reader.line_num, {key: cells[i] if i < len(cells) else "" for key, i in where.items()}
    if where is None:
        raise InputError(f"{name}: no header row naming the columns " + ", ".join(columns[r] for r in required),
                         fix="use CMS's practitioner file as published (see `bhhub rules load-ncci --help`)")


def _header_positions(cells: list[str], columns: Mapping[str, str], required: Sequence[str]) -> dict[str, int] | None:
    names = ["".join(cell.lower().split()) for cell in cells]
    found: dict[str, int] = {}
    for key, marker in columns.items():
        for i, name in enumerate(names):
            if (name.startswith(marker) or marker in name) and i not in found.values():
                found[key] = i
                break
    return found if all(r in found for r in required) else None


def _yyyymmdd(text: str, what: str) -> date:
    try:
        return datetime.strptime(text.strip(), "%Y%m%d").date()
    except ValueError:
        raise ValueError(f"{what} {text.strip()!r} is not a date as YYYYMMDD") from None


def _modifier(text: str) -> int:
    value = text.strip()[:1]
    if value not in ("0", "1", "9"):
        raise ValueError(f"modifier indicator {text.strip()!r} is not 0, 1 or 9")
    return int(value)


def _refuse(problems: list[str], files: Sequence[Path]) -> None:
    if problems:
        more = f" (and {len(problems) - _MAX_PROBLEMS} more)" if len(problems) > _MAX_PROBLEMS else ""
        raise InputError("nothing loaded: " + "; ".join(problems[:_MAX_PROBLEMS]) + more,
                         fix="check that the file is CMS's, unedited; a partial table is never written")


# ---- scope, packaged subset -----------------------------------------------------------------

def _scope(mappings_dir: Path, all_codes: bool):
    if all_codes:
        return lambda code: True
    ranges = []
    for entry in MappingSet(override_dir=mappings_dir).load(SETTINGS).get("load", {}).get("codes", []):
        low, _, high = str(entry).partition("-")
        ranges.append((low.strip().upper(), (high or low).strip().upper()))
    return lambda code: any(len(code) == len(low) and low <= code <= high for low, high in ranges)


def _packaged(name: str) -> dict[str, Any]:
    return MappingSet().load(name)


# ---- writing --------------------------------------------------------------------------------

def _header(what: str, files: Sequence[Path], rows: int, kept: int) -> list[str]:
    digest = hashlib.sha256()
    for path in files:
        digest.update(Path(path).read_bytes())
    names = ", ".join(Path(p).name for p in files)
    return [f"# {what}, loaded by `bhhub rules` from CMS's files: {names}.",
            "# Written whole on each load; do not edit by hand (load the next quarter's file instead).",
            "", "[source]", f"name = {_quote(names)}", f"sha256 = {_quote(digest.hexdigest())}",
            f"rows = {rows}", f"kept = {kept}"]


def _inline(entry: Mapping[str, Any]) -> str:
    return "{ " + ", ".join(f"{key} = {_value(value)}" for key, value in entry.items()) + " }"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, date)):
        return str(value) if not isinstance(value, date) else value.isoformat()
    return _quote(str(value))


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a TOML basic string


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


# ---- checking the tables ------------------------------------------------------------------------

def table_problems(mappings: MappingSet) -> list[str]:
    """Every problem in the NCCI tables as ``path: what is wrong``; [] when they are sound."""
    problems: list[str] = []
    for first, seconds in mappings.load(PTP).get("pairs", {}).items():
        for second, edits in seconds.items():
            for edit in edits if isinstance(edits, list) else [edits]:
                where = f'pairs."{first}"."{second}"'
                if not isinstance(edit.get("effective"), date):
                    problems.append(f"{where}: effective must be a date")
                if edit.get("modifier") not in (0, 1, 9):
                    problems.append(f"{where}: modifier must be 0, 1 or 9")
    for code, entry in mappings.load(MUE).get("codes", {}).items():
        if entry.get("withdrawn"):
            continue
        if not isinstance(entry.get("units"), int) or entry["units"] < 0:
            problems.append(f'codes."{code}": units must be a whole number')
        if entry.get("mai") not in (1, 2, 3):
            problems.append(f'codes."{code}": mai must be 1, 2 or 3')
    return problems
