"""What the hub's built-in claim checks (``bhhub.scrub.core``, ``bhhub.scrub.diagnosis_checks``,
``bhhub.scrub.filing_checks``) share: the validity table (``mappings/rules/validity.toml``), the
packaged tables for a check run without a hub, the finding helpers, and :func:`today`, the date
the date rules (future service, timely filing) measure from, which tests replace here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from bhhub.model import Finding, Severity
from bhhub.runtime import clock
from bhhub.runtime.mapping_tables import MappingSet

VALIDITY = "rules/validity.toml"
_PACKAGED = MappingSet()  # the packaged tables, when a check runs without a hub (unit tests)


def today() -> date:
    """The date the date rules (future service, timely filing) measure from (``bhhub.runtime.clock``)."""
    return clock.today()


def mappings_for(context: Any) -> MappingSet:
    mappings = getattr(context, "mappings", None)
    return mappings if isinstance(mappings, MappingSet) else _PACKAGED


def validity_table(context: Any) -> Mapping[str, Any]:
    return mappings_for(context).load(VALIDITY)


def error(code: str, message: str, fix: str, line: int | None = None) -> Finding:
    return Finding(code, Severity.ERROR, message, fix, line)


def warning(code: str, message: str, fix: str, line: int | None = None) -> Finding:
    return Finding(code, Severity.WARNING, message, fix, line)


def severity_of(name: str) -> Severity:
    return Severity(str(name).lower())
