"""HL7 v2 data types as Python values: dates and timestamps (DT, TS/DTM), numbers (NM), money.

Refusals name the field (``FT1-4``) and the message, never the value when it may be PHI.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from bhhub.errors import InputError

# DTM: YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ] (v2.5.1 2A.3.22)
_TS = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d{1,4})?([+-]\d{4})?$")


def parse_ts(text: str) -> tuple[datetime, timezone | None] | None:
    """(local wall-clock time, its UTC offset when sent), or None when not a timestamp."""
    match = _TS.match(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, offset = match.groups()
    try:
        wall = datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        return None
    zone = None
    if offset:
        minutes = int(offset[1:3]) * 60 + int(offset[3:5])
        zone = timezone(timedelta(minutes=minutes if offset[0] == "+" else -minutes))
    return wall, zone


def full_date(text: str) -> date | None:
    """A date with day precision (YYYYMMDD at least), else None."""
    stripped = text.strip()
    if len(stripped) < 8:
        return None
    parsed = parse_ts(stripped)
    return parsed[0].date() if parsed else None


def required_date(text: str, label: str, where: str, fix: str) -> date:
    found = full_date(text)
    if found is None:
        what = "is empty" if not text else "is not a date with year, month and day (YYYYMMDD)"
        raise InputError(f"{label} {what}", where=where, fix=fix)
    return found


def optional_date(text: str) -> date | None:
    return full_date(text) if text else None


def as_utc(text: str) -> datetime | None:
    """A timestamp as an aware UTC datetime (a time sent without an offset is taken as UTC)."""
    parsed = parse_ts(text) if text else None
    if parsed is None:
        return None
    wall, zone = parsed
    return wall.replace(tzinfo=zone or timezone.utc).astimezone(timezone.utc)


def decimal(text: str, label: str, where: str) -> Decimal | None:
    if not text:
        return None
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():  # the value itself is never quoted (bhhub.plugins.ehr.hl7v2.shown)
        raise InputError(f"{label} is not a number", where=where,
                         fix=f"send {label} as a plain number (e.g. 150.00)") from None
    return value
