"""What day it is, for the rules that count days (timely filing, future dates of service).

``BHHUB_TODAY=2026-11-29`` fixes it: the test suite does, so claims with fixed dates of service
are judged the same whenever the tests run, and a biller can re-check claims as of another day.
"""

from __future__ import annotations

import os
from datetime import date

from hub.errors import ConfigError


def today() -> date:
    value = os.environ.get("BHHUB_TODAY")
    if not value:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"BHHUB_TODAY must be a date like 2026-11-29, not {value!r}") from None
