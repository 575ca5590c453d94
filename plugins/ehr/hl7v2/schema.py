"""A small schema check for mapping tables: every problem found, then reported together.

A schema is a dict of key → kind, or key → nested schema. Kinds: ``paths`` (a field path or a
list of them), ``strings`` (a list), ``string``, ``codes`` (a table of code → string),
``numbers`` (a table of code → number). A kind ending in ``?`` may be left out; the key ``*``
stands for any key (a table of practices by name).
"""

from __future__ import annotations

import difflib

from collections.abc import Callable
from typing import Any

from bhhub.runtime.mapping_tables import MappingSet

from bhhub.plugins.ehr.hl7v2.paths import path_problem


def check(table: Any, schema: dict[str, Any], *, required: bool, where: str = "") -> list[str]:
    problems: list[str] = []
    if not isinstance(table, dict):
        return [f"[{where}] must be a table"]
    wildcard = schema.get("*")
    for key, value in table.items():
        name = f"{where}.{key}" if where else key
        kind = schema.get(key, wildcard)
        if kind is None:
            known = [k for k in schema if k != "*"]
            near = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"known here: {', '.join(known)}"
            problems.append(f"unknown key {name!r} ({hint})")
        elif isinstance(kind, dict):
            problems += check(value, kind, required=required, where=name)
        else:
            problems += _check_value(name, kind.rstrip("?"), value)
    if required:
        for key, kind in schema.items():
            # A "?" kind may be left out, and so may a table of any keys (practices, clinicians).
            optional = kind.endswith("?") if isinstance(kind, str) else "*" in kind
            if key != "*" and key not in table and not optional:
                problems.append(f"key {(f'{where}.{key}' if where else key)!r} is missing")
    return problems


def _check_value(name: str, kind: str, value: Any) -> list[str]:
    if kind == "paths":
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return [f"{name} must be a field path or a list of field paths, not {_kind(value)}"]
        return [f"{name}: {problem}" for problem in map(path_problem, texts) if problem]
    if kind == "strings":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return [f"{name} must be a list of strings, not {_kind(value)}"]
        return []
    if kind == "string":
        return [] if isinstance(value, str) else [f"{name} must be a string, not {_kind(value)}"]
    if kind == "codes":
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            return [f"[{name}] must map codes to strings"]
        return []
    if kind == "numbers":
        if not isinstance(value, dict) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values()):
            return [f"[{name}] must map codes to numbers"]
        return []
    raise AssertionError(f"unknown schema kind {kind}")  # pragma: no cover - a bug in a schema


def _kind(value: Any) -> str:
    return {str: "a string", int: "a number", float: "a number", bool: "true/false", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


_CACHE: dict[tuple[int, str], tuple[dict[str, Any], Any]] = {}


def cached(mappings: MappingSet, name: str, build: Callable[[dict[str, Any]], Any]) -> Any:
    """``build(table)`` once per loaded table (a MappingSet caches its tables)."""
    table = mappings.load(name)
    found = _CACHE.get((id(table), name))
    if found is not None and found[0] is table:
        return found[1]
    built = build(table)
    if len(_CACHE) >= 64:  # many MappingSets (tests): keep the cache small
        _CACHE.clear()
    _CACHE[(id(table), name)] = (table, built)
    return built
