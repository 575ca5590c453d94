"""Filing and appeal windows by payer kind, state and claim type (bhhub.remittance.deadlines).

The rules come from the domain reference 10.1 and the regulations cited in
mappings/rules/filing_windows.toml: Medicare 12 calendar months from the date of service
(42 CFR 424.44), redetermination 120 days (42 CFR 405.942); Medicaid by state; commercial 90 days
by default; a payer's own row wins; corrections run from the remittance, secondaries from the
primary's remittance. "Today" is fixed at 2026-11-29 unless a test moves it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from bhhub.intake import inbox as intake
from bhhub.claims.export import export_837p
from bhhub.cli.main import main
from bhhub.demo.synthetic import encounter_bundle
from bhhub.errors import MappingError
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.model import Coverage, Payer, PriorPayerAdjudication, Severity
from bhhub.remittance.deadlines import FilingWindows, Window, add_months
from bhhub.remittance.followups import create_replacement
from bhhub.scrub import core_common, filing_checks
from bhhub.store import schema
from bhhub.store.repo import claim_record
from test_remittance import Remit, claim_info
from test_rule_validity import PLAN, TODAY, claim

MEDICARE = Payer("00431", "Medicare Part B", "MB")
MEDICAID = Payer("77027", "State Medicaid", "MC")
D = Decimal


def practice(tmp_path, files: dict[str, str]) -> SimpleNamespace:
    for name, text in files.items():
        path = tmp_path / "mappings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return SimpleNamespace(mappings=MappingSet(override_dir=tmp_path / "mappings"))


def filing(c, context=None) -> list[tuple[str, Severity]]:
    return [(f.code, f.severity) for f in filing_checks.check_timely_filing(c, context)]


def to(payer: Payer, days_ago: int, **changes):
    c = claim(on=TODAY - timedelta(days=days_ago), **changes)
    return replace(c, coverage=replace(c.coverage, payer=payer))


@pytest.fixture(autouse=True)
def fixed_today(monkeypatch):
    monkeypatch.setattr(core_common, "today", lambda: TODAY)


# ---- the window for a claim ------------------------------------------------------------------

def test_a_medicare_claim_200_days_after_its_service_is_still_fileable():
    assert filing(to(MEDICARE, 200)) == []
    window = FilingWindows.of(MappingSet()).window("original", payer_id="00431", filing_indicator="MB")
    assert (window.length, window.unit, window.anchor) == (12, "months", "service_date")


def test_a_medicare_claim_is_late_the_day_after_twelve_calendar_months():
    dos = date(2025, 11, 28)  # + 12 months = 2026-11-28, yesterday
    late = replace(claim(on=dos), coverage=replace(claim().coverage, payer=MEDICARE))
    [(code, severity)] = filing(late)
    assert (code, severity) == ("filing.deadline_passed", Severity.ERROR)
    [found] = filing_checks.check_timely_filing(late)
    assert "12 months from the date of service" in found.message and "2026-11-28" in found.message
    assert filing(replace(late, lines=(replace(late.lines[0], service_date=date(2025, 11, 29)),))) == [
        ("filing.deadline_near", Severity.WARNING)]  # today is the last day


def test_a_commercial_claim_100_days_after_its_service_is_past_the_default_90_days():
    assert filing(to(PLAN, 100)) == [("filing.deadline_passed", Severity.ERROR)]
    assert filing(to(Payer("87726", "A commercial plan", None), 100)) == [("filing.deadline_passed", Severity.ERROR)]


@pytest.mark.parametrize(("start", "months", "last"), [
    (date(2026, 1, 31), 12, date(2027, 1, 31)),
    (date(2026, 1, 31), 1, date(2026, 2, 28)),
    (date(2024, 2, 29), 12, date(2025, 2, 28)),
    (date(2026, 3, 15), 6, date(2026, 9, 15)),
    (date(2026, 8, 31), 6, date(2027, 2, 28)),
])
def test_months_are_calendar_months(start, months, last):
    assert add_months(start, months) == last
    assert Window(months, "months", "service_date", "test").last_day(start) == last


def test_a_payers_own_row_wins_over_its_filing_indicator_and_the_default(tmp_path):
    context = practice(tmp_path, {"rules/filing_windows.toml": """
