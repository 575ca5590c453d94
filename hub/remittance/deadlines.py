"""Filing and appeal windows: how long a claim, a correction or an appeal may wait, and from when.

One question, one place: "what is the window for this claim, and what starts its clock?". The
answer depends on the payer's kind, told by the claim filing indicator (837 SBR09 / 835 CLP06:
MA/MB Medicare, MC Medicaid, CI/BL/12-15/HM commercial ...), on the state for Medicaid, and on
the claim type: an original from its date of service, a replacement or void from the payer's
remittance, a secondary from the primary's remittance, an appeal from the denial (domain
reference 10.1, 6.2). The windows are data, ``mappings/rules/filing_windows.toml``, whose
header documents the format; precedence, highest first: the payer's own row, its state's row
(Medicaid), its kind's, the default.

The per-payer ``timely_filing_days`` and ``appeal_days`` of ``mappings/remittance/denials.toml``
(older hubs configured them there) still count as the payer's own row: days from the date of
service for an original claim, days from the remittance for an appeal. A practice's own
``[defaults]`` there still sets the default for those two.
"""

from __future__ import annotations

import calendar
import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from bhhub.errors import MappingError
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.remittance.table_problems import is_table, subtable

TABLE = "rules/filing_windows.toml"
LEGACY = "remittance/denials.toml"

CLAIM_TYPES = ("original", "replacement", "void", "secondary", "appeal", "second_appeal")
# What may start each type's clock: a window anchored elsewhere could not be computed.
ANCHORS = {
    "original": ("service_date",),
    "replacement": ("remittance", "service_date"),
    "void": ("remittance", "service_date"),
    "secondary": ("primary_remittance", "service_date"),
    "appeal": ("remittance",),
    "second_appeal": ("appeal_decision",),
}
ANCHOR_NAMES = {
    "service_date": "the date of service",
    "remittance": "the payer's remittance",
    "primary_remittance": "the primary payer's remittance",
    "appeal_decision": "the first appeal's decision",
}
_WITHIN = re.compile(r"^\s*(\d+)\s+(day|days|month|months)\s*$")
_KEYS = {
    "": frozenset({"default", "kind", "payer"}),
    "kind": frozenset({"name", "claim_filing_indicators", "by_state", *CLAIM_TYPES}),
    "state": frozenset(CLAIM_TYPES),
    "payer": frozenset({"name", "kind", "state", *CLAIM_TYPES}),
    "window": frozenset({"within", "from"}),
}


@dataclass(frozen=True)
class Window:
    """``length`` days or calendar months from ``anchor``; ``source`` says whose rule it is."""

    length: int
    unit: str  # "days" or "months"
    anchor: str  # one of ANCHOR_NAMES
    source: str  # e.g. "payer 01112", "Medicare (claim filing indicator MB)", "the default"

    def last_day(self, start: date) -> date:
        """The last day the claim or appeal is on time, counting from ``start`` (the anchor's date).
        Months are calendar months: 2026-01-31 + 12 months is 2027-01-31, + 1 month 2026-02-28
        (42 CFR 424.44: "1 calendar year after the date of service")."""
        if self.unit == "days":
            return start + timedelta(days=self.length)
        return add_months(start, self.length)

    def describe(self) -> str:
        unit = self.unit[:-1] if self.length == 1 else self.unit
        return f"{self.length} {unit} from {ANCHOR_NAMES[self.anchor]}"


def add_months(start: date, months: int) -> date:
    year, month = divmod(start.month - 1 + months, 12)
    year += start.year
    return date(year, month + 1, min(start.day, calendar.monthrange(year, month + 1)[1]))


