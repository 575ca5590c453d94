"""The coding rules about codes: psychotherapy and crisis time, add-ons without their primary,
same-day pairs, units, prescriber-only codes and deleted codes (domain reference sections 1.x,
11.2). Each reads the day's rules compiled from ``mappings/rules/coding.toml``
(``bhhub.scrub.coding_table``); ``bhhub.scrub.coding_rules`` registers and runs them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal

from bhhub.model import Claim, Finding
from bhhub.scrub.coding_table import ClaimRules, Numbered, as_date, error, units_text, warning

# --- 1.1 / 1.5 psychotherapy time -----------------------------------------------------------------

def _supported(thresholds: list, minutes: int) -> tuple[str | None, str]:
    """The code the minutes reach under the midpoint rule, and its minute range for the fix."""
    ordered = sorted(thresholds)
    for index, (low, code) in enumerate(ordered):
        upper = ordered[index + 1][0] - 1 if index + 1 < len(ordered) else None
        if minutes >= low and (upper is None or minutes <= upper):
            return code, f"{low}-{upper} minutes" if upper is not None else f"{low}+ minutes"
    return None, ""


def check_time(claim: Claim, rules: ClaimRules) -> Iterator[Finding]:
    for number, line in enumerate(claim.lines, start=1):
        day = rules.on(line.service_date)
        code = line.procedure_code
        family = day.family_of.get(code)
        minimum = day.minimums.get(code)
        if family is None and minimum is None:
            continue
        if line.minutes is None:
            yield warning("coding.time_missing", f"line {number} ({code}) is a timed code but no minutes are documented",
                           "send the session's psychotherapy minutes (start/stop or total) from the EHR", number)
            continue
        floor = day.psychotherapy["minimum_minutes"] if family is not None else minimum
        if line.minutes < floor:
            yield error("coding.time_too_short",
                         f"line {number} ({code}): {line.minutes} minutes documented; {code} needs at least {floor}",
                         f"do not bill {code} for under {floor} minutes; check the documented time", number)
            continue
        if family is not None:
            supported, span = _supported(family, line.minutes)
            if supported != code:
                yield error("coding.time_mismatch",
                             f"line {number}: {line.minutes} minutes of psychotherapy support {supported}, not {code}",
                             f"bill {supported} ({span})", number)


# --- 1.3 crisis --------------------------------------------------------------------------------

def check_crisis(claim: Claim, rules: ClaimRules, by_date: dict[date, list[Numbered]]) -> Iterator[Finding]:
    for day, lines in by_date.items():
        today_rules = rules.on(day)
        rule = today_rules.crisis
        if rule is None:
            continue
        first = [(n, ln) for n, ln in lines if ln.procedure_code == rule["first_code"]]
        if not first:
            continue  # an add-on alone is check_addons' finding
        addons = [(n, ln) for n, ln in lines if ln.procedure_code == rule["addon_code"]]
        number, line = first[0]
        minutes = line.minutes if line.minutes is not None else max(
            (ln.minutes for _, ln in addons if ln.minutes is not None), default=None)
        if minutes is None:
            yield warning("coding.time_missing", f"line {number} ({line.procedure_code}) has no crisis minutes documented",
                           "send the day's total crisis time from the EHR", number)
            continue
        if minutes < rule["first_minimum"]:
            psych = today_rules.psychotherapy
            supported, span = _supported(psych["standalone"], minutes) if psych else (None, "")
            fix = f"bill {supported} ({span}) instead of crisis codes" if supported else \
                "not billable as crisis or psychotherapy; check the documented time"
            yield error("coding.time_mismatch",
                         f"line {number}: {minutes} minutes is under the {rule['first_minimum']} a crisis code needs",
                         fix, number)
            continue
        start, step = rule["addon_starts_at"], rule["addon_step"]
        expected = 0 if minutes < start else (minutes - start) // step + 1
        billed = sum((ln.units for _, ln in addons), Decimal(0))
        if billed != expected:
            where = addons[0][0] if addons else number
            fix = (f"bill {rule['addon_code']} x {expected} units" if expected
                   else f"remove {rule['addon_code']}: {minutes} minutes is within {rule['first_code']} "
                        f"({rule['first_minimum']}-{start - 1} minutes)")
            yield error("coding.crisis_units",
                         f"{minutes} crisis minutes support {rule['addon_code']} x {expected}; "
                         f"{units_text(billed)} billed", fix, where)


# --- 1.2 / 1.6 / 1.7 add-ons ------------------------------------------------------------------------

def check_addons(claim: Claim, rules: ClaimRules, by_date: dict[date, list[Numbered]]) -> Iterator[Finding]:
    for day, lines in by_date.items():
        today_rules = rules.on(day)
        if not any(ln.procedure_code in today_rules.addon_codes for _, ln in lines):
            continue
        codes_that_day = {ln.procedure_code for _, ln in lines}
        for rule, codes, needs, not_with in today_rules.addons:
            for number, line in lines:
                if line.procedure_code not in codes or codes_that_day & needs:
                    continue
                present = sorted(codes_that_day & not_with)
                why = f"; {', '.join(present)} cannot be its primary" if present else ""
                yield error("coding.addon_without_primary",
                             f"line {number}: add-on {line.procedure_code} needs {rule['primary_name']} "
                             f"on the same date{why}",
                             rule.get("alone_fix") or f"bill {rule['primary_name']} with it, or remove "
                                                      f"{line.procedure_code}", number)


# --- 1.10 same-day pairs -------------------------------------------------------------------------------

def check_same_day_pairs(claim: Claim, rules: ClaimRules, by_date: dict[date, list[Numbered]]) -> Iterator[Finding]:
    for day, lines in by_date.items():
        if len(lines) < 2:
            continue  # a pair needs two lines that day
        waived = set(rules.payer(day).get("waive_pairs", []))
        codes = {line.procedure_code for _, line in lines}
        for pair, first, second, waiving in rules.on(day).pairs:
            if codes.isdisjoint(first) or codes.isdisjoint(second) or pair["id"] in waived:
                continue  # most pairs name codes not billed that day
            for i, (n1, a) in enumerate(lines):
                for n2, b in lines[i + 1:]:
                    if a.procedure_code in first and b.procedure_code in second:
                        col1, col2 = (n1, a), (n2, b)
                    elif b.procedure_code in first and a.procedure_code in second:
                        col1, col2 = (n2, b), (n1, a)
                    else:
                        continue
                    if waiving.intersection(col2[1].modifiers):
                        continue
                    make = error if pair.get("severity", "error") == "error" else warning
                    yield make("coding.same_day_pair",
                               f"{col1[1].procedure_code} (line {col1[0]}) and {col2[1].procedure_code} "
                               f"(line {col2[0]}) on {day.isoformat()} are not billed together",
                               pair["keep"], col2[0])


# --- 1.1 / 1.9 / 1.11 units --------------------------------------------------------------------------

def time_units(minutes: int, unit_minutes: int, rounding: str) -> int:
    """Units for ``minutes`` of a timed HCPCS code. ``cms_8_minute``: a unit counts once more
    than half of it is done (8 of 15 minutes); ``full_units``: whole units only."""
    if rounding == "full_units":
        return minutes // unit_minutes
    return (minutes + (unit_minutes - 1) // 2) // unit_minutes


def check_units(claim: Claim, rules: ClaimRules) -> Iterator[Finding]:
    for number, line in enumerate(claim.lines, start=1):
        day = rules.on(line.service_date)
        if day.units is None:
            continue
        code = line.procedure_code
        if code in day.single_unit_codes and line.units != 1 \
                and (line.place_of_service or claim.place_of_service) not in day.single_unit_exempt:
            yield error("coding.units", f"line {number} ({code}) has {units_text(line.units)} units; "
                         f"{code} is billed once per session", "bill 1 unit", number)
        unit_minutes = day.time_unit_codes.get(code)
        if unit_minutes is None:
            continue
        if line.minutes is None:
            yield warning("coding.time_missing", f"line {number} ({code}) is billed in {unit_minutes}-minute units "
                           "but no minutes are documented", "send the service minutes from the EHR", number)
            continue
        rounding = rules.payer(line.service_date).get("time_unit_rounding", "cms_8_minute")
        expected = time_units(line.minutes, unit_minutes, rounding)
        if expected == 0:
            yield error("coding.time_too_short",
                         f"line {number} ({code}): {line.minutes} minutes is less than one billable unit ({rounding})",
                         f"do not bill {code} for {line.minutes} minutes", number)
        elif line.units != expected:
            yield error("coding.units",
                         f"line {number} ({code}): {line.minutes} minutes are {expected} units of {unit_minutes} "
                         f"minutes ({rounding}); {units_text(line.units)} billed", f"bill {expected} units", number)


# --- 1.2 / 1.4 / 11.2 provider type ---------------------------------------------------------------------

def check_provider_type(claim: Claim, rules: ClaimRules) -> Iterator[Finding]:
    clinician = claim.rendering_provider or claim.billing_provider
    taxonomy = clinician.taxonomy
    for number, line in enumerate(claim.lines, start=1):
        day = rules.on(line.service_date)
        if line.procedure_code not in day.prescriber_only:
            continue
        rule = day.provider_types
        if taxonomy and taxonomy.startswith(tuple(rule["prescriber_taxonomy_prefixes"])):
            continue
        if taxonomy and taxonomy.startswith(tuple(rule["non_prescriber_taxonomy_prefixes"])):
            yield error("coding.provider_type",
                         f"line {number}: {line.procedure_code} is billed only by prescribers (MD/DO, NP, PA); "
                         f"the rendering taxonomy {taxonomy} (NPI {clinician.npi}) is not one",
                         "bill the non-prescriber code (90791, 90832-90837) or name the prescriber who "
                         "rendered it", number)
        else:
            yield warning("coding.provider_type_unknown",
                           f"line {number}: {line.procedure_code} is billed only by prescribers; the rendering "
                           f"taxonomy {taxonomy or '(none)'} does not say whether NPI {clinician.npi} is one",
                           "add the clinician's NUCC taxonomy (PractitionerRole.specialty)", number)


# --- 1.11 deleted codes ------------------------------------------------------------------------------------

def check_deleted(claim: Claim, rules: ClaimRules) -> Iterator[Finding]:
    for number, line in enumerate(claim.lines, start=1):
        for entry in rules.on(line.service_date).deleted.get(line.procedure_code, ()):
            yield error("coding.deleted_code",
                         f"line {number}: {line.procedure_code} was deleted effective "
                         f"{as_date(entry['effective']).isoformat()}",
                         f"bill {entry['replacement']}", number)