[payer."00431"]
original = { within = "90 days", from = "service_date" }
[payer."99999"]
original = { within = "180 days", from = "service_date" }
"""})
    assert filing(to(MEDICARE, 100), context) == [("filing.deadline_passed", Severity.ERROR)]  # not 12 months
    assert filing(to(PLAN, 100), context) == []  # not the default 90 days
    other_medicare = Payer("01112", "Another MAC", "MB")
    assert filing(to(other_medicare, 100), context) == []  # its kind still answers


def test_the_older_per_payer_days_of_the_denial_table_still_count_as_the_payers_row(tmp_path):
    context = practice(tmp_path, {"remittance/denials.toml": '[payer."00431"]\ntimely_filing_days = 60\n'})
    assert filing(to(MEDICARE, 70), context) == [("filing.deadline_passed", Severity.ERROR)]
    windows = FilingWindows.of(context.mappings)
    assert windows.window("appeal", payer_id="00431", filing_indicator="MB").length == 120  # kind, not legacy


def test_a_practices_own_default_days_in_the_denial_table_still_set_the_default(tmp_path):
    context = practice(tmp_path, {"remittance/denials.toml": "[defaults]\ntimely_filing_days = 120\n"})
    assert filing(to(PLAN, 100), context) == []
    assert filing(to(PLAN, 121), context) == [("filing.deadline_passed", Severity.ERROR)]


@pytest.mark.parametrize(("state", "days_ago", "late"), [
    ("NY", 100, True),    # 90 days
    ("TX", 94, False),    # 95 days
    ("FL", 300, False),   # 12 months
    ("ZZ", 300, False),   # a state not in the table: the federal 12 months
    ("ZZ", 400, True),
])
def test_medicaid_windows_come_from_the_practices_state(state, days_ago, late):
    c = to(MEDICAID, days_ago)
    c = replace(c, billing_provider=replace(c.billing_provider, address=replace(c.billing_provider.address,
                                                                                 state=state)))
    assert ("filing.deadline_passed", Severity.ERROR) in filing(c) if late else filing(c) in ([], [
        ("filing.deadline_near", Severity.WARNING)])


def test_a_payer_row_names_its_state_and_kind_for_a_medicaid_plan_sent_as_an_hmo(tmp_path):
    context = practice(tmp_path, {"rules/filing_windows.toml":
                                  '[payer."77027"]\nkind = "medicaid"\nstate = "NY"\n'})
    mco = Payer("77027", "Medicaid MCO", "HM")
    assert filing(to(mco, 100), context) == [("filing.deadline_passed", Severity.ERROR)]  # NY: 90 days
    assert filing(to(mco, 100)) == [("filing.deadline_passed", Severity.ERROR)]  # plain HMO: 90 days too
    assert filing(to(mco, 80), practice(tmp_path / "il", {"rules/filing_windows.toml":
                                                          '[payer."77027"]\nkind = "medicaid"\nstate = "IL"\n'})) == []


def test_a_secondary_claim_runs_from_the_primarys_remittance():
    primary = Coverage(order=1, payer=Payer("87726", "Primary plan", "CI"), member_id="P1")
    base = claim(on=TODAY - timedelta(days=200))
    secondary = replace(base, coverage=replace(base.coverage, order=2), other_coverages=(primary,),
                        prior_adjudications=(PriorPayerAdjudication(primary, D("50"), TODAY - timedelta(days=30)),))
    assert filing(secondary) == []  # 200 days after the visit, 30 after the primary paid
    old = replace(secondary, prior_adjudications=(PriorPayerAdjudication(primary, D("50"), TODAY - timedelta(days=95)),))
    [found] = filing_checks.check_timely_filing(old)
    assert found.code == "filing.deadline_passed" and "primary payer's remittance" in found.message
    # Medicare as the secondary payer keeps 12 months from the date of service
    to_medicare = replace(old, coverage=replace(old.coverage, payer=MEDICARE))
    assert filing(to_medicare) == []


def test_appeal_windows_by_kind_and_level():
    windows = FilingWindows.of(MappingSet())
    medicare = windows.window("appeal", payer_id="00431", filing_indicator="MB")
    assert medicare.last_day(date(2026, 12, 1)) == date(2026, 12, 1) + timedelta(days=120)
    commercial = windows.window("appeal", payer_id="87726", filing_indicator="12")
    assert commercial.last_day(date(2026, 12, 1)) == date(2026, 12, 1) + timedelta(days=180)
    second = windows.window("second_appeal", payer_id="00431", filing_indicator="MB")
    assert (second.length, second.anchor) == (180, "appeal_decision")


def test_a_mistyped_window_table_is_refused_naming_every_problem(tmp_path):
    context = practice(tmp_path, {"rules/filing_windows.toml": """
