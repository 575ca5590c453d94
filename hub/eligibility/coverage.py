"""Whether a 271 says a service is covered: active (EB01 1-5), not covered (EB01 I) or excluded
(EB01 E), per service type (EB03), procedure (EB13) and place of service (2115 III).

    coverage(response.benefits, ("A6", "CF", "MH"), procedure_code="90837", place_of_service="11")
        -> (True, None) covered | (False, NotCovered) not covered | (None, NotCovered) said both
           | (None, None) not mentioned

A plan active on 30 (EB*1*IND*30) can still say EB*I*IND*MH: mental health not covered. The
claim check (``bhhub.scrub.eligibility_checks``) asks this for each line's service types
(``bhhub.eligibility.service_types``), the summary (``mental_health_summary``) for outpatient
mental health (``codes.coverage_order``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from bhhub.eligibility import codes

if TYPE_CHECKING:
    from bhhub.eligibility.service_benefits import ServiceBenefits


NOT_COVERED_CODES = frozenset({"I", "E"})  # EB01 non-covered, exclusions
# EB01 6-8 (inactive) on one service type while the plan is active on 30: that service is not
# covered either, as the listing says (a claim for it would be denied the same way).
REFUSING_CODES = NOT_COVERED_CODES | {"6", "7", "8"}


@dataclass(frozen=True)
class NotCovered:
    """A 271 saying a service is not covered (EB01 I) or excluded (EB01 E)."""

    service_type: str
    benefit_code: str  # I non-covered, E exclusion, 6-8 inactive
    procedure: str | None = None  # EB13: only this procedure
    places_of_service: tuple[str, ...] = ()  # 2115 III: only at these places
    messages: tuple[str, ...] = ()
    also_active: bool = False  # the same service type is also said active: the answer is unclear

    @property
    def description(self) -> str:
        return codes.describe("service_type", self.service_type)

    def describe(self) -> str:
        text = f"{self.description} ({self.service_type})"
        if self.procedure:
            text += f" for {self.procedure}"
        if self.places_of_service:
            text += " at place of service " + ", ".join(self.places_of_service)
        return text

    def to_json(self) -> dict[str, Any]:
        return {"service_type": self.service_type, "description": self.description,
                "benefit_code": self.benefit_code, "procedure": self.procedure,
                "places_of_service": list(self.places_of_service), "messages": list(self.messages),
                "also_active": self.also_active, "describe": self.describe()}


def coverage(benefits: dict[str, ServiceBenefits], service_types: tuple[str, ...], *,
             procedure_code: str | None = None, place_of_service: str | None = None,
             service_date: date | None = None, inactive_refuses: bool = True
             ) -> tuple[bool | None, NotCovered | None]:
    """Whether a service under ``service_types`` (most specific first) is covered, per the 271.

    The first of the types the answer says anything about decides: (True, None) said active
    (EB01 1-5), (False, what) said not covered (EB01 I or E), (None, what) said both, which
    is unclear; (None, None) when none is mentioned. Within a type, entries for the procedure
    itself (EB13) speak before the general ones. Only entries that apply to a service billed
    in network at ``place_of_service`` on ``service_date`` count (``BenefitEntry.applies``).
    The more specific statement wins: entries for the procedure (EB13), then those limited to
    places (2115 III) that include the claim's, then the general ones. EB01 6-8 (inactive) on a
    service type reads as not covered (``inactive_refuses``; a caller judging an answer that is
    inactive as a whole says so on its own, with the eligibility dates it gives).
    """
    refusing = REFUSING_CODES if inactive_refuses else NOT_COVERED_CODES
    for service_type in service_types:
        found = benefits.get(service_type)
        if found is None:
            continue
        applying = [e for e in found.entries if e.applies(procedure_code, place_of_service, service_date)]
        own = [e for e in applying if e.procedure is not None]
        placed = [e for e in applying if e.procedure is None and e.places_of_service]
        general = [e for e in applying if e.procedure is None and not e.places_of_service]
        for group in (own, placed, general):
            refused = [e for e in group if e.code in refusing]
            active = any(e.active for e in group)
            if refused:
                first = refused[0]
                said = NotCovered(service_type, first.code, first.procedure, first.places_of_service,
                                  tuple(dict.fromkeys(m for e in refused for m in e.messages)), also_active=active)
                return (None if active else False), said
            if active:
                return True, None
    return None, None
