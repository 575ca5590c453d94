"""Name, address and demographic segments (NM1, N3, N4, DMG) shared by the 837P loops.

Maximum lengths are the 005010X222A1 ones (NM103 60, NM104 35, NM105 25, NM107 10, N301/N302 55,
N401 2-30, N403 3-15). Free text is cut to fit; an element that is required and left empty
after cleaning raises ``ValueError`` naming the party (``what``), never the person's name.
"""

from __future__ import annotations

import re

from bhhub.model import Address, Person, PersonName
from bhhub.x12.segments import SegmentList, date8, identifier, text

GENDERS = frozenset({"M", "F", "U"})  # DMG03


def person_name(
    out: SegmentList, entity: str, name: PersonName, what: str, id_qualifier: str | None = None,
    id_value: str | None = None,
) -> None:
    """NM1 for a person (NM102 1): last, first, middle, no prefix, suffix, then the id."""
    family = _required_text(out, name.family, 60, f"{what} last name")
    d = out.delimiters
    out.add(
        "NM1", entity, "1", family, text(name.given, d, 35), text(name.middle, d, 25), None,
        text(name.suffix, d, 10), id_qualifier, id_value,
    )


def organization_name(
    out: SegmentList, entity: str, name: str, what: str, id_qualifier: str, id_value: str
) -> None:
    """NM1 for an organisation (NM102 2): NM104-NM107 are not used."""
    out.add("NM1", entity, "2", _required_text(out, name, 60, f"{what} name"), None, None, None, None,
            id_qualifier, id_value)


def address(out: SegmentList, place: Address, what: str) -> None:
    """N3 street lines and N4 city, state, ZIP (the ZIP as given, without its dash)."""
    d = out.delimiters
    out.add("N3", _required_text(out, place.line1, 55, f"{what} street address"), text(place.line2, d, 55))
    city = _required_text(out, place.city, 30, f"{what} city")
    if len(city) < 2:
        raise ValueError(f"{what} city must have at least 2 characters")
    state = text(place.state, d, 2)
    if len(state) != 2:
        raise ValueError(f"{what} state must be a 2-letter code")
    postal = identifier(re.sub(r"[\s-]", "", place.postal_code or ""), d, f"{what} ZIP code", 15, 3)
    out.add("N4", city, state, postal)


def demographics(out: SegmentList, person: Person, what: str) -> None:
    """DMG*D8*birth date*gender; the loops that need it have checked the birth date is known."""
    if person.birth_date is None:
        raise ValueError(f"{what} birth date is missing")
    if person.gender not in GENDERS:
        raise ValueError(f"{what} gender must be M, F or U")
    out.add("DMG", "D8", date8(person.birth_date), person.gender)


def _required_text(out: SegmentList, value: str | None, max_length: int, what: str) -> str:
    cleaned = text(value, out.delimiters, max_length)
    if not cleaned:
        raise ValueError(f"{what} is missing or has no characters X12 can carry")
    return cleaned
