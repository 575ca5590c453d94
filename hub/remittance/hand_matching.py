"""Posting by hand a claim payment no claim matched (``bhhub remit match``).

The stored claim payment is read back in the shape posting reads an 835's, checked against the
claim's postings as a repeat would be (a payment already posted to the claim is refused), then
posted as the 835 would have (``bhhub.remittance.posting.apply_posting``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bhhub.errors import InputError
from bhhub.remittance import paid_twice
from bhhub.remittance.posting import POSTED, UNMATCHED, apply_posting
from bhhub.remittance.repeats import Offer, PostedClaimPayments, lock
from bhhub.store import schema


@dataclass(frozen=True)
class _StoredAdjustment:
    group: str
    reason: str
    amount: Decimal


@dataclass(frozen=True)
class _StoredService:
    procedure_code: str
    adjustments: tuple
    remarks: tuple


@dataclass(frozen=True)
class _StoredPayment:
    """A stored claim payment in the shape posting reads (for matching by hand)."""

    patient_control_number: str
    status_code: str
    charge: Decimal
    paid: Decimal
    patient_responsibility: Decimal
    payer_claim_control_number: str
    adjustments: tuple
    services: tuple
    remarks: tuple

    @property
    def all_adjustments(self) -> tuple:
        return self.adjustments + tuple(a for s in self.services for a in s.adjustments)


def _stored(row: schema.RemitClaim) -> _StoredPayment:
    def adjustments(line):
        return tuple(_StoredAdjustment(a["group"], a["reason"], Decimal(a["amount"]))
                     for a in row.adjustments if a["line"] == line)

    services = tuple(_StoredService(s["code"], adjustments(n), tuple(s.get("remarks", ())))
                     for n, s in enumerate(row.services, start=1))
    return _StoredPayment(row.patient_control_number, row.status_code, row.charge, row.paid,
                          row.patient_responsibility, row.payer_claim_control_number, adjustments(None), services,
                          tuple(row.remarks))


def match_by_hand(hub, session, remit_claim_id: int, claim: schema.Claim, who: str) -> schema.RemitClaim:
    """Post an unmatched claim payment to ``claim`` (``bhhub remit match``)."""
    from bhhub.remittance.denials import DenialRules

    row = session.get(schema.RemitClaim, remit_claim_id)
    if row is None:
        raise InputError(f"no claim payment {remit_claim_id}", fix="`bhhub remit unmatched` lists them")
    if row.state != UNMATCHED:
        raise InputError(f"claim payment {remit_claim_id} is {row.state}, not unmatched")
    if claim.batch_id is None:
        raise InputError(f"claim {claim.patient_control_number} was never sent; a payment cannot be for it")
    lock(session)
    payment = session.get(schema.RemitPayment, row.payment_id)
    stored = _stored(row)
    sequence = PostedClaimPayments(session)
    step = (sequence.offer(Offer(claim, row, stored, payment)) + sequence.finish())[0]
    if not step.post:
        raise InputError(f"claim payment {remit_claim_id} is the same as claim payment {step.repeated_id}, already "
                         f"posted to claim {claim.patient_control_number}: posting it would pay the claim twice")
    row.state, row.claim_id, row.reason = POSTED, claim.id, f"matched by hand by {who}"
    row.generation = step.generation
    payment.claims_unmatched -= 1
    apply_posting(hub, session, DenialRules.load(hub.mappings), payment, row, claim, stored, None)
    session.flush()
    paid_twice.watch(session, [claim.id])
    return row
