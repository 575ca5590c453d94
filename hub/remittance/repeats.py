"""Is this claim payment new, or one already posted? And in what order does a file's apply?

The rule (docs/architecture.md, "Posting once"):

1. **Families.** On one claim, the claim payments of the same charge and paid amount, and the
   reversals (CLP02 22) of that amount, are one family: a reversal can only take back a payment
   of its own amount. Within a family, the claim payments are a sequence in the order the payer
   listed them (file after file, then CLP after CLP). Two of them are *the same* when their
   ``bhhub.remittance.identity.fingerprint`` agrees (which leaves the envelope out).
2. **Repeats.** The claim payments of one 835 in a family (the same one listed twice in a row
   counted once) repeat what is posted as far as they replay the latest of the family's posted
   sequence: the longest run of the file's first ones that is the same as the family's last
   ones posted is repeats, the rest is posted. So:

   - a payment is a repeat of an identical one that is posted and not reversed since;
   - a reversal is a repeat of an identical one posted after the payment it reverses;
   - the same file sent again, under any envelope, replays its own postings and posts nothing;
   - a payment reversed and paid again with the same amounts ([reversal, payment] after the
     payment) posts both: the payment is not a repeat of the one that is reversed; and that file
     sent again is all repeats, so it never reverses the live re-payment;
   - a re-sent copy of a payment that arrives after its own reversal cannot be told from a
     re-adjudication with the same amounts, and posts as one (as the payer's own sequence
     [payment, reversal, payment] would).

3. **Order of applying.** What is posted applies in the file's order, except a reversal that
   finds no payment of its family standing (none posted and not reversed, none earlier in the
   file): it waits for the next payment of its family this file posts, and applies right after
   it (payers list a reversal before the payment it reverses). One whose payment comes nowhere in
   the file applies at the end of the file as "reverses a payment the hub has no record of".

Each posted claim payment gets a ``generation``: one more than the posted ones with its
fingerprint on the claim. ``remit_claims`` refuses a second row with the same claim, fingerprint
and generation; and two postings at once cannot both read the same history: on PostgreSQL
posting holds a transaction-scoped advisory lock (``lock``), on SQLite the writer holds the
write lock.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text

from bhhub.remittance.identity import REVERSAL, fingerprint
from bhhub.store import schema

_LOCK = text("select pg_advisory_xact_lock(hashtextextended(current_schema() || ':remit:posting', 0))")


def lock(session) -> None:
    """Hold posting for this transaction (PostgreSQL; SQLite's writer already holds the write lock)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_LOCK)


@dataclass
class Offer:
    """One matched, balanced claim payment of the file, as posting hands it over."""

    claim: Any  # schema.Claim
    row: Any  # schema.RemitClaim, not yet added
    paid: Any  # the reader's ClaimPayment (or a stored one, matched by hand)
    payment: Any  # schema.RemitPayment

    @property
    def reversal(self) -> bool:
        return self.row.status_code == REVERSAL


@dataclass
class Step:
    """What to do with one claim payment, in the order they are to be done.

    ``post``: post ``offer.row`` as ``generation``. Else a repeat of the posted claim payment
    ``repeats_id`` (or of ``repeats_offer``'s, posted earlier in this file)."""

    offer: Offer
    post: bool
    generation: int | None = None
    repeats_id: int | None = None
    repeats_offer: Offer | None = None
    listed: _Listed | None = None  # its place in its family's sequence (posted: given the row's id)

    @property
    def repeated_id(self) -> int | None:
        return self.repeats_id if self.repeats_offer is None else self.repeats_offer.row.id


@dataclass
class _Listed:
    """A claim payment in a family's sequence: posted before (``id``) or in this file (``offer``)."""

    fingerprint: str
    id: int | None = None
    offer: Offer | None = None
    reversed_at: list[int] = field(default_factory=list)  # where the reversals of a posted payment are listed
    copies: list[Offer] = field(default_factory=list)  # the same, listed again right after it


@dataclass
class _Family:
    posted: list[_Listed]  # as the payer listed them
    standing: int  # payments posted and not reversed
    listed: list[_Listed] = field(default_factory=list)  # this file's
    decided: int = 0  # how many of ``listed`` are decided
    waiting: list[list[Step]] = field(default_factory=list)  # reversals waiting for a payment, with their copies


class PostedClaimPayments:
    """The posted claim payments of each claim, read once per claim per 835, and this file's
    claim payments in their families, turned into steps (``offer`` then ``finish``)."""

    def __init__(self, session):
        self.session = session
        self._families: dict[tuple, _Family] = {}
        self._generations: dict[int, dict[str, int]] = {}  # claim -> fingerprint -> posted count
        self._loaded: set[int] = set()

    # --- the file's claim payments, in, and steps, out ----------------------------------------

    def offer(self, offer: Offer) -> list[Step]:
        """The steps that can be taken now that ``offer`` is read (perhaps none yet, perhaps
        earlier ones of its family that waited for it)."""
        row = offer.row
        row.fingerprint = row.fingerprint or fingerprint(row)
        family = self._family(offer.claim.id, row)
        listed = family.listed
        if listed and listed[-1].fingerprint == row.fingerprint:  # the same one again, right after
            if len(listed) <= family.decided:
                return self._apply(family, [Step(offer, False, repeats_offer=listed[-1].offer,
                                                 repeats_id=listed[-1].id)])
            listed[-1].copies.append(offer)
            return []
        listed.append(_Listed(row.fingerprint, offer=offer))
        if len(listed) >= len(family.posted):
            return self._decide(family)
        return []

    def finish(self) -> list[Step]:
        """The steps left at the end of the file: families whose decision waited for more of
        the file, then reversals whose payment never came (applied as reversing nothing)."""
        steps: list[Step] = []
        for family in self._families.values():
            if family.decided < len(family.listed):
                steps += self._decide(family)
        for family in self._families.values():
            for group in family.waiting:
                steps += group
            family.waiting = []
        return steps

    def applied(self, step: Step) -> list[Step]:
        """Posting reports a step done; the reversals it lets go follow (a payment posted lets
        the first reversal waiting for one of its family apply right after it)."""
        if not step.post:
            return []
        offer = step.offer
        if step.listed is not None:  # from now on known by its id: the row and the read CLP are let go
            step.listed.id, step.listed.offer = offer.row.id, None
        family = self._family(offer.claim.id, offer.row)
        if offer.reversal:
            if offer.row.reverses_id is not None:
                family.standing -= 1
            return []
        family.standing += 1
        if family.waiting:
            return family.waiting.pop(0)
        return []

    # --- deciding --------------------------------------------------------------------------------

    def _decide(self, family: _Family) -> list[Step]:
        """Decide the undecided claim payments of ``family`` in this file (rule 2)."""
        listed, posted = family.listed, family.posted
        first = family.decided
        replayed = _replayed(posted, listed) if first == 0 else 0
        steps = []
        for index in range(first, len(listed)):
            one = listed[index]
            if index < replayed:
                same = posted[len(posted) - replayed + index]
                steps.append(Step(one.offer, False, repeats_id=same.id))
                steps += [Step(copy, False, repeats_id=same.id) for copy in one.copies]
                one.id, one.offer = same.id, None
            else:
                steps.append(Step(one.offer, True, generation=self._next_generation(one.offer), listed=one))
                steps += [Step(copy, False, repeats_offer=one.offer) for copy in one.copies]
            one.copies = []
        family.decided = len(listed)
        return self._apply(family, steps)

    def _apply(self, family: _Family, steps: list[Step]) -> list[Step]:
        """Rule 3: a reversal with no payment of its family standing waits for one (its copies
        with it); the rest can be taken now."""
        ready = []
        standing = family.standing  # as it will be once the steps before this one are taken
        releases = len(family.waiting)  # each payment posted lets one waiting reversal go
        for step in steps:
            if step.post and step.offer.reversal:
                if standing <= 0:
                    family.waiting.append([step])
                    releases += 1
                    continue
                standing -= 1
            elif step.post:
                if releases:
                    releases -= 1  # the reversal it lets go takes it back
                else:
                    standing += 1
            elif step.repeats_offer is not None and any(g[0].offer is step.repeats_offer for g in family.waiting):
                next(g for g in family.waiting if g[0].offer is step.repeats_offer).append(step)
                continue
            ready.append(step)
        return ready

    def _next_generation(self, offer: Offer) -> int:
        counts = self._generations[offer.claim.id]
        generation = counts.get(offer.row.fingerprint, 0) + 1
        counts[offer.row.fingerprint] = generation  # reserved: a later one of this file counts it
        return generation

    # --- what is posted ----------------------------------------------------------------------------

    def _family(self, claim_id: int, row) -> _Family:
        key = (claim_id, abs(Decimal(row.charge)), abs(Decimal(row.paid)))
        family = self._families.get(key)
        if family is None:
            self._load(claim_id)
            family = self._families.setdefault(key, _Family([], 0))
        return family

    def _load(self, claim_id: int) -> None:
        if claim_id in self._loaded:
            return
        self._loaded.add(claim_id)
        r = schema.RemitClaim
        rows = self.session.execute(
            select(r.id, r.fingerprint, r.status_code, r.charge, r.paid, r.reversed_by_id, r.payer_claim_control_number,
                   r.adjustments, r.services, r.patient_responsibility)
            .where(r.claim_id == claim_id, r.state == "posted").order_by(r.payment_id, r.sequence, r.id)).all()
        counts: dict[str, int] = defaultdict(int)
        where: dict[int, int] = {}  # row id -> its place in its family's posted sequence
        reversed_by: list[tuple[_Listed, int]] = []
        for stored in rows:
            # Rows posted before fingerprints were stored get theirs computed from what they hold.
            mine = stored.fingerprint or fingerprint(stored)
            counts[mine] += 1
            key = (claim_id, abs(Decimal(stored.charge)), abs(Decimal(stored.paid)))
            family = self._families.setdefault(key, _Family([], 0))
            family.posted.append(_Listed(mine, id=stored.id))
            where[stored.id] = len(family.posted) - 1
            if stored.status_code != REVERSAL:
                if stored.reversed_by_id is None:
                    family.standing += 1
                else:
                    reversed_by.append((family.posted[-1], stored.reversed_by_id))
        for payment, reversal_id in reversed_by:
            if reversal_id in where:
                payment.reversed_at.append(where[reversal_id])
        self._generations[claim_id] = counts


def _replayed(posted: list[_Listed], listed: list[_Listed]) -> int:
    """How many of the file's first claim payments are the same as the family's last posted.

    The same fingerprints, and the same links: a payment among those last posted that a
    reversal listed before them took back (a reversal listed before its payment in one file)
    is not what the same claim payment sent now would be, which nothing earlier reverses."""
    for k in range(min(len(posted), len(listed)), 0, -1):
        start = len(posted) - k
        if all(posted[start + i].fingerprint == listed[i].fingerprint for i in range(k)) and not any(
                at < start for one in posted[start:] for at in one.reversed_at):
            return k
    return 0
