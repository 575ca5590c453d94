"""Behavioral-health coding rules: what a payer denies a correctly formatted claim for.

A built-in plugin, registered through the ``bhhub`` entry point like any vendor's rule pack.
Every threshold, code list, same-day pair and payer quirk is data in
``mappings/rules/coding.toml`` (versioned by date of service, overridable by the practice);
the code only knows how to apply them. Section numbers are the domain reference's.

This module is the rule pack the entry point registers: the list of rules and the one pass that
runs them over a claim. The rules live beside it: ``bhhub.scrub.coding_checks`` (time, crisis,
add-ons, same-day pairs, units, provider type, deleted codes), ``bhhub.scrub.coding_modifiers``
(telehealth and licensure modifiers), and ``bhhub.scrub.coding_table`` (the table's entries in
effect on a date, compiled per date and claim).

Conventions: the claim has one rendering provider, so "same provider" means the same claim; a
line's ``minutes`` are the minutes documented for that service (for 90839, the day's total
crisis time). Messages name codes, minutes, modifiers and line numbers, never the patient.
"""

from __future__ import annotations

import logging
from typing import Any

from bhhub import hookimpl
from bhhub.model import Claim, Finding, ServiceLine
from bhhub.scrub.coding_checks import (
    check_addons,
    check_crisis,
    check_deleted,
    check_provider_type,
    check_same_day_pairs,
    check_time,
    check_units,
)
from bhhub.scrub.coding_modifiers import check_licensure, check_telehealth
from bhhub.scrub.coding_table import TABLE, ClaimRules, DayRules, lines_by_date, load_table, mappings_for, warning
from bhhub.types import ClaimCheck

log = logging.getLogger(__name__)


# --- registration ---------------------------------------------------------------------------------------------

# (name, what it checks, the rule, whether it looks at a whole date's lines, the sections it reads)
RULES = [
    ("coding.deleted_codes", "codes deleted from CPT/HCPCS before the date of service", check_deleted, False,
     ("deleted_codes",)),
    ("coding.psychotherapy_time", "psychotherapy code matches the documented minutes", check_time, False,
     ("psychotherapy",)),
    ("coding.crisis", "90839/+90840 by crisis minutes", check_crisis, True, ("crisis", "psychotherapy")),
    ("coding.addons", "add-on codes have their primary the same day", check_addons, True, ("addons",)),
    ("coding.same_day_pairs", "same-day combinations that are not billed together", check_same_day_pairs, True,
     ("same_day_pairs",)),
    ("coding.units", "one unit for 908xx, time units for HCPCS timed codes", check_units, False, ("units",)),
    ("coding.provider_type", "prescriber-only codes by rendering taxonomy", check_provider_type, False,
     ("provider_types",)),
    ("coding.telehealth", "telehealth modifiers and place of service per payer", check_telehealth, False, ()),
    ("coding.licensure", "licensure modifiers a payer requires by taxonomy", check_licensure, False, ()),
]


_SKIPPABLE = frozenset({check_deleted, check_time, check_crisis, check_addons, check_same_day_pairs,
                        check_provider_type, check_units})


def _silent_rules(lines_days: list[tuple[ServiceLine, DayRules]], one_line_a_day: bool) -> set:
    """The rules with nothing to look at on this claim (no code they name, no second line on a
    date): they would yield nothing and raise nothing, so the pass skips them. Each test mirrors
    the rule's own first condition; one walk over the lines answers them all."""
    looked_at = set() if one_line_a_day else {check_same_day_pairs}
    for line, day in lines_days:
        code = line.procedure_code
        if code in day.deleted:
            looked_at.add(check_deleted)
        if code in day.family_of or code in day.minimums:
            looked_at.add(check_time)
        if day.crisis is not None and code == day.crisis["first_code"]:  # a broken entry fails as before
            looked_at.add(check_crisis)
        if code in day.addon_codes:
            looked_at.add(check_addons)
        if code in day.prescriber_only:
            looked_at.add(check_provider_type)
        if day.units is not None and (code in day.single_unit_codes or code in day.time_unit_codes):
            looked_at.add(check_units)
    return _SKIPPABLE - looked_at


def check_all(claim: Claim, context: Any) -> list[Finding]:
    """Every coding rule in one pass over the claim: the table, the rules in effect on each
    date and the payer's entries are looked up once per claim, not once per rule. A rule that
    fails (a broken table entry, a bug) is reported and does not stop the others."""
    mappings = mappings_for(context)
    rules = ClaimRules(claim, load_table(mappings), mappings)
    by_date = lines_by_date(claim)
    broken: dict[str, str] = {}
    for day in by_date:
        if rules.on(day).broken:
            broken.update(rules.on(day).broken)
    lines_days = [(line, rules.on(line.service_date)) for line in claim.lines]
    try:
        silent = _silent_rules(lines_days, len(by_date) == len(lines_days))
    except Exception:  # noqa: BLE001 - a broken entry: each rule meets it (and is reported) itself
        silent = frozenset()
    findings: list[Finding] = []
    for name, _description, rule, per_day, sections in RULES:
        failed = next((broken[s] for s in sections if s in broken), None) if broken else None
        if failed is None:
            if rule in silent:
                continue
            try:
                findings.extend(rule(claim, rules, by_date) if per_day else rule(claim, rules))
                continue
            except Exception as exc:  # noqa: BLE001 - a bad payer entry or a bug: report, go on
                failed = type(exc).__name__
        log.error("coding rule %s failed on claim %s: %s", name, claim.patient_control_number, failed)
        findings.append(warning(
            "scrub.check_failed", f"the coding rule {name!r} failed ({failed}); this claim was not fully checked",
            f"check the practice's {TABLE} override for that rule, or report it", None))
    return findings


@hookimpl
def bhhub_register_claim_checks() -> list[ClaimCheck]:
    return [ClaimCheck("coding", "behavioral-health coding rules: " + "; ".join(r[1] for r in RULES), check_all)]
