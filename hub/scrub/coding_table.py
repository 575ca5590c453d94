"""The coding table (``mappings/rules/coding.toml``) as the coding rules read it: the entries in
effect on a date of service, the payer's rules laid over the defaults, and one date's rules
compiled into sets (``DayRules``) and kept per claim (``ClaimRules``); with the finding helpers
the rules share.

The rules themselves are in ``bhhub.scrub.coding_checks`` (codes, time, units, provider type)
and ``bhhub.scrub.coding_modifiers`` (telehealth and licensure modifiers); the rule pack that
registers and runs them is ``bhhub.scrub.coding_rules``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from bhhub.coding.rules import claim_filing_indicator
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.common.memo import IdentityMemo
from bhhub.model import Claim, Finding, ServiceLine, Severity

TABLE = "rules/coding.toml"

Numbered = tuple[int, ServiceLine]  # (1-based line number, line)


# --- tables ------------------------------------------------------------------------------------

_PACKAGED = MappingSet()  # the packaged tables, for checks run without a hub (unit tests, tools)


def mappings_for(context: Any) -> MappingSet:
    """The hub's mappings (with the practice's overrides), or the packaged ones without a hub."""
    mappings = getattr(context, "mappings", None)
    return mappings if mappings is not None else _PACKAGED


def load_table(mappings: MappingSet) -> dict:
    """The rule table; a MappingSet parses it once (the hub keeps one MappingSet)."""
    return mappings.load(TABLE)


def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


_IN_EFFECT: IdentityMemo[list[dict]] = IdentityMemo(limit=50_000)


def in_effect(entries: list[dict], on: date) -> list[dict]:
    """The entries whose ``effective``..``end`` span covers ``on`` (remembered per table and day:
    claims share their dates)."""
    return _IN_EFFECT.get(entries, on, _in_effect, entries, on)


def _in_effect(entries: list[dict], on: date) -> list[dict]:
    return [
        e for e in entries
        if as_date(e.get("effective", date.min)) <= on
        and (e.get("end") is None or on <= as_date(e["end"]))
    ]


def current(entries: list[dict], on: date) -> dict | None:
    """The latest-starting entry in effect on ``on``; None when the rule did not exist yet."""
    live = in_effect(entries, on)
    return max(live, key=lambda e: as_date(e.get("effective", date.min))) if live else None


def payer_rules(table: dict, mappings: MappingSet, claim: Claim, on: date) -> dict:
    """Default, then the claim filing indicator's, then the payer's own entry, laid over in turn."""
    section = table.get("payer_rules", {})
    # The stored claim already carries SBR09 as the payer table says (bhhub.claims.build).
    indicator = claim.coverage.payer.claim_filing_indicator or claim_filing_indicator(mappings, claim.coverage.payer)
    payer_id = claim.coverage.payer.payer_id
    return _PAYER_RULES.get(table, (indicator, payer_id, on), _payer_rules, section, indicator, payer_id, on)


_PAYER_RULES: IdentityMemo[dict] = IdentityMemo(limit=50_000)  # shared: callers only read them


def _payer_rules(section: dict, indicator: str | None, payer_id: str, on: date) -> dict:
    merged: dict = {}
    for entries in (section.get("default", []),
                    section.get("claim_filing_indicator", {}).get(indicator, []),
                    section.get("payer", {}).get(payer_id, [])):
        merged.update(current(entries, on) or {})
    return merged


def lines_by_date(claim: Claim) -> dict[date, list[Numbered]]:
    days: dict[date, list[Numbered]] = defaultdict(list)
    for number, line in enumerate(claim.lines, start=1):
        days[line.service_date].append((number, line))
    return days


def error(code: str, message: str, fix: str, line: int | None) -> Finding:
    return Finding(code, Severity.ERROR, message, fix, line)


def warning(code: str, message: str, fix: str, line: int | None) -> Finding:
    return Finding(code, Severity.WARNING, message, fix, line)


def units_text(units: Decimal) -> str:
    return f"{units.normalize():f}"


# --- the rules in effect on one date, compiled -------------------------------------------------------


@dataclass(frozen=True)
class DayRules:
    """What the coding table says for one date of service, with its code lists as sets: the
    checks then cost a few set lookups per line. Built once per table and date (claims share
    their dates), so a rule table of any length adds nothing per claim."""

    psychotherapy: dict | None
    family_of: dict  # timed psychotherapy code -> its [minimum, code] thresholds (stand-alone first)
    minimums: dict  # other timed codes -> minimum minutes
    crisis: dict | None
    addons: tuple  # (rule, codes, needs_one_of, not_with)
    addon_codes: frozenset
    pairs: tuple  # (pair, first, second, modifiers that waive it)
    units: dict | None
    single_unit_codes: frozenset
    single_unit_exempt: frozenset
    time_unit_codes: dict
    provider_types: dict | None
    prescriber_only: frozenset
    deleted: dict  # code -> the deleted_codes entries naming it
    broken: dict  # table section -> why it could not be read (a practice override missing a key)


def _compile_day(table: dict, on: date) -> DayRules:
    """The day's rules; a section a practice's override broke (an entry missing a key) is left
    empty and named in ``broken``, so only the rules reading it fail."""
    broken: dict[str, str] = {}

    def section(name: str, build, empty):
        try:
            return build()
        except Exception as exc:  # noqa: BLE001 - reported by the rules that read it
            broken[name] = type(exc).__name__
            return empty

    def psychotherapy():
        psych = current(table.get("psychotherapy", []), on)
        family_of: dict = {}
        if psych is not None:
            for family in (psych["standalone"], psych["addon"]):  # the stand-alone family wins a tie
                for _, code in family:
                    family_of.setdefault(code, family)
            if "minimum_minutes" not in psych:
                raise KeyError("minimum_minutes")
        return psych, family_of, dict((psych or {}).get("minimums", {}))

    def addons():
        compiled = tuple((r, frozenset(r["codes"]), frozenset(r["needs_one_of"]), frozenset(r.get("not_with", [])))
                         for r in in_effect(table.get("addons", []), on))
        return compiled, frozenset().union(*(codes for _, codes, _, _ in compiled))

    def pairs():
        return tuple((p, frozenset(p["first"]), frozenset(p["second"]), frozenset(p.get("modifiers", [])))
                     for p in in_effect(table.get("same_day_pairs", []), on))

    def units():
        rule = current(table.get("units", []), on)
        return (rule, frozenset((rule or {}).get("single_unit_codes", [])),
                frozenset((rule or {}).get("single_unit_exempt_place_of_service", [])),
                dict((rule or {}).get("time_unit_codes", {})))

    def providers():
        rule = current(table.get("provider_types", []), on)
        return rule, frozenset((rule or {}).get("prescriber_only_codes", []))

    def deleted():
        by_code: dict = {}
        for entry in in_effect(table.get("deleted_codes", []), on):
            for code in entry["codes"]:
                by_code.setdefault(code, []).append(entry)
        return by_code

    psych, family_of, minimums = section("psychotherapy", psychotherapy, (None, {}, {}))
    addon_rules, addon_codes = section("addons", addons, ((), frozenset()))
    unit_rule, single_unit, exempt, time_unit_codes = section("units", units, (None, frozenset(), frozenset(), {}))
    provider_rule, prescriber_only = section("provider_types", providers, (None, frozenset()))
    return DayRules(
        psychotherapy=psych, family_of=family_of, minimums=minimums,
        crisis=section("crisis", lambda: current(table.get("crisis", []), on), None),
        addons=addon_rules, addon_codes=addon_codes,
        pairs=section("same_day_pairs", pairs, ()),
        units=unit_rule, single_unit_codes=single_unit, single_unit_exempt=exempt, time_unit_codes=time_unit_codes,
        provider_types=provider_rule, prescriber_only=prescriber_only,
        deleted=section("deleted_codes", deleted, {}),
        broken=broken,
    )


_DAYS: IdentityMemo[DayRules] = IdentityMemo(limit=20_000)


def day_rules(table: dict, on: date) -> DayRules:
    return _DAYS.get(table, on, _compile_day, table, on)


class ClaimRules:
    """The table's rules for one claim: by date of service, and the payer's for each date."""

    __slots__ = ("table", "mappings", "claim", "_days", "_payer")

    def __init__(self, claim: Claim, table: dict, mappings: MappingSet):
        self.table, self.mappings, self.claim = table, mappings, claim
        self._days: dict[date, DayRules] = {}
        self._payer: dict[date, dict] = {}

    def on(self, day: date) -> DayRules:
        rules = self._days.get(day)
        if rules is None:
            rules = self._days[day] = day_rules(self.table, day)
        return rules

    def payer(self, day: date) -> dict:
        rules = self._payer.get(day)
        if rules is None:
            rules = self._payer[day] = payer_rules(self.table, self.mappings, self.claim, day)
        return rules
