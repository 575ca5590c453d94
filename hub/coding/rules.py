"""Table lookups the coding stage needs: psychotherapy code by minutes, fees, telehealth rules."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from bhhub.errors import MappingError
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.common.memo import IdentityMemo
from bhhub.model import Payer, Provider

PSYCHOTHERAPY = "coding/psychotherapy.toml"
FEES = "fee_schedule.toml"
PAYERS = "payers.toml"


def psychotherapy_code(mappings: MappingSet, minutes: int, on: date, *, with_em: bool = False) -> str | None:
    """The psychotherapy code the documented minutes support, or None below the minimum.

    Midpoint rule (domain reference 1.1): 16-37 → 90832, 38-52 → 90834, 53+ → 90837; the
    add-on family when the same provider bills an E/M that day.
    """
    entry = mappings.effective(PSYCHOTHERAPY, "addon" if with_em else "standalone", on)
    code = None
    for threshold, candidate in sorted(entry["thresholds"]):
        if minutes >= threshold:
            code = candidate
    return code


def minimum_psychotherapy_minutes(mappings: MappingSet, on: date) -> int:
    entry = mappings.effective(PSYCHOTHERAPY, "standalone", on)
    return min(t for t, _ in entry["thresholds"])


def fee(mappings: MappingSet, code: str, on: date) -> Decimal | None:
    """The practice's charge for ``code`` on ``on``, or None when the schedule has none."""
    try:
        entry = mappings.effective(FEES, "fees", on)
    except MappingError:  # no schedule in effect that day: the same as no fee for the code
        return None
    raw = entry.get("charges", {}).get(code)
    if raw is None:
        return None
    try:
        return Decimal(str(raw))
    except InvalidOperation as exc:
        raise MappingError(f"{FEES}: charge for {code} is not a number: {raw!r}") from exc


# --- telehealth (domain reference 2) -------------------------------------------------------------

# The keys of a telehealth rule ([telehealth.default], [telehealth.claim_filing_indicator.XX],
# [payer."ID".telehealth]) and of its per-place tables ([... .place."02"]).
_PLACE_KEYS = frozenset({"bill_place_of_service", "video_modifier", "audio_only_modifier",
                         "rhc_fqhc_video_modifier", "rhc_fqhc_audio_only_modifier"})
_RULE_KEYS = _PLACE_KEYS | {"place_of_service", "place"}
_SETTINGS = {"patient_locations": list, "rhc_fqhc_taxonomies": list, "rhc_fqhc_npis": list,
             "rhc_fqhc_only_modifiers": list, "session_modifiers": list, "audio_only_session_modifiers": list,
             "session_rules_from": str, "default": dict, "claim_filing_indicator": dict}


@dataclass(frozen=True)
class TelehealthBilling:
    """How one payer wants a telehealth visit billed: CLM05-1 and the modifier for its lines."""

    place_of_service: str
    modifier: str | None


def patient_locations(mappings: MappingSet) -> frozenset[str]:
    """The places of service that say where a telehealth patient was (02 not home, 10 home)."""
    return frozenset(_telehealth_table(mappings)["patient_locations"])