class FilingWindows:
    """The windows table, checked, with the legacy per-payer days laid under the payers' rows."""

    def __init__(self, table: Mapping[str, Any], legacy_payers: Mapping[str, Mapping[str, int]] | None = None,
                 legacy_default: Mapping[str, int] | None = None):
        self._default = _windows(table.get("default", {}), "the default")
        self._default.update(_legacy(legacy_default or {}, "the default (denials.toml)"))
        self._kinds: dict[str, Mapping[str, Any]] = dict(table.get("kind", {}))
        self._by_indicator = {str(indicator).upper(): name for name, kind in self._kinds.items()
                              for indicator in kind.get("claim_filing_indicators", ())}
        self._payers: dict[str, Mapping[str, Any]] = {str(k): v for k, v in table.get("payer", {}).items()}
        self._legacy = {str(k): v for k, v in (legacy_payers or {}).items()}
        self._known: dict[tuple, Window | None] = {}

    @classmethod
    def of(cls, mappings: MappingSet) -> FilingWindows:
        """The hub's windows (packaged table, the practice's override laid over it), built once per
        table: ``MappingError`` listing every problem when the table is malformed."""
        table = mappings.load(TABLE)
        legacy = mappings.load(LEGACY)
        known = _BUILT.get(id(mappings))
        if known is not None and known[0] is table and known[1] is legacy:
            return known[2]
        problems = table_problems(table)
        if problems:
            raise MappingError(f"{len(problems)} problem(s): " + "; ".join(problems), where=f"mappings/{TABLE}",
                               fix="correct the table; its header documents the format")
        windows = cls(table, _legacy_payers(legacy), _legacy_default(mappings))
        if len(_BUILT) > 64:
            _BUILT.clear()
        _BUILT[id(mappings)] = (table, legacy, windows)
        return windows

    def window(self, claim_type: str, *, payer_id: str | None, filing_indicator: str | None,
               state: str | None = None) -> Window | None:
        """The window for a claim of ``claim_type`` (one of CLAIM_TYPES) to this payer; None when no
        rule gives one. ``state`` is the practice's, used for Medicaid when the payer row has none."""
        if claim_type not in CLAIM_TYPES:
            raise ValueError(f"claim type {claim_type!r} is not one of {', '.join(CLAIM_TYPES)}")
        payer_id = (payer_id or "").strip()
        indicator = (filing_indicator or "").strip().upper()
        key = (claim_type, payer_id, indicator, state)
        if key not in self._known:
            self._known[key] = self._find(claim_type, payer_id, indicator, state)
        return self._known[key]

    def _find(self, claim_type: str, payer_id: str, indicator: str, state: str | None) -> Window | None:
        payer = self._payers.get(payer_id, {})
        if claim_type in payer:
            return _window(payer[claim_type], f"payer {payer_id}")
        legacy = _legacy(self._legacy.get(payer_id, {}), f"payer {payer_id} (denials.toml)")
        if claim_type in legacy:
            return legacy[claim_type]
        # The payer row may say what it is when its SBR09 does not (e.g. a Medicaid MCO sent as HM).
        name = payer.get("kind") or self._by_indicator.get(indicator)
        kind = self._kinds.get(name) if name else None
        if kind is not None:
            label = f"{kind.get('name', name)} (payer {payer_id})" if "kind" in payer \
                else f"{kind.get('name', name)} (claim filing indicator {indicator})"
            where = str(payer.get("state") or state or "").strip().upper()
            by_state = kind.get("by_state", {}).get(where, {})
            if claim_type in by_state:
                return _window(by_state[claim_type], f"{label}, state {where}")
            if claim_type in kind:
                return _window(kind[claim_type], label)
        return self._default.get(claim_type)


_BUILT: dict[int, tuple[Any, Any, FilingWindows]] = {}


def _windows(entry: Mapping[str, Any], source: str) -> dict[str, Window]:
    return {t: _window(entry[t], source) for t in CLAIM_TYPES if t in entry}


def _window(entry: Mapping[str, Any], source: str) -> Window:
    length, unit = _parse_within(entry["within"])
    return Window(length, unit, entry["from"], source)


def _parse_within(text: Any) -> tuple[int, str]:
    match = _WITHIN.match(str(text))
    if match is None or int(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a number of days or months, e.g. \"90 days\" or \"12 months\"")
    unit = match.group(2)
    return int(match.group(1)), unit if unit.endswith("s") else unit + "s"


