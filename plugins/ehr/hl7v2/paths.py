"""Field paths (``FT1-25.1``) and reading them from a message, group first.

A path is ``SEG-F`` (a field's first component), ``SEG-F.C`` (a component) or ``SEG-F.C.S``
(a sub-component); a mapping entry may list several, and the first that is not empty wins.

Where a path is read depends on what is being read: a service line reads in its FT1's group
(the FT1 and the segments after it up to the next FT1: its PR1, a ZTH), a coverage in its IN1's
group (IN1, IN2, IN3). A segment not found in the group is read from the message (its first
occurrence), so ``PV1-7.1`` can back up ``FT1-20.1`` for every line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from bhhub.plugins.ehr.hl7v2.wire import Message, Segment

_PATH = re.compile(r"^(?P<segment>[A-Z][A-Z0-9]{2})-(?P<field>[1-9][0-9]*)"
                   r"(?:\.(?P<component>[1-9][0-9]*)(?:\.(?P<sub>[1-9][0-9]*))?)?$")


@dataclass(frozen=True)
class Path:
    segment: str
    field: int
    component: int | None = None
    subcomponent: int | None = None

    def __str__(self) -> str:
        text = f"{self.segment}-{self.field}"
        if self.component is not None:
            text += f".{self.component}"
            if self.subcomponent is not None:
                text += f".{self.subcomponent}"
        return text

    @property
    def label(self) -> str:
        """The field, for messages to a biller: ``FT1-25``."""
        return f"{self.segment}-{self.field}"


def parse_path(text: str) -> Path | None:
    match = _PATH.match(text)
    if match is None:
        return None
    component, sub = match["component"], match["sub"]
    return Path(match["segment"], int(match["field"]), int(component) if component else None,
                int(sub) if sub else None)


def path_problem(text: str) -> str | None:
    """Why ``text`` is not a usable field path, or None."""
    path = parse_path(text)
    if path is None:
        return (f"{text!r} is not a field path (write SEGMENT-FIELD[.COMPONENT[.SUBCOMPONENT]], "
                f"e.g. 'PID-3.1' or 'ZTH-2')")
    most = _standard_field_count(path.segment)
    if most is not None and path.field > most:
        return f"{text!r}: segment {path.segment} has {most} fields in HL7 v2.3 to v2.8"
    return None


@lru_cache(maxsize=None)
def _standard_field_count(segment: str) -> int | None:
    """The most fields a standard segment has in the versions read (hl7apy's definitions);
    None for Z-segments and segments hl7apy does not define."""
    if segment.startswith("Z"):
        return None
    from hl7apy import load_library  # only when a mapping file is checked, once per segment

    counts = []
    for version in ("2.3", "2.5.1", "2.8.2"):
        definition = load_library(version).SEGMENTS.get(segment)
        if definition is not None:
            counts.append(len(definition[1]))
    return max(counts) if counts else None


class Scope:
    """Where paths are read: a group of segments first, then the whole message."""

    __slots__ = ("message", "group")

    def __init__(self, message: Message, group: list[Segment] | None = None):
        self.message = message
        self.group = group

    def segment(self, name: str) -> Segment | None:
        if self.group:
            for segment in self.group:
                if segment.name == name:
                    return segment
        return self.message.first(name)

    def value(self, paths: tuple[Path, ...]) -> tuple[str, Path | None]:
        """The first non-empty value among ``paths``, and the path it came from."""
        for path in paths:
            segment = self.segment(path.segment)
            if segment is not None:
                found = segment.value(path.field, path.component, path.subcomponent)
                if found:
                    return found, path
        return "", None

    def first(self, paths: tuple[Path, ...]) -> str:
        return self.value(paths)[0]

    def repeated(self, paths: tuple[Path, ...]) -> list[str]:
        """Every repetition's value at the first path that has any."""
        for path in paths:
            segment = self.segment(path.segment)
            if segment is None:
                continue
            values = [segment.value(path.field, path.component, path.subcomponent, repetition)
                      for repetition in range(len(segment.repetitions(path.field)))]
            values = [v for v in values if v]
            if values:
                return values
        return []


def groups(message: Message, leader: str, members: frozenset[str] | None = None) -> list[list[Segment]]:
    """Each ``leader`` segment with the segments after it, up to the next leader.

    With ``members``, a group ends at the first segment that is neither a member nor a
    Z-segment (so the DG1s after the last FT1 do not join its group).
    """
    found: list[list[Segment]] = []
    current: list[Segment] | None = None
    for segment in message.segments:
        if segment.name == leader:
            current = [segment]
            found.append(current)
        elif current is not None:
            if members is not None and segment.name not in members and not segment.name.startswith("Z"):
                current = None
            else:
                current.append(segment)
    return found
