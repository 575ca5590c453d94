"""Which findings no person may override: those that would make the 837P invalid.

The set is data (``mappings/rules/never_overridden.toml``, with the rule and each code's reason),
read from bhhub's own package only, so a practice's ``<home>/mappings`` cannot weaken it.
``bhhub override`` refuses these codes, and the scrub ignores an override of one recorded
before the table listed it.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources

TABLE = "rules/never_overridden.toml"


@cache
def never_overridden() -> dict[str, str]:
    """Finding code -> why it cannot be overridden."""
    table = tomllib.loads(resources.files("bhhub.mappings").joinpath(TABLE).read_text(encoding="utf-8"))
    return {str(code): str(reason) for code, reason in table["never"].items()}


def why_not_overridable(code: str) -> str | None:
    """Why ``code`` cannot be overridden, or None when a person may override it."""
    return never_overridden().get(code)
