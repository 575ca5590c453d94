"""Reading X12 segments, with the delimiters the ISA announces (domain reference 5.1).

    for segment in segments(data):            # bytes or str, or segments_from_file(path)
        segment.id                             # "CLM"
        segment[1]                             # CLM01; "" when absent (never IndexError)
        segment.components(5)                  # CLM05 split on the component separator
        segment.number                         # 1-based position in the interchange (ISA is 1)

The ISA is fixed width: the element separator is its fourth character, the repetition
separator ISA11 (position 82), the component separator ISA16 (position 104) and the segment
terminator the character after it. Line breaks after a terminator are ignored, as every
clearinghouse writes them. Reading from a file streams: memory stays flat in the file's size.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from bhhub.errors import InputError
from bhhub.x12.delimiters import Delimiters

ISA_LENGTH = 106  # through the segment terminator
_WHITESPACE = " \t\r\n\ufeff"


@dataclass(frozen=True, slots=True)
class Segment:
    elements: tuple[str, ...]  # elements[0] is the segment id
    number: int
    delimiters: Delimiters

    @property
    def id(self) -> str:
        return self.elements[0]

    def __getitem__(self, position: int) -> str:
        return self.elements[position] if 0 <= position < len(self.elements) else ""

    def __len__(self) -> int:
        return len(self.elements)

    def components(self, position: int) -> list[str]:
        value = self[position]
        return value.split(self.delimiters.component) if value else []

    def component(self, position: int, index: int) -> str:
        """The ``index``-th (1-based) component of element ``position``; "" when absent."""
        parts = self.components(position)
        return parts[index - 1] if 0 < index <= len(parts) else ""

    def repetitions(self, position: int) -> list[str]:
        value = self[position]
        return value.split(self.delimiters.repetition) if value else []

    def __str__(self) -> str:  # for locations in messages: id and position, never values
        return f"{self.id} (segment {self.number})"


def delimiters_of(head: str) -> Delimiters:
    """The delimiters an ISA announces; ``InputError`` if ``head`` does not start with one."""
    text = head.lstrip(_WHITESPACE)
    if not text.startswith("ISA"):
        raise InputError("not an X12 interchange: it does not start with an ISA segment")
    if len(text) < ISA_LENGTH:
        raise InputError(f"the ISA segment is cut short ({len(text)} of {ISA_LENGTH} characters)")
    element = text[3]
    if text.count(element, 0, ISA_LENGTH) != 16:
        raise InputError("the ISA segment is not the fixed 106 characters its 16 elements need "
                         "(the separators cannot be read from it)")
    try:
        return Delimiters(element=element, repetition=text[82], component=text[104], segment=text[105])
    except ValueError as exc:
        raise InputError(f"the ISA announces unusable separators: {exc}") from None


def segments(data: bytes | str) -> Iterator[Segment]:
    """Every segment of an interchange held in memory."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, (bytes, bytearray)) else data
    delimiters = delimiters_of(text[: ISA_LENGTH + 8])
    start = len(text) - len(text.lstrip(_WHITESPACE))
    yield from _split(iter([text[start:]]), delimiters)


def segments_from_file(path: Path | str, chunk_size: int = 1 << 16) -> Iterator[Segment]:
    """Every segment of an X12 file, read in chunks."""
    with open(path, "rb") as handle:
        yield from segments_from_stream(handle, chunk_size)


def segments_from_stream(stream: BinaryIO, chunk_size: int = 1 << 16) -> Iterator[Segment]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    head = ""
    while len(head.lstrip(_WHITESPACE)) < ISA_LENGTH:
        block = stream.read(chunk_size)
        if not block:
            break
        head += decoder.decode(block)
    delimiters = delimiters_of(head)
    head = head.lstrip(_WHITESPACE)

    def chunks() -> Iterator[str]:
        yield head
        while block := stream.read(chunk_size):
            yield decoder.decode(block)
        yield decoder.decode(b"", final=True)

    yield from _split(chunks(), delimiters)


def _split(chunks: Iterator[str], delimiters: Delimiters) -> Iterator[Segment]:
    terminator, separator = delimiters.segment, delimiters.element
    number = 0
    rest = ""
    for chunk in chunks:
        rest += chunk
        pieces = rest.split(terminator)
        rest = pieces.pop()
        for piece in pieces:
            piece = piece.strip(_WHITESPACE)
            if piece:
                number += 1
                yield Segment(tuple(piece.split(separator)), number, delimiters)
    rest = rest.strip(_WHITESPACE)
    if rest:
        number += 1
        yield Segment(tuple(rest.split(separator)), number, delimiters)
