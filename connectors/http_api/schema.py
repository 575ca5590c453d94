"""A small schema check for portal mapping files: every problem found, then reported together.

A schema is a dict of key → kind, or key → nested schema. Kinds: ``string``, ``strings`` (a
list), ``number`` (above zero), ``bool``, ``url`` (``https://``), ``path`` (a JSON path, see
``bhhub.connectors.http_api.jsonpath``), ``values`` (a table of portal value → string, number or
true/false: a translation), ``any`` (anything: a request body template). A kind ending in
``?`` may be left out; the key ``*`` stands for any key.

Secrets never belong in a mapping file: a key that looks like one (``client_secret``,
``password``, ``api_key``, ``token``) is refused with the way to give it instead.
"""

from __future__ import annotations

import difflib

from typing import Any

from bhhub.errors import MappingError

from bhhub.connectors.http_api.jsonpath import path_problem

_SECRET_KEYS = ("client_secret", "secret", "password", "api_key", "access_token", "token", "client_id")


def check(table: Any, schema: dict[str, Any], *, where: str = "") -> list[str]:
    """Every problem of ``table`` against ``schema``, as lines naming the key."""
    if not isinstance(table, dict):
        return [f"[{where}] must be a table"]
    problems: list[str] = []
    wildcard = schema.get("*")
    for key, value in table.items():
        name = f"{where}.{key}" if where else key
        kind = schema.get(key, wildcard)
        if key in _SECRET_KEYS:
            problems.append(f"{name}: secrets are never written in a mapping file (it would be committed); "
                            f"name an environment variable ({key}_env) or a file outside the repository "
                            f"({key}_file) instead")
        elif kind is None:
            known = [k for k in schema if k != "*"]
            near = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"known here: {', '.join(known)}"
            problems.append(f"unknown key {name!r} ({hint})")
        elif isinstance(kind, dict):
            problems += check(value, kind, where=name)
        else:
            problems += _check_value(name, kind.rstrip("?"), value)
    for key, kind in schema.items():
        optional = kind.endswith("?") if isinstance(kind, str) else _all_optional(kind)
        if key != "*" and key not in table and not optional:
            problems.append(f"key {(f'{where}.{key}' if where else key)!r} is missing")
    return problems


def _all_optional(schema: dict[str, Any]) -> bool:
    return all((k == "*") or (v.endswith("?") if isinstance(v, str) else _all_optional(v)) for k, v in schema.items())


def _check_value(name: str, kind: str, value: Any) -> list[str]:
    if kind == "any":
        return []
    if kind == "string":
        return [] if isinstance(value, str) and value else [f"{name} must be a non-empty string, not {_kind(value)}"]
    if kind == "strings":
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            return [f"{name} must be a list of strings, not {_kind(value)}"]
        return []
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            return [f"{name} must be a number above zero, not {_kind(value)}"]
        return []
    if kind == "bool":
        return [] if isinstance(value, bool) else [f"{name} must be true or false, not {_kind(value)}"]
    if kind == "url":
        if not isinstance(value, str) or not value.startswith("https://"):
            return [f"{name} must be an https:// URL (patient data never travels unencrypted)"]
        return []
    if kind == "path":
        if not isinstance(value, str):
            return [f"{name} must be a JSON path (a string), not {_kind(value)}"]
        problem = path_problem(value)
        return [f"{name}: {problem}"] if problem else []
    if kind == "values":
        if not isinstance(value, dict) or not all(isinstance(v, (str, bool, int, float)) for v in value.values()):
            return [f"[{name}] must map portal values to strings, numbers or true/false"]
        return []
    raise AssertionError(f"unknown schema kind {kind}")  # pragma: no cover - a bug in a schema


def _kind(value: Any) -> str:
    return {str: "a string", int: "a number", float: "a number", bool: "true/false", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def raise_problems(source: str, problems: list[str]) -> None:
    """One ``MappingError`` naming the file and every problem, or nothing."""
    if problems:
        raise MappingError(f"{source}: {len(problems)} problem(s): " + "; ".join(problems),
                           fix="correct the mapping file (docs/plugins.md, \"Payer portals\")")
