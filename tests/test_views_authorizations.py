"""Where each authorization stands (bhhub.ledger.authorization_status): used and left, days to its
end, its burn-down, and whether it runs out before the patient's booked appointments."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import select

from bhhub.cli.output import _plain
from bhhub.ledger import authorizations as ledger
from bhhub.ledger.authorization_status import authorization_status
from bhhub.store import schema
from test_remittance import run_json, sent  # noqa: F401 (sent is a fixture)

AS_OF = date(2026, 11, 29)


def as_json(data):
    return json.loads(json.dumps(data, default=_plain))


@pytest.fixture
def authorized(hub, sent) -> dict:
    """A 3-visit authorization for the first claim's member, one visit used by that claim, and
    booked appointments on 1, 5 (twice that day), 8 and 12 December and one cancelled."""
    with hub.store.session() as session:
        claim = session.scalars(select(schema.Claim).order_by(schema.Claim.id)).first()
        coverage = session.get(schema.Coverage, claim.coverage_id)
        payer = session.get(schema.Payer, coverage.payer_id)
        row = ledger.add(session, payer_id=payer.payer_id, member_id=coverage.member_id, number="A100", quantity=3,
                         start=date(2026, 10, 1), end=date(2026, 12, 31))
        session.flush()
        session.add(schema.AuthorizationUse(authorization_id=row.id, claim_id=claim.id, line_number=1, units=1))
        item = session.scalar(select(schema.InboxItem.id).limit(1))
        patient = session.get(schema.Patient, claim.patient_id)
        for n, (day, status) in enumerate([("2026-12-01", "booked"), ("2026-12-05", "booked"),
                                           ("2026-12-05", "booked"), ("2026-12-08", "booked"),
                                           ("2026-12-12", "booked"), ("2026-12-03", "cancelled"),
                                           ("2026-11-20", "booked")]):  # the last is before as_of
            session.add(schema.Appointment(key=f"test|{n}", patient_key=patient.key, patient_id=patient.id,
                                           service_date=date.fromisoformat(day), status=status, inbox_item_id=item))
        session.commit()
        return {"id": row.id, "used_on": claim.lines[0].service_date}


def test_an_authorization_that_runs_out_before_the_booked_appointments_names_the_first_not_covered(hub, authorized):
    with hub.store.session() as session:
        [status] = authorization_status(hub, session, as_of=AS_OF)
    assert (status["authorized"], status["used"], status["remaining"]) == (3, 1, 2)
    assert status["days_to_expiry"] == 32
    assert status["burn_down"] == [{"date": authorized["used_on"], "used": 1, "remaining": 2}]
    # four days with an appointment (two on the 5th are one visit), two visits left
    assert status["appointments_ahead"] == 4 and status["needed_ahead"] == 4
    assert status["runs_out_before_appointments"] is True
    assert status["first_uncovered_appointment"] == date(2026, 12, 8)


def test_an_authorization_with_room_for_every_appointment_does_not_run_out(hub, authorized):
    with hub.store.session() as session:
        [status] = authorization_status(hub, session, as_of=date(2026, 12, 6))  # only the 8th and 12th ahead
    assert status["appointments_ahead"] == 2 and status["runs_out_before_appointments"] is False
    assert status["first_uncovered_appointment"] is None


def test_auth_list_json_is_the_status_function(hub, hub_home, authorized, capsys):
    out = run_json(capsys, hub_home, "auth", "list", "--as-of", AS_OF.isoformat())
    with hub.store.session() as session:
        data = authorization_status(hub, session, as_of=AS_OF)
    assert out == as_json(data) and out[0]["first_uncovered_appointment"] == "2026-12-08"
    capsys.readouterr()
    from bhhub.cli.main import main

    assert main(["--home", str(hub_home), "auth", "list", "--as-of", AS_OF.isoformat()]) == 0
    assert "the first not covered is on 2026-12-08" in capsys.readouterr().out
