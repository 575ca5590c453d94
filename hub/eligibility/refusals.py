"""What a payer's refusal of an eligibility question means for the member's claims.

    reasons(response_json, mappings) -> [Reason]

A 271 whose question was refused (an AAA at 2100A-D, domain reference 8.3) says nothing about
coverage, but its reason may be about what every claim carries too: a member id the payer does
not know (72, 75), a name or date of birth that does not match (73, 58, 71). Such a reason is an
error on the member's claims not yet sent, naming the field to correct; "ask again later"
(42, 79, 80) is nothing; any other reason (the provider's id, the dates asked) is a warning.
Which is which is data: ``[rejections]`` in ``mappings/rules/eligibility.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TABLE = "rules/eligibility.toml"


@dataclass(frozen=True)
class Reason:
    code: str  # AAA03
    meaning: str
    follow_up: str  # AAA04's meaning, "" when not given
    field: str | None  # what to correct, for a reason about the member's identity

    @property
    def identity(self) -> bool:
        return self.field is not None

    def describe(self) -> str:
        return f"{self.meaning} ({self.code})"


def reasons(response: dict[str, Any] | None, mappings) -> list[Reason]:
    """The reasons above the benefit loops (AAA at 2100A-D, or a portal's) that concern the
    member's claims, once each, identity reasons first."""
    return reasons_of([r for r in (response or {}).get("rejections", []) if not r.get("loop", "").startswith("2110")],
                      mappings)


def reasons_of(rejections: list[dict[str, Any]], mappings) -> list[Reason]:
    """The reasons of these AAAs (as ``Rejection.to_json`` keeps them) that concern claims, once
    each, identity reasons first: also those of one benefit (2110C/D), which concern the claims
    for that benefit's services."""
    table = mappings.load(TABLE).get("rejections", {})
    retry, identity = set(table.get("retry", [])), table.get("identity", {})
    found: dict[str, Reason] = {}
    for rejection in rejections:
        code = rejection.get("code") or ""
        if code in retry or code in found:
            continue
        found[code] = Reason(code, rejection.get("meaning") or f"reject reason {code}",
                             rejection.get("follow_up") or "", identity.get(code))
    return sorted(found.values(), key=lambda r: not r.identity)
