"""Behavioral-health coding rules: what a payer denies a correctly formatted claim for.

A built-in plugin, registered through the ``bhhub`` entry point like any vendor's rule pack.
Every threshold, code list, same-day pair and payer quirk is data in
``mappings/rules/coding.toml`` (versioned by date of service, overridable by the practice);
this module only knows how to apply them. Section numbers are the domain reference's.

Conventions: the claim has one rendering provider, so "same provider" means the same claim; a
line's ``minutes`` are the minutes documented for that service (for 90839, the day's total
crisis time). Messages name codes, minutes, modifiers and line numbers, never the patient.
"""

from __future__ import annotations


from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

from hub import hookimpl
from hub.coding.rules import claim_filing_indicator
from hub.mappings import MappingSet
from hub.model import Claim, Finding, ServiceLine, Severity
from hub.types import ClaimCheck

TABLE = "rules/coding.toml"

Numbered = tuple[int, ServiceLine]  # (1-based line number, line)


# --- tables ------------------------------------------------------------------------------------

_PACKAGED = MappingSet()  # the packaged tables, for checks run without a hub (unit tests, tools)


def _mappings(context: Any) -> MappingSet:
    """The hub's mappings (with the practice's overrides), or the packaged ones without a hub."""
    mappings = getattr(context, "mappings", None)
    return mappings if mappings is not None else _PACKAGED


def _table(mappings: MappingSet) -> dict:
    """The rule table; a MappingSet parses it once (the hub keeps one MappingSet)."""
    return mappings.load(TABLE)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


_IN_EFFECT: dict[tuple[int, date], tuple[list, list]] = {}


def in_effect(entries: list[dict], on: date) -> list[dict]:
    """The entries whose ``effective``..``end`` span covers ``on`` (remembered per table and day:
    claims share their dates; the table is kept with the answer so its id cannot be reused)."""
    key = (id(entries), on)
    known = _IN_EFFECT.get(key)
    if known is not None and known[0] is entries:
        return known[1]
    if len(_IN_EFFECT) > 50_000:
        _IN_EFFECT.clear()
    found = _in_effect(entries, on)
    _IN_EFFECT[key] = (entries, found)
    return found


def _in_effect(entries: list[dict], on: date) -> list[dict]:
    return [
        e for e in entries
        if _as_date(e.get("effective", date.min)) <= on
        and (e.get("end") is None or on <= _as_date(e["end"]))
    ]


def current(entries: list[dict], on: date) -> dict | None:
    """The latest-starting entry in effect on ``on``; None when the rule did not exist yet."""
    live = in_effect(entries, on)
    return max(live, key=lambda e: _as_date(e.get("effective", date.min))) if live else None


def payer_rules(table: dict, mappings: MappingSet, claim: Claim, on: date) -> dict:
    """Default, then the claim filing indicator's, then the payer's own entry, laid over in turn."""
    section = table.get("payer_rules", {})
    # The stored claim already carries SBR09 as the payer table says (hub.claims).
    indicator = claim.coverage.payer.claim_filing_indicator or claim_filing_indicator(mappings, claim.coverage.payer)
    key = (id(table), indicator, claim.coverage.payer.payer_id, on)
    known = _PAYER_RULES.get(key)
    if known is not None and known[0] is table:
        return known[1]  # shared: callers only read it
    merged: dict = {}
    for entries in (section.get("default", []),
                    section.get("claim_filing_indicator", {}).get(indicator, []),
                    section.get("payer", {}).get(claim.coverage.payer.payer_id, [])):
        merged.update(current(entries, on) or {})
    if len(_PAYER_RULES) > 50_000:
        _PAYER_RULES.clear()
    _PAYER_RULES[key] = (table, merged)
    return merged


_PAYER_RULES: dict[tuple, tuple[dict, dict]] = {}


def _by_date(claim: Claim) -> dict[date, list[Numbered]]:
    days: dict[date, list[Numbered]] = defaultdict(list)
    for number, line in enumerate(claim.lines, start=1):
        days[line.service_date].append((number, line))
    return days


def _error(code: str, message: str, fix: str, line: int | None) -> Finding:
    return Finding(code, Severity.ERROR, message, fix, line)


def _warning(code: str, message: str, fix: str, line: int | None) -> Finding:
    return Finding(code, Severity.WARNING, message, fix, line)


def _units(units: Decimal) -> str:
    return f"{units.normalize():f}"


# --- 1.1 / 1.5 psychotherapy time -----------------------------------------------------------------

