"""Element readers the TA1, 999 and 277CA readers share: a missing element is an ``InputError``
whose message names the element and where it stands (segment and loop), never its value."""

from __future__ import annotations

from bhhub.errors import InputError
from bhhub.x12.tokens import Segment


def at(segment: Segment, loop: str) -> str:
    return f"{segment.id} (segment {segment.number}, loop {loop})"


def where(segment: Segment, loop: str | None) -> str:
    return at(segment, loop) if loop else str(segment)


def required(segment: Segment, position: int, name: str, loop: str | None = None) -> str:
    value = segment[position]
    if not value:
        raise InputError(f"{name} is missing", where=where(segment, loop))
    return value
