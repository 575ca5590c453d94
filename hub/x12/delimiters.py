"""The four X12 separators, announced by the ISA segment itself (domain reference 5.1).

Their own module: the tokenizer, the segment writer and the envelope writer all need them, and
the envelope writer writes through the segment writer.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Delimiters:
    """The four separators, announced by the ISA segment itself (domain reference 5.1)."""

    element: str = "*"
    repetition: str = "^"  # ISA11 in 5010
    component: str = ":"  # ISA16
    segment: str = "~"

    def __post_init__(self) -> None:
        chosen = (self.element, self.repetition, self.component, self.segment)
        if any(len(c) != 1 or c.isalnum() or c.isspace() for c in chosen) or len(set(chosen)) != 4:
            raise ValueError(f"delimiters must be four distinct punctuation characters: {chosen!r}")

    def __contains__(self, char: str) -> bool:
        return char in (self.element, self.repetition, self.component, self.segment)
