"""What an 835 adjustment means for the biller: its denial category and the one next action.

An adjustment is a CAS group code (CO, OA, PI, PR), a CARC, and the RARCs the payer sent with it
(domain reference 6.3, 6.6, 6.7). The categories follow the model in 6.8. Which CARC means what,
the payers' appeal and timely-filing days and their per-CARC quirks are data in
``mappings/remittance/denials.toml``, whose header documents the format; this module only layers
the rules and checks the table.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from bhhub.errors import InputError, MappingError
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.remittance.deadlines import CLAIM_TYPES, TABLE as WINDOWS
from bhhub.remittance.table_problems import is_table, subtable

DENIALS = "remittance/denials.toml"

CATEGORIES = (
    "eligibility", "authorization", "coding", "missing_data", "timely_filing", "duplicate",
    "medical_necessity", "benefit_limit", "coordination_of_benefits", "enrollment",
    "contractual", "patient_responsibility", "other",
)
ACTIONS = (
    "corrected_claim", "void", "appeal", "bill_secondary", "bill_patient", "write_off",
    "resubmit_with_info", "check_eligibility", "review", "none",
)
# The 5010 835 has exactly these; CR was 4010 only and OI is an 837 loop (domain reference 6.3).
GROUP_CODES = ("CO", "OA", "PI", "PR")
# Contractual write-downs and ordinary cost share are adjustments, not denials (6.8).
NOT_DENIALS = frozenset({"contractual", "patient_responsibility"})

_RULE_KEYS = frozenset({"category", "action", "action_text", "is_denial", "secondary_action", "secondary_action_text",
                        "window", "expired_action", "expired_action_text"})
# A layer that sets the action owns everything that depends on it: its text, its secondary-payer
# variant, the window it is judged by and what to do once that window has closed.
_ACTION_KEYS = ("action", "action_text", "secondary_action", "secondary_action_text", "window", "expired_action",
                "expired_action_text")
_DAYS_KEYS = ("appeal_days", "timely_filing_days")
_TOP_KEYS = frozenset({"defaults", "group_codes", "carc", "remark", "profile", "payer"})


@dataclass(frozen=True)
class Classification:
    category: str                      # one of CATEGORIES
    is_denial: bool                    # False for contractual write-downs and ordinary patient cost share
    action: str                        # one of ACTIONS
    action_text: str                   # one plain sentence for a biller
    appeal_deadline_days: int | None   # days from the remittance date to appeal, when action is "appeal"
    carc_description: str
    rarc_descriptions: tuple[str, ...]
    # The filing window (a claim type of bhhub.remittance.deadlines) that decides whether ``action`` is
    # still possible, when the rule names one (timely filing); None: the action's own window.
    window: str | None = None
    expired_action: str | None = None       # the next action once that window has closed
    expired_action_text: str | None = None


class DenialRules:
    """The denial table, checked; classifies adjustments and answers payer deadlines."""

    def __init__(self, table: Mapping[str, Any]):
        self._carcs: Mapping[str, Any] = table.get("carc", {})
        self._remarks: Mapping[str, str] = table.get("remark", {})
        self._groups: Mapping[str, Any] = table.get("group_codes", {})
        self._defaults: Mapping[str, Any] = table.get("defaults", {})
        profiles = table.get("profile", {})
        self._payers = {
            str(payer_id): _layered(profiles.get(entry.get("profile"), {}), entry)
            for payer_id, entry in table.get("payer", {}).items()
        }

    @classmethod
    def load(cls, mappings: MappingSet) -> DenialRules:
        """The packaged table with the practice's override laid over it; ``MappingError`` listing
        every problem at once when it is malformed."""
        table = mappings.load(DENIALS)
        problems = table_problems(table)
        where = f"mappings/{DENIALS}"
        override = mappings.override_dir / DENIALS if mappings.override_dir is not None else None
        if override is not None and override.is_file():
            where += f" with the override {override}"
            # Parsed already by mappings.load, so it is valid TOML.
            problems += _override_problems(tomllib.loads(override.read_text(encoding="utf-8")))
        if problems:
            raise MappingError(f"{len(problems)} problem(s): " + "; ".join(problems), where=where,
                               fix="correct the table; its header documents the format")
        rules = cls(table)
        rules.mappings = mappings  # for the appeal deadlines (bhhub.remittance.deadlines)
        return rules

    def classify(self, group: str, reason: str, remarks: Sequence[str] = (), *, payer_id: str | None = None,
                 has_secondary: bool = False) -> Classification:
        """Category and next action for one CAS adjustment (``group``-``reason``) with its RARCs."""
        group = group.strip().upper()
        if group not in GROUP_CODES:
            raise InputError(f"CAS group code {group!r} is not one of {', '.join(GROUP_CODES)} (5010 835)")
        reason = reason.strip().upper()
        remarks = tuple(r.strip().upper() for r in remarks if r and r.strip())
        rarc_descriptions = tuple(self._remarks.get(r, f"RARC {r} (not in the table)") for r in remarks)
        entries = [e for e in (self._carcs.get(reason), self._payer(payer_id).get("carc", {}).get(reason)) if e]
        if not entries:
            return self._unknown(group, reason, rarc_descriptions)

        rule: dict[str, Any] = {}
        for entry in entries:
            _lay(rule, entry)
        if _is_denial(rule):  # the group says who owes a denied amount; cost share already says
            _lay(rule, self._groups.get(group))
        for entry in entries:
            _lay(rule, entry.get("group", {}).get(group))
        # The payer lists remarks most relevant first: the first one with a refinement is used.
        remark = next((r for r in remarks if any(r in e.get("remark", {}) for e in entries)), None)
        for entry in entries:
            _lay(rule, entry.get("remark", {}).get(remark))

        action, action_text = rule["action"], rule["action_text"]
        window, expired = rule.get("window"), (rule.get("expired_action"), rule.get("expired_action_text"))
        if has_secondary and "secondary_action" in rule:
            action, action_text = rule["secondary_action"], rule["secondary_action_text"]
            window, expired = None, (None, None)
        description = next((e["description"] for e in entries if "description" in e),
                           f"CARC {reason} (not in the table)")
        return Classification(
            category=rule["category"],
            is_denial=_is_denial(rule),
            action=action,
            action_text=action_text,
            appeal_deadline_days=self._days(payer_id, "appeal_days") if action == "appeal" else None,
            carc_description=description,
            rarc_descriptions=rarc_descriptions,
            window=window,
            expired_action=expired[0],
            expired_action_text=expired[1],
        )

    @property
    def responsibility(self):
        """Who owes a PR amount, and what counts as a crossover (``bhhub.remittance.responsibility``),
        from the same mappings as this table; loaded once."""
        from bhhub.remittance.responsibility import Responsibility

        if getattr(self, "_responsibility", None) is None:
            self._responsibility = Responsibility.load(getattr(self, "mappings", None) or MappingSet())
        return self._responsibility

    def appeal_deadline(self, payer_id: str | None, remit_date: date, filing_indicator: str | None = None,
                        *, mappings: MappingSet | None = None) -> date | None:
        """Last day to appeal a denial on a remittance dated ``remit_date``, by the payer's row, else its
        kind (``filing_indicator``, 835 CLP06), else the default (``bhhub.remittance.deadlines``); None if
        no rule gives one. ``mappings`` defaults to the ones this table was loaded from."""
        from bhhub.remittance.deadlines import FilingWindows

        windows = FilingWindows.of(mappings or getattr(self, "mappings", None) or MappingSet())
        window = windows.window("appeal", payer_id=payer_id, filing_indicator=filing_indicator)
        return window.last_day(remit_date) if window is not None else None

    def remark_description(self, code: str) -> str:
        """A RARC's meaning from the table's [remark], for showing MOA/MIA/LQ remarks on a claim."""
        code = code.strip().upper()
        return self._remarks.get(code, f"RARC {code} (not in the table)")

    def timely_filing_days(self, payer_id: str | None) -> int | None:
        """The payer's filing limit in days from the date of service; None if not configured."""
        return self._days(payer_id, "timely_filing_days")

    def _payer(self, payer_id: str | None) -> Mapping[str, Any]:
        return self._payers.get(str(payer_id).strip(), {}) if payer_id is not None else {}

    def _days(self, payer_id: str | None, key: str) -> int | None:
        return self._payer(payer_id).get(key, self._defaults.get(key))

    def _unknown(self, group: str, reason: str, rarc_descriptions: tuple[str, ...]) -> Classification:
        # Never guess: a person decides, and the table grows.
        liability = self._groups.get(group, {}).get("description", group)
        return Classification(
            category="other",
            is_denial=True,
            action="review",
            action_text=(f"CARC {reason} is not in the denial table: look it up in the current X12 CARC list, "
                         f"decide by hand and add it to mappings/{DENIALS} ({group}: {liability})."),
            appeal_deadline_days=None,
            carc_description=f"CARC {reason} (not in the table)",
            rarc_descriptions=rarc_descriptions,
        )


