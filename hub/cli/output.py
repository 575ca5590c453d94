"""Printing for people (aligned tables, a progress bar on a terminal) and for scripts (JSON)."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, TypeVar

from bhhub.errors import UsageError
from bhhub.common.jsontext import count  # noqa: F401 - the CLI's modules take it from here
from bhhub.common.jsontext import plain as _plain
from bhhub.common.jsontext import timestamp  # noqa: F401 - the CLI's modules take it from here
from bhhub.common.text import clip  # noqa: F401 - the CLI's modules take it from here

T = TypeVar("T")


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=_plain, ensure_ascii=False)
    sys.stdout.write("\n")


def print_json_array(items: Iterable[Any]) -> int:
    """Print ``items`` as one JSON array, each object on its own line as soon as it comes.

    The same JSON value ``print_json(list(items))`` prints, laid out one element per line: the
    indented layout costs Python's pure-Python encoder, several times the listing's own work,
    where one line per object takes the C encoder (and reads well with grep; ``jq`` indents it).
    How many were printed. An error part way leaves the array unfinished (and the exit code
    says so)."""
    encode = json.JSONEncoder(default=_plain, ensure_ascii=False).encode
    write = sys.stdout.write
    count = 0
    for item in items:
        write(("[\n" if count == 0 else ",\n") + encode(item))
        count += 1
    write("\n]\n" if count else "[]\n")
    return count


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    text_rows = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text_rows)) if text_rows else len(h) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    for row in text_rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def progress(items: Sequence[T], label: str, *, stream=None) -> Iterator[T]:
    """Yield ``items``, drawing a bar on stderr when it is a terminal and the work is long."""
    stream = stream or sys.stderr
    show = stream.isatty() and len(items) > 1
    total = len(items)
    for done, item in enumerate(items):
        if show:
            filled = int(30 * done / total)
            stream.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
            stream.flush()
        yield item
    if show:
        stream.write(f"\r{label} [{'#' * 30}] {total}/{total}\n")
        stream.flush()


def date_option(text: str | None, option: str) -> date | None:
    """The date an option names (``--from 2026-11-30``); None when it was not given. Written
    YYYY-MM-DD only, the hub's one date rule (``bhhub.runtime.clock.iso_date``): 20261130 is refused too."""
    from bhhub.runtime.clock import DATE_RULE, iso_date

    if text is None:
        return None
    try:
        return iso_date(text)
    except ValueError:
        raise UsageError(f"{option} must be a date written {DATE_RULE}, not {text!r}") from None


def date_range(since: date | None, until: date | None, first: str = "--since", last: str = "--until") -> None:
    """Refuse a range that ends before it starts: it could only ever match nothing."""
    if since is not None and until is not None and until < since:
        raise UsageError(f"{first} {since} is after {last} {until}: nothing could match; swap them")

