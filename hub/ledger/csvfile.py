"""Registries imported from CSV files a practice keeps (authorizations, enrollments).

One reading for all of them: UTF-8 (a spreadsheet's byte-order mark allowed), a header naming
known columns, every row parsed, and every problem named by its line number so that a file is
imported whole or not at all.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from bhhub.errors import InputError
from bhhub.common.filekinds import input_file

Row = TypeVar("Row")


def read_rows(path: Path, *, columns: Sequence[str], required: Sequence[str], what: str,
              parse: Callable[[int, dict[str, str]], tuple[Row | None, list[str]]]) -> tuple[list[Row], list[str]]:
    """(parsed rows, "line N: ..." problems) of the CSV file at ``path``. ``parse(line, values)``
    gets a row's stripped values by column. A missing or unknown column, an unreadable file, or a
    header with no rows is an ``InputError`` naming ``what`` ("the enrollment file")."""
    input_file(path)  # a FIFO would block the import, a device never end
    rows: list[Row] = []
    problems: list[str] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in required if c not in header]
            unknown = [h for h in header if h not in columns]
            if missing or unknown:
                raise InputError(f"the header must be {','.join(columns)}"
                                 + (f"; missing {', '.join(missing)}" if missing else "")
                                 + (f"; unknown {', '.join(unknown)}" if unknown else ""), where=str(path))
            reader.fieldnames = header
            for record in reader:
                row, row_problems = parse(reader.line_num, _values(record))
                if None in record:
                    row_problems = ["more columns than the header", *row_problems]
                if row_problems:
                    problems.append(f"line {reader.line_num}: {'; '.join(row_problems)}")
                else:
                    rows.append(row)
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror}", where=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} is not UTF-8 text", where=str(path)) from exc
    if not rows and not problems:
        raise InputError(f"{what} has a header but no rows", where=str(path))
    return rows, problems


def _values(record: dict[Any, Any]) -> dict[str, str]:
    return {k: (v or "").strip() for k, v in record.items() if k is not None}
