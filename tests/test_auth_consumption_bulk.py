"""A batch consumes its authorizations as one set operation, with the ledger the per-claim rule gives.

``consume`` records what one claim going out takes; batching used to call it once per claim
(several queries each: 20 s for 2,000 claims). ``consume_many`` reads the ledger once and
matches each claim in turn against what the claims before it in the batch took. These tests
build the same store state, let both ways record the batch's uses, and compare the ledgers
row for row: claims sharing an authorization and not, two authorizations for one member (the
earliest-ending with room first), one used up in the middle of the batch (the rule kept: the
claims past the limit still take it, as the per-claim code does; the overrun is the scrub's
finding), units and visits, a number that fits no authorization, uses already held by an
earlier batch, and later revisions (a replacement, a void) that give their predecessors' uses
back.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from bhhub.intake import inbox as intake
from bhhub.claims.export import export_837p
from bhhub.ledger import authorization_uses
from bhhub.store import schema
from ledger_support import add_authorization, revise, visit_bundle

PAYER = "AUTHPLAN"
START = date.today() - timedelta(days=60)  # recent, so no claim is past its filing window


def visit(hub, seed: int, day: date, member: str, *, payer: str = PAYER) -> int:
    """Synthetic visit ``seed`` on ``day`` for ``member`` of ``payer``: the new claim's id."""
    result = intake.receive(hub, visit_bundle(seed, day, payer=payer, member=member), f"visit-{seed}.json")
    assert result.outcome == "imported", result
    [claim] = result.claims
    with hub.store.session() as session:
        return session.scalar(select(schema.Claim.id).where(
            schema.Claim.patient_control_number == claim.patient_control_number))


def authorize(hub, member: str, number: str, quantity, *, start: date = START, end: date = START + timedelta(days=120),
              payer: str = PAYER, **kw) -> int:
    return add_authorization(hub, payer_id=payer, member_id=member, number=number, quantity=quantity, start=start,
                             end=end, **kw)


def ledger_rows(session) -> list[tuple]:
    """The ledger, without the clock: who took what from which authorization, and what was given back."""
    u = schema.AuthorizationUse
    return [(r.authorization_id, r.claim_id, r.line_number, Decimal(r.units), r.released_at is not None,
             r.release_reason)
            for r in session.scalars(select(u).order_by(u.claim_id, u.line_number, u.authorization_id))]


def going_out(session, claim_ids=None) -> list[schema.Claim]:
    """The claims in the order a batch takes them (billing provider, then id)."""
    c = schema.Claim
    query = select(c).order_by(c.billing_provider_id, c.id)
    query = query.where(c.id.in_(claim_ids)) if claim_ids is not None else query.where(c.status == "ready")
    return list(session.scalars(query))


def one_claim_at_a_time(session, rows) -> None:
    for row in rows:
        authorization_uses.consume(session, row)


def ledger_if(hub, consume, claim_ids=None) -> list[tuple]:
    """The ledger after ``consume`` records the claims' uses; the store is left as it was."""
    with hub.store.writer() as session:
        consume(session, going_out(session, claim_ids))
        session.flush()
        rows = ledger_rows(session)
        session.rollback()
    return rows


def uses_of(rows: list[tuple], authorization_id: int) -> Decimal:
    return sum((r[3] for r in rows if r[0] == authorization_id and not r[4]), Decimal(0))


# --- the set operation and the per-claim rule agree ----------------------------------------------


