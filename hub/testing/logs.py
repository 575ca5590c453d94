"""What a plugin logs while it reads, and whether any of it is patient data (no PHI in logs)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from bhhub.model import Encounter


class LogCapture(logging.Handler):
    """Every record logged while active, as text (message and exception), by logger name."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f" {record.exc_info[1]}"
        self.texts.append(f"{record.name}: {text}")


@contextmanager
def captured_logs() -> Iterator[LogCapture]:
    """Capture every logger at DEBUG while active; the root logger's level is restored after."""
    root = logging.getLogger()
    capture, saved = LogCapture(), root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(saved)


def phi_of(encounters: Sequence[Encounter]) -> set[str]:
    """Strings that identify the goldens' patients: names, member ids, dates of birth."""
    found: set[str] = set()
    for e in encounters:
        people = [e.patient] + [c.subscriber for c in e.coverages if c.subscriber is not None]
        for person in people:
            found |= {n for n in (person.name.family, person.name.given) if n and len(n) >= 3}
            if person.birth_date:
                found |= {person.birth_date.isoformat(), person.birth_date.strftime("%Y%m%d"),
                          person.birth_date.strftime("%m/%d/%Y")}
        found |= {c.member_id for c in e.coverages if c.member_id and len(c.member_id) >= 4}
    return found