def _lay(rule: dict[str, Any], layer: Mapping[str, Any] | None) -> None:
    """Lay ``layer``'s rule keys over ``rule``. A layer that sets the action owns its text and its
    secondary-payer variant; one that sets the category drops an earlier explicit is_denial."""
    if not layer:
        return
    if "action" in layer:
        for key in _ACTION_KEYS:
            rule.pop(key, None)
    if "category" in layer:
        rule.pop("is_denial", None)
    rule.update((key, value) for key, value in layer.items() if key in _RULE_KEYS)


def _is_denial(rule: Mapping[str, Any]) -> bool:
    return rule.get("is_denial", rule.get("category") not in NOT_DENIALS)


def _layered(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """A payer over its profile: tables merge key by key, anything else is replaced."""
    result = dict(base)
    for key, value in top.items():
        both_tables = isinstance(value, Mapping) and isinstance(result.get(key), Mapping)
        result[key] = _layered(result[key], value) if both_tables else value
    return result


# ---- checking the table --------------------------------------------------------------------

def table_problems(table: Mapping[str, Any]) -> list[str]:
    """Every problem in the denial table, as ``path: what is wrong`` lines; [] when it is sound."""
    problems: list[str] = []
    _unknown_keys(table, _TOP_KEYS, "", problems)
    defaults = subtable(table, "defaults", "", problems)
    _unknown_keys(defaults, frozenset(_DAYS_KEYS), "defaults", problems)
    _check_days(defaults, "defaults", problems)

    groups = subtable(table, "group_codes", "", problems)
    for code in GROUP_CODES:
        if code not in groups:
            problems.append(f"group_codes.{code}: missing")
    for code, entry in groups.items():
        path = f"group_codes.{code}"
        if code not in GROUP_CODES:
            problems.append(f"{path}: {code!r} is not a 5010 CAS group code ({', '.join(GROUP_CODES)})")
        if is_table(entry, path, problems):
            _unknown_keys(entry, _RULE_KEYS | {"description"}, path, problems)
            _check_text(entry, "description", path, problems, required=True)
            _check_rule(entry, path, problems)

    remarks = subtable(table, "remark", "", problems)
    for code, text in remarks.items():
        if not isinstance(text, str) or not text.strip():
            problems.append(f"remark.{code}: the description must be non-empty text")

    carcs = subtable(table, "carc", "", problems)
    for code, entry in carcs.items():
        _check_carc(entry, f'carc."{code}"', problems, remarks,
                    required=("description", "category", "action", "action_text"))

    profiles = subtable(table, "profile", "", problems)
    for name, entry in profiles.items():
        _check_payer(entry, f"profile.{name}", problems, remarks, carcs, profiles=None)
    for payer_id, entry in subtable(table, "payer", "", problems).items():
        _check_payer(entry, f'payer."{payer_id}"', problems, remarks, carcs, profiles=profiles)
    return problems


def _override_problems(override: Mapping[str, Any], path: str = "") -> list[str]:
    """An override's rule that changes the action must say it in words too: merged key by key, the
    packaged sentence would otherwise stay and describe another action."""
    problems = []
    for key in ("action", "secondary_action", "expired_action"):
        if key in override and f"{key}_text" not in override:
            problems.append(f"{path}: the override sets {key} without {key}_text")
    parent = path.rsplit(".", 1)[-1]
    for key, value in override.items():
        if isinstance(value, Mapping):
            name = f'"{key}"' if parent in ("carc", "payer") else key
            problems += _override_problems(value, f"{path}.{name}" if path else name)
    return problems


def _check_payer(entry: Any, path: str, problems: list[str], remarks: Mapping, carcs: Mapping,
                 profiles: Mapping | None) -> None:
    if not is_table(entry, path, problems):
        return
    allowed = {"name", "carc", *_DAYS_KEYS} | ({"profile"} if profiles is not None else set())
    _unknown_keys(entry, frozenset(allowed), path, problems)
    _check_days(entry, path, problems)
    if profiles is not None and "profile" in entry and entry["profile"] not in profiles:
        problems.append(f"{path}.profile: no [profile.{entry['profile']}] in the table")
    for code, override in subtable(entry, "carc", path, problems).items():
        # A CARC the table lacks needs a whole rule; one it has may change any part.
        required = () if code in carcs else ("category", "action", "action_text")
        _check_carc(override, f'{path}.carc."{code}"', problems, remarks, required=required)


def _check_carc(entry: Any, path: str, problems: list[str], remarks: Mapping, required: Sequence[str]) -> None:
    if not is_table(entry, path, problems):
        return
    _unknown_keys(entry, _RULE_KEYS | {"description", "group", "remark"}, path, problems)
    for key in required:
        if key not in entry:
            problems.append(f"{path}: {key} is missing")
    _check_text(entry, "description", path, problems)
    _check_rule(entry, path, problems)
    for code, layer in subtable(entry, "group", path, problems).items():
        layer_path = f"{path}.group.{code}"
        if code not in GROUP_CODES:
            problems.append(f"{layer_path}: {code!r} is not a 5010 CAS group code ({', '.join(GROUP_CODES)})")
        if is_table(layer, layer_path, problems):
            _unknown_keys(layer, _RULE_KEYS, layer_path, problems)
            _check_rule(layer, layer_path, problems)
    for code, layer in subtable(entry, "remark", path, problems).items():
        layer_path = f"{path}.remark.{code}"
        if code not in remarks:
            problems.append(f"{layer_path}: RARC {code} has no description in [remark]")
        if is_table(layer, layer_path, problems):
            _unknown_keys(layer, _RULE_KEYS, layer_path, problems)
            _check_rule(layer, layer_path, problems)


def _check_rule(layer: Mapping[str, Any], path: str, problems: list[str]) -> None:
    if "category" in layer and layer["category"] not in CATEGORIES:
        problems.append(f"{path}.category: {layer['category']!r} is not a category ({', '.join(CATEGORIES)})")
    for key in ("action", "secondary_action", "expired_action"):
        if key in layer and layer[key] not in ACTIONS:
            problems.append(f"{path}.{key}: {layer[key]!r} is not an action ({', '.join(ACTIONS)})")
        if key in layer and f"{key}_text" not in layer:
            problems.append(f"{path}: {key} is set without {key}_text")
        _check_text(layer, f"{key}_text", path, problems)
    if "window" in layer and layer["window"] not in CLAIM_TYPES:
        problems.append(f"{path}.window: {layer['window']!r} is not a claim type of {WINDOWS} ({', '.join(CLAIM_TYPES)})")
    if "is_denial" in layer and not isinstance(layer["is_denial"], bool):
        problems.append(f"{path}.is_denial: {layer['is_denial']!r} is not true or false")


def _check_days(entry: Mapping[str, Any], path: str, problems: list[str]) -> None:
    for key in _DAYS_KEYS:
        value = entry.get(key)
        if key in entry and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            problems.append(f"{path}.{key}: {value!r} is not a whole, positive number of days")


def _check_text(entry: Mapping[str, Any], key: str, path: str, problems: list[str], required: bool = False) -> None:
    if key in entry and (not isinstance(entry[key], str) or not entry[key].strip()):
        problems.append(f"{path}.{key}: must be non-empty text")
    elif required and key not in entry:
        problems.append(f"{path}: {key} is missing")


def _unknown_keys(entry: Mapping[str, Any], allowed: frozenset[str], path: str, problems: list[str]) -> None:
    for key in entry:
        if key not in allowed:
            where = f"{path}.{key}" if path else key
            problems.append(f"{where}: unknown key (expected one of {', '.join(sorted(allowed))})")