def telehealth_billing(mappings: MappingSet, payer: Payer, billing_provider: Provider, *,
                       patient_at: str | None, audio_only: bool, rhc_fqhc: bool | None = None) -> TelehealthBilling:
    """The payer's rule for a telehealth visit with the patient at ``patient_at`` (None: unknown).

    The rule is the default, then the one for the payer's claim filing indicator, then the
    payer's own, each laid over the last; then, the patient's place known (else the rule's
    ``place_of_service``), the ``place."NN"`` tables of each in the same order. The RHC/FQHC
    modifiers apply only when the billing provider is a rural health clinic or FQHC (``rhc_fqhc``
    says whether to take it as one; None: by its taxonomy or NPI).
    """
    table = _telehealth_table(mappings)
    payers = mappings.load(PAYERS).get("payer", {})
    layers = [table["default"], table["claim_filing_indicator"].get(claim_filing_indicator(mappings, payer), {}),
              payers.get(payer.payer_id, {}).get("telehealth", {})]
    rule: dict = {}
    for layer in layers:
        rule.update({k: v for k, v in layer.items() if k != "place"})
    at = patient_at or str(rule.get("place_of_service", "10"))
    for layer in layers:
        rule.update(layer.get("place", {}).get(at, {}))
    kind = "audio_only_modifier" if audio_only else "video_modifier"
    modifier = rule.get(kind)
    if rhc_fqhc is None:
        rhc_fqhc = is_rhc_fqhc(mappings, billing_provider)
    if rhc_fqhc and f"rhc_fqhc_{kind}" in rule:
        modifier = rule[f"rhc_fqhc_{kind}"]
    return TelehealthBilling(rule.get("bill_place_of_service") or at, modifier or None)


@dataclass(frozen=True)
class SessionModifiers:
    """The telehealth modifiers every line is checked for (payers.toml [telehealth])."""

    session: frozenset[str]  # say how the session was held: one per line
    audio_only: frozenset[str]  # of those, the audio-only ones
    rhc_fqhc_only: frozenset[str]  # billed only by rural health clinics and FQHCs
    rules_from: date  # lines dated earlier are not held to the payers' place/modifier rules


def session_modifiers(mappings: MappingSet) -> SessionModifiers:
    table = _telehealth_table(mappings)
    return _SESSION.get(table, None, _session_modifiers, table)


_SESSION: IdentityMemo[SessionModifiers] = IdentityMemo(limit=64)  # per telehealth table: one answer


def _session_modifiers(table: dict) -> SessionModifiers:
    rules_from = date.fromisoformat(table["session_rules_from"]) if table["session_rules_from"] else date.min
    return SessionModifiers(frozenset(table["session_modifiers"]), frozenset(table["audio_only_session_modifiers"]),
                            frozenset(table["rhc_fqhc_only_modifiers"]), rules_from)


# Per payers.toml table, what wanted_at said for each question: a scrub asks the same few
# questions for thousands of claims.
_WANTED: IdentityMemo[frozenset[str] | None] = IdentityMemo(limit=50_000)


def wanted_at(mappings: MappingSet, payer: Payer, billing_provider: Provider, place: str, *,
              audio_only: bool) -> frozenset[str] | None:
    """The session modifiers the payer's rule wants on a telehealth line billed at ``place``;
    None when the rule bills no telehealth at that place (an in-person place). A rural health
    clinic or FQHC may bill the ordinary modifier as well as its own (Medicare: FQ or 93, 2.2)."""
    question = (payer, billing_provider.npi, billing_provider.taxonomy, place, audio_only)
    return _WANTED.get(mappings.load(PAYERS), question, _wanted_at,
                       mappings, payer, billing_provider, place, audio_only)


def _wanted_at(mappings: MappingSet, payer: Payer, billing_provider: Provider, place: str,
               audio_only: bool) -> frozenset[str] | None:
    wanted: set[str] | None = None
    rhc = is_rhc_fqhc(mappings, billing_provider)
    for patient_at in sorted(patient_locations(mappings)):
        billing = telehealth_billing(mappings, payer, billing_provider, patient_at=patient_at, audio_only=audio_only)
        if billing.place_of_service != place:
            continue
        wanted = wanted or set()
        if billing.modifier:
            wanted.add(billing.modifier)
        if rhc:
            ordinary = telehealth_billing(mappings, payer, billing_provider, patient_at=patient_at,
                                          audio_only=audio_only, rhc_fqhc=False)
            if ordinary.modifier:
                wanted.add(ordinary.modifier)
    return frozenset(wanted) if wanted is not None else None


def is_rhc_fqhc(mappings: MappingSet, provider: Provider) -> bool:
    """Whether the billing provider is a rural health clinic or FQHC, by taxonomy or NPI."""
    table = _telehealth_table(mappings)
    return provider.taxonomy in table["rhc_fqhc_taxonomies"] or provider.npi in table["rhc_fqhc_npis"]