def _supported(thresholds: list, minutes: int) -> tuple[str | None, str]:
    """The code the minutes reach under the midpoint rule, and its minute range for the fix."""
    ordered = sorted(thresholds)
    for index, (low, code) in enumerate(ordered):
        upper = ordered[index + 1][0] - 1 if index + 1 < len(ordered) else None
        if minutes >= low and (upper is None or minutes <= upper):
            return code, f"{low}-{upper} minutes" if upper is not None else f"{low}+ minutes"
    return None, ""


def check_time(claim: Claim, table: dict, _mappings: MappingSet) -> Iterator[Finding]:
    for number, line in enumerate(claim.lines, start=1):
        rule = current(table.get("psychotherapy", []), line.service_date)
        if rule is None:
            continue
        code = line.procedure_code
        families = [rule["standalone"], rule["addon"]]
        family = next((f for f in families if code in {c for _, c in f}), None)
        minimum = rule.get("minimums", {}).get(code)
        if family is None and minimum is None:
            continue
        if line.minutes is None:
            yield _warning("coding.time_missing", f"line {number} ({code}) is a timed code but no minutes are documented",
                           "send the session's psychotherapy minutes (start/stop or total) from the EHR", number)
            continue
        floor = rule["minimum_minutes"] if family is not None else minimum
        if line.minutes < floor:
            yield _error("coding.time_too_short",
                         f"line {number} ({code}): {line.minutes} minutes documented; {code} needs at least {floor}",
                         f"do not bill {code} for under {floor} minutes; check the documented time", number)
            continue
        if family is not None:
            supported, span = _supported(family, line.minutes)
            if supported != code:
                yield _error("coding.time_mismatch",
                             f"line {number}: {line.minutes} minutes of psychotherapy support {supported}, not {code}",
                             f"bill {supported} ({span})", number)


# --- 1.3 crisis --------------------------------------------------------------------------------

