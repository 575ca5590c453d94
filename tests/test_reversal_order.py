"""A re-adjudication and the reversal of the first adjudication, in either order: the claim
stands where its latest adjudication that is not reversed puts it (domain reference 6.4: a
reversal, CLP02 22, takes back one claim payment; the payer's corrected one follows or precedes
it), and is ``reversed`` only when nothing stands. On SQLite and PostgreSQL (the ``hub`` fixture)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bhhub.intake import inbox as intake
from test_remit_idempotency import paid_by_claim, payment
from test_remittance import Remit, statuses, sent  # noqa: F401 - ``sent`` is a fixture

D = Decimal
PAID_10 = [("CO", "45", D("10"))]
PAID_30 = [("CO", "45", D("30"))]
DENIED_AUTH = [("CO", "197", None)]  # the whole line: filled in per claim


def _post(hub, remit: Remit, n: int) -> None:
    result = intake.receive(hub, remit.bytes(n), f"r{n}.835")
    assert result.outcome == "imported", result.reason


def _both(info, first, second, pcn) -> Remit:
    """One 835 holding two claim payments of one claim, in this order."""
    remit = Remit("TRACE-BOTH")
    for kind in (first, second):
        if kind == "reversal":
            remit.claim(pcn, info, "22", sign=-1, lines=[PAID_10] * len(info["lines"]), payer_number="ICN-OLD")
        else:
            remit.claim(pcn, info, lines=[PAID_30] * len(info["lines"]), payer_number="ICN-NEW")
    return remit


@pytest.mark.parametrize("order", [("reversal", "readjudication"), ("readjudication", "reversal")])
@pytest.mark.parametrize("one_file", [True, False])
def test_the_readjudication_stands_whichever_order_it_comes_in(hub, sent, order, one_file):
    a, *_ = sent
    info = sent[a]
    lines = len(info["lines"])
    first = Remit("TRACE-OLD").claim(a, info, lines=[PAID_10] * lines, payer_number="ICN-OLD")
    _post(hub, first, 1)
    assert statuses(hub)[a] == "paid"
    if one_file:
        _post(hub, _both(info, *order, a), 2)
    else:
        for n, kind in enumerate(order, start=2):
            remit = Remit(f"TRACE-{n}")
            if kind == "reversal":
                remit.claim(a, info, "22", sign=-1, lines=[PAID_10] * lines, payer_number="ICN-OLD")
            else:
                remit.claim(a, info, lines=[PAID_30] * lines, payer_number="ICN-NEW")
            _post(hub, remit, n)
    # What the payer paid, net: the re-adjudication only.
    assert paid_by_claim(hub)[a] == info["charge"] - 30 * lines
    assert statuses(hub)[a] == "paid"


def test_a_reversal_with_nothing_else_standing_leaves_the_claim_reversed(hub, sent):
    a, *_ = sent
    info = sent[a]
    _post(hub, payment("T1", info, PAID_10, pcn=a), 1)
    _post(hub, payment("T2", info, PAID_10, pcn=a, status="22", sign=-1), 2)
    assert statuses(hub)[a] == "reversed"
    assert paid_by_claim(hub)[a] == 0


def test_a_denial_readjudicated_before_the_reversal_of_the_payment_leaves_the_claim_denied(hub, sent):
    a, *_ = sent
    info = sent[a]
    lines = len(info["lines"])
    _post(hub, Remit("T1").claim(a, info, lines=[PAID_10] * lines, payer_number="ICN-OLD"), 1)
    denied = [[("CO", "197", charge)] for _, charge, _ in info["lines"]]  # nothing paid: no authorization
    both = Remit("T2").claim(a, info, "4", lines=denied, payer_number="ICN-NEW")
    both.claim(a, info, "22", sign=-1, lines=[PAID_10] * lines, payer_number="ICN-OLD")
    _post(hub, both, 2)
    assert statuses(hub)[a] == "denied"
    assert paid_by_claim(hub)[a] == 0
