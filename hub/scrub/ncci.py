"""NCCI edits: the code pairs and unit counts Medicare, Medicaid and many plans deny on sight.

A built-in plugin, registered through the ``bhhub`` entry point like any vendor's rule pack. Two
kinds of edit, both from CMS's quarterly files (domain reference 1.10, 1.11):

- procedure-to-procedure (PTP) pairs on one date of service: modifier indicator 0 never together;
  1 together only with an NCCI-associated modifier (59, XE, XS, XP, XU; 25 on an E/M) on the
  column-2 code; 9 no edit. Denied as CARC 97 / RARC N20.
- medically unlikely edits (MUEs): at most N units of a code; MAI 1 per claim line, MAI 2 and 3
  per date of service (2 policy: not payable; 3 clinical: appealable). Denied as CARC 151 / N362.

Tables: ``mappings/rules/ncci_ptp.toml``, ``ncci_mue.toml`` (packaged subset; a practice's loaded
CMS files laid over them, ``bhhub.scrub.ncci_files``) and ``ncci.toml`` (modifiers, exempt payers).
They are compiled once per table into dictionaries, so a claim costs a few lookups per line.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from bhhub import hookimpl
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.model import Claim, Finding, ServiceLine, Severity
from bhhub.types import ClaimCheck

SETTINGS = "rules/ncci.toml"
PTP = "rules/ncci_ptp.toml"
MUE = "rules/ncci_mue.toml"
_PACKAGED = MappingSet()

_MAI = {1: "claim line edit", 2: "date of service edit, policy", 3: "date of service edit, clinical"}
_MUE_FIX = {
    1: "bill at most {units} on one line; if more were truly given as separate services, put them on "
       "separate lines with the modifier that says why (e.g. 59, 76, 91) and keep the records",
    2: "bill at most {units}: units above the MUE are not payable, not even on appeal (a policy edit)",
    3: "bill at most {units}; units above the MUE are denied and may be appealed only with records "
       "showing they were medically necessary",
}


@dataclass(frozen=True)
class Edit:
    effective: date
    deleted: date | None  # the first date it no longer applies
    modifier: int  # 0, 1 or 9
    rationale: str

    def applies_on(self, day: date) -> bool:
        return self.modifier != 9 and self.effective <= day and (self.deleted is None or day < self.deleted)


@dataclass(frozen=True)
class Mue:
    units: Decimal
    mai: int
    rationale: str


@dataclass(frozen=True)
class NcciRules:
    pairs: Mapping[str, Mapping[str, tuple[Edit, ...]]]  # column 1 -> column 2 -> its edits
    mue: Mapping[str, Mue]
    bypass: frozenset[str]
    em_bypass: frozenset[str]
    em_codes: frozenset[str]
    exempt_payers: frozenset[str]

    def edits(self, column1: str, column2: str, day: date) -> tuple[Edit, ...]:
        return tuple(e for e in self.pairs.get(column1, {}).get(column2, ()) if e.applies_on(day))


def rules(mappings: MappingSet) -> NcciRules:
    """The compiled tables (built once per set of loaded tables)."""
    settings, ptp, mue = tables = (mappings.load(SETTINGS), mappings.load(PTP), mappings.load(MUE))
    known = _COMPILED.get(id(mappings))
    if known is not None:
        was = known[0]
        if was[0] is settings and was[1] is ptp and was[2] is mue:
            return known[1]
    compiled = _compile(*tables)
    if len(_COMPILED) > 64:
        _COMPILED.clear()
    _COMPILED[id(mappings)] = (tables, compiled)
    return compiled


_COMPILED: dict[int, tuple[tuple, NcciRules]] = {}


def _compile(settings: Mapping[str, Any], ptp: Mapping[str, Any], mue: Mapping[str, Any]) -> NcciRules:
    pairs = {
        str(first): {str(second): tuple(_edit(e) for e in (entries if isinstance(entries, list) else [entries]))
                     for second, entries in seconds.items()}
        for first, seconds in ptp.get("pairs", {}).items()
    }
    modifiers = settings.get("modifiers", {})
    return NcciRules(
        pairs=pairs,
        mue={str(code): Mue(Decimal(str(e["units"])), int(e.get("mai", 3)), str(e.get("rationale", "")))
             for code, e in mue.get("codes", {}).items() if not e.get("withdrawn")},
        bypass=frozenset(modifiers.get("bypass", ())),
        em_bypass=frozenset(modifiers.get("em_bypass", ())),
        em_codes=frozenset(modifiers.get("em_codes", ())),
        exempt_payers=frozenset(settings.get("payers", {}).get("exempt", ())),
    )


def _edit(entry: Mapping[str, Any]) -> Edit:
    deleted = entry.get("deleted")
    return Edit(_as_date(entry["effective"]), _as_date(deleted) if deleted is not None else None,
                int(entry["modifier"]), str(entry.get("rationale", "")))


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _mappings(context: Any) -> MappingSet:
    mappings = getattr(context, "mappings", None)
    return mappings if isinstance(mappings, MappingSet) else _PACKAGED


# ---- the check ------------------------------------------------------------------------------

def check_ncci(claim: Claim, context: Any = None) -> list[Finding]:
    compiled = rules(_mappings(context))
    if compiled.exempt_payers and claim.coverage.payer.payer_id.strip() in compiled.exempt_payers:
        return []
    lines = claim.lines
    if len(lines) == 1:  # most claims: no pair, and one line's units against its MUE
        return _one_line(compiled, lines[0])
    days: dict[date, list[tuple[int, ServiceLine]]] = defaultdict(list)
    for number, line in enumerate(claim.lines, start=1):
        days[line.service_date].append((number, line))
    findings: list[Finding] = []
    for day, numbered in days.items():
        if len(numbered) > 1:
            findings.extend(_pairs(compiled, day, numbered))
        findings.extend(_units(compiled, day, numbered))
    return findings


def _one_line(compiled: NcciRules, line: ServiceLine) -> list[Finding]:
    """``_units`` for a claim of one line: the line alone on its date, so a per-line edit (MAI 1)
    and a per-date one (MAI 2, 3) compare the same units, and only what they say differs."""
    mue = compiled.mue.get(line.procedure_code)
    if mue is None or not line.units > mue.units:
        return []
    where = "on one line" if mue.mai == 1 else "on one date of service"
    return [_mue_finding(line.procedure_code, line.units, mue, line.service_date, 1, where)]


def _pairs(compiled: NcciRules, day: date, numbered: list[tuple[int, ServiceLine]]) -> Iterator[Finding]:
    for n1, first in numbered:
        seconds = compiled.pairs.get(first.procedure_code)
        if not seconds:
            continue
        for n2, second in numbered:
            if n2 == n1 or second.procedure_code not in seconds:
                continue
            edits = compiled.edits(first.procedure_code, second.procedure_code, day)
            if not edits:
                continue
            edit = min(edits, key=lambda e: e.modifier)  # an indicator-0 edit rules over a 1
            pair = (f"{first.procedure_code} (line {n1}) and {second.procedure_code} (line {n2}) on "
                    f"{day.isoformat()} are an NCCI pair ({edit.rationale or 'procedure-to-procedure edit'}; "
                    f"modifier indicator {edit.modifier})")
            if edit.modifier == 0:
                yield Finding("ncci.ptp_never_together", Severity.ERROR,
                              f"{pair}: they are never paid together, whatever the modifier",
                              f"remove {second.procedure_code} (column 2; the payer denies it as CARC 97/N20), "
                              f"or bill it on its own claim only if it was a different date", n2)
            elif not _lifts(compiled, second):
                yield Finding("ncci.ptp_needs_modifier", Severity.ERROR,
                              f"{pair}: {second.procedure_code} is paid with it only as a distinct service",
                              "if the documentation shows a separate session or encounter, add "
                              + _modifiers_text(compiled, second)
                              + f" to {second.procedure_code}; otherwise remove it", n2)


def _lifts(compiled: NcciRules, line: ServiceLine) -> bool:
    modifiers = set(line.modifiers)
    if modifiers & compiled.bypass:
        return True
    return line.procedure_code in compiled.em_codes and bool(modifiers & compiled.em_bypass)


def _modifiers_text(compiled: NcciRules, line: ServiceLine) -> str:
    names = sorted(compiled.bypass, key=lambda m: (m != "59", m))
    if line.procedure_code in compiled.em_codes:
        names = sorted(compiled.em_bypass) + names
    return "/".join(names) or "an NCCI-associated modifier"


def _units(compiled: NcciRules, day: date, numbered: list[tuple[int, ServiceLine]]) -> Iterator[Finding]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    last: dict[str, int] = {}
    for number, line in numbered:
        mue = compiled.mue.get(line.procedure_code)
        if mue is None:
            continue
        if mue.mai == 1:  # a claim-line edit: each line on its own
            if line.units > mue.units:
                yield _mue_finding(line.procedure_code, line.units, mue, day, number, "on one line")
            continue
        totals[line.procedure_code] += line.units
        last[line.procedure_code] = number
    for code, units in totals.items():
        mue = compiled.mue[code]
        if units > mue.units:
            yield _mue_finding(code, units, mue, day, last[code], "on one date of service")


def _mue_finding(code: str, units: Decimal, mue: Mue, day: date, line: int, where: str) -> Finding:
    billed, limit = _count(units), _count(mue.units)
    return Finding(
        "ncci.mue_exceeded", Severity.ERROR,
        f"{code} is billed {billed} units {where} ({day.isoformat()}); its MUE is {limit} "
        f"(MAI {mue.mai}: {_MAI.get(mue.mai, 'unknown indicator')}"
        + (f"; {mue.rationale}" if mue.rationale else "") + ")",
        _MUE_FIX.get(mue.mai, _MUE_FIX[3]).format(units=limit), line)


def _count(units: Decimal) -> str:
    return f"{units.normalize():f}"


@hookimpl
def bhhub_register_claim_checks() -> list[ClaimCheck]:
    return [ClaimCheck("ncci", "NCCI procedure-to-procedure pairs on one date of service and medically "
                               "unlikely edits (units per line or per date)", check_ncci)]
