"""The FHIR field map (``mappings/ehr/fhir_r4.toml``) as typed, ready-to-use lookups.

Read once per payload from the practice's ``MappingSet``; a missing or malformed key is a
``MappingError`` naming the key, so an integrator's edited copy fails with a pointer to the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bhhub.errors import MappingError
from bhhub.runtime.mapping_tables import MappingSet

TABLE = "ehr/fhir_r4.toml"


@dataclass(frozen=True)
class FilingIndicatorRule:
    system: str
    hierarchical: bool
    codes: dict[str, str]

    def lookup(self, code: str) -> str | None:
        if not self.hierarchical:
            return self.codes.get(code)
        for length in range(len(code), 0, -1):  # the longest configured prefix wins
            found = self.codes.get(code[:length])
            if found:
                return found
        return None


@dataclass(frozen=True)
class FieldMap:
    bundle_types: frozenset[str]
    # code systems by role
    npi: frozenset[str]
    tin: frozenset[str]
    icd10cm: frozenset[str]
    procedure: frozenset[str]  # CPT and HCPCS together: a service line takes either
    modifier: frozenset[str]
    taxonomy: frozenset[str]
    place_of_service: frozenset[str]
    identifier_type: frozenset[str]
    # providers
    organization_qualification_extensions: frozenset[str]
    billing_taxonomy: dict[str, str]  # billing NPI -> NUCC taxonomy, when the bundle gives none
    # identifier type codes
    medical_record_types: frozenset[str]
    payer_id_types: frozenset[str]
    member_id_types: frozenset[str]
    patient_member_id_types: frozenset[str]
    npi_types: frozenset[str]
    tin_types: frozenset[str]
    payer_id_systems: frozenset[str]
    # coverage
    coverage_statuses: frozenset[str]
    coverage_class_systems: frozenset[str]
    group_class: str
    plan_class: str
    relationship_systems: frozenset[str]
    relationship: dict[str, str]
    relationship_unknown: str
    filing_indicator_rules: tuple[FilingIndicatorRule, ...]
    # encounter
    encounter_statuses: frozenset[str]
    class_systems: frozenset[str]
    virtual_classes: frozenset[str]
    participant_type_systems: frozenset[str]
    rendering_participant_types: tuple[str, ...]
    encounter_minutes_extensions: frozenset[str]
    excluded_condition_verification: frozenset[str]
    class_place_of_service: dict[str, str]
    place_of_service_extensions: frozenset[str]
    audio_only: frozenset[tuple[str, str]]  # (system, code)
    # charge items
    charge_item_statuses: frozenset[str]
    modifier_extensions: frozenset[str]
    line_minutes_extensions: frozenset[str]
    # claims
    claim_uses: frozenset[str]
    claim_statuses: frozenset[str]
    care_team_role_systems: frozenset[str]
    rendering_care_team_roles: tuple[str, ...]
    claim_default_place_of_service: str | None
    telehealth_places_of_service: frozenset[str]
    audio_only_modifiers: frozenset[str]
    # prior authorization
    prior_auth_uses: frozenset[str]
    prior_auth_statuses: frozenset[str]
    prior_auth_ledger_outcomes: frozenset[str]
    prior_auth_count_sources: tuple[str, ...]
    prior_auth_authorized_detail_extensions: frozenset[str]
    prior_auth_adjudication_category_systems: frozenset[str]
    prior_auth_adjudication_categories: frozenset[str]
    prior_auth_request_outcomes: frozenset[str]
    prior_auth_review_action_extensions: frozenset[str]
    prior_auth_authorized_review_actions: frozenset[str]
    prior_auth_unit_code_prefixes: tuple[str, ...]
    prior_auth_unit_words: frozenset[str]
    prior_auth_visit_words: frozenset[str]
    gender: dict[str, str]

    def filing_indicator(self, system: str, code: str) -> str | None:
        for rule in self.filing_indicator_rules:
            if rule.system == system:
                found = rule.lookup(code)
                if found:
                    return found
        return None


def load_field_map(mappings: MappingSet) -> FieldMap:
    """The field map in effect for this practice (its override first, else the packaged one)."""
    table = mappings.load(TABLE)
    cached = _CACHE.get(id(table))
    if cached is not None and cached[0] is table:
        return cached[1]
    field_map = _build(_Table(table))
    if len(_CACHE) >= 32:  # many MappingSets (tests): keep the cache small
        _CACHE.clear()
    _CACHE[id(table)] = (table, field_map)  # MappingSet caches the table: build once per table
    return field_map


_CACHE: dict[int, tuple[dict[str, Any], FieldMap]] = {}


class _Table:
    """Typed reads of dotted keys. A problem is noted, not raised, and a neutral value returned,
    so that ``problems`` ends up naming every missing key and wrong type in the file at once;
    ``unknown_keys`` then names the keys no read asked for (a typo such as ``encounter.statsus``
    would otherwise be ignored silently)."""

    def __init__(self, data: dict[str, Any]):
        self.data = data
        self.problems: list[str] = []
        self.read: set[str] = set()

    def get(self, dotted: str, default: Any = None) -> Any:
        self.read.add(dotted)
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                self.problems.append(f"key {dotted!r} is missing")
                return default
            node = node[part]
        return node

    def strings(self, dotted: str) -> tuple[str, ...]:
        value = self.get(dotted, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problems.append(f"{dotted} must be a list of strings")
            return ()
        return tuple(value)

    def string(self, dotted: str) -> str:
        value = self.get(dotted, "")
        if not isinstance(value, str):
            self.problems.append(f"{dotted} must be a string")
            return ""
        return value

    def table(self, dotted: str) -> dict[str, str]:
        value = self.get(dotted, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            self.problems.append(f"[{dotted}] must map codes to strings")
            return {}
        return dict(value)

    def unknown_keys(self) -> list[str]:
        unknown: list[str] = []

        def walk(node: dict[str, Any], prefix: str) -> None:
            for key, value in node.items():
                dotted = f"{prefix}{key}"
                if dotted in self.read:
                    continue  # read whole
                if isinstance(value, dict) and any(r.startswith(dotted + ".") for r in self.read):
                    walk(value, dotted + ".")
                else:
                    unknown.append(dotted)

        walk(self.data, "")
        return unknown


COUNT_SOURCES = ("addItem", "item.authorizedDetail", "item.adjudication", "request.item")


def _count_sources(t: _Table) -> tuple[str, ...]:
    sources = t.strings("prior_authorization.count.sources")
    unknown = [s for s in sources if s not in COUNT_SOURCES]
    if unknown:
        t.problems.append(f"prior_authorization.count.sources has {', '.join(map(repr, unknown))} "
                          f"(use only {', '.join(COUNT_SOURCES)})")
    return tuple(s for s in sources if s in COUNT_SOURCES)


def _build(t: _Table) -> FieldMap:
    rules = []
    for rule in t.get("coverage.claim_filing_indicator", []):
        if not isinstance(rule, dict) or not isinstance(rule.get("system"), str) or not isinstance(
                rule.get("codes"), dict):
            t.problems.append("each [[coverage.claim_filing_indicator]] needs system and codes")
            continue
        rules.append(FilingIndicatorRule(rule["system"], bool(rule.get("hierarchical")),
                                         {str(k): str(v) for k, v in rule["codes"].items()}))
    audio_only = []
    for coding in t.get("encounter.audio_only", []):
        if not isinstance(coding, dict) or "code" not in coding:
            t.problems.append("each [[encounter.audio_only]] needs system and code")
            continue
        audio_only.append((str(coding.get("system", "")), str(coding["code"])))
    default_pos = t.string("claim.default_place_of_service")
    field_map = FieldMap(
        bundle_types=frozenset(t.strings("bundle.types")),
        npi=frozenset(t.strings("systems.npi")),
        tin=frozenset(t.strings("systems.tin")),
        icd10cm=frozenset(t.strings("systems.icd10cm")),
        procedure=frozenset(t.strings("systems.cpt") + t.strings("systems.hcpcs")),
        modifier=frozenset(t.strings("systems.modifier")),
        taxonomy=frozenset(t.strings("systems.taxonomy")),
        place_of_service=frozenset(t.strings("systems.place_of_service")),
        identifier_type=frozenset(t.strings("systems.identifier_type")),
        organization_qualification_extensions=frozenset(t.strings("provider.organization_qualification_extensions")),
        billing_taxonomy=t.table("provider.billing_taxonomy"),
        medical_record_types=frozenset(t.strings("identifier_types.medical_record")),
        payer_id_types=frozenset(t.strings("identifier_types.payer_id")),
        member_id_types=frozenset(t.strings("identifier_types.member_id")),
        patient_member_id_types=frozenset(t.strings("identifier_types.patient_member_id")),
        npi_types=frozenset(t.strings("identifier_types.npi")),
        tin_types=frozenset(t.strings("identifier_types.tin")),
        payer_id_systems=frozenset(t.strings("payer.id_systems")),
        coverage_statuses=frozenset(t.strings("coverage.statuses")),
        coverage_class_systems=frozenset(t.strings("coverage.class_systems")),
        group_class=t.string("coverage.group_class"),
        plan_class=t.string("coverage.plan_class"),
        relationship_systems=frozenset(t.strings("coverage.relationship_systems")),
        relationship=t.table("coverage.relationship"),
        relationship_unknown=t.string("coverage.relationship_unknown"),
        filing_indicator_rules=tuple(rules),
        encounter_statuses=frozenset(t.strings("encounter.statuses")),
        class_systems=frozenset(t.strings("encounter.class_systems")),
        virtual_classes=frozenset(t.strings("encounter.virtual_classes")),
        participant_type_systems=frozenset(t.strings("encounter.participant_type_systems")),
        rendering_participant_types=t.strings("encounter.rendering_participant_types"),
        encounter_minutes_extensions=frozenset(t.strings("encounter.minutes_extensions")),
        excluded_condition_verification=frozenset(t.strings("encounter.excluded_condition_verification")),
        class_place_of_service=t.table("encounter.class_place_of_service"),
        place_of_service_extensions=frozenset(t.strings("encounter.place_of_service_extensions")),
        audio_only=frozenset(audio_only),
        charge_item_statuses=frozenset(t.strings("charge_item.statuses")),
        modifier_extensions=frozenset(t.strings("charge_item.modifier_extensions")),
        line_minutes_extensions=frozenset(t.strings("charge_item.minutes_extensions")),
        claim_uses=frozenset(t.strings("claim.uses")),
        claim_statuses=frozenset(t.strings("claim.statuses")),
        care_team_role_systems=frozenset(t.strings("claim.care_team_role_systems")),
        rendering_care_team_roles=t.strings("claim.rendering_care_team_roles"),
        claim_default_place_of_service=default_pos or None,
        telehealth_places_of_service=frozenset(t.strings("claim.telehealth_places_of_service")),
        audio_only_modifiers=frozenset(t.strings("claim.audio_only_modifiers")),
        prior_auth_uses=frozenset(t.strings("prior_authorization.uses")),
        prior_auth_statuses=frozenset(t.strings("prior_authorization.statuses")),
        prior_auth_ledger_outcomes=frozenset(t.strings("prior_authorization.ledger_outcomes")),
        prior_auth_count_sources=_count_sources(t),
        prior_auth_authorized_detail_extensions=frozenset(
            t.strings("prior_authorization.count.authorized_detail_extensions")),
        prior_auth_adjudication_category_systems=frozenset(
            t.strings("prior_authorization.count.adjudication_category_systems")),
        prior_auth_adjudication_categories=frozenset(t.strings("prior_authorization.count.adjudication_categories")),
        prior_auth_request_outcomes=frozenset(t.strings("prior_authorization.count.request_outcomes")),
        prior_auth_review_action_extensions=frozenset(t.strings("prior_authorization.count.review_action_extensions")),
        prior_auth_authorized_review_actions=frozenset(
            t.strings("prior_authorization.count.authorized_review_actions")),
        prior_auth_unit_code_prefixes=tuple(c.upper() for c in t.strings("prior_authorization.units.code_prefixes")),
        prior_auth_unit_words=frozenset(w.lower() for w in t.strings("prior_authorization.units.unit_words")),
        prior_auth_visit_words=frozenset(w.lower() for w in t.strings("prior_authorization.units.visit_words")),
        gender=t.table("gender"),
    )
    problems = t.problems + [f"unknown key {k!r} (a typo? see the packaged mappings/{TABLE})" for k in t.unknown_keys()]
    if problems:
        raise MappingError(f"{TABLE}: {len(problems)} problem(s): " + "; ".join(problems),
                           fix=f"correct the practice's copy of mappings/{TABLE} (its comments document each key)")
    return field_map
