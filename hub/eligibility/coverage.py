"""Whether a 271 says a service is covered: active (EB01 1-5), not covered (EB01 I) or excluded
(EB01 E), per service type (EB03), procedure (EB13) and place of service (2115 III).

    coverage(response.benefits, ("A6", "CF", "MH"), procedure_code="90837", place_of_service="11")
        -> (True, None) covered | (False, NotCovered) not covered | (None, NotCovered) said both
           | (None, None) not mentioned

A plan active on 30 (EB*1*IND*30) can still say EB*I*IND*MH: mental health not covered. The
claim check (``hub.scrub.eligibility_checks``) asks this for each line's service types
(``hub.eligibility.service_types``), the summary (``mental_health_summary``) for outpatient
mental health (``codes.coverage_order``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hub.eligibility import codes

if TYPE_CHECKING:
    from hub.eligibility.benefits import ServiceBenefits


NOT_COVERED_CODES = frozenset({"I", "E"})  # EB01 non-covered, exclusions


@dataclass(frozen=True)
class NotCovered:
    """A 271 saying a service is not covered (EB01 I) or excluded (EB01 E)."""

    service_type: str
    benefit_code: str  # I non-covered, E exclusion
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
             procedure_code: str | None = None, place_of_service: str | None = None
             ) -> tuple[bool | None, NotCovered | None]:
    """Whether a service under ``service_types`` (most specific first) is covered, per the 271.

    The first of the types the answer says anything about decides: (True, None) said active
    (EB01 1-5), (False, what) said not covered (EB01 I or E), (None, what) said both, which
    is unclear; (None, None) when none is mentioned. Within a type, entries for the procedure
    itself (EB13) speak before the general ones. Only entries that apply to a service billed
    in network at ``place_of_service`` count (``BenefitEntry.applies``).
    """
    for service_type in service_types:
        found = benefits.get(service_type)
        if found is None:
            continue
        applying = [e for e in found.entries if e.applies(procedure_code, place_of_service)]
        own = [e for e in applying if e.procedure is not None]
        general = [e for e in applying if e.procedure is None]
        for group in (own, general):
            refused = [e for e in group if e.code in NOT_COVERED_CODES]
            active = any(e.active for e in group)
            if refused:
                first = refused[0]
                said = NotCovered(service_type, first.code, first.procedure, first.places_of_service,
                                  tuple(dict.fromkeys(m for e in refused for m in e.messages)), also_active=active)
                return (None if active else False), said
            if active:
                return True, None
    return None, None
