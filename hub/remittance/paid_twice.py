"""A claim a payer paid twice: two adjudications with money from the same payer standing on one
claim, neither reversed.

A payer that re-adjudicates sends the new claim payment (a new CLP07) and the reversal of the
old one, in either order; between the two, both stand for a moment. A payer that pays a claim a
second time by mistake sends no reversal: the practice holds money it must refund (or will see
taken back by a PLB WO recoupment). Nothing here changes a posting or a status: the money
arrived. Each such claim gets one alert (``claim_paid_twice:<claim id>``), opened when an 835
leaves two standing and cleared when a reversal takes one back (posting checks the claims each
835 touched), so a biller sees it and decides.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select

from bhhub.store import schema

KIND = "claim_paid_twice"
_REVERSAL = "22"


def key(claim_id: int) -> str:
    return f"{KIND}:{claim_id}"


def watch(session, claim_ids: Iterable[int]) -> int:
    """Open or clear the alert of each claim in ``claim_ids``; how many stand paid twice."""
    from bhhub.exchange.alerts import clear_alert, raise_alert

    claim_ids = sorted(set(claim_ids))
    if not claim_ids:
        return 0
    twice = {}
    r, p, c = schema.RemitClaim, schema.RemitPayment, schema.Claim
    for start in range(0, len(claim_ids), 1000):
        chunk = claim_ids[start:start + 1000]
        for claim_id, pcn, payer_id, count, first, last in session.execute(
                select(r.claim_id, c.patient_control_number, p.payer_id, func.count(),
                       func.min(r.payer_claim_control_number), func.max(r.payer_claim_control_number))
                .join(p, p.id == r.payment_id).join(c, c.id == r.claim_id)
                .where(r.claim_id.in_(chunk), r.state == "posted", r.status_code != _REVERSAL,
                       r.reversed_by_id.is_(None), r.paid > 0)
                .group_by(r.claim_id, c.patient_control_number, p.payer_id)
                .having(func.count() > 1)):
            twice[claim_id] = (pcn, payer_id, count, f"{first or '(none)'} ... {last or '(none)'}")
    open_ = set(session.scalars(select(schema.Alert.key).where(
        schema.Alert.kind == KIND, schema.Alert.cleared_at.is_(None))))
    for claim_id in claim_ids:
        if claim_id in twice:
            pcn, payer_id, count, numbers = twice[claim_id]
            raise_alert(session, key(claim_id), KIND,
                        f"claim {pcn}: {count} payments from payer {payer_id} stand (payer claim numbers "
                        f"{numbers}) and none is reversed; if the payer is re-adjudicating, its reversal "
                        "clears this; if it paid twice, refund the overpayment or expect it taken back "
                        "(PLB WO)")
        elif key(claim_id) in open_:
            clear_alert(session, key(claim_id))
    return len(twice)