def _telehealth_table(mappings: MappingSet) -> dict:
    """The [telehealth] table and each payer's, checked once per table: every problem at once."""
    table = mappings.load(PAYERS)
    return _CHECKED.get(table, None, _checked_telehealth, table)


def _checked_telehealth(table: dict) -> dict:
    settings = dict(table.get("telehealth", {}))
    problems = [_unknown("telehealth", key, _SETTINGS) for key in settings if key not in _SETTINGS]
    for key, kind in _SETTINGS.items():
        settings.setdefault(key, kind())
        if not isinstance(settings[key], kind) or kind is list and not all(isinstance(v, str) for v in settings[key]):
            problems.append(f"telehealth.{key} must be a {_KIND_NAMES[kind]}")
    if isinstance(settings["session_rules_from"], str) and settings["session_rules_from"]:
        try:
            date.fromisoformat(settings["session_rules_from"])
        except ValueError:
            problems.append("telehealth.session_rules_from must be a date, YYYY-MM-DD")
    only_theirs = settings["rhc_fqhc_only_modifiers"]
    only_theirs = frozenset(only_theirs) if isinstance(only_theirs, list) else frozenset()
    rules = [("telehealth.default", settings["default"])]
    rules += [(f"telehealth.claim_filing_indicator.{k}", v) for k, v in _items(settings["claim_filing_indicator"])]
    rules += [(f'payer."{k}".telehealth', v.get("telehealth", {})) for k, v in _items(table.get("payer"))
              if isinstance(v, dict)]
    for where, rule in rules:
        problems += _rule_problems(where, rule, _RULE_KEYS, only_theirs)
        for place, terms in _items(rule.get("place") if isinstance(rule, dict) else None):
            problems += _rule_problems(f'{where}.place."{place}"', terms, _PLACE_KEYS, only_theirs)
    if problems:
        raise MappingError(f"{PAYERS}: {len(problems)} problem(s) in the telehealth rules: " + "; ".join(problems),
                           fix=f"correct mappings/{PAYERS} in the hub home (the packaged file documents each key)")
    return settings


_CHECKED: IdentityMemo[dict] = IdentityMemo(limit=32)  # many MappingSets (tests): kept small
_KIND_NAMES = {list: "list of strings", dict: "table", str: "string"}


def _rule_problems(where: str, rule: object, keys: frozenset[str], only_theirs: frozenset[str]) -> list[str]:
    if not isinstance(rule, dict):
        return [f"{where} must be a table"]
    problems = [_unknown(where, key, keys) for key in rule if key not in keys]
    for key, value in rule.items():
        if key in keys and key != "place" and not isinstance(value, str):
            problems.append(f"{where}.{key} must be a string")
        elif key in ("video_modifier", "audio_only_modifier") and value in only_theirs:
            # FQ is the RHC/FQHC audio-only modifier (domain reference 2.2): never on others' claims.
            problems.append(f"{where}.{key} is {value}, which only rural health clinics and FQHCs bill; "
                            f"set it as rhc_fqhc_{key}")
    if "place" in rule and not isinstance(rule["place"], dict):
        problems.append(f"{where}.place must be a table of places of service")
    return problems


def _items(table: object) -> list[tuple[str, object]]:
    return list(table.items()) if isinstance(table, dict) else []


def _unknown(where: str, key: str, keys) -> str:
    near = difflib.get_close_matches(key, list(keys), n=1)
    return f"unknown key {where}.{key}" + (f" (did you mean {near[0]}?)" if near else "")


def claim_filing_indicator(mappings: MappingSet, payer: Payer) -> str:
    """SBR09: the payer table wins over what the EHR said; commercial (CI) when nobody says."""
    configured = mappings.load(PAYERS).get("payer", {}).get(payer.payer_id, {})
    return configured.get("claim_filing_indicator") or payer.claim_filing_indicator or "CI"
