"""What day it is, for the rules that count days (timely filing, future dates of service).

``BHHUB_TODAY=2026-11-29`` fixes it: the test suite does, so claims with fixed dates of service
are judged the same whenever the tests run, and a biller can re-check claims as of another day.
"""

from __future__ import annotations

import os
import re
from datetime import date

from bhhub.errors import ConfigError


# The one form a person writes a date in, everywhere (options, CSV files, BHHUB_TODAY): ISO 8601's
# extended calendar date. Python's fromisoformat also takes 20261201 and 2026-W49-1, which read as
# typos next to a refused 2026-1-1; one rule is easier to say in an error and in --help.
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
DATE_RULE = "YYYY-MM-DD, e.g. 2026-11-30"


def iso_date(text: str) -> date:
    """``text`` as a date when it is exactly YYYY-MM-DD and a real day; ``ValueError`` otherwise."""
    if not ISO_DATE.fullmatch(text):
        raise ValueError(f"not YYYY-MM-DD: {text!r}")
    return date.fromisoformat(text)


_PARSED: dict[str, date] = {}  # BHHUB_TODAY's value -> its date: rules ask once per claim


def today() -> date:
    value = os.environ.get("BHHUB_TODAY")
    if not value:
        return date.today()
    parsed = _PARSED.get(value)
    if parsed is None:
        try:
            parsed = _PARSED[value] = iso_date(value)
        except ValueError:
            raise ConfigError(f"BHHUB_TODAY must be a date written {DATE_RULE}, not {value!r}") from None
    return parsed
