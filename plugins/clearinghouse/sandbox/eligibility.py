"""How the sandbox's pretend payers answer eligibility inquiries (270 → 271), from a table.

    coverage = rules.eligibility.coverage_for(member_id)   # a Coverage: active, inactive, ...

``[eligibility]`` in ``mappings/clearinghouses/sandbox_rules.toml`` names coverage profiles and
which member ids get which (an exact id, or a prefix ending in ``*``; the exact id, then the
longest prefix wins; anyone else gets ``default``). A profile's ``coverage`` is one of:

- ``active``: mental-health benefits with copay, coinsurance, deductible and what remains of it,
  visits allowed and remaining, and whether an authorization is required (EB11);
- ``inactive``: coverage ended on ``ended`` (EB*6, DTP*357);
- ``carve_out``: medical coverage active, mental health administered by another payer (EB*U
  with a 2120C NM1*PR naming the behavioral health organization);
- ``not_found``: no such member (AAA*N**75).

The same inquiry always gets the same answer: nothing depends on the clock or on chance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from bhhub.errors import ConfigError

KINDS = ("active", "inactive", "carve_out", "not_found")


@dataclass(frozen=True)
class Coverage:
    name: str  # the profile's name in the table
    kind: str  # active | inactive | carve_out | not_found
    insurance_type: str = "C1"  # EB04: C1 commercial, HM HMO, PR PPO, MC Medicaid ...
    plan: str = ""  # EB05
    group_number: str = ""  # REF*6P
    copay: Decimal | None = None  # EB*B per visit (EB06 27)
    coinsurance_percent: Decimal | None = None  # EB*A, written as a fraction (20 -> .2)
    deductible: Decimal | None = None  # EB*C calendar year (EB06 23)
    deductible_remaining: Decimal | None = None  # EB*C remaining (EB06 29)
    visits_allowed: int | None = None  # EB*F with HSD*VS per calendar year
    visits_remaining: int | None = None  # EB*F with HSD*VS, HSD05 29 remaining
    auth_required: bool = False  # EB11 Y on the mental-health benefits
    ended: date | None = None  # inactive: the last day covered (DTP*357)
    carve_out_name: str = ""  # carve_out: the behavioral health organization (2120C NM1*PR)
    carve_out_payer_id: str = ""
    carve_out_phone: str = ""  # its PER*IC TE


@dataclass(frozen=True)
class EligibilityRules:
    default: Coverage
    exact: Mapping[str, Coverage]
    prefixes: tuple[tuple[str, Coverage], ...]  # longest first
    plan_begin: date | None  # DTP*346 of every active or carved-out member

    def coverage_for(self, member_id: str) -> Coverage:
        if member_id in self.exact:
            return self.exact[member_id]
        return next((coverage for prefix, coverage in self.prefixes if member_id.startswith(prefix)), self.default)


EVERYONE_ACTIVE = EligibilityRules(Coverage("active", "active"), {}, (), None)


def eligibility_from_table(table: Mapping[str, Any] | None, where: str) -> EligibilityRules:
    """The ``[eligibility]`` table; a table without one answers everyone as active, no amounts."""
    if not table:
        return EVERYONE_ACTIVE
    here = f"{where} [eligibility]"
    profiles = {str(name): _coverage(str(name), dict(entry), f"{here}.profiles.{name}")
                for name, entry in dict(table.get("profiles", {})).items()}

    def profile(name: Any, what: str) -> Coverage:
        if str(name) not in profiles:
            raise ConfigError(f"{here}: {what} names profile {name!r}, which [eligibility.profiles] does not have")
        return profiles[str(name)]

    default = profile(table.get("default", "active"), "default")
    exact: dict[str, Coverage] = {}
    prefixes: list[tuple[str, Coverage]] = []
    for member, name in dict(table.get("members", {})).items():
        coverage = profile(name, f"member {member!r}")
        if str(member).endswith("*"):
            prefixes.append((str(member)[:-1], coverage))
        else:
            exact[str(member)] = coverage
    prefixes.sort(key=lambda pair: -len(pair[0]))
    return EligibilityRules(default, exact, tuple(prefixes), _date(table.get("plan_begin"), f"{here} plan_begin"))


def _coverage(name: str, entry: dict, where: str) -> Coverage:
    kind = str(entry.get("coverage", ""))
    if kind not in KINDS:
        raise ConfigError(f"{where}: coverage must be one of {', '.join(KINDS)}")
    coverage = Coverage(
        name=name, kind=kind, insurance_type=str(entry.get("insurance_type", "C1")), plan=str(entry.get("plan", "")),
        group_number=str(entry.get("group_number", "")),
        copay=_amount(entry.get("copay"), f"{where} copay"),
        coinsurance_percent=_amount(entry.get("coinsurance_percent"), f"{where} coinsurance_percent"),
        deductible=_amount(entry.get("deductible"), f"{where} deductible"),
        deductible_remaining=_amount(entry.get("deductible_remaining"), f"{where} deductible_remaining"),
        visits_allowed=_count(entry.get("visits_allowed"), f"{where} visits_allowed"),
        visits_remaining=_count(entry.get("visits_remaining"), f"{where} visits_remaining"),
        auth_required=bool(entry.get("auth_required", False)),
        ended=_date(entry.get("ended"), f"{where} ended"),
        carve_out_name=str(entry.get("carve_out_name", "")),
        carve_out_payer_id=str(entry.get("carve_out_payer_id", "")),
        carve_out_phone=str(entry.get("carve_out_phone", "")),
    )
    if kind == "inactive" and coverage.ended is None:
        raise ConfigError(f"{where}: an inactive coverage needs ended = YYYY-MM-DD")
    if kind == "carve_out" and not (coverage.carve_out_name and coverage.carve_out_payer_id):
        raise ConfigError(f"{where}: a carve-out needs carve_out_name and carve_out_payer_id")
    return coverage


def _amount(value: Any, what: str) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0:
        raise ConfigError(f"{what} must be a non-negative number written as a string, e.g. \"25.00\"")
    return amount


def _count(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or value < 0:
        raise ConfigError(f"{what} must be a whole number of visits")
    return value


def _date(value: Any, what: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{what} must be a date (YYYY-MM-DD)") from None
