"""Is this claim payment new, or one already posted to the claim? (idempotency per claim payment)

A claim payment is the same as a posted one when ``hub.remit.identity.fingerprint`` agrees and
it is on the same claim (so the same payer: only the claim's payer posts to it). How many times
the same one may post is counted in generations, because a payer may reverse a payment and
adjudicate the claim again with the very same amounts (domain reference 6.5.4):

- a payment may post once more than the reversals of it posted so far: the Nth identical payment
  after N-1 reversals is new, one more is a repeat;
- a reversal may post as many times as the payments it reverses (once when the hub never saw
  that payment): the same reversal re-sent is a repeat.

A reversal mirrors a payment when its charge and paid are the payment's negated and their payer
claim control numbers (CLP07) agree (or one is absent). The counts are of what is posted, in any
order of arrival; a re-sent copy of a payment that arrives after its own reversal cannot be told
from a re-adjudication with the same amounts, and posts as one.

Two postings at once cannot both count the same history: on PostgreSQL posting holds a
transaction-scoped advisory lock (``lock``), on SQLite the writer holds the write lock; and
``remit_claims`` refuses a second row with the same claim, fingerprint and generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select, text

from hub.remit.identity import REVERSAL, fingerprint
from hub.store import schema

_LOCK = text("select pg_advisory_xact_lock(hashtextextended(current_schema() || ':remit:posting', 0))")


def lock(session) -> None:
    """Hold posting for this transaction (PostgreSQL; SQLite's writer already holds the write lock)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_LOCK)


@dataclass(frozen=True)
class _Posted:
    id: int
    fingerprint: str
    reversal: bool
    charge: Decimal
    paid: Decimal
    payer_claim_control_number: str


class PostedClaimPayments:
    """The claim payments posted to each claim, read once per claim per 835 and kept current."""

    def __init__(self, session):
        self.session = session
        self._by_claim: dict[int, list[_Posted]] = {}

    def decide(self, claim_id: int, row: schema.RemitClaim) -> tuple[int | None, int | None]:
        """(generation to post ``row`` as, None) when new; (None, the id it repeats) when a repeat."""
        mine = row.fingerprint or fingerprint(row)
        history = self._history(claim_id)
        same = [p for p in history if p.fingerprint == mine]
        reversal = row.status_code == REVERSAL
        mirrored = sum(1 for p in history if p.reversal != reversal and _mirrors(p, row))
        allowed = max(1, mirrored) if reversal else 1 + mirrored
        if len(same) >= allowed:
            return None, same[-1].id
        return len(same) + 1, None

    def record(self, claim_id: int, row: schema.RemitClaim) -> None:
        self._history(claim_id).append(_posted(row))

    def _history(self, claim_id: int) -> list[_Posted]:
        if claim_id not in self._by_claim:
            r = schema.RemitClaim
            rows = self.session.scalars(select(r).where(r.claim_id == claim_id, r.state == "posted").order_by(r.id))
            self._by_claim[claim_id] = [_posted(row) for row in rows]
        return self._by_claim[claim_id]


def _posted(row: schema.RemitClaim) -> _Posted:
    # Rows posted before fingerprints were stored get theirs computed from what they hold.
    return _Posted(row.id, row.fingerprint or fingerprint(row), row.status_code == REVERSAL, Decimal(row.charge),
                   Decimal(row.paid), row.payer_claim_control_number or "")


def _mirrors(posted: _Posted, row: schema.RemitClaim) -> bool:
    numbers = posted.payer_claim_control_number, row.payer_claim_control_number or ""
    return (posted.charge == -Decimal(row.charge) and posted.paid == -Decimal(row.paid)
            and (numbers[0] == numbers[1] or not all(numbers)))
