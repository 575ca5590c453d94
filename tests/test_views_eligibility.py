"""What payers said about coverage (bhhub.eligibility.answers): every check, and the last answer
per patient and coverage, each what `bhhub eligibility list --json` prints."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

from bhhub.cli.output import _plain
from bhhub.eligibility.answers import eligibility_history, latest_answers
from bhhub.store import schema
from test_remittance import run_json


def as_json(data):
    return json.loads(json.dumps(data, default=_plain))


def on(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T12:00:00").replace(tzinfo=timezone.utc)


def test_the_latest_answer_per_coverage_is_the_newest_answered_one(hub, hub_home, capsys):
    asked = [("M1", "2026-11-01", "answered", True, "old plan"), ("M1", "2026-11-10", "answered", False, "ended"),
             ("M1", "2026-11-20", "requested", None, None), ("M1", "2026-11-21", "failed", None, None),
             ("M2", "2026-11-05", "answered", True, "other plan")]
    with hub.store.session() as session:
        for n, (member, day, state, active, plan) in enumerate(asked):
            answered = on(day) if state == "answered" else None
            session.add(schema.EligibilityCheck(
                trace_number=f"T{n}", payer_id="P1", member_id=member, service_date=date(2026, 12, 1),
                service_types=["30"], source="x12", reason="asked", state=state, active=active,
                response={"plan_description": plan, "benefits": {}} if plan else None,
                error="timed out" if state == "failed" else None, requested_at=on(day), answered_at=answered))
        session.commit()
        latest = latest_answers(hub, session)
        history = eligibility_history(hub, session)
        session.commit()
    assert [(d["member_id"], d["plan"], d["active"]) for d in latest] == [("M1", "ended", False),
                                                                         ("M2", "other plan", True)]
    assert len(history) == 5
    assert run_json(capsys, hub_home, "eligibility", "list", "--latest") == as_json(latest)
    assert run_json(capsys, hub_home, "eligibility", "list") == as_json(history)