def test_a_batch_that_uses_up_an_authorization_midway_records_what_the_per_claim_rule_records(hub):
    shared = authorize(hub, "M-SHARED", "AUTH-S", 3)  # five visits on three authorized
    early = authorize(hub, "M-TWO", "EARLY", 1, end=START + timedelta(days=20))
    late = authorize(hub, "M-TWO", "LATE", 5)
    authorize(hub, "M-WRONG", "RIGHT", 4)
    units = authorize(hub, "M-UNITS", "U-1", 2, unit_type="units")
    other_payer = authorize(hub, "M-SHARED", "AUTH-O", 9, payer="OTHERPLAN")
    for day in range(5):
        visit(hub, 100 + day, START + timedelta(days=day), "M-SHARED")
    for seed, day in ((110, 1), (111, 2), (112, 30)):
        visit(hub, seed, START + timedelta(days=day), "M-TWO")
    wrong = visit(hub, 120, START + timedelta(days=3), "M-WRONG")
    visit(hub, 130, START + timedelta(days=4), "M-UNITS")
    visit(hub, 131, START + timedelta(days=5), "M-UNITS")
    visit(hub, 140, START + timedelta(days=6), "M-NONE")
    with hub.store.session() as session:  # the claim names another authorization: it takes none
        session.execute(update(schema.Claim).where(schema.Claim.id == wrong).values(prior_authorization="WRONG"))
        session.commit()

    with hub.store.session() as session:
        ready = len(going_out(session))
    expected = ledger_if(hub, one_claim_at_a_time)
    assert ledger_if(hub, authorization_uses.consume_many) == expected

    # The rule as the per-claim code has it: the visits past the limit still take the authorization.
    assert uses_of(expected, shared) == 5
    assert uses_of(expected, early) == 1 and uses_of(expected, late) == 2  # earliest-ending with room first
    assert uses_of(expected, other_payer) == 0  # another payer's count
    assert wrong not in {r[1] for r in expected}
    assert uses_of(expected, units) > 0

    # And through the export itself.
    result = export_837p(hub, hub.settings.batches_dir / "batch.x12")
    assert result.claim_count == ready and result.set_aside == ()
    with hub.store.session() as session:
        assert ledger_rows(session) == expected
        assert authorization_uses.remaining(session, shared) == -2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_mix_of_members_authorizations_earlier_batches_and_revisions_gives_the_same_ledger(hub, seed):
    rng = random.Random(seed)
    members = [f"M{seed}-{i}" for i in range(4)]
    for m, member in enumerate(members):
        for k in range(rng.randint(0, 2)):  # none, one or two authorizations per member
            start = START + timedelta(days=rng.choice([0, 0, 10, 25]))
            authorize(hub, member, f"A{m}{k}", rng.choice([1, 2, 3, 4]), start=start,
                      end=start + timedelta(days=rng.choice([15, 30, 90])),
                      unit_type=rng.choice(["visits", "visits", "units"]),
                      procedure_codes=rng.choice([[], [], ["90837", "90834"], ["99214"]]))
    authorize(hub, members[0], "BROAD", 3)  # the two claims revised below took from it
    claims = [visit(hub, seed * 1000 + i, START + timedelta(days=i + 1), members[0]) for i in range(2)]
    claims += [visit(hub, seed * 1000 + i, START + timedelta(days=rng.randint(0, 50)), rng.choice(members))
               for i in range(2, 18)]
    # An earlier batch already holds some of the members' visits.
    first = export_837p(hub, hub.settings.batches_dir / "first.x12", max_claims=6)
    assert first is not None
    with hub.store.session() as session:
        assert {c.batch_id for c in going_out(session, claims[:2])} == {first.batch_id}
    later = [revise(hub, claims[0], "7", payer_claim_control_number="PCCN1"),
             revise(hub, claims[1], "8", payer_claim_control_number="PCCN1")]
    with hub.store.session() as session:
        ready = [c.id for c in going_out(session)]
    assert set(later) <= set(ready)

    expected = ledger_if(hub, one_claim_at_a_time, ready)
    assert ledger_if(hub, authorization_uses.consume_many, ready) == expected
    assert any(r[4] and r[5] == "replaced by revision 1" for r in expected)  # revisions gave uses back


def test_a_batch_consumed_twice_records_its_uses_once(hub):
    authorize(hub, "M-ONCE", "A-1", 2)
    ids = [visit(hub, 200 + i, START + timedelta(days=i), "M-ONCE") for i in range(3)]
    with hub.store.writer() as session:
        made = authorization_uses.consume_many(session, going_out(session, ids))  # one use per line
        assert made >= 3
        assert authorization_uses.consume_many(session, going_out(session, ids)) == 0
        session.commit()
        assert len(ledger_rows(session)) == made
