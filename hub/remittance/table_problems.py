"""Checking a remittance rules table (``denials.toml``, ``filing_windows.toml``) as it is read:
each problem is added to a list, named by its path in the table, so one error lists them all."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def subtable(entry: Mapping[str, Any], key: str, path: str, problems: list[str]) -> Mapping[str, Any]:
    """``entry[key]`` when it is a table (empty when absent); a problem and an empty table when not."""
    value = entry.get(key, {})
    return value if is_table(value, f"{path}.{key}" if path else key, problems) else {}


def is_table(value: Any, path: str, problems: list[str]) -> bool:
    """Whether ``value`` is a table; a problem naming ``path`` when not."""
    if isinstance(value, Mapping):
        return True
    problems.append(f"{path}: must be a table, not {value!r}")
    return False