def _legacy(entry: Mapping[str, Any], source: str) -> dict[str, Window]:
    windows = {}
    if isinstance(entry.get("timely_filing_days"), int):
        windows["original"] = Window(entry["timely_filing_days"], "days", "service_date", source)
    if isinstance(entry.get("appeal_days"), int):
        windows["appeal"] = Window(entry["appeal_days"], "days", "remittance", source)
    return windows


def _legacy_payers(denials: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """denials.toml's payers with their profile's days laid under their own (as DenialRules does)."""
    profiles = denials.get("profile", {})
    payers = {}
    for payer_id, entry in denials.get("payer", {}).items():
        if not isinstance(entry, Mapping):
            continue
        profile = profiles.get(entry.get("profile"), {})
        days = {k: v for k, v in {**profile, **entry}.items() if k in ("timely_filing_days", "appeal_days")}
        if days:
            payers[str(payer_id)] = days
    return payers


def _legacy_default(mappings: MappingSet) -> dict[str, int]:
    """Only a practice's own [defaults] counts: the packaged one is the same as our default."""
    override = mappings.override_dir / LEGACY if mappings.override_dir is not None else None
    if override is None or not override.is_file():
        return {}
    defaults = tomllib.loads(override.read_text(encoding="utf-8")).get("defaults", {})
    return defaults if isinstance(defaults, Mapping) else {}


# ---- checking the table --------------------------------------------------------------------

def table_problems(table: Mapping[str, Any]) -> list[str]:
    """Every problem in the windows table as ``path: what is wrong``; [] when it is sound."""
    problems: list[str] = []
    _unknown(table, _KEYS[""], "", problems)
    _check_windows(table.get("default", {}), "default", problems, _KEYS["state"])
    seen: dict[str, str] = {}
    for name, kind in subtable(table, "kind", "", problems).items():
        path = f"kind.{name}"
        if not is_table(kind, path, problems):
            continue
        _check_windows(kind, path, problems, _KEYS["kind"])
        for indicator in kind.get("claim_filing_indicators", ()):
            if str(indicator).upper() in seen:
                problems.append(f"{path}.claim_filing_indicators: {indicator} is also kind {seen[str(indicator).upper()]}")
            seen[str(indicator).upper()] = name
        for state, entry in subtable(kind, "by_state", path, problems).items():
            if is_table(entry, f"{path}.by_state.{state}", problems):
                _check_windows(entry, f"{path}.by_state.{state}", problems, _KEYS["state"])
    kinds = set(subtable(table, "kind", "", []))
    for payer_id, entry in subtable(table, "payer", "", problems).items():
        path = f'payer."{payer_id}"'
        if not is_table(entry, path, problems):
            continue
        _check_windows(entry, path, problems, _KEYS["payer"])
        if "kind" in entry and entry["kind"] not in kinds:
            problems.append(f"{path}.kind: {entry['kind']!r} is not a [kind.NAME] of the table")
    return problems


def _check_windows(entry: Any, path: str, problems: list[str], allowed: frozenset[str]) -> None:
    if not is_table(entry, path, problems):
        return
    _unknown(entry, allowed, path, problems)
    for claim_type in CLAIM_TYPES:
        if claim_type not in entry:
            continue
        where = f"{path}.{claim_type}"
        window = entry[claim_type]
        if not is_table(window, where, problems):
            continue
        _unknown(window, _KEYS["window"], where, problems)
        try:
            _parse_within(window.get("within"))
        except ValueError as exc:
            problems.append(f"{where}.within: {exc}")
        if window.get("from") not in ANCHORS[claim_type]:
            problems.append(f"{where}.from: {window.get('from')!r} cannot start a {claim_type} window "
                            f"(one of {', '.join(ANCHORS[claim_type])})")


def _unknown(entry: Mapping[str, Any], allowed: frozenset[str], path: str, problems: list[str]) -> None:
    for key in entry:
        if key not in allowed:
            near = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"expected one of {', '.join(sorted(allowed))}"
            problems.append(f"{f'{path}.{key}' if path else key}: unknown key ({hint})")