def check_crisis(claim: Claim, table: dict, _mappings: MappingSet) -> Iterator[Finding]:
    for day, lines in _by_date(claim).items():
        rule = current(table.get("crisis", []), day)
        if rule is None:
            continue
        first = [(n, ln) for n, ln in lines if ln.procedure_code == rule["first_code"]]
        addons = [(n, ln) for n, ln in lines if ln.procedure_code == rule["addon_code"]]
        if not first:
            continue  # an add-on alone is check_addons' finding
        number, line = first[0]
        minutes = line.minutes if line.minutes is not None else max(
            (ln.minutes for _, ln in addons if ln.minutes is not None), default=None)
        if minutes is None:
            yield _warning("coding.time_missing", f"line {number} ({line.procedure_code}) has no crisis minutes documented",
                           "send the day's total crisis time from the EHR", number)
            continue
        if minutes < rule["first_minimum"]:
            psych = current(table.get("psychotherapy", []), day)
            supported, span = _supported(psych["standalone"], minutes) if psych else (None, "")
            fix = f"bill {supported} ({span}) instead of crisis codes" if supported else \
                "not billable as crisis or psychotherapy; check the documented time"
            yield _error("coding.time_mismatch",
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
            yield _error("coding.crisis_units",
                         f"{minutes} crisis minutes support {rule['addon_code']} x {expected}; "
                         f"{_units(billed)} billed", fix, where)


# --- 1.2 / 1.6 / 1.7 add-ons ------------------------------------------------------------------------

def check_addons(claim: Claim, table: dict, _mappings: MappingSet) -> Iterator[Finding]:
    for day, lines in _by_date(claim).items():
        codes_that_day = {ln.procedure_code for _, ln in lines}
        for rule in in_effect(table.get("addons", []), day):
            for number, line in lines:
                if line.procedure_code not in rule["codes"] or codes_that_day & set(rule["needs_one_of"]):
                    continue
                present = sorted(codes_that_day & set(rule.get("not_with", [])))
                why = f"; {', '.join(present)} cannot be its primary" if present else ""
                yield _error("coding.addon_without_primary",
                             f"line {number}: add-on {line.procedure_code} needs {rule['primary_name']} "
                             f"on the same date{why}",
                             rule.get("alone_fix") or f"bill {rule['primary_name']} with it, or remove "
                                                      f"{line.procedure_code}", number)


# --- 1.10 same-day pairs -------------------------------------------------------------------------------

def check_same_day_pairs(claim: Claim, table: dict, mappings: MappingSet) -> Iterator[Finding]:
    for day, lines in _by_date(claim).items():
        if len(lines) < 2:
            continue  # a pair needs two lines that day
        waived = set(payer_rules(table, mappings, claim, day).get("waive_pairs", []))
        for pair in in_effect(table.get("same_day_pairs", []), day):
            if pair["id"] in waived:
                continue
            first, second = set(pair["first"]), set(pair["second"])
            for i, (n1, a) in enumerate(lines):
                for n2, b in lines[i + 1:]:
                    if a.procedure_code in first and b.procedure_code in second:
                        col1, col2 = (n1, a), (n2, b)
                    elif b.procedure_code in first and a.procedure_code in second:
                        col1, col2 = (n2, b), (n1, a)
                    else:
                        continue
                    if set(col2[1].modifiers) & set(pair.get("modifiers", [])):
                        continue
                    make = _error if pair.get("severity", "error") == "error" else _warning
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


def check_units(claim: Claim, table: dict, mappings: MappingSet) -> Iterator[Finding]:
    for number, line in enumerate(claim.lines, start=1):
        rule = current(table.get("units", []), line.service_date)
        if rule is None:
            continue
        code, place = line.procedure_code, line.place_of_service or claim.place_of_service
        if code in rule["single_unit_codes"] and line.units != 1 \
                and place not in rule.get("single_unit_exempt_place_of_service", []):
            yield _error("coding.units", f"line {number} ({code}) has {_units(line.units)} units; "
                         f"{code} is billed once per session", "bill 1 unit", number)
        unit_minutes = rule.get("time_unit_codes", {}).get(code)
        if unit_minutes is None:
            continue
        if line.minutes is None:
            yield _warning("coding.time_missing", f"line {number} ({code}) is billed in {unit_minutes}-minute units "
                           "but no minutes are documented", "send the service minutes from the EHR", number)
            continue
        rounding = payer_rules(table, mappings, claim, line.service_date).get("time_unit_rounding", "cms_8_minute")
        expected = time_units(line.minutes, unit_minutes, rounding)
        if expected == 0:
            yield _error("coding.time_too_short",
                         f"line {number} ({code}): {line.minutes} minutes is less than one billable unit ({rounding})",
                         f"do not bill {code} for {line.minutes} minutes", number)
        elif line.units != expected:
            yield _error("coding.units",
                         f"line {number} ({code}): {line.minutes} minutes are {expected} units of {unit_minutes} "
                         f"minutes ({rounding}); {_units(line.units)} billed", f"bill {expected} units", number)


# --- 1.2 / 1.4 / 11.2 provider type ---------------------------------------------------------------------

def check_provider_type(claim: Claim, table: dict, _mappings: MappingSet) -> Iterator[Finding]:
    clinician = claim.rendering_provider or claim.billing_provider
    taxonomy = clinician.taxonomy
    for number, line in enumerate(claim.lines, start=1):
        rule = current(table.get("provider_types", []), line.service_date)
        if rule is None or line.procedure_code not in rule["prescriber_only_codes"]:
            continue
        if taxonomy and taxonomy.startswith(tuple(rule["prescriber_taxonomy_prefixes"])):
            continue
        if taxonomy and taxonomy.startswith(tuple(rule["non_prescriber_taxonomy_prefixes"])):
            yield _error("coding.provider_type",
                         f"line {number}: {line.procedure_code} is billed only by prescribers (MD/DO, NP, PA); "
                         f"the rendering taxonomy {taxonomy} (NPI {clinician.npi}) is not one",
                         "bill the non-prescriber code (90791, 90832-90837) or name the prescriber who "
                         "rendered it", number)
        else:
            yield _warning("coding.provider_type_unknown",
                           f"line {number}: {line.procedure_code} is billed only by prescribers; the rendering "
                           f"taxonomy {taxonomy or '(none)'} does not say whether NPI {clinician.npi} is one",
                           "add the clinician's NUCC taxonomy (PractitionerRole.specialty)", number)


# --- 2 telehealth ---------------------------------------------------------------------------------------

def check_telehealth(claim: Claim, table: dict, mappings: MappingSet) -> Iterator[Finding]:
    for number, line in enumerate(claim.lines, start=1):
        rules = payer_rules(table, mappings, claim, line.service_date)
        mods = set(line.modifiers)
        video = mods & set(rules.get("telehealth_video_modifiers", []))
        audio = mods & set(rules.get("audio_only_modifiers", []))
        if not (video or audio):
            continue
        place = line.place_of_service or claim.place_of_service
        payer = claim.coverage.payer.payer_id
        for retired in sorted(mods & set(rules.get("retired_telehealth_modifiers", []))):
            yield _error("coding.telehealth_modifier",
                         f"line {number}: modifier {retired} is retired for professional claims by payer {payer}",
                         f"remove {retired}; telehealth is told by POS 02/10"
                         + (f" ({'/'.join(rules['audio_only_modifiers'][:1])} if audio-only)"
                            if rules.get("audio_only_modifiers") else ""), number)
        if video and audio:
            yield _error("coding.telehealth_modifier",
                         f"line {number} carries both audio-video ({', '.join(sorted(video))}) and audio-only "
                         f"({', '.join(sorted(audio))}) modifiers", "keep the one that describes the session", number)
        allowed = rules.get("telehealth_place_of_service") or []
        if allowed and place not in allowed:
            yield _error("coding.telehealth_place",
                         f"line {number}: telehealth modifier {', '.join(sorted(video | audio))} with POS {place}; "
                         f"payer {payer} wants POS {' or '.join(allowed)} for telehealth",
                         "use POS 10 (patient at home) or 02 (patient elsewhere)", number)
        audio_places = rules.get("audio_only_place_of_service") or []
        if audio and audio_places and place not in audio_places and (not allowed or place in allowed):
            yield _error("coding.telehealth_place",
                         f"line {number}: audio-only ({', '.join(sorted(audio))}) with POS {place}; payer {payer} "
                         f"pays audio-only behavioral telehealth only to the home (POS {' or '.join(audio_places)})",
                         f"use POS {audio_places[0]} if the patient was at home; otherwise bill it as video", number)


# --- 3.1 licensure modifiers ------------------------------------------------------------------------------

def check_licensure(claim: Claim, table: dict, mappings: MappingSet) -> Iterator[Finding]:
    clinician = claim.rendering_provider or claim.billing_provider
    for number, line in enumerate(claim.lines, start=1):
        rules = payer_rules(table, mappings, claim, line.service_date)
        required = rules.get("licensure_modifiers", {}).get(clinician.taxonomy or "")
        codes = rules.get("licensure_codes") or []
        if not required or (codes and line.procedure_code not in codes) or set(line.modifiers) & set(required):
            continue
        yield _error("coding.licensure_modifier",
                     f"line {number} ({line.procedure_code}): payer {claim.coverage.payer.payer_id} requires a "
                     f"licensure modifier for taxonomy {clinician.taxonomy}",
                     f"add modifier {' or '.join(required)}", number)


# --- 1.11 deleted codes ------------------------------------------------------------------------------------

def check_deleted(claim: Claim, table: dict, _mappings: MappingSet) -> Iterator[Finding]:
    for number, line in enumerate(claim.lines, start=1):
        for entry in in_effect(table.get("deleted_codes", []), line.service_date):
            if line.procedure_code in entry["codes"]:
                yield _error("coding.deleted_code",
                             f"line {number}: {line.procedure_code} was deleted effective "
                             f"{_as_date(entry['effective']).isoformat()}",
                             f"bill {entry['replacement']}", number)


# --- registration ---------------------------------------------------------------------------------------------

RULES = [
    ("coding.deleted_codes", "codes deleted from CPT/HCPCS before the date of service", check_deleted),
    ("coding.psychotherapy_time", "psychotherapy code matches the documented minutes", check_time),
    ("coding.crisis", "90839/+90840 by crisis minutes", check_crisis),
    ("coding.addons", "add-on codes have their primary the same day", check_addons),
    ("coding.same_day_pairs", "same-day combinations that are not billed together", check_same_day_pairs),
    ("coding.units", "one unit for 908xx, time units for HCPCS timed codes", check_units),
    ("coding.provider_type", "prescriber-only codes by rendering taxonomy", check_provider_type),
    ("coding.telehealth", "telehealth modifiers and place of service per payer", check_telehealth),
    ("coding.licensure", "licensure modifiers a payer requires by taxonomy", check_licensure),
]


def _run(rule):
    def check(claim: Claim, context: Any) -> list[Finding]:
        mappings = _mappings(context)
        return list(rule(claim, _table(mappings), mappings))
    return check


@hookimpl
def bhhub_register_claim_checks() -> list[ClaimCheck]:
    return [ClaimCheck(name, description, _run(rule)) for name, description, rule in RULES]
