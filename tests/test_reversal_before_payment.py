"""A reversal listed before the payment it reverses, and a payment reversed and paid again with
the very same amounts (bhhub.remittance.repeats, the rule at its top).

- In one 835, a reversal (CLP02 22) that finds no payment of its amount standing waits for the
  next payment of its amount in the file and applies right after it; one whose payment comes
  nowhere posts as reversing nothing, at the end of the file.
- A file's claim payments are repeats as far as they replay the latest posted of their family:
  a payment repeats an identical one posted and not reversed since; the same file sent again
  under any envelope posts nothing, so [reversal, same payment] sent twice never reverses the
  live re-payment.

On SQLite and PostgreSQL (the ``hub`` fixture); the 835s are built by ``test_remittance.Remit``.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bhhub.intake import inbox as intake
from bhhub.store import schema
from test_remit_idempotency import _forget_remittances, paid_by_claim
from test_remittance import Remit, sent, statuses  # noqa: F401 - ``sent`` is a fixture

D = Decimal
PAID_10 = [("CO", "45", D("10"))]
PAID_30 = [("CO", "45", D("30"))]


def _rows(hub, pcn: str) -> list[schema.RemitClaim]:
    """The claim's claim payments (any state), in the order they were written."""
    with hub.store.session() as session:
        claim_id = session.scalar(select(schema.Claim.id).where(schema.Claim.patient_control_number == pcn))
        rows = session.scalars(select(schema.RemitClaim).where(schema.RemitClaim.claim_id == claim_id)
                               .order_by(schema.RemitClaim.id)).all()
        session.expunge_all()
    return list(rows)


def _posted(hub, pcn: str) -> list[schema.RemitClaim]:
    return [r for r in _rows(hub, pcn) if r.state == "posted"]


class _File:
    """One 835 of claim payments for one claim: ``pay`` and ``reverse`` in the order listed."""

    def __init__(self, pcn: str, info: dict):
        self.pcn, self.info, self.listed = pcn, info, []

    def pay(self, number: str = "ICN-1", cas=PAID_10) -> "_File":
        self.listed.append(("1", 1, number, cas))
        return self

    def reverse(self, number: str = "ICN-1", cas=PAID_10) -> "_File":
        self.listed.append(("22", -1, number, cas))
        return self

    def send(self, hub, trace: str, n: int, date: str = "20261201") -> str:
        """Deliver under the envelope ``trace`` / ``n`` / ``date``; the intake summary."""
        remit = Remit(trace, amount_date=date)
        for status, sign, number, cas in self.listed:
            remit.claim(self.pcn, self.info, status, sign=sign, lines=[cas] * len(self.info["lines"]),
                        payer_number=number)
        result = intake.receive(hub, remit.bytes(n), f"{trace}.835")
        assert result.outcome == "imported", result.reason
        return result.summary


def _net(info, cas=PAID_10) -> D:
    return info["charge"] - sum(a for _, _, a in cas) * len(info["lines"])


def test_a_reversal_listed_before_the_payment_it_reverses_reverses_it(hub, sent):
    a, *_ = sent
    info = sent[a]
    both = _File(a, info).reverse().pay()
    both.send(hub, "T-BOTH", 1)
    assert paid_by_claim(hub)[a] == 0
    assert statuses(hub)[a] == "reversed"
    payment, reversal = sorted(_posted(hub, a), key=lambda r: r.status_code != "1")
    assert (payment.reversed_by_id, reversal.reverses_id) == (reversal.id, payment.id)
    assert reversal.sequence < payment.sequence  # kept where the payer listed it
    # The same file under another envelope (new trace number and date): nothing posts.
    summary = both.send(hub, "T-BOTH-AGAIN", 2, date="20261203")
    assert "2 already posted (not posted twice)" in summary
    assert len(_posted(hub, a)) == 2 and paid_by_claim(hub)[a] == 0
    assert statuses(hub)[a] == "reversed"


