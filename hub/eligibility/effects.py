"""What a new eligibility answer changes: alerts for news that matters, and the claims it affects.

    apply_answer(hub, session, row) -> Effects      in the transaction that recorded the answer

The answer is compared with the previous answered check for the same payer and member (and
patient). Four things matter to a biller, each one flag:

    inactive          coverage ended or is inactive
    auth_required     an authorization is now required for outpatient mental health
    visits_exhausted  no covered visits remain
    carve_out         mental health is administered by another payer (the flag names which)

A flag the new answer raises that the previous did not (or a first answer that raises one)
opens an alert, one per patient, payer and flag; a flag that went away clears it. When any
flag changed, the member's claims not yet sent are checked again at once
(``hub.ledger.rescrub.for_members``), so a ready claim for coverage that ended is held before
it goes out, and one held for it is released when coverage is back. Alert messages carry the
check id, the hub's patient id and the payer id: never names or member ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from hub.eligibility import store
from hub.exchange.alerts import clear_alert, raise_alert
from hub.store import schema

FLAGS = ("inactive", "auth_required", "visits_exhausted", "carve_out")
_SAYS = {
    "inactive": "coverage is inactive",
    "auth_required": "an authorization is required for outpatient mental health",
    "visits_exhausted": "no covered mental-health visits remain",
    "carve_out": "mental health is administered by another payer",
}


@dataclass
class Effects:
    raised: list[str] = field(default_factory=list)  # flags newly true
    cleared: list[str] = field(default_factory=list)  # flags no longer true
    rescrubbed: dict | None = None  # hub.ledger.rescrub.Rescrubbed.as_dict(), when claims were checked

    def as_dict(self) -> dict:
        return {"raised": self.raised, "cleared": self.cleared, "rescrubbed": self.rescrubbed}


def flags(row: schema.EligibilityCheck | None) -> dict[str, str]:
    """The flags an answered check raises, each with its detail ("" or the carve-out payer)."""
    if row is None or row.state != store.ANSWERED:
        return {}
    response = row.response or {}
    summary = response.get("mental_health") or {}
    found: dict[str, str] = {}
    if row.active is False:
        found["inactive"] = ""
        return found  # the rest is moot while coverage is inactive
    if summary.get("auth_required") is True:
        found["auth_required"] = ""
    remaining = summary.get("visits_remaining")
    try:
        if remaining is not None and Decimal(str(remaining)) <= 0:
            found["visits_exhausted"] = ""
    except InvalidOperation:
        pass
    carve_out = summary.get("carve_out")
    if carve_out and carve_out.get("payer_id") != row.payer_id:
        found["carve_out"] = carve_out.get("payer_id") or carve_out.get("payer_name") or "another payer"
    return found


def alert_key(row: schema.EligibilityCheck, flag: str) -> str:
    who = f"patient:{row.patient_id}" if row.patient_id is not None else f"check:{row.id}"
    return f"eligibility_{flag}:payer:{row.payer_id}:{who}"


def apply_answer(hub, session, row: schema.EligibilityCheck) -> Effects:
    """Alerts and re-scrubs for what ``row`` (just answered) changed; nothing for a failed check."""
    effects = Effects()
    if row.state != store.ANSWERED:
        return effects
    before = store.previous(session, row)
    old, new = flags(before), flags(row)
    for flag in FLAGS:
        if flag in new and old.get(flag) != new[flag]:
            effects.raised.append(flag)
            detail = f" ({new[flag]})" if new[flag] else ""
            who = f"patient {row.patient_id}" if row.patient_id is not None else "a member not on file"
            raise_alert(session, alert_key(row, flag), f"eligibility_{flag}",
                        f"eligibility check {row.id}: payer {row.payer_id} says {_SAYS[flag]}{detail} for {who} "
                        f"(date of service {row.service_date}); their claims not yet sent were checked again")
        elif flag not in new and flag in old:
            effects.cleared.append(flag)
            clear_alert(session, alert_key(row, flag))
    if effects.raised or effects.cleared:
        from hub.ledger import rescrub

        result = rescrub.for_members(hub, session, [(row.payer_id, row.member_id)],
                                     f"eligibility check {row.id} answered")
        effects.rescrubbed = result.as_dict()
    return effects
