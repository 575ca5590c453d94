"""Readers for FHIR datatypes: dates, codings, identifiers, quantities, extensions.

They take fhir.resources objects (already validated) and return plain values; none of them
re-validates or copies anything, so the walk stays a matter of attribute reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

# UCUM codes (and the spelled-out units EHRs put in Quantity.unit) for durations.
_MINUTES_PER_UNIT = {
    "min": Decimal(1), "minute": Decimal(1), "minutes": Decimal(1), "mins": Decimal(1),
    "h": Decimal(60), "hr": Decimal(60), "hour": Decimal(60), "hours": Decimal(60),
    "s": Decimal(1) / 60, "sec": Decimal(1) / 60, "seconds": Decimal(1) / 60,
}


def as_date(value: Any) -> date | None:
    """The calendar date of a FHIR date or dateTime, as written.

    An aware ``datetime`` keeps its own offset, so ``.date()`` is the local date the EHR wrote
    (no shift to UTC). Partial dates (``"2026-10"``) come through fhir.resources as strings
    and name no day: None.
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return None


def period_covers(period: Any, day: date) -> bool:
    """Whether a Period includes ``day``; an absent bound is open (R4 Period semantics)."""
    if period is None:
        return True
    start, end = as_date(period.start), as_date(period.end)
    return (start is None or start <= day) and (end is None or day <= end)


def code_in(concept: Any, systems: frozenset[str]) -> str | None:
    """The code of the first coding of a CodeableConcept whose system is one of ``systems``."""
    if concept is None:
        return None
    for coding in concept.coding or ():
        if coding.code and (coding.system or "") in systems:
            return coding.code
    return None


def first_code(concept: Any) -> str | None:
    """The first code of a CodeableConcept whatever its system (for FHIR's own status codes)."""
    for coding in getattr(concept, "coding", None) or ():
        if coding.code:
            return coding.code
    return None


def coding_code(coding: Any, systems: frozenset[str]) -> str | None:
    """The code of a single Coding (Encounter.class) when its system is one of ``systems``."""
    if coding is None or not coding.code or (coding.system or "") not in systems:
        return None
    return coding.code


def codes_in(concepts: Iterable[Any] | None, systems: frozenset[str]) -> list[str]:
    """Every code from a list of CodeableConcepts in one of ``systems``, in order."""
    found = []
    for concept in concepts or ():
        for coding in concept.coding or ():
            if coding.code and (coding.system or "") in systems:
                found.append(coding.code)
    return found


def has_coding(concepts: Iterable[Any] | None, pairs: frozenset[tuple[str, str]]) -> bool:
    for concept in concepts or ():
        for coding in concept.coding or ():
            if ((coding.system or ""), coding.code) in pairs:
                return True
    return False


def identifier_value(identifiers: Iterable[Any] | None, *, systems: frozenset[str] = frozenset(),
                     types: frozenset[str] = frozenset(), type_systems: frozenset[str] = frozenset()) -> str | None:
    """The value of the first identifier with one of ``systems``, or typed with one of ``types``.

    ``Identifier.type`` (v2-0203) says what an identifier is when its system is the issuer's own
    (a payer id issued by a clearinghouse, an MRN issued by the EHR).
    """
    for identifier in identifiers or ():
        if not identifier.value or identifier.use == "old":
            continue
        if identifier.system in systems:
            return identifier.value.strip()
        if types and code_in(identifier.type, type_systems) in types:
            return identifier.value.strip()
    return None


def typed_identifier(identifiers: Iterable[Any] | None, types: frozenset[str],
                     type_systems: frozenset[str]) -> Any:
    """The first identifier (with system and value) typed with one of ``types``."""
    for identifier in identifiers or ():
        if identifier.system and identifier.value and identifier.use != "old" and \
                code_in(identifier.type, type_systems) in types:
            return identifier
    return None


def first_identifier(identifiers: Iterable[Any] | None) -> Any:
    """The first identifier with both system and value: only those are unique beyond one EHR."""
    for identifier in identifiers or ():
        if identifier.system and identifier.value and identifier.use != "old":
            return identifier
    return None


def extension_value(extensions: Iterable[Any] | None, urls: frozenset[str]) -> Any:
    """The value of the first extension whose url is one of ``urls``."""
    if not urls:
        return None
    for extension in extensions or ():
        if extension.url in urls:
            for name in ("valueCode", "valueString", "valueInteger", "valueDecimal", "valuePositiveInt",
                         "valueUnsignedInt", "valueQuantity", "valueDuration", "valueCoding",
                         "valueCodeableConcept"):
                value = getattr(extension, name, None)
                if value is not None:
                    return value
    return None


def extension_values(extensions: Iterable[Any] | None, urls: frozenset[str]) -> list[Any]:
    """The values of every extension whose url is one of ``urls`` (modifiers repeat)."""
    if not urls:
        return []
    return [extension_value((e,), urls) for e in extensions or () if e.url in urls]


def as_code(value: Any) -> str | None:
    """A code from an extension value: a code or string, a Coding, or a CodeableConcept."""
    if isinstance(value, str):
        return value.strip() or None
    if getattr(value, "code", None):
        return value.code
    for coding in getattr(value, "coding", None) or ():
        if coding.code:
            return coding.code
    return None


def minutes_of(value: Any) -> int | None:
    """Whole minutes from a number (taken as minutes) or a Duration/Quantity with a time unit.

    Whole minutes only: CPT time is "attained", so 52.5 documented minutes are 52.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, Decimal, float)):
        amount = Decimal(str(value))
    else:
        if value.value is None:
            return None
        unit = (value.code or value.unit or "min").strip().lower()
        factor = _MINUTES_PER_UNIT.get(unit)
        if factor is None:
            return None
        amount = value.value * factor
    minutes = int(amount)
    return minutes if minutes > 0 else None


def period_minutes(period: Any) -> int | None:
    """Minutes between Period.start and Period.end when both carry a time of day."""
    if period is None or not isinstance(period.start, datetime) or not isinstance(period.end, datetime):
        return None
    seconds = (period.end - period.start).total_seconds()
    return int(seconds // 60) if seconds >= 60 else None


def icd10cm(code: str) -> str:
    """ICD-10-CM with its dot (the canonical model's convention): ``F331`` → ``F33.1``."""
    code = code.strip().upper()
    if "." not in code and len(code) > 3:
        code = f"{code[:3]}.{code[3:]}"
    return code


def money(value: Any) -> Decimal | None:
    return value.value if value is not None and value.value is not None else None
