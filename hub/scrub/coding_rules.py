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

import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from bhhub import hookimpl
from bhhub.coding import rules as telehealth
from bhhub.coding.rules import claim_filing_indicator
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.common.memo import IdentityMemo
from bhhub.model import Claim, Finding, ServiceLine, Severity
from bhhub.types import ClaimCheck

log = logging.getLogger(__name__)

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


_IN_EFFECT: IdentityMemo[list[dict]] = IdentityMemo(limit=50_000)


def in_effect(entries: list[dict], on: date) -> list[dict]:
    """The entries whose ``effective``..``end`` span covers ``on`` (remembered per table and day:
    claims share their dates)."""
    return _IN_EFFECT.get(entries, on, _in_effect, entries, on)


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
            yield _warning("coding.time_missing", f"line {number} ({code}) is a timed code but no minutes are documented",
                           "send the session's psychotherapy minutes (start/stop or total) from the EHR", number)
            continue
        floor = day.psychotherapy["minimum_minutes"] if family is not None else minimum
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
            yield _warning("coding.time_missing", f"line {number} ({line.procedure_code}) has no crisis minutes documented",
                           "send the day's total crisis time from the EHR", number)
            continue
        if minutes < rule["first_minimum"]:
            psych = today_rules.psychotherapy
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
                yield _error("coding.addon_without_primary",
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


def check_units(claim: Claim, rules: ClaimRules) -> Iterator[Finding]:
    for number, line in enumerate(claim.lines, start=1):
        day = rules.on(line.service_date)
        if day.units is None:
            continue
        code = line.procedure_code
        if code in day.single_unit_codes and line.units != 1 \
                and (line.place_of_service or claim.place_of_service) not in day.single_unit_exempt:
            yield _error("coding.units", f"line {number} ({code}) has {_units(line.units)} units; "
                         f"{code} is billed once per session", "bill 1 unit", number)
        unit_minutes = day.time_unit_codes.get(code)
        if unit_minutes is None:
            continue
        if line.minutes is None:
            yield _warning("coding.time_missing", f"line {number} ({code}) is billed in {unit_minutes}-minute units "
                           "but no minutes are documented", "send the service minutes from the EHR", number)
            continue
        rounding = rules.payer(line.service_date).get("time_unit_rounding", "cms_8_minute")
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

def check_telehealth(claim: Claim, rules: ClaimRules) -> Iterator[Finding]:
    """The payer's coding-table telehealth rules, then each line's session modifiers against the
    payer's telehealth rule (payers.toml), a modifier reported by one check not again by the next."""
    if not any(line.modifiers for line in claim.lines):
        # Telehealth is told by its modifiers: none on any line, nothing to say (the session
        # modifiers' table is still read, so a broken one is reported as before).
        telehealth.session_modifiers(rules.mappings)
        return
    named: dict[int, set[str]] = defaultdict(set)  # line -> modifiers a finding already named
    placed: set[int] = set()  # lines already told their place does not fit telehealth
    for finding, modifiers in _payer_table_telehealth(claim, rules):
        named[finding.line].update(modifiers)
        if finding.code == "coding.telehealth_place":
            placed.add(finding.line)
        yield finding
    yield from _session_modifiers(claim, rules, named, placed)


def _session_modifiers(claim: Claim, rules: ClaimRules, named: dict[int, set[str]],
                       placed: set[int]) -> Iterator[Finding]:
    """Domain reference 2.2, whoever put the modifier on the line: FQ only on a rural health
    clinic's or FQHC's claim; no session modifier on an in-person place; one session modifier
    per line; and only the one the payer's rule (mappings/payers.toml) wants with that place.
    Errors the biller fixes in the EHR: the hub never removes what the EHR sent."""
    mods = telehealth.session_modifiers(rules.mappings)
    if not any(m in mods.session for line in claim.lines for m in line.modifiers):
        return
    payer = claim.coverage.payer
    billing = claim.billing_provider
    rhc = telehealth.is_rhc_fqhc(rules.mappings, billing)
    for number, line in enumerate(claim.lines, start=1):
        on_line = [m for m in line.modifiers if m in mods.session]
        if not on_line:
            continue
        left = [m for m in on_line if m not in named[number]]
        place = line.place_of_service or claim.place_of_service
        for modifier in [m for m in left if m in mods.rhc_fqhc_only and not rhc]:
            left.remove(modifier)
            yield _error("coding.telehealth_modifier",
                         f"line {number}: modifier {modifier} is billed only by rural health clinics and FQHCs; "
                         f"the billing provider (taxonomy {billing.taxonomy or 'unknown'}) is neither",
                         f"remove {modifier} in the EHR (audio-only: the payer's audio-only modifier); if the "
                         "practice is an RHC or FQHC, send its NUCC taxonomy (261QR1300X, 261QF0400X) or list its "
                         "NPI under rhc_fqhc_npis in mappings/payers.toml", number)
        if len(left) > 1 and line.service_date < mods.rules_from:
            yield _error("coding.telehealth_modifier",
                         f"line {number} carries {' and '.join(left)}; each says how the session was held, "
                         "and a line takes one", "keep the one that describes the session in the EHR", number)
            continue
        if line.service_date < mods.rules_from:
            continue
        audio_only = any(m in mods.audio_only for m in on_line)
        wanted = telehealth.wanted_at(rules.mappings, payer, billing, place, audio_only=audio_only)
        if wanted is None:
            if left and number not in placed:
                yield _error("coding.telehealth_modifier",
                             f"line {number}: telehealth modifier {', '.join(left)} on an in-person place of "
                             f"service (POS {place})",
                             f"remove {', '.join(left)} in the EHR if the patient was seen in person; if the visit "
                             "was telehealth, send where the patient was (POS 02, or 10 at home)", number)
            continue
        if len(left) > 1:
            keep = sorted(wanted & set(left)) or sorted(wanted)
            yield _error("coding.telehealth_modifier",
                         f"line {number} carries {' and '.join(left)}; each says how the session was held, "
                         "and a line takes one",
                         (f"keep {keep[0]} (what payer {payer.payer_id} wants at POS {place}) and remove the other"
                          if keep else f"remove them: payer {payer.payer_id} wants no telehealth modifier at "
                                       f"POS {place}") + " in the EHR", number)
            continue
        for modifier in [m for m in left if m not in wanted]:
            instead = f"bill {' or '.join(sorted(wanted))} instead" if wanted else "remove it"
            yield _error("coding.telehealth_modifier",
                         f"line {number}: payer {payer.payer_id}'s telehealth rule does not take modifier "
                         f"{modifier} for {'audio-only' if audio_only else 'audio-video'} sessions at POS {place}",
                         f"{instead} in the EHR (the payer's rule is in mappings/payers.toml)", number)


def _payer_table_telehealth(claim: Claim, rules: ClaimRules) -> Iterator[tuple[Finding, set[str]]]:
    """mappings/rules/coding.toml's telehealth rules: each finding with the modifiers it names."""
    for number, line in enumerate(claim.lines, start=1):
        if not line.modifiers:
            continue  # telehealth is told by its modifiers
        payer_rules_today = rules.payer(line.service_date)
        mods = set(line.modifiers)
        video = mods.intersection(payer_rules_today.get("telehealth_video_modifiers", ()))
        audio = mods.intersection(payer_rules_today.get("audio_only_modifiers", ()))
        if not (video or audio):
            continue
        place = line.place_of_service or claim.place_of_service
        payer = claim.coverage.payer.payer_id
        for retired in sorted(mods.intersection(payer_rules_today.get("retired_telehealth_modifiers", ()))):
            yield _error("coding.telehealth_modifier",
                         f"line {number}: modifier {retired} is retired for professional claims by payer {payer}",
                         f"remove {retired}; telehealth is told by POS 02/10"
                         + (f" ({'/'.join(payer_rules_today['audio_only_modifiers'][:1])} if audio-only)"
                            if payer_rules_today.get("audio_only_modifiers") else ""), number), {retired}
        if video and audio:
            yield _error("coding.telehealth_modifier",
                         f"line {number} carries both audio-video ({', '.join(sorted(video))}) and audio-only "
                         f"({', '.join(sorted(audio))}) modifiers", "keep the one that describes the session",
                         number), video | audio
        allowed = payer_rules_today.get("telehealth_place_of_service") or []
        if allowed and place not in allowed:
            yield _error("coding.telehealth_place",
                         f"line {number}: telehealth modifier {', '.join(sorted(video | audio))} with POS {place}; "
                         f"payer {payer} wants POS {' or '.join(allowed)} for telehealth",
                         "use POS 10 (patient at home) or 02 (patient elsewhere)", number), set()
        audio_places = payer_rules_today.get("audio_only_place_of_service") or []
        if audio and audio_places and place not in audio_places and (not allowed or place in allowed):
            yield _error("coding.telehealth_place",
                         f"line {number}: audio-only ({', '.join(sorted(audio))}) with POS {place}; payer {payer} "
                         f"pays audio-only behavioral telehealth only to the home (POS {' or '.join(audio_places)})",
                         f"use POS {audio_places[0]} if the patient was at home; otherwise bill it as video",
                         number), set()


# --- 3.1 licensure modifiers ------------------------------------------------------------------------------

def check_licensure(claim: Claim, rules: ClaimRules) -> Iterator[Finding]:
    clinician = claim.rendering_provider or claim.billing_provider
    for number, line in enumerate(claim.lines, start=1):
        payer_rules_today = rules.payer(line.service_date)
        required = payer_rules_today.get("licensure_modifiers", {}).get(clinician.taxonomy or "")
        if not required:
            continue
        codes = payer_rules_today.get("licensure_codes") or []
        if (codes and line.procedure_code not in codes) or set(line.modifiers) & set(required):
            continue
        yield _error("coding.licensure_modifier",
                     f"line {number} ({line.procedure_code}): payer {claim.coverage.payer.payer_id} requires a "
                     f"licensure modifier for taxonomy {clinician.taxonomy}",
                     f"add modifier {' or '.join(required)}", number)


# --- 1.11 deleted codes ------------------------------------------------------------------------------------

def check_deleted(claim: Claim, rules: ClaimRules) -> Iterator[Finding]:
    for number, line in enumerate(claim.lines, start=1):
        for entry in rules.on(line.service_date).deleted.get(line.procedure_code, ()):
            yield _error("coding.deleted_code",
                         f"line {number}: {line.procedure_code} was deleted effective "
                         f"{_as_date(entry['effective']).isoformat()}",
                         f"bill {entry['replacement']}", number)


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
    mappings = _mappings(context)
    rules = ClaimRules(claim, _table(mappings), mappings)
    by_date = _by_date(claim)
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
        findings.append(_warning(
            "scrub.check_failed", f"the coding rule {name!r} failed ({failed}); this claim was not fully checked",
            f"check the practice's {TABLE} override for that rule, or report it", None))
    return findings


@hookimpl
def bhhub_register_claim_checks() -> list[ClaimCheck]:
    return [ClaimCheck("coding", "behavioral-health coding rules: " + "; ".join(r[1] for r in RULES), check_all)]
