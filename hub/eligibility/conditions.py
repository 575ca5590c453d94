"""What a payer's words say about authorization, read into rules a claim can be judged by.

    read(message) -> AuthRule | None

Payers put many authorization rules only in MSG text (domain reference 8.3), and most of them
have a condition: "visits over 20 require authorization", "prior auth required for 90837".
A rule whose condition a claim does not meet must not hold it, so a message is read with the
patterns of ``[authorization]`` in ``mappings/x12/eligibility_codes.toml``:

    None                                      nothing about authorization, or none is needed
    AuthRule()                                required, with no condition
    AuthRule(after_visits=20)                 required from the 21st visit on
    AuthRule(procedure_codes=("90837",))      required for these codes only
    AuthRule(readable=False)                  required under a condition the patterns cannot
                                              read: a warning on the claim, never an error

``bhhub.eligibility.benefits`` attaches the service types of the benefit the message came with
and where the plan year starts; ``bhhub.scrub.eligibility_checks`` judges each claim by them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from bhhub.eligibility import codes

MSG, EB11 = "MSG", "EB11"  # where a rule came from: free text, or the benefit's EB11 Y
CALENDAR_YEAR = "01-01"


@dataclass(frozen=True)
class AuthRule:
    """An authorization a payer requires, and the condition under which it does."""

    service_types: tuple[str, ...] = ()  # EB03 of the benefit it came with; empty or "30": every service
    procedure_codes: tuple[str, ...] = ()  # only for these codes (EB13, or codes the text names)
    after_visits: int | None = None  # the visits that need none; the next one does
    period_start: str = CALENDAR_YEAR  # "MM-DD": where the visits are counted from each year
    readable: bool = True  # False: a condition is written that the patterns could not read
    source: str = MSG
    message: str = ""  # the payer's text (benefit wording, no member data)

    @property
    def conditional(self) -> bool:
        return bool(self.procedure_codes) or self.after_visits is not None or not self.readable

    def describe(self) -> str:
        if not self.readable:
            return f"under a condition: {self.message!r}"
        parts = []
        if self.procedure_codes:
            parts.append("for " + ", ".join(self.procedure_codes))
        if self.after_visits is not None:
            parts.append(f"after visit {self.after_visits} (counted from {self.period_start} each year)")
        return " ".join(parts) or "always"

    def to_json(self) -> dict[str, Any]:
        return {"service_types": list(self.service_types), "procedure_codes": list(self.procedure_codes),
                "after_visits": self.after_visits, "period_start": self.period_start, "readable": self.readable,
                "source": self.source, "message": self.message, "describe": self.describe()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuthRule:
        return cls(service_types=tuple(data.get("service_types") or ()),
                   procedure_codes=tuple(data.get("procedure_codes") or ()), after_visits=data.get("after_visits"),
                   period_start=data.get("period_start") or CALENDAR_YEAR, readable=data.get("readable", True),
                   source=data.get("source") or MSG, message=data.get("message") or "")


@dataclass(frozen=True)
class _Patterns:
    required: tuple[re.Pattern, ...]
    not_required: tuple[re.Pattern, ...]
    after_visits: tuple[re.Pattern, ...]
    free_visits: tuple[re.Pattern, ...]
    procedure_codes: re.Pattern
    calendar_year: tuple[re.Pattern, ...]
    conditions: tuple[re.Pattern, ...]


_compiled: tuple[dict, _Patterns] | None = None


def _patterns() -> _Patterns:
    """The table's patterns, compiled once per table (a practice's overrides load a new one)."""
    global _compiled
    section = codes.authorization_patterns()
    if _compiled is None or _compiled[0] is not section:
        many = {name: tuple(re.compile(p) for p in section[name])
                for name in ("required", "not_required", "after_visits", "free_visits", "calendar_year", "conditions")}
        _compiled = (section, _Patterns(procedure_codes=re.compile(section["procedure_codes"]), **many))
    return _compiled[1]


def read(message: str) -> AuthRule | None:
    """The authorization rule ``message`` states; None when it states none (or says none is needed)."""
    text, patterns = message.lower(), _patterns()
    if any(p.search(text) for p in patterns.not_required):
        # "No authorization for the first 20 visits" still needs one for the 21st.
        free = _visits(text, patterns.free_visits)
        return _rule(message, text, patterns, after_visits=free) if free is not None else None
    if not any(p.search(text) for p in patterns.required):
        return None
    return _rule(message, text, patterns, after_visits=_visits(text, patterns.after_visits))


def for_procedure(rule: AuthRule | None, procedure_code: str, message: str = "", source: str = MSG) -> AuthRule:
    """A rule stated on a benefit of one procedure (EB13): it is for that code, which makes any
    other condition in its wording readable enough (the code is the condition)."""
    base = rule or AuthRule(source=source, message=message)
    codes_ = tuple(dict.fromkeys((procedure_code, *base.procedure_codes)))
    return replace(base, procedure_codes=codes_, readable=True)


def _rule(message: str, text: str, patterns: _Patterns, *, after_visits: int | None) -> AuthRule:
    procedure_codes = tuple(dict.fromkeys(c.upper() for c in patterns.procedure_codes.findall(text)))
    understood = after_visits is not None or bool(procedure_codes)
    readable = understood or not any(p.search(text) for p in patterns.conditions)
    start = CALENDAR_YEAR if any(p.search(text) for p in patterns.calendar_year) else ""
    return AuthRule(procedure_codes=procedure_codes, after_visits=after_visits, period_start=start,
                    readable=readable, source=MSG, message=message.strip())


def _visits(text: str, found_by: tuple[re.Pattern, ...]) -> int | None:
    for pattern in found_by:
        match = pattern.search(text)
        if match is None:
            continue
        named = match.groupdict()
        if named.get("visits") is not None:
            return int(named["visits"])
        if named.get("first") is not None and int(named["first"]) > 0:
            return int(named["first"]) - 1
    return None
