"""What day it is, for the rules that count days (timely filing, future dates of service).

``BHHUB_TODAY=2026-11-29`` fixes it: the test suite does, so claims with fixed dates of service
are judged the same whenever the tests run, and a biller can re-check claims as of another day.
"""

from __future__ import annotations

import os
from datetime import date

from hub.errors import ConfigError


_PARSED: dict[str, date] = {}  # BHHUB_TODAY's value -> its date: rules ask once per claim


def today() -> date:
    value = os.environ.get("BHHUB_TODAY")
    if not value:
        return date.today()
    parsed = _PARSED.get(value)
    if parsed is None:
        try:
            parsed = _PARSED[value] = date.fromisoformat(value)
        except ValueError:
            raise ConfigError(f"BHHUB_TODAY must be a date like 2026-11-29, not {value!r}") from None
    return parsed
