"""The small JSON path language of portal mapping files.

    "coverage.status"            key coverage, then key status
    "plans[0].benefits"          the first element of the list under plans, then benefits
    "$.coverage.status"          the same as "coverage.status" ($ is the answer itself)
    "$"                          the answer (or, relative to a list element, the element)

``get(data, path)`` returns ``MISSING`` when any step is absent, so "not stated" is told from
JSON ``null`` only where it matters; a step of the wrong kind (a key into a list) is
``WrongShape``, which the plugin turns into an ``InputError`` naming the path, never the value.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

MISSING = object()
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class WrongShape(Exception):
    """The answer is not shaped as the path says (a key asked of a list, an index of a table)."""

    def __init__(self, path: str, step: str, found: str):
        super().__init__(f"{path}: expected {step} but found {found}")
        self.path, self.step, self.found = path, step, found


def path_problem(path: str) -> str | None:
    """Why ``path`` is not a usable path, or None."""
    try:
        _steps(path)
    except ValueError as exc:
        return str(exc)
    return None


@lru_cache(maxsize=512)
def _steps(path: str) -> tuple[str | int, ...]:
    text = path.strip()
    if text.startswith("$"):
        text = text[1:].lstrip(".")
    steps: list[str | int] = []
    position = 0
    while position < len(text):
        if text[position] == "." and steps and position + 1 < len(text):
            position += 1
        match = _STEP.match(text, position)
        if match is None:
            raise ValueError(f"{path!r} is not a JSON path (names joined by '.', list positions as [0])")
        steps.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        position = match.end()
    return tuple(steps)


def get(data: Any, path: str) -> Any:
    """The value at ``path`` in ``data``; ``MISSING`` when a key or position is absent."""
    current = data
    for step in _steps(path):
        if current is None:
            return MISSING
        if isinstance(step, int):
            if not isinstance(current, list):
                raise WrongShape(path, f"a list before [{step}]", _kind(current))
            if step >= len(current):
                return MISSING
            current = current[step]
        else:
            if not isinstance(current, dict):
                raise WrongShape(path, f"an object with {step!r}", _kind(current))
            if step not in current:
                return MISSING
            current = current[step]
    return current


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)