[payer."1"]
orignal = { within = "90 days", from = "service_date" }
appeal = { within = "ninety days", from = "remittance" }
[payer."2"]
replacement = { within = "90 days", from = "primary_remittance" }
kind = "medicaide"
"""})
    with pytest.raises(MappingError) as raised:
        FilingWindows.of(context.mappings)
    text = str(raised.value)
    for part in ("did you mean 'original'", "ninety days", "cannot start a replacement window",
                 "'medicaide' is not a [kind.NAME]"):
        assert part in text


def test_the_shipped_table_is_sound_and_every_kind_names_its_indicators():
    from bhhub.remittance.deadlines import table_problems

    table = MappingSet().load("rules/filing_windows.toml")
    assert table_problems(table) == []
    assert {"MA", "MB", "MC", "CI"} <= {i for k in table["kind"].values() for i in k["claim_filing_indicators"]}


# ---- in the store: replacements and posted denials --------------------------------------------

def _sent(hub, tmp_path, seeds, **bundle) -> dict[str, schema.Claim]:
    for seed in seeds:
        assert intake.receive(hub, json.dumps(encounter_bundle(seed, **bundle)).encode(), f"e{seed}.json").outcome \
            == "imported"
    export_837p(hub, tmp_path / "batch.x12")
    with hub.store.session() as session:
        rows = session.scalars(select(schema.Claim).order_by(schema.Claim.id)).all()
        for row in rows:
            row.status = "submitted"
        session.commit()
        return {r.patient_control_number: claim_info(session, r) for r in rows}


def test_a_medicare_visit_five_months_old_is_ready_to_bill_and_a_commercial_one_is_not(hub):
    for seed in (6, 1):  # 6: Medicare Part B (MB); 1: commercial
        intake.receive(hub, json.dumps(encounter_bundle(seed, start=date(2026, 6, 1))).encode(), f"e{seed}.json")
    with hub.store.session() as session:
        found = {session.get(schema.Coverage, c.coverage_id).payer.payer_id: (c.status, {f.code for f in c.findings})
                 for c in session.scalars(select(schema.Claim))}
    assert "filing.deadline_passed" not in found["00431"][1]
    assert found["87726"][0] == "needs_attention" and "filing.deadline_passed" in found["87726"][1]


def test_a_replacement_is_judged_from_the_payers_remittance_not_the_visit(hub, tmp_path, monkeypatch):
    sent = _sent(hub, tmp_path, [1])  # commercial, seen 2026-10-09
    [(pcn, info)] = sent.items()
    remit = Remit("TRACE9", "20261125").claim(pcn, info, "4", lines=[[("CO", "16", c)] for _, c, _ in info["lines"]])
    assert intake.receive(hub, remit.bytes(1), "remit.835").outcome == "imported"
    with hub.store.session() as session:
        original = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == pcn)).one()
        new = create_replacement(session, original, as_billed=True)
        session.commit()
        corrected = claim_record(session, new)

    def on(day: date) -> list[tuple[str, Severity]]:
        monkeypatch.setattr(core_common, "today", lambda: day)
        return filing(corrected, hub)

    # from the visit (2026-10-09) 90 days ended 2027-01-07; from the remittance they end 2027-02-23
    assert on(date(2027, 2, 1)) == []
    assert on(date(2027, 2, 20)) == [("filing.deadline_near", Severity.WARNING)]
    assert on(date(2027, 3, 1)) == [("filing.deadline_passed", Severity.ERROR)]
    [late] = filing_checks.check_timely_filing(corrected, hub)
    assert "2026-11-25" in late.message and "2027-02-23" in late.message


def test_a_denied_medicare_claim_gets_the_redetermination_window_and_a_commercial_one_the_default(hub, tmp_path):
    sent = _sent(hub, tmp_path, [6, 1])  # Medicare Part B, commercial
    for n, (pcn, info) in enumerate(sent.items(), start=1):  # each payer its own 835
        remit = Remit(f"TRACE{n}", "20261201").claim(pcn, info, "4", lines=[[("CO", "50", c)] for _, c, _ in info["lines"]])
        content = remit.bytes(n).replace(f"*12*ICN{pcn}".encode(), f"*MB*ICN{pcn}".encode()) \
            if _payer_of(hub, pcn) == "00431" else remit.bytes(n)
        assert intake.receive(hub, content, "remit.835").outcome == "imported"
    with hub.store.session() as session:
        deadlines = {_payer_of(hub, session.get(schema.Claim, d.claim_id).patient_control_number): d.deadline
                     for d in session.scalars(select(schema.Denial)) if d.action == "appeal"}
    assert deadlines == {"00431": date(2026, 12, 1) + timedelta(days=120),
                         "87726": date(2026, 12, 1) + timedelta(days=180)}


def _payer_of(hub, pcn: str) -> str:
    with hub.store.session() as session:
        row = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == pcn)).first()
        return session.get(schema.Coverage, row.coverage_id).payer.payer_id


# ---- the denial worklist: every next step judged against the claim's own window ---------------

def _denied(hub, tmp_path, seed: int, reason: str, remark: str | None = None, *, on: str = "20261125",
            **bundle) -> tuple[str, dict]:
    """One claim sent, then denied on every line with CO-``reason`` (and RARC ``remark`` on the
    last line) by its own payer's 835 dated ``on``; returns its pcn and claim_info."""
    [(pcn, info)] = _sent(hub, tmp_path, [seed], **bundle).items()
    remit = Remit("TRACE29", on).claim(pcn, info, "4", lines=[[("CO", reason, c)] for _, c, _ in info["lines"]])
    if remark:
        remit.body.append(f"LQ*HE*{remark}")  # 2110 LQ follows the last line's CAS
    content = remit.bytes(1)
    if _payer_of(hub, pcn) == "00431":
        content = content.replace(f"*12*ICN{pcn}".encode(), f"*MB*ICN{pcn}".encode())  # CLP06: Medicare Part B
    assert intake.receive(hub, content, "denied.835").outcome == "imported"
    return pcn, info


