"""What a 271 says about one service type (EB03), combined from its benefit entries:
``ServiceBenefits`` (copay, coinsurance, deductible, out of pocket, visits, authorization,
carve-out), with ``CarveOut``, ``by_service_type`` (entries grouped the way
``EligibilityResponse.benefits`` holds them) and ``benefits_from_json`` (a stored answer's
benefits read back).

A value is looked for in the network asked for, then in "both" (EB12 W), then in "unknown"
(EB12 absent or U), never in the other network; the individual level (EB02 IND, or none) wins
over family; an entry for one procedure (EB13) never stands for the general value.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any

from bhhub.eligibility import codes
from bhhub.eligibility.benefit_entries import MET_PERIODS, BenefitEntry, RelatedEntity, decimal_text

UNSPECIFIED = "unspecified"  # the key of entries with no service type (EB03 absent)
_INDIVIDUAL = ("IND", "")  # EB02 levels that describe the patient alone
_NETWORK_ORDER = {
    "in": ("in", "both", "unknown"),
    "out": ("out", "both", "unknown"),
    "both": ("both", "unknown"),
    "unknown": ("unknown",),
}
_COPAY, _COINSURANCE, _DEDUCTIBLE, _OUT_OF_POCKET = "B", "A", "C", "G"


def benefits_from_json(response: dict[str, Any]) -> dict[str, ServiceBenefits]:
    """A stored answer's benefits per service type, as typed records again (``to_json`` kept
    every entry), so a claim is judged by the same rules the answer was summarised with."""
    return {stc: ServiceBenefits(stc, tuple(BenefitEntry.from_json(e) for e in found.get("entries", ())))
            for stc, found in (response.get("benefits") or {}).items()}


@dataclass(frozen=True)
class CarveOut:
    """The benefit is administered by another payer (often a managed behavioral health
    organization): eligibility must be checked, and claims sent, there (else CARC 109)."""

    service_type: str
    benefit_code: str  # EB01 of the entry that says so (U, MC, or 1 with a 2120 payer)
    entity: RelatedEntity | None  # the 2120 payer or organisation, None when only MSG says who
    messages: tuple[str, ...] = ()

    @property
    def payer_id(self) -> str | None:
        return self.entity.id if self.entity and self.entity.id else None

    @property
    def payer_name(self) -> str | None:
        return self.entity.name if self.entity else None

    def to_json(self) -> dict[str, Any]:
        return {"service_type": self.service_type, "benefit_code": self.benefit_code,
                "payer_id": self.payer_id, "payer_name": self.payer_name,
                "entity": self.entity.to_json() if self.entity else None, "messages": list(self.messages)}


@dataclass(frozen=True)
class ServiceBenefits:
    """Everything a 271 says about one service type (EB03), combined from its entries."""

    service_type: str
    entries: tuple[BenefitEntry, ...]

    @property
    def description(self) -> str:
        return "no service type given" if self.service_type == UNSPECIFIED else codes.describe(
            "service_type", self.service_type)

    @property
    def active(self) -> bool | None:
        """True when an entry says active (EB01 1-5), False when one says inactive (6-8)."""
        if any(e.active for e in self.entries):
            return True
        return False if any(e.inactive for e in self.entries) else None

    @property
    def non_covered(self) -> bool:
        return any(e.code == "I" for e in self.entries)

    @property
    def insurance_types(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.insurance_type for e in self.entries if e.insurance_type))

    @property
    def plan_descriptions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.plan_description for e in self.entries if e.plan_description))

    @property
    def in_network(self) -> bool | None:
        """Whether the benefits given are in-network ones: True when any entry is EB12 Y,
        False when all that say are out-of-network, None when none says."""
        networks = {e.network for e in self.entries}
        if "in" in networks or "both" in networks:
            return True
        return False if "out" in networks else None

    def copay(self, network: str = "in") -> Decimal | None:
        """The copay (EB01 B, EB07) in ``network``; per visit when EB06 is 27."""
        return self._amount(_COPAY, network, remaining=False)

    def coinsurance(self, network: str = "in") -> Decimal | None:
        """The coinsurance (EB01 A, EB08) as a fraction: 0.2 is 20%."""
        return self._value(_COINSURANCE, network, lambda e: e.percent, remaining=False)

    def deductible(self, network: str = "in", *, remaining: bool = False) -> Decimal | None:
        """The deductible for the period (EB06 23, 22...), or what is left of it (EB06 29)."""
        return self._amount(_DEDUCTIBLE, network, remaining=remaining)

    def out_of_pocket(self, network: str = "in", *, remaining: bool = False) -> Decimal | None:
        """The out-of-pocket maximum (EB01 G), or what is left of it (EB06 29)."""
        return self._amount(_OUT_OF_POCKET, network, remaining=remaining)

    def visits_allowed(self, network: str = "in") -> Decimal | None:
        """Visits per period, from EB09/EB10 (VS) or an HSD (HSD01 VS), not the remaining ones."""
        return self._visits(network, remaining=False)

    def visits_remaining(self, network: str = "in") -> Decimal | None:
        """Visits left: EB09 VS with EB06 29, or an HSD with HSD05 29."""
        return self._visits(network, remaining=True)

    @property
    def auth_required(self) -> bool | None:
        """EB11 of the general entries that apply in network at any place: True when any says Y,
        False when some say N and none Y, else None. An entry for one procedure (EB13) speaks for
        it alone (``for_procedure``); one for other places (2115 III) or out of network (EB12 N)
        only for a claim there (``auth_required_for``)."""
        return self.auth_required_for()

    def auth_required_for(self, place_of_service: str | None = None, service_date: date | None = None) -> bool | None:
        """EB11 of the general entries that apply to a visit at this place on this day."""
        flags = {e.auth_required for e in self.entries
                 if e.procedure is None and e.applies(None, place_of_service, service_date)}
        if True in flags:
            return True
        return False if False in flags else None

    @property
    def carve_out(self) -> CarveOut | None:
        """The first entry that sends this benefit to another payer (domain reference 8.3)."""
        benefit_codes, entity_codes = codes.carve_out_rules()
        for entry in self.entries:
            if entry.code == "R":  # other or additional payer: coordination of benefits, not a carve-out
                continue
            payers = [r for r in entry.related_entities if r.entity_code in entity_codes]
            # EB01 U ("contact the following entity") says so by itself; MC (managed care
            # coordinator) only with a 2120 payer or organisation naming who administers it.
            if (entry.code in benefit_codes and (entry.code != "MC" or entry.related_entities)) or payers:
                entity = (payers or list(entry.related_entities) or [None])[0]
                return CarveOut(self.service_type, entry.code, entity, entry.messages)
        return None

    @property
    def procedures(self) -> tuple[str, ...]:
        """The procedures (EB13) some entries are specific to, e.g. ("HC:90837",)."""
        return tuple(dict.fromkeys(e.procedure for e in self.entries if e.procedure))

    def for_procedure(self, procedure: str) -> ServiceBenefits:
        """The entries specific to one procedure (``"HC:90837"``), combined the same way."""
        return ServiceBenefits(self.service_type, tuple(
            _general(e) for e in self.entries if e.procedure == procedure))

    @property
    def messages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m for e in self.entries for m in e.messages))

    @property
    def related_entities(self) -> tuple[RelatedEntity, ...]:
        return tuple(dict.fromkeys(r for e in self.entries for r in e.related_entities))

    def to_json(self) -> dict[str, Any]:
        carve_out = self.carve_out
        data = {
            "service_type": self.service_type, "description": self.description, "active": self.active,
            "non_covered": self.non_covered, "in_network": self.in_network,
            "insurance_types": list(self.insurance_types), "plan_descriptions": list(self.plan_descriptions),
            **_cost_share_json(self),
            "carve_out": carve_out.to_json() if carve_out else None,
            "procedures": {p: _cost_share_json(self.for_procedure(p)) for p in self.procedures},
            "messages": list(self.messages),
            "entries": [e.to_json() for e in self.entries],
        }
        return data

    # --- combining -------------------------------------------------------------------------------

    def _amount(self, code: str, network: str, *, remaining: bool) -> Decimal | None:
        return self._value(code, network, lambda e: e.amount, remaining=remaining)

    def _value(self, code: str, network: str, value, *, remaining: bool) -> Decimal | None:
        candidates = [
            e for e in self.entries
            if e.code == code and e.procedure is None and value(e) is not None
            and e.remaining == remaining and e.time_period not in MET_PERIODS
        ]
        chosen = _preferred(candidates, network, lambda e: e.network, lambda e: e.coverage_level)
        return value(chosen) if chosen is not None else None

    def _visits(self, network: str, *, remaining: bool) -> Decimal | None:
        found: list[tuple[str, str, Decimal]] = []  # network, coverage level, quantity
        for e in self.entries:
            if e.procedure is not None:
                continue
            if e.quantity_qualifier == "VS" and e.quantity is not None and e.remaining == remaining:
                found.append((e.network, e.coverage_level, e.quantity))
            for d in e.deliveries:
                if d.quantity_qualifier == "VS" and d.quantity is not None and d.remaining == remaining:
                    found.append((e.network, e.coverage_level, d.quantity))
        chosen = _preferred(found, network, lambda f: f[0], lambda f: f[1])
        return chosen[2] if chosen is not None else None


def by_service_type(entries: tuple[BenefitEntry, ...]) -> dict[str, ServiceBenefits]:
    """The benefit entries grouped per service type they name (``UNSPECIFIED`` when none), as
    ``EligibilityResponse.benefits`` holds them, whether they came from a 271 or a portal."""
    grouped: dict[str, list[BenefitEntry]] = {}
    for entry in entries:
        for service_type in entry.service_types or (UNSPECIFIED,):
            grouped.setdefault(service_type, []).append(entry)
    return {stc: ServiceBenefits(stc, tuple(found)) for stc, found in grouped.items()}


def coverage_active(entries: tuple[BenefitEntry, ...]) -> bool | None:
    """True when any entry says active coverage, False when one says inactive and none active,
    None when the entries do not say."""
    if any(e.active for e in entries):
        return True
    return False if any(e.inactive for e in entries) else None


def _preferred(candidates: list, network: str, network_of, level_of):
    """The first candidate in ``network`` (then both, then unknown), individual before family."""
    for wanted in _NETWORK_ORDER.get(network, (network,)):
        in_network = [c for c in candidates if network_of(c) == wanted]
        if in_network:
            individual = [c for c in in_network if level_of(c) in _INDIVIDUAL]
            return (individual or in_network)[0]
    return None


def _general(entry: BenefitEntry) -> BenefitEntry:
    """The entry as if it were not procedure-specific (to combine one procedure's entries)."""
    return replace(entry, procedure=None)


def _cost_share_json(benefits: ServiceBenefits) -> dict[str, Any]:
    return {
        "copay": decimal_text(benefits.copay()),
        "copay_out_of_network": decimal_text(benefits.copay("out")),
        "coinsurance": decimal_text(benefits.coinsurance()),
        "coinsurance_out_of_network": decimal_text(benefits.coinsurance("out")),
        "deductible": decimal_text(benefits.deductible()),
        "deductible_remaining": decimal_text(benefits.deductible(remaining=True)),
        "out_of_pocket": decimal_text(benefits.out_of_pocket()),
        "out_of_pocket_remaining": decimal_text(benefits.out_of_pocket(remaining=True)),
        "visits_allowed": decimal_text(benefits.visits_allowed()),
        "visits_remaining": decimal_text(benefits.visits_remaining()),
        "auth_required": benefits.auth_required,
    }

