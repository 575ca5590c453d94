"""A claim paid twice by one payer (two standing adjudications with money, neither reversed) is
an alert a biller sees; a re-adjudication whose reversal comes with it or after clears it, and a
re-sent 835 opens none. Nothing about the postings changes: the money arrived. On SQLite and
PostgreSQL (the ``hub`` fixture)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from bhhub.intake import inbox as intake
from bhhub.store import schema
from test_remittance import Remit, sent  # noqa: F401 - ``sent`` is a fixture

PAID_10 = [("CO", "45", Decimal("10"))]
PAID_30 = [("CO", "45", Decimal("30"))]


def _post(hub, remit: Remit, n: int) -> None:
    result = intake.receive(hub, remit.bytes(n), f"r{n}.835")
    assert result.outcome == "imported", result.reason


def _paid(remit: Remit, pcn: str, info: dict, number: str, lines=PAID_10) -> Remit:
    return remit.claim(pcn, info, lines=[lines] * len(info["lines"]), payer_number=number)


def _reversal(remit: Remit, pcn: str, info: dict, number: str) -> Remit:
    return remit.claim(pcn, info, "22", sign=-1, lines=[PAID_10] * len(info["lines"]), payer_number=number)


def _open_alerts(hub) -> dict[str, str]:
    with hub.store.session() as session:
        return {a.key: a.message for a in session.scalars(select(schema.Alert).where(
            schema.Alert.kind == "claim_paid_twice", schema.Alert.cleared_at.is_(None)))}


def _claim_id(hub, pcn: str) -> int:
    with hub.store.session() as session:
        return session.scalar(select(schema.Claim.id).where(schema.Claim.patient_control_number == pcn,
                                                            schema.Claim.revision == 0))


def test_a_second_payment_with_no_reversal_is_an_alert_until_one_is_reversed(hub, sent):
    a, b, *_ = sent
    _post(hub, _paid(Remit("T1"), a, sent[a], "ICN-1"), 1)
    assert _open_alerts(hub) == {}
    _post(hub, _paid(_paid(Remit("T2"), a, sent[a], "ICN-2"), b, sent[b], "ICN-B"), 2)  # a paid again
    alerts = _open_alerts(hub)
    assert set(alerts) == {f"claim_paid_twice:{_claim_id(hub, a)}"}  # b was paid once: no alert
    assert a in alerts[f"claim_paid_twice:{_claim_id(hub, a)}"] and "ICN-1" in alerts[f"claim_paid_twice:{_claim_id(hub, a)}"]
    _post(hub, _paid(Remit("T2-AGAIN"), a, sent[a], "ICN-2"), 3)  # the same second payment re-sent
    assert len(_open_alerts(hub)) == 1
    _post(hub, _reversal(Remit("T3"), a, sent[a], "ICN-1"), 4)  # the payer takes the first back
    assert _open_alerts(hub) == {}


def test_a_readjudication_with_its_reversal_is_no_alert(hub, sent):
    a, *_ = sent
    _post(hub, _paid(Remit("T1"), a, sent[a], "ICN-OLD"), 1)
    both = _paid(_reversal(Remit("T2"), a, sent[a], "ICN-OLD"), a, sent[a], "ICN-NEW", PAID_30)
    _post(hub, both, 2)
    assert _open_alerts(hub) == {}


def test_a_readjudication_before_its_reversal_is_an_alert_only_until_the_reversal(hub, sent):
    a, *_ = sent
    _post(hub, _paid(Remit("T1"), a, sent[a], "ICN-OLD"), 1)
    _post(hub, _paid(Remit("T2"), a, sent[a], "ICN-NEW", PAID_30), 2)
    assert len(_open_alerts(hub)) == 1
    _post(hub, _reversal(Remit("T3"), a, sent[a], "ICN-OLD"), 3)
    assert _open_alerts(hub) == {}
