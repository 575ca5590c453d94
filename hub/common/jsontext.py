"""The one JSON vocabulary every ``--json`` and every ``/api/`` answer shares: money (a
``Decimal``) as a number of dollars, a date as ``YYYY-MM-DD``, a time in ISO 8601 with its
offset. The command line (``bhhub.cli.output``) and the workspace (``bhhub.web``) both print
through here, so a figure reads the same in a script and in a browser."""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any


def plain(value: Any) -> Any:
    """``json``'s ``default=``: what JSON cannot say itself."""
    convert = _PLAIN.get(type(value))  # the exact types first: called for every amount and date of a listing
    if convert is not None:
        return convert(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def timestamp(value: datetime) -> str:
    """``value`` in ISO 8601 with its offset. The hub stores UTC; SQLite gives it back without
    a zone, so a time without one is UTC (``2026-12-07T15:43:50+00:00``), never left ambiguous."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()


_PLAIN = {Decimal: float, date: date.isoformat, datetime: timestamp}


def count(value: Decimal | float | int | None) -> int | float | None:
    """A count (visits, units) for JSON: a whole one is an integer (``5``, not ``5.0``, which is
    how money reads); a part unit stays a number (``1.5``). One that is not finite (stored
    before the ledger refused it) is shown as it is, never a traceback."""
    if value is None or isinstance(value, bool):
        return value
    if not (value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)):
        return float(value)
    return int(value) if value == int(value) else float(value)


def dumps(data: Any, *, indent: int | None = None) -> str:
    return json.dumps(data, default=plain, ensure_ascii=False, indent=indent)


def loads_plain(data: Any) -> Any:
    """``data`` as the JSON text would read back: dates as text, money as numbers."""
    return json.loads(dumps(data))