def test_a_reversal_whose_payment_is_in_no_file_posts_as_reversing_nothing(hub, sent):
    a, b, *_ = sent
    file = _File(a, sent[a]).reverse()
    file.send(hub, "T-ORPHAN", 1)
    (reversal,) = _posted(hub, a)
    assert reversal.reverses_id is None and "has no record of" in reversal.reason
    assert statuses(hub)[a] == "reversed"
    # Another claim's payment later in the file is not the one it waits for.
    _File(b, sent[b]).pay().send(hub, "T-OTHER", 2)
    assert _posted(hub, b)[0].reversed_by_id is None and statuses(hub)[b] == "paid"


def test_a_payment_reversed_and_paid_again_the_same_stands_and_no_resend_undoes_it(hub, sent):
    a, *_ = sent
    info = sent[a]
    net = _net(info)
    first = _File(a, info).pay()
    first.send(hub, "T-A", 1)
    again = _File(a, info).reverse().pay()  # the payer took it back and paid the same again
    again.send(hub, "T-B", 2)
    assert paid_by_claim(hub)[a] == net and statuses(hub)[a] == "paid"
    p1, r, p2 = _posted(hub, a)
    assert (p1.reversed_by_id, r.reverses_id, p2.reversed_by_id) == (r.id, p1.id, None)
    assert p1.fingerprint == p2.fingerprint and (p1.generation, p2.generation) == (1, 2)
    # Each file again, under new envelopes, in either order: nothing posts, nothing is undone.
    assert "1 already posted" in first.send(hub, "T-A2", 3, date="20261205")
    assert "2 already posted" in again.send(hub, "T-B2", 4, date="20261206")
    assert "1 already posted" in first.send(hub, "T-A3", 5, date="20261207")
    assert [x.id for x in _posted(hub, a)] == [p1.id, r.id, p2.id]
    assert _posted(hub, a)[2].reversed_by_id is None
    assert paid_by_claim(hub)[a] == net and statuses(hub)[a] == "paid"
    # A reversal of the re-payment itself does post, once.
    undo = _File(a, info).reverse()
    undo.send(hub, "T-C", 6)
    undo.send(hub, "T-C2", 7, date="20261208")
    assert paid_by_claim(hub)[a] == 0 and statuses(hub)[a] == "reversed"
    assert _posted(hub, a)[-1].reverses_id == p2.id and len(_posted(hub, a)) == 4


def test_a_payment_the_same_as_one_reversed_before_it_in_its_file_posts_live(hub, sent):
    a, *_ = sent
    info = sent[a]
    _File(a, info).reverse().pay().send(hub, "T-F", 1)  # paid and taken back, listed backwards
    assert paid_by_claim(hub)[a] == 0
    later = _File(a, info).pay()  # then paid again, the same
    later.send(hub, "T-G", 2)
    assert paid_by_claim(hub)[a] == _net(info) and statuses(hub)[a] == "paid"
    assert "1 already posted" in later.send(hub, "T-G2", 3, date="20261204")
    assert paid_by_claim(hub)[a] == _net(info)


def test_a_reversal_listed_before_its_payment_behind_a_standing_one_takes_back_the_one_it_names(hub, sent):
    """A standing payment (ICN-1) and a file [reversal of ICN-1, payment ICN-2, reversal of
    ICN-2 listed before ICN-2 ... ]: each reversal takes back the payment with its number."""
    a, *_ = sent
    info = sent[a]
    _File(a, info).pay("ICN-1").send(hub, "T-1", 1)
    _File(a, info).reverse("ICN-1").reverse("ICN-2").pay("ICN-2").pay("ICN-3", PAID_30).send(hub, "T-2", 2)
    rows = {(r.status_code, r.payer_claim_control_number): r for r in _posted(hub, a)}
    for number in ("ICN-1", "ICN-2"):
        assert rows[("22", number)].reverses_id == rows[("1", number)].id
    assert rows[("1", "ICN-3")].reversed_by_id is None
    assert paid_by_claim(hub)[a] == _net(info, PAID_30) and statuses(hub)[a] == "paid"


