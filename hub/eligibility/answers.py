"""What payers said about coverage, as ``bhhub eligibility list --json`` and the workspace show it.

``eligibility_history`` is every question and answer, newest first; ``latest_answers`` the last
answer per patient and coverage (payer and member id): what the payer says now.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from bhhub.common.jsontext import count  # how every --json gives a count


def eligibility_history(hub, session, *, patient_id: int | None = None) -> list[dict]:
    """Every check (``check_json``), newest first; one patient's with ``patient_id``. Audited."""
    from bhhub.eligibility import store

    rows = store.history(session, patient_id)
    hub.audit(session, "list_eligibility", "eligibility_check", [r.id for r in rows], None)
    return [check_json(r) for r in rows]


def latest_answers(hub, session, *, patient_id: int | None = None) -> list[dict]:
    """The newest answered check per patient, payer and member id (``check_json``), newest first:
    a question still waiting or one that failed is not what the payer said. Audited."""
    from bhhub.eligibility import store

    rows, seen = [], set()
    for row in store.history(session, patient_id):  # newest first: the first of each key is its last
        key = (row.patient_id, row.payer_id, row.member_id)
        if row.state != "answered" or key in seen:
            continue
        seen.add(key)
        rows.append(row)
    hub.audit(session, "list_eligibility", "eligibility_check", [r.id for r in rows], "latest")
    return [check_json(r) for r in rows]


def check_json(row) -> dict:
    """One check as ``eligibility list --json`` gives it: ids, state, and the answer's benefits."""
    response = row.response or {}
    benefits = {}
    for stc, b in (response.get("benefits") or {}).items():
        benefits[stc] = amounts({
            "description": b.get("description"), "active": b.get("active"),
            "copay": b.get("copay"), "coinsurance": b.get("coinsurance"),
            "deductible": b.get("deductible"), "deductible_remaining": b.get("deductible_remaining"),
            "out_of_pocket": b.get("out_of_pocket"), "out_of_pocket_remaining": b.get("out_of_pocket_remaining"),
            "visits_allowed": b.get("visits_allowed"), "visits_remaining": b.get("visits_remaining"),
            "auth_required": b.get("auth_required"), "in_network": b.get("in_network"),
            "non_covered": b.get("non_covered"), "carve_out": b.get("carve_out"),
        })
    return {
        "id": row.id, "trace_number": row.trace_number, "patient_id": row.patient_id, "payer_id": row.payer_id,
        "member_id": row.member_id, "service_date": row.service_date, "service_types": row.service_types,
        "source": row.source, "reason": row.reason, "state": row.state, "active": row.active,
        "requested_at": row.requested_at, "checked_at": row.answered_at, "error": row.error,
        "batch_id": row.batch_id, "inbox_item_id": row.inbox_item_id,
        "plan": response.get("plan_description"), "group_number": response.get("group_number"),
        "benefits": benefits, "mental_health": amounts(response.get("mental_health")),
        "rejections": response.get("rejections", []), "messages": response.get("messages", []),
    }


# What a 271 states as amounts and counts, kept as the payer wrote them (EB07 "30", EB08 "0.2").
AMOUNTS = ("copay", "coinsurance", "deductible", "deductible_remaining", "out_of_pocket", "out_of_pocket_remaining",
           "visits_allowed", "visits_remaining")
COUNTS = ("visits_allowed", "visits_remaining")  # integers (5, not 5.0), as every --json gives a count


def amounts(benefit: dict | None) -> dict | None:
    """``benefit`` with its amounts as JSON numbers, as every ``--json`` gives money (dollars;
    coinsurance as a fraction, visits as a count); text that is not a number is left as it is."""
    if not benefit:
        return benefit
    out = dict(benefit)
    for key in AMOUNTS:
        value = out.get(key)
        if isinstance(value, str):
            try:
                number = Decimal(value)
            except InvalidOperation:
                continue
            if not number.is_finite():
                continue  # a payer's "Infinity" or "NaN" is no amount: left as the payer wrote it
            out[key] = count(number) if key in COUNTS else float(number)
    return out
