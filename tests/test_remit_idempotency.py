"""Each 835 claim payment posts once, whatever envelope it comes in.

A payer re-sends a payment with a new trace number, a BPR amount that now includes interest, or
another payer id (REF*2U dropped, the name only): the claim payments in it are repeats, kept as
such and not posted again. A reversal (CLP02 22) makes room for the same payment once more (a
re-adjudication with the same amounts). Two processes posting the same payment at once post it
once. The harness at the end sends random sequences of these and checks that each claim's paid
total is what the payer paid, net.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, update

from bhhub.intake import inbox as intake
from bhhub.store import schema
from conftest import PROJECT
from test_remittance import Remit, run_json, sent, statuses  # noqa: F401 - ``sent`` is a fixture

D = Decimal
PAID_10 = [("CO", "45", D("10"))]
PAID_30 = [("CO", "45", D("30"))]


def paid_by_claim(hub) -> dict[str, Decimal]:
    """Per claim, the sum of CLP04 of what is posted to it."""
    with hub.store.session() as session:
        rows = session.execute(select(schema.Claim.patient_control_number, schema.RemitClaim.paid)
                               .join(schema.RemitClaim, schema.RemitClaim.claim_id == schema.Claim.id)
                               .where(schema.RemitClaim.state == "posted")).all()
    totals: dict[str, Decimal] = {}
    for pcn, paid in rows:
        totals[pcn] = totals.get(pcn, D(0)) + D(paid)
    return totals


def payment(trace: str, info: dict, cas, *, status: str = "1", sign: int = 1, payer=None, pcn: str,
            interest: D = D(0)) -> Remit:
    remit = Remit(trace, payer=payer).claim(pcn, info, status, sign=sign, lines=[cas] * len(info["lines"]))
    remit.interest = interest
    return remit


def test_the_same_claim_payment_re_sent_in_another_envelope_posts_once(hub, hub_home, sent, capsys):
    a, *_ = sent
    info = sent[a]
    first = payment("TRACE100", info, PAID_10, pcn=a)
    assert intake.receive(hub, first.bytes(101), "first.835").outcome == "imported"
    once = paid_by_claim(hub)[a]
    assert once == info["charge"] - 10 * len(info["lines"])
    # a new trace number; a BPR amount with interest; no REF*2U (the name and TRN03 only)
    for n, copy in enumerate([payment("TRACE101", info, PAID_10, pcn=a),
                              payment("TRACE100", info, PAID_10, pcn=a, interest=D("2.50")),
                              payment("TRACE102", info, PAID_10, pcn=a, payer=("", info["payer"][1]))], start=102):
        result = intake.receive(hub, copy.bytes(n), f"copy-{n}.835")
        assert result.outcome == "imported" and "1 already posted (not posted twice)" in result.summary
    assert paid_by_claim(hub) == {a: once}
    payments = run_json(capsys, hub_home, "remit", "list")
    assert [(p["claims_posted"], p["claims_repeated"]) for p in payments] == [(1, 0), (0, 1), (0, 1), (0, 1)]


def test_a_reversal_makes_room_for_the_same_payment_once_more_and_no_more(hub, sent):
    a, *_ = sent
    info = sent[a]
    net = info["charge"] - 10 * len(info["lines"])
    steps = [(payment("T1", info, PAID_10, pcn=a), net),  # paid
             (payment("T2", info, PAID_10, pcn=a), net),  # the same, re-sent: a repeat
             (payment("T3", info, PAID_10, pcn=a, status="22", sign=-1), D(0)),  # reversed
             (payment("T4", info, PAID_10, pcn=a, status="22", sign=-1), D(0)),  # the reversal re-sent: a repeat
             (payment("T5", info, PAID_10, pcn=a), net),  # adjudicated again, the same amounts: new
             (payment("T6", info, PAID_10, pcn=a), net)]  # and that re-sent: a repeat
    for n, (remit, expected) in enumerate(steps, start=111):
        intake.receive(hub, remit.bytes(n), f"step-{n}.835")
        assert paid_by_claim(hub)[a] == expected, f"after {remit.trace}"
    assert statuses(hub)[a] == "paid"


def test_one_payer_claim_number_on_three_hundred_claim_payments_posts_once(hub, sent):
    a, *_ = sent
    info = sent[a]
    with hub.store.session() as session:
        claim = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == a)).one()
        claim.payer_claim_control_number = "ICN-SHARED"
        session.commit()
    remit = Remit("TRACE-MANY")
    for n in range(150):  # the payer's claim number on claim payments with CLP01s the hub never sent
        remit.claim(f"OTHER{n:04d}", info, lines=[PAID_10] * len(info["lines"]), payer_number="ICN-SHARED")
    for n in range(150):  # and on copies of the claim's own payment
        remit.claim(a, info, lines=[PAID_10] * len(info["lines"]), payer_number="ICN-SHARED")
    result = intake.receive(hub, remit.bytes(120), "many.835")
    assert result.outcome == "imported"
    assert paid_by_claim(hub) == {a: info["charge"] - 10 * len(info["lines"])}
    with hub.store.session() as session:
        states = [s for s, in session.execute(select(schema.RemitClaim.state))]
    assert states.count("posted") == 1 and states.count("posted") + states.count("unmatched") + states.count("repeat") == 300


def test_two_processes_posting_the_same_payment_at_once_post_it_once(hub, hub_home, sent, tmp_path):
    a, *_ = sent
    info = sent[a]
    files = []
    for n, trace in enumerate(("TRACE-TWIN-1", "TRACE-TWIN-2"), start=131):  # two envelopes, one payment
        path = tmp_path / f"{trace}.835"
        path.write_bytes(payment(trace, info, PAID_10, pcn=a).bytes(n))
        files.append(path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BHHUB_") or k == "BHHUB_TODAY"}
    command = [sys.executable, "-m", "bhhub.cli.main", "--home", str(hub_home), "intake"]
    first = subprocess.Popen([*command, str(files[0])], cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env={**env, "BHHUB_PAUSE_AT": "apply:before_commit", "BHHUB_PAUSE_SECONDS": "3"})
    time.sleep(2.0)  # the first is inside its transaction, posted but not committed
    second = subprocess.Popen([*command, str(files[1])], cwd=PROJECT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
    for process in (first, second):
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0 and "Traceback" not in err, err
    assert paid_by_claim(hub) == {a: info["charge"] - 10 * len(info["lines"])}


# --- the harness: random sequences of 835 variants -----------------------------------------------

# What the payer does to one claim, in order: pay (with one of two contractual amounts and one
# of two payer claim numbers), then reverse what it paid, then perhaps pay again, ...
_ADJUDICATIONS = st.tuples(st.sampled_from(["10", "30"]), st.sampled_from(["ICN-1", "ICN-2"]))
_ENVELOPES = st.sampled_from(["new trace", "interest in BPR", "name only", "same trace other amount"])


@st.composite
def payer_histories(draw, claims: int):
    """Per claim: the payer's events, each delivered 1-3 times in envelopes drawn here."""
    histories = []
    for _ in range(claims):
        events = []
        for k in range(draw(st.integers(0, 4))):
            if k % 2 == 0:
                contractual, number = draw(_ADJUDICATIONS)
                events.append(("pay", D(contractual), number))
            else:
                _, contractual, number = events[-1]
                events.append(("reverse", contractual, number))
        histories.append([(event, draw(st.lists(_ENVELOPES, min_size=1, max_size=3))) for event in events])
    return histories


