"""A/R figures at each month's end (bhhub.remittance.trends), by bhhub.remittance.ar's own rules
restricted to what the store had recorded by then."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

from sqlalchemy import update

from bhhub.cli.output import _plain
from bhhub.intake import inbox as intake
from bhhub.remittance.ar import ar_report
from bhhub.remittance.trends import month_ends, monthly_figures, trend_report
from bhhub.store import schema
from test_remittance import D, Remit, run_json, sent  # noqa: F401 (sent is a fixture)


def as_json(data):
    return json.loads(json.dumps(data, default=_plain))


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T15:00:00").replace(tzinfo=timezone.utc)


def billed_in_september_denied_in_october(hub, sent) -> tuple[str, str]:
    """Every claim batched on 10 September; an 835 posted on 15 October pays a and denies c."""
    a, b, c, *_ = sent
    remit = Remit("TRACE001")
    remit.claim(a, sent[a], lines=[[("CO", "45", D("10"))]] * len(sent[a]["lines"]))
    remit.claim(c, sent[c], "4", lines=[[("CO", "197", sent[c]["lines"][0][1])]])
    assert intake.receive(hub, remit.bytes(1), "remit.835").outcome == "imported"
    with hub.store.session() as session:
        session.execute(update(schema.ClaimStatusEvent).values(at=at("2026-09-10"))
                        .where(schema.ClaimStatusEvent.status.in_(("batched", "submitted", "ready"))))
        session.execute(update(schema.ClaimStatusEvent).values(at=at("2026-10-15"))
                        .where(schema.ClaimStatusEvent.status.in_(("paid", "denied"))))
        session.execute(update(schema.RemitClaim).values(posted_at=at("2026-10-15")))
        session.execute(update(schema.Denial).values(created_at=at("2026-10-15")))
        session.commit()
    return a, c


def test_month_ends_are_the_last_days_with_the_current_month_so_far():
    assert month_ends(date(2026, 11, 29), 3) == [date(2026, 9, 30), date(2026, 10, 31), date(2026, 11, 29)]
    assert month_ends(date(2026, 1, 15), 2) == [date(2025, 12, 31), date(2026, 1, 15)]
    assert len(month_ends(date(2026, 11, 29), 12)) == 12


def test_a_claim_denied_in_october_counts_in_octobers_denial_rate_and_not_septembers(hub, sent):
    billed_in_september_denied_in_october(hub, sent)
    with hub.store.session() as session:
        months = monthly_figures(session, months=4, as_of=date(2026, 11, 29))
        today = ar_report(session, date(2026, 11, 29))
    assert [m["month"] for m in months] == ["2026-08", "2026-09", "2026-10", "2026-11"]
    august, september, october, november = (m["figures"] for m in months)
    assert august["claims_sent"] == 0 and august["denial_rate_count"] is None
    assert september["claims_sent"] == 5 and september["claims_with_835"] == 0
    assert september["denial_rate_count"] is None  # nothing denied yet as the store knew it then
    assert october["claims_with_835"] == 2 and october["denial_rate_count"] == D("0.500")
    # in September every claim was owed in full; by October the 835 had settled a
    assert september["insurance_ar"] == sum((info["charge"] for info in sent.values()), D(0))
    assert october["insurance_ar"] < september["insurance_ar"]
    # the month so far is today's report: the same rules, nothing re-derived
    assert november == today.figures
    assert months[-1]["aging_by_payer"] == today.aging["by_payer"]


def test_a_denial_worked_later_is_still_owed_at_the_earlier_month_end(hub, sent):
    _, c = billed_in_september_denied_in_october(hub, sent)
    with hub.store.session() as session:
        denial = session.query(schema.Denial).one()
        denial.status, denial.resolution, denial.resolved_at = "resolved", "written off", at("2026-11-05")
        session.commit()
        october, november = (m["figures"] for m in monthly_figures(session, months=2, as_of=date(2026, 11, 29)))
    assert october["insurance_ar"] - november["insurance_ar"] == sent[c]["charge"]


def test_ar_trend_json_is_the_trend_report(hub, hub_home, sent, capsys):
    billed_in_september_denied_in_october(hub, sent)
    out = run_json(capsys, hub_home, "ar", "--trend", "--months", "3", "--as-of", "2026-11-29")
    with hub.store.session() as session:
        data = trend_report(hub, session, months=3, as_of=date(2026, 11, 29))
    assert out == as_json(data) and len(out["months"]) == 3
    assert out["formulas"]["denial_rate_count"] and out["months"][0]["figures"]["denial_rate_count"] is None
    capsys.readouterr()
    from bhhub.cli.main import main

    assert main(["--home", str(hub_home), "ar", "--trend", "--months", "0"]) == 2
    assert main(["--home", str(hub_home), "ar", "--trend", "--as-of", "2026-11-29"]) == 0
    assert "2026-10" in capsys.readouterr().out