def _worklist(capsys, hub_home) -> list[dict]:
    capsys.readouterr()
    assert main(["--home", str(hub_home), "denials", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(("reason", "remark", "action"), [
    ("29", None, "appeal"),                 # appeal with proof, or send it again
    ("29", "N211", "resubmit_with_info"),   # no appeal rights: send it again
    ("286", None, "appeal"),                # the appeal window from the remittance is still open
])
def test_a_medicare_claim_denied_as_late_while_still_fileable_is_sent_again_not_written_off(
        hub, hub_home, tmp_path, capsys, monkeypatch, reason, remark, action):
    # Seen in summer 2026: Medicare takes it for 12 months, though the payer's 835 of 2026-11-25
    # says the time limit has expired; "today" is 2026-11-29.
    _, info = _denied(hub, tmp_path, 6, reason, remark, start=date(2026, 6, 1))
    seen = min(day for _, _, day in info["lines"])
    assert seen < date(2026, 8, 1)  # long past any commercial 90 days
    last_line = max(_worklist(capsys, hub_home), key=lambda d: d["line"])
    last_day = {"29": add_months(seen, 12), "286": date(2026, 11, 25) + timedelta(days=120)}[reason].isoformat()
    assert last_line["action"] == action
    assert last_line["deadline"] == last_day and f"Last day: {last_day}" in last_line["next_step"]
    assert "write the amount off" not in last_line["next_step"]

    # The day after the window closed, the same denial is written off.
    monkeypatch.setenv("BHHUB_TODAY", (date.fromisoformat(last_day) + timedelta(days=1)).isoformat())
    last_line = max(_worklist(capsys, hub_home), key=lambda d: d["line"])
    assert last_line["action"] == "write_off" and last_line["deadline"] is None
    assert f"closed on {last_day}" in last_line["next_step"]


def test_a_commercial_claim_denied_as_late_after_its_90_days_is_written_off(hub, hub_home, tmp_path, capsys,
                                                                          monkeypatch):
    # seen 2026-10-09: the commercial 90 days end 2027-01-07
    [(pcn, info)] = _sent(hub, tmp_path, [1]).items()
    monkeypatch.setenv("BHHUB_TODAY", "2027-02-01")  # the 835 arrives after the window
    remit = Remit("TRACE30", "20270201").claim(pcn, info, "4", lines=[[("CO", "29", c)] for _, c, _ in info["lines"]])
    assert intake.receive(hub, remit.bytes(1), "late.835").outcome == "imported"
    worklist = _worklist(capsys, hub_home)
    assert {d["action"] for d in worklist} == {"write_off"}
    assert all("closed on 2027-01-07" in d["next_step"] for d in worklist)
    with hub.store.session() as session:  # decided when posted, not only when shown
        assert {d.action for d in session.scalars(select(schema.Denial))} == {"write_off"}


def test_a_correction_asked_for_by_a_denial_shows_its_last_day_from_the_remittance(hub, hub_home, tmp_path, capsys):
    _denied(hub, tmp_path, 1, "4", "N519")  # commercial, modifier missing: a corrected claim
    worklist = _worklist(capsys, hub_home)
    assert {d["action"] for d in worklist} == {"corrected_claim"}
    last_day = (date(2026, 11, 25) + timedelta(days=90)).isoformat()  # default replacement window
    assert {d["deadline"] for d in worklist} == {last_day}
    assert all(f"Last day: {last_day} (90 days from the payer's remittance" in d["next_step"] for d in worklist)
    capsys.readouterr()
    assert main(["--home", str(hub_home), "denials"]) == 0
    text = capsys.readouterr().out
    assert f"{last_day}  " in text and f"Last day: {last_day}" in text


def test_a_medicare_correction_gets_medicares_reopening_year(hub, hub_home, tmp_path, capsys):
    _denied(hub, tmp_path, 6, "4", start=date(2026, 6, 1))
    assert {d["deadline"] for d in _worklist(capsys, hub_home)} == {"2027-11-25"}  # 12 months from the 835


def test_a_voided_claim_leaves_the_denial_worklist(hub, hub_home, tmp_path, capsys):
    pcn, _ = _denied(hub, tmp_path, 1, "50")  # medical necessity: appeal
    assert {d["action"] for d in _worklist(capsys, hub_home)} == {"appeal"}
    capsys.readouterr()
    assert main(["--home", str(hub_home), "followup", "void", pcn]) == 0
    assert _worklist(capsys, hub_home) == []
    capsys.readouterr()
    assert main(["--home", str(hub_home), "denials", "--all", "--json"]) == 0
    closed = json.loads(capsys.readouterr().out)
    assert closed and all(d["status"] == "resolved" and "voided" in d["resolution"] for d in closed)


def test_accounts_receivable_is_dated_by_the_hubs_clock(hub, hub_home, capsys, monkeypatch):
    monkeypatch.setenv("BHHUB_TODAY", "2027-03-01")
    capsys.readouterr()
    assert main(["--home", str(hub_home), "ar", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["as_of"] == "2027-03-01"