def _forget_remittances(hub) -> None:
    """Each example starts from claims sent and nothing posted."""
    with hub.store.session() as session:
        remit_items = select(schema.RemitPayment.inbox_item_id)
        session.execute(update(schema.RemitClaim).values(reverses_id=None, reversed_by_id=None))
        for table in (schema.Denial, schema.RemitClaim, schema.ProviderAdjustment):
            session.execute(delete(table))
        items = [i for i, in session.execute(remit_items)]
        session.execute(delete(schema.RemitPayment))
        session.execute(delete(schema.InboxItem).where(schema.InboxItem.id.in_(items)))
        session.execute(update(schema.Claim).values(status="submitted", payer_claim_control_number=None))
        session.commit()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_whatever_835_variants_arrive_each_claim_is_paid_what_the_payer_paid_net(hub, sent, data):
    _forget_remittances(hub)
    pcns = list(sent)[:3]
    histories = data.draw(payer_histories(len(pcns)), label="payer histories")
    queues = {pcn: [] for pcn in pcns}
    expected = {}
    for pcn, history in zip(pcns, histories):
        info = sent[pcn]
        for (kind, contractual, number), envelopes in history:
            lines = [[("CO", "45", contractual)]] * len(info["lines"])
            sign, status = (-1, "22") if kind == "reverse" else (1, "1")
            net = info["charge"] - contractual * len(info["lines"])
            expected[pcn] = expected.get(pcn, D(0)) + sign * net
            queues[pcn] += [(pcn, info, status, sign, lines, number, envelope) for envelope in envelopes]
    # Interleave the claims (each claim's deliveries stay in the payer's order) and split the
    # deliveries across files of one to three claim payments.
    deliveries = []
    while any(queues.values()):
        pcn = data.draw(st.sampled_from([p for p in pcns if queues[p]]), label="next claim")
        deliveries.append(queues[pcn].pop(0))
    traces: list[str] = []
    n = 0
    while deliveries:
        size = data.draw(st.integers(1, 3), label="claim payments in this file")
        batch, deliveries = deliveries[:size], deliveries[size:]
        envelope = batch[0][-1]
        n += 1
        trace = traces[-1] if envelope == "same trace other amount" and traces else f"TR{n}"
        payer = ("", batch[0][1]["payer"][1]) if envelope == "name only" else None
        remit = Remit(trace, payer=payer)
        for pcn, info, status, sign, lines, number, _ in batch:
            remit.claim(pcn, info, status, sign=sign, lines=lines, payer_number=number)
        # cents, so no two deposits are equal (the same trace, amount and date is the same payment)
        remit.interest = D("0.01") * n if envelope in ("interest in BPR", "same trace other amount") else D(0)
        traces.append(trace)
        assert intake.receive(hub, remit.bytes(1000 + n), f"h{n}.835").outcome in ("imported", "duplicate")
    posted = paid_by_claim(hub)
    assert {p: posted.get(p, D(0)) for p in pcns} == {p: expected.get(p, D(0)) for p in pcns}
    assert set(posted) <= set(pcns)


