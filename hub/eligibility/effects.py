"""What a new eligibility answer changes: alerts for news that matters, and the claims it affects.

    apply_answer(hub, session, row) -> Effects      in the transaction that recorded the answer

The answer is compared with the previous answered check for the same payer and member (and
patient). These things matter to a biller, each one flag:

    inactive          coverage ended or is inactive
    auth_required     an authorization is now required for outpatient mental health
    visits_exhausted  no covered visits remain
    carve_out         mental health is administered by another payer (the flag names which)
    not_covered       a mental-health service is not covered (EB01 I) or excluded (E) (names which)
    rejected          the payer refused the question for a reason the claims share (the member's
                      id, name, date of birth...: names the AAA reasons); compared with the
                      payer's last word before, so the next answer it gives clears it

A refusal says nothing about coverage: it changes only ``rejected``, and one that only asks to
try again later (AAA 42) changes nothing at all.

A flag the new answer raises that the previous did not (or a first answer that raises one)
opens an alert, one per patient, payer and flag; a flag that went away clears it. Whatever it
changed, the member's claims not yet sent are checked again at once
(``bhhub.ledger.rescrub.for_members``): a ready claim for coverage that ended is held before it
goes out, one held for it is released when coverage is back, and what no flag shows (a benefit's
dates, places and network, its own refusal, which patient the answer is about) reaches them too. Alert messages carry
the check id, the hub's patient id and the payer id: never names or member ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from bhhub.eligibility import refusals, store
from bhhub.exchange.alerts import clear_alert, raise_alert
from bhhub.store import schema

COVERAGE_FLAGS = ("inactive", "auth_required", "visits_exhausted", "carve_out", "not_covered")
REJECTED = "rejected"
FLAGS = (*COVERAGE_FLAGS, REJECTED)
_SAYS = {
    "inactive": "coverage is inactive",
    "auth_required": "an authorization is required for outpatient mental health",
    "visits_exhausted": "no covered mental-health visits remain",
    "carve_out": "mental health is administered by another payer",
    "not_covered": "a mental-health service is not covered",
    REJECTED: "it cannot answer the question as asked",
}


@dataclass
class Effects:
    raised: list[str] = field(default_factory=list)  # flags newly true
    cleared: list[str] = field(default_factory=list)  # flags no longer true
    rescrubbed: dict | None = None  # bhhub.ledger.rescrub.Rescrubbed.as_dict(), when claims were checked

    def as_dict(self) -> dict:
        return {"raised": self.raised, "cleared": self.cleared, "rescrubbed": self.rescrubbed}


def flags(row: schema.EligibilityCheck | None) -> dict[str, str]:
    """The coverage flags an answered check raises, each with its detail ("" or what it names)."""
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
    not_covered = sorted({n.get("describe") or n.get("service_type", "") for n in summary.get("not_covered") or ()})
    if not_covered:
        found["not_covered"] = ", ".join(not_covered)
    return found


def rejected(row: schema.EligibilityCheck | None, mappings) -> str | None:
    """The refusal reasons of ``row`` its member's claims share ("" never), or None."""
    if row is None:
        return None
    reasons = refusals.reasons(row.response, mappings)
    return ", ".join(r.describe() for r in reasons) or None


def _conditions(row: schema.EligibilityCheck | None) -> list:
    summary = ((row.response or {}).get("mental_health") or {}) if row is not None else {}
    return summary.get("auth_conditions") or []


def alert_key(row: schema.EligibilityCheck, flag: str) -> str:
    who = f"patient:{row.patient_id}" if row.patient_id is not None else f"check:{row.id}"
    return f"eligibility_{flag}:payer:{row.payer_id}:{who}"


def apply_answer(hub, session, row: schema.EligibilityCheck) -> Effects:
    """Alerts and re-scrubs for what ``row`` (just answered, or refused by the payer) changed;
    nothing for a check that failed without the payer's word."""
    effects = Effects()
    old: dict[str, str] = {}
    new: dict[str, str] = {}
    if row.state == store.ANSWERED:
        before = store.previous(session, row)
        old, new = flags(before), flags(row)
        compared = list(FLAGS)
    elif store.refusal(row) and rejected(row, hub.mappings) is not None:
        compared = [REJECTED]  # a refusal says nothing about coverage
    else:
        return effects  # a portal's failure, or "try again later": nothing said
    last_word = store.previous(session, row, refusals=True)
    if (said := rejected(last_word, hub.mappings)) is not None:
        old[REJECTED] = said
    if (said := rejected(row, hub.mappings)) is not None:
        new[REJECTED] = said
    who = f"patient {row.patient_id}" if row.patient_id is not None else "a member not on file"
    for flag in compared:
        if flag in new and old.get(flag) != new[flag]:
            effects.raised.append(flag)
            detail = f" ({new[flag]})" if new[flag] else ""
            raise_alert(session, alert_key(row, flag), f"eligibility_{flag}",
                        f"eligibility check {row.id}: payer {row.payer_id} says {_SAYS[flag]}{detail} for {who} "
                        f"(date of service {row.service_date}); their claims not yet sent were checked again")
        elif flag not in new and flag in old:
            effects.cleared.append(flag)
            clear_alert(session, alert_key(row, flag))
    # Every word from the payer is checked against the member's claims not yet sent, not only one
    # that changed a flag: which claims an answer holds depends on what no flag shows (the dates of
    # its benefits, their places and networks, a benefit's own refusal, which patient it is about).
    from bhhub.ledger import rescrub

    result = rescrub.for_members(hub, session, [(row.payer_id, row.member_id)], f"eligibility check {row.id} answered")
    effects.rescrubbed = result.as_dict()
    return effects