# --- the property: any listing order within a file, any file sent twice --------------------------


@st.composite
def payer_files(draw):
    """The payer's adjudications of one claim, each with its own payer claim number (CLP07):
    pay, reverse, pay, ... ; cut into files in order, a file listing a reversal before the
    payment it reverses when both are in it, each file delivered once or twice in a row."""
    events = []
    for k in range(draw(st.integers(1, 6))):
        if k % 2 == 0:
            events.append(("pay", f"ICN-{k // 2 + 1}", draw(st.sampled_from(["10", "30"]))))
        else:
            events.append(("reverse", events[-1][1], events[-1][2]))
    files = []
    while events:
        size = draw(st.integers(1, 3))
        chunk, events = events[:size], events[size:]
        for i in range(len(chunk) - 1):
            if chunk[i][0] == "pay" and chunk[i + 1][0] == "reverse" and draw(st.booleans()):
                chunk[i], chunk[i + 1] = chunk[i + 1], chunk[i]
        files.append((chunk, draw(st.integers(1, 2))))
    return files


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=payer_files())
def test_each_adjudication_posts_once_and_each_reversal_takes_back_its_own_payment(hub, sent, files):
    _forget_remittances(hub)
    a, *_ = sent
    info = sent[a]
    expected, n, last = D(0), 0, None
    for chunk, deliveries in files:
        file = _File(a, info)
        for kind, number, contractual in chunk:
            cas = [("CO", "45", D(contractual))]
            (file.pay if kind == "pay" else file.reverse)(number, cas)
            expected += _net(info, cas) * (1 if kind == "pay" else -1)
        for copy in range(deliveries):
            n += 1
            file.send(hub, f"TR{n}", 2000 + n, date=f"202612{10 + copy:02d}")
        last = max(chunk, key=lambda e: (int(e[1].split("-")[1]), e[0] == "reverse"))
    posted = _posted(hub, a)
    assert paid_by_claim(hub).get(a, D(0)) == expected
    assert len(posted) == sum(len(chunk) for chunk, _ in files)
    by_number = {(r.status_code, r.payer_claim_control_number): r for r in posted}
    for (status, number), row in by_number.items():
        if status == "22":
            assert row.reverses_id == by_number[("1", number)].id
    assert statuses(hub)[a] == ("reversed" if last[0] == "reverse" else "paid")


def test_matching_by_hand_follows_the_same_rule(hub, sent):
    """A claim payment matched by hand is a repeat when the same one stands on the claim (refused),
    and posts once that one is reversed; a reversal matched by hand takes back the standing one."""
    import pytest

    from bhhub.errors import InputError
    from bhhub.remittance.hand_matching import match_by_hand

    a, *_ = sent
    info = sent[a]
    _File(a, info).pay().send(hub, "T-1", 1)
    stranger = {**info, "patient": ("NOBODY", "NEMO"), "member_id": "ZZ0000999"}  # so it goes unmatched
    _File("NOSUCH-1", stranger).pay().send(hub, "T-2", 2)  # CLP07 names the claim; the patient does not agree
    _File("NOSUCH-1", stranger).reverse().send(hub, "T-3", 3)
    with hub.store.session() as session:
        unmatched = session.scalars(select(schema.RemitClaim).where(schema.RemitClaim.state == "unmatched")
                                    .order_by(schema.RemitClaim.id)).all()
        payment_id, reversal_id = (r.id for r in unmatched)
        claim = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == a)).one()
        with pytest.raises(InputError, match="pay the claim twice"):
            match_by_hand(hub, session, payment_id, claim, "biller")
        session.rollback()
        reversal = match_by_hand(hub, session, reversal_id, claim, "biller")
        session.commit()
        assert reversal.reverses_id == _posted(hub, a)[0].id
        match_by_hand(hub, session, payment_id, claim, "biller")
        session.commit()
    assert paid_by_claim(hub)[a] == _net(info) and statuses(hub)[a] == "paid"
