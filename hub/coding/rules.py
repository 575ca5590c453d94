"""Table lookups the coding stage needs: psychotherapy code by minutes, fees, telehealth rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from hub.errors import MappingError
from hub.mappings import MappingSet
from hub.model import Payer

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


@dataclass(frozen=True)
class TelehealthRule:
    place_of_service: str
    video_modifier: str | None
    audio_only_modifier: str | None

    def modifier(self, audio_only: bool) -> str | None:
        return (self.audio_only_modifier if audio_only else self.video_modifier) or None


def telehealth_rule(mappings: MappingSet, payer: Payer) -> TelehealthRule:
    """Payer override, else the rule for its claim filing indicator, else the default."""
    table = mappings.load(PAYERS)
    merged: dict = dict(table.get("telehealth", {}).get("default", {}))
    indicator = claim_filing_indicator(mappings, payer)
    merged.update(table.get("telehealth", {}).get("claim_filing_indicator", {}).get(indicator, {}))
    merged.update(table.get("payer", {}).get(payer.payer_id, {}).get("telehealth", {}))
    return TelehealthRule(
        place_of_service=str(merged.get("place_of_service", "10")),
        video_modifier=merged.get("video_modifier"),
        audio_only_modifier=merged.get("audio_only_modifier"),
    )


def claim_filing_indicator(mappings: MappingSet, payer: Payer) -> str:
    """SBR09: the payer table wins over what the EHR said; commercial (CI) when nobody says."""
    configured = mappings.load(PAYERS).get("payer", {}).get(payer.payer_id, {})
    return configured.get("claim_filing_indicator") or payer.claim_filing_indicator or "CI"