def test_claim_payments_inserted_in_bulk_are_each_kept_once_in_file_order(hub, sent, monkeypatch):
    """Unmatched and quarantined claim payments are written in chunks: every one is kept, once,
    with its place in the file, however the chunks fall among posted ones."""
    from bhhub.remittance import posting

    monkeypatch.setattr(posting._Unposted, "CHUNK", 3)
    a, *_ = sent
    info = sent[a]
    stranger = {**info, "patient": ("NOBODY", "NEMO"), "member_id": "ZZ0000999"}  # a patient the hub does not hold
    remit = Remit("TRACE-CHUNKS")
    for n in range(10):
        remit.claim(f"NOSUCH{n:03d}", stranger, lines=[PAID_10] * len(info["lines"]), payer_number=f"ICN-X{n}")
        if n == 4:
            remit.claim(a, info, lines=[PAID_10] * len(info["lines"]))
    result = intake.receive(hub, remit.bytes(130), "chunks.835")
    assert result.outcome == "imported"
    with hub.store.session() as session:
        rows = session.execute(select(schema.RemitClaim.sequence, schema.RemitClaim.state,
                                      schema.RemitClaim.patient_control_number)
                               .order_by(schema.RemitClaim.sequence)).all()
    assert [r.sequence for r in rows] == list(range(1, 12))
    assert [r.state for r in rows].count("unmatched") == 10 and rows[5].state == "posted"
    assert [r.patient_control_number for r in rows if r.state == "unmatched"] == [f"NOSUCH{n:03d}" for n in range(10)]
    assert paid_by_claim(hub) == {a: info["charge"] - 10 * len(info["lines"])}
