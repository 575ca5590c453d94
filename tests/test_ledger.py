"""The authorization ledger and the credentialing gate: what a payer authorized, what the claims
that went out used, and whether the rendering provider may bill that payer on that day.

Claims come in through the inbox from synthetic FHIR bundles re-pointed at one member, or are
built as canonical claims for the check functions. The practice's rules are a file in the hub
home (``mappings/rules/authorization.toml``), as a practice would write them.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from bhhub.intake import inbox as intake
from bhhub.cli import ledger as ledger_cli
from bhhub.errors import InputError, UsageError
from bhhub.ledger import authorization_uses
from bhhub.ledger import authorizations as ledger
from bhhub.ledger import credentialing
from bhhub.ledger.credentialing import EnrollmentFacts
from bhhub.model import Address, Claim, Coverage, Patient, Payer, PersonName, Provider, ServiceLine
from bhhub.runtime.plugin_host import build_plugin_host
from bhhub.scrub import ledger_checks
from bhhub.store import schema
from ledger_support import add_authorization, revise, visit_bundle

PAYER, MEMBER = "AUTHPLAN", "M0000SHARED"
CLINICIAN = "1234567893"  # passes the check digit; identifies no one
OTHER_CLINICIAN = "1245319599"
TODAY = date.today()
# Recent dates of service, so no claim passes its timely-filing limit whenever the tests run.
START = TODAY - timedelta(days=40)

RULES = f"""
[warnings]
visits_remaining = 1
days_before_end = 7

[payers.{PAYER}]
requires_authorization = []   # every code

[payers.LIMITPLAN]
[payers.LIMITPLAN.session_limit]
visits = 2
plan_year_start = "01-01"
visits_remaining = 0
"""


@pytest.fixture
def ledgered(hub):
    """The hub with the practice's authorization rules and the ledger checks plugged in."""
    rules = hub.settings.mappings_dir / "rules"
    rules.mkdir(parents=True)
    (rules / "authorization.toml").write_text(RULES, encoding="utf-8")
    host = build_plugin_host()
    if "ledger_checks" not in host.infos:  # until the entry point is in pyproject.toml
        host = build_plugin_host(extra=[("ledger_checks", ledger_checks)])
    return replace(hub, given_plugins=host)


# --- building claims ---------------------------------------------------------------------------


def receive(hub, seed: int, day: date, *, payer: str = PAYER, member: str = MEMBER) -> schema.Claim:
    """Synthetic encounter ``seed`` moved to ``day``, for one shared member of ``payer``, taken in."""
    bundle = visit_bundle(seed, day, payer=payer, member=member)
    assert intake.receive(hub, bundle, f"visit-{seed}.json").outcome == "imported"
    with hub.store.session() as session:
        encounter = session.scalar(select(schema.Encounter).where(schema.Encounter.source_ref == f"Encounter/enc-{seed}"))
        claim = session.scalar(select(schema.Claim).where(schema.Claim.encounter_id == encounter.id))
        claim.findings, claim.lines  # loaded while the session is open
        return claim


def send(hub, claim: schema.Claim) -> None:
    """What batching does for the ledger: record the claim's uses as it goes out."""
    with hub.store.session() as session:
        row = session.get(schema.Claim, claim.id)
        row.status = "submitted"
        authorization_uses.consume(session, row)
        session.commit()


def codes(claim: schema.Claim) -> set[str]:
    return {f.code for f in claim.findings}


def authorize(hub, visits: int, *, start: date = START, end: date = START + timedelta(days=120), **kw) -> int:
    return add_authorization(hub, payer_id=kw.pop("payer_id", PAYER), member_id=kw.pop("member_id", MEMBER),
                             number=kw.pop("number", "AUTH-1"), quantity=visits, start=start, end=end, **kw)


def canonical(day: date, *, code: str = "90837", npi: str = CLINICIAN, number: str | None = None,
              payer: str = PAYER, member: str = MEMBER, pcn: str = "BHTEST0001", units: int = 1) -> Claim:
    address = Address("1 Sample St", "Springfield", "IL", "627010001")
    return Claim(
        patient_control_number=pcn,
        patient=Patient(PersonName("Testpatient", "Alpha"), date(1980, 1, 1), "F", address, key="test:1"),
        coverage=Coverage(1, Payer(payer, "SAMPLE PLAN"), member),
        billing_provider=Provider("1234567893", organization_name="SAMPLE PRACTICE", tin="123456789", address=address),
        rendering_provider=Provider(npi, name=PersonName("Clinician", "Test"), taxonomy="1041C0700X"),
        diagnoses=("F33.1",),
        lines=(ServiceLine(code, day, charge=Decimal("150.00"), units=Decimal(units)),),
        place_of_service="11",
        prior_authorization=number,
    )


def ledger_findings(claim: Claim, hub) -> set[str]:
    return {f.code for f in ledger_checks.check_authorizations(claim, hub)}


# --- authorizations ------------------------------------------------------------------------------


def test_a_fifth_visit_on_a_four_visit_authorization_is_blocked(ledgered):
    authorize(ledgered, 4)
    for n, seed in enumerate((5, 8, 3, 11)):
        claim = receive(ledgered, seed, START + timedelta(days=7 * n))
        assert not {c for c in codes(claim) if c.startswith("auth.") and c != "auth.nearly_used"}
        send(ledgered, claim)
    fifth = receive(ledgered, 19, START + timedelta(days=28))
    assert "auth.exhausted" in codes(fifth)
    assert fifth.status == "needs_attention"
    with ledgered.store.session() as session:
        assert authorization_uses.remaining(session, ledger.list_authorizations(session)[0].id) == 0


@pytest.mark.parametrize("authorization, claim, expected", [
    pytest.param({}, {}, set(), id="a_matching_authorization_passes"),
    pytest.param(None, {}, {"auth.missing"}, id="no_authorization_on_file_is_missing"),
    pytest.param({}, {"day": START + timedelta(days=200)}, {"auth.outside_dates"}, id="a_date_after_the_end_is_outside"),
    pytest.param({}, {"day": START - timedelta(days=1)}, {"auth.outside_dates"}, id="a_date_before_the_start_is_outside"),
    pytest.param({"procedure_codes": ["90834"]}, {"code": "90837"}, {"auth.missing"}, id="a_code_not_authorized_is_missing"),
    pytest.param({"procedure_codes": ["90834", "90837"]}, {"code": "90837"}, set(), id="a_code_in_the_set_passes"),
    pytest.param({"rendering_npi": CLINICIAN}, {"npi": OTHER_CLINICIAN}, {"auth.missing"},
                 id="another_clinician_on_a_provider_specific_authorization_is_missing"),
    pytest.param({}, {"number": "AUTH-TYPO"}, {"auth.missing"}, id="a_number_on_the_claim_that_is_not_this_one_is_missing"),
    pytest.param({}, {"number": "auth-1"}, set(), id="the_number_on_the_claim_matches_whatever_its_case"),
    pytest.param({}, {"member": "M0000OTHER"}, {"auth.missing"}, id="another_members_authorization_does_not_count"),
    pytest.param({"unit_type": "units"}, {"units": 5}, {"auth.exhausted"}, id="units_beyond_a_unit_authorization_are_exhausted"),
])
def test_a_line_is_checked_against_the_authorization_that_matches_it(ledgered, authorization, claim, expected):
    if authorization is not None:
        authorize(ledgered, 4, **authorization)
    claim = dict(claim)  # shared by both backends
    found = ledger_findings(canonical(claim.pop("day", START + timedelta(days=10)), **claim), ledgered)
    assert found - {"auth.nearly_used"} == expected


def test_a_payer_that_requires_no_authorization_is_not_checked(ledgered):
    assert ledger_findings(canonical(START, payer="87726"), ledgered) == set()


def test_without_a_hub_the_ledger_checks_find_nothing():
    assert ledger_checks.check_authorizations(canonical(START), None) == []
    assert ledger_checks.check_credentialing(canonical(START), None) == []


@pytest.mark.parametrize("visits, end_after_service, warned", [
    (10, 60, False),  # 9 left, 60 days to go: neither
    (2, 60, True),    # 1 left after this visit: the visits come first
    (10, 5, True),    # 9 left but it ends in 5 days: the days come first
    (3, 8, False),    # 2 left and 8 days: neither threshold (1 visit, 7 days) reached
    (3, 7, True),     # exactly 7 days before the end
])
def test_the_warning_comes_n_visits_or_n_days_before_the_end_whichever_first(ledgered, visits, end_after_service, warned):
    day = START + timedelta(days=10)
    authorize(ledgered, visits, end=day + timedelta(days=end_after_service))
    found = ledger_findings(canonical(day), ledgered)
    assert ("auth.nearly_used" in found) is warned
    assert "auth.exhausted" not in found


@pytest.mark.parametrize("carc, given_back", [("197", True), ("CO-198", True), ("15", True), ("45", False), ("96", False)])
def test_a_visit_denied_co_197_is_given_back(ledgered, carc, given_back):
    auth_id = authorize(ledgered, 1)
    claim = receive(ledgered, 5, START + timedelta(days=3))
    send(ledgered, claim)
    with ledgered.store.session() as session:
        assert authorization_uses.remaining(session, auth_id) == 0
        released = authorization_uses.release_for_denial(session, claim.id, 1, carc)
        session.commit()
        assert (released == 1) is given_back
        assert authorization_uses.remaining(session, auth_id) == (1 if given_back else 0)
    later = receive(ledgered, 8, START + timedelta(days=10))
    assert ("auth.exhausted" in codes(later)) is not given_back


def test_a_claim_going_out_twice_uses_its_visit_once_and_a_replacement_takes_its_place(ledgered):
    auth_id = authorize(ledgered, 1)
    claim = receive(ledgered, 5, START + timedelta(days=3))
    send(ledgered, claim)
    send(ledgered, claim)
    with ledgered.store.session() as session:
        assert authorization_uses.remaining(session, auth_id) == 0
    replacement_id = revise(ledgered, claim.id, "7")
    # The check leaves out the claim's own earlier revision: the replacement is not "a second visit".
    billed = canonical(claim.service_date, pcn=claim.patient_control_number, npi=OTHER_CLINICIAN)
    assert "auth.exhausted" not in ledger_findings(billed, ledgered)
    with ledgered.store.session() as session:
        authorization_uses.consume(session, session.get(schema.Claim, replacement_id))
        session.commit()
        uses = session.scalars(select(schema.AuthorizationUse).order_by(schema.AuthorizationUse.id)).all()
        assert [(u.claim_id, u.released_at is not None) for u in uses] == [(claim.id, True), (replacement_id, False)]
        assert uses[0].release_reason == "replaced by revision 1"
        assert authorization_uses.remaining(session, auth_id) == 0


def test_an_authorization_is_refused_with_every_problem_named(hub):
    with hub.store.session() as session, pytest.raises(InputError) as caught:
        ledger.add(session, payer_id=PAYER, member_id=MEMBER, number="A1", quantity=0, start=START,
                   end=START - timedelta(days=1), rendering_npi="1234567890")
    message = str(caught.value)
    assert "positive" in message and "ends" in message and "check digit" in message


# --- plan-year session limits ---------------------------------------------------------------------


def test_a_plan_year_session_limit_counts_the_members_other_claims_and_blocks_the_one_over(ledgered):
    plan_start = TODAY - timedelta(days=30)
    if (plan_start.month, plan_start.day) == (2, 29):
        plan_start += timedelta(days=1)
    rules = ledgered.settings.mappings_dir / "rules" / "authorization.toml"
    rules.write_text(RULES.replace('"01-01"', f'"{plan_start:%m-%d}"'), encoding="utf-8")
    last_year = receive(ledgered, 3, plan_start - timedelta(days=5), payer="LIMITPLAN")
    first = receive(ledgered, 5, plan_start + timedelta(days=5), payer="LIMITPLAN")
    second = receive(ledgered, 8, plan_start + timedelta(days=15), payer="LIMITPLAN")
    third = receive(ledgered, 11, plan_start + timedelta(days=25), payer="LIMITPLAN")
    assert "limit.exceeded" not in codes(last_year) | codes(first) | codes(second)
    assert "limit.nearly_reached" not in codes(first)
    assert "limit.nearly_reached" in codes(second)  # the last covered visit
    assert "limit.exceeded" in codes(third)
    assert third.status == "needs_attention"


# --- credentialing ----------------------------------------------------------------------------------


def enroll(hub, status: str, effective: date | None = None, end: date | None = None, *, in_network: bool = True) -> None:
    with hub.store.session() as session:
        credentialing.add(session, EnrollmentFacts(CLINICIAN, PAYER, status, effective, end, in_network))
        session.commit()


@pytest.mark.parametrize("enrollment, expected", [
    pytest.param(("enrolled", START - timedelta(days=30), None), set(), id="enrolled_on_the_day_passes"),
    pytest.param(("enrolled", START + timedelta(days=30), None), {"credentialing.not_enrolled"},
                 id="a_service_before_the_effective_date_is_blocked"),
    pytest.param(("terminated", START - timedelta(days=30), None), {"credentialing.not_enrolled"},
                 id="a_terminated_provider_is_blocked"),
    pytest.param(("pending", None, None), {"credentialing.not_enrolled"}, id="a_pending_enrollment_is_blocked"),
    pytest.param(("not_enrolled", None, None), {"credentialing.not_enrolled"}, id="not_enrolled_is_blocked"),
    pytest.param(("enrolled", None, START - timedelta(days=1)), {"credentialing.not_enrolled"},
                 id="a_service_after_the_enrollment_ended_is_blocked"),
])
def test_a_provider_not_enrolled_with_the_payer_on_the_date_of_service_is_blocked(ledgered, enrollment, expected):
    enroll(ledgered, *enrollment)
    findings = ledger_checks.check_credentialing(canonical(START), ledgered)
    assert {f.code for f in findings} == expected
    assert all(f.severity == "error" for f in findings)


def test_an_out_of_network_provider_is_only_a_warning(ledgered):
    enroll(ledgered, "enrolled", START - timedelta(days=30), in_network=False)
    findings = ledger_checks.check_credentialing(canonical(START), ledgered)
    assert [(f.code, f.severity) for f in findings] == [("credentialing.out_of_network", "warning")]


def test_an_unknown_provider_payer_pair_is_only_a_warning(ledgered):
    enroll(ledgered, "enrolled", START - timedelta(days=30))  # the registry knows another pair
    claim = receive(ledgered, 5, START, payer="87726")  # no authorization rules for this payer
    assert claim.status == "ready"
    assert [(f.code, f.severity) for f in claim.findings if f.code.startswith("credentialing")] == [
        ("credentialing.unknown", "warning")]


def test_a_practice_that_keeps_no_registry_is_not_warned_on_every_claim(ledgered):
    claim = receive(ledgered, 5, START, payer="87726")
    assert claim.status == "ready"
    assert not [f for f in claim.findings if f.code.startswith("credentialing")]


def test_an_enrollment_file_with_bad_rows_names_each_line_and_imports_nothing(hub, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("npi,payer_id,status,effective,end,in_network,era,eft,reattestation_due\n"
                   f"{CLINICIAN},87726,enrolled,2025-01-01,,yes,yes,no,\n"
                   "1234567890,87726,enrolled,2025-01-01,,yes,no,no,\n"  # check digit
                   f"{CLINICIAN},00431,active,2025-13-01,,maybe,no,no,\n", encoding="utf-8")
    with hub.store.session() as session:
        with pytest.raises(InputError) as caught:
            credentialing.import_csv(session, bad)
        assert credentialing.list_enrollments(session) == []
    message = str(caught.value)
    assert "line 3: NPI '1234567890'" in message
    assert "line 4:" in message and "'active'" in message and "2025-13-01" in message and "'maybe'" in message
    assert "line 2" not in message

    good = tmp_path / "good.csv"
    good.write_text("npi,payer_id,status,effective\n"
                    f"{CLINICIAN},87726,enrolled,2025-01-01\n{CLINICIAN},00431,pending,\n", encoding="utf-8")
    with hub.store.session() as session:
        assert credentialing.import_csv(session, good) == {"added": 2, "updated": 0}
        assert credentialing.import_csv(session, good) == {"added": 0, "updated": 2}
        session.commit()
        assert [(r.payer_id, r.status) for r in credentialing.list_enrollments(session)] == [
            ("00431", "pending"), ("87726", "enrolled")]


def test_an_enrollment_file_with_an_unknown_header_is_refused(hub, tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("provider,payer,status\n1,2,enrolled\n", encoding="utf-8")
    with hub.store.session() as session, pytest.raises(InputError, match="missing npi, payer_id"):
        credentialing.import_csv(session, path)


def test_an_expiring_enrollment_raises_one_alert_and_clears_when_renewed(hub):
    today = date(2026, 11, 1)
    enroll(hub, "enrolled", date(2025, 1, 1), today + timedelta(days=10))
    with hub.store.session() as session:
        credentialing.add(session, EnrollmentFacts(OTHER_CLINICIAN, PAYER, "enrolled", date(2025, 1, 1),
                                                   today + timedelta(days=90), reattestation_due=today + timedelta(days=5)))
        session.commit()
    key = f"enrollment_expiring:{CLINICIAN}:{PAYER}"
    for _ in range(2):
        with hub.store.session() as session:
            credentialing.check_expirations(session, today, days=30)
            session.commit()
    with hub.store.session() as session:
        alerts = session.scalars(select(schema.Alert).order_by(schema.Alert.key)).all()
        assert [(a.key, a.occurrences) for a in alerts] == [(key, 2), (f"reattestation_due:{OTHER_CLINICIAN}", 2)]
    enroll(hub, "enrolled", date(2025, 1, 1), today + timedelta(days=400))  # renewed: same row, new end
    with hub.store.session() as session:
        assert credentialing.check_expirations(session, today, days=30) == []
        session.commit()
        open_keys = {a.key for a in session.scalars(select(schema.Alert).where(schema.Alert.cleared_at.is_(None)))}
    assert open_keys == {f"reattestation_due:{OTHER_CLINICIAN}"}


# --- the commands ------------------------------------------------------------------------------------


def run(hub_home, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home")
    ledger_cli.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["--home", str(hub_home), *argv])
    return args.func(args)


def describe_payers(hub_home, *payer_ids: str) -> None:
    """The practice describes payers before any claim for them came in (``<home>/mappings/payers.toml``)."""
    mappings = hub_home / "mappings"
    mappings.mkdir(exist_ok=True)
    (mappings / "payers.toml").write_text("".join(f'[payer."{p}"]\nname = "PLAN {p}"\n' for p in payer_ids),
                                          encoding="utf-8")


def test_auth_commands_add_list_and_void_and_audit_each(hub, hub_home, capsys):
    describe_payers(hub_home, PAYER)
    assert run(hub_home, "auth", "add", "--payer", PAYER, "--member", MEMBER, "--number", "A-77", "--visits", "4",
               "--cpt", "90834,90837", "--from", "2026-10-01", "--to", "2026-12-31", "--npi", CLINICIAN) == 0
    capsys.readouterr()
    assert run(hub_home, "auth", "list", "--json") == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["number"], listed["authorized"], listed["used"], listed["remaining"]) == ("A-77", 4, 0, 4)
    assert listed["procedure_codes"] == ["90834", "90837"]
    assert run(hub_home, "auth", "void", str(listed["id"])) == 0
    capsys.readouterr()
    assert run(hub_home, "auth", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []
    with pytest.raises(UsageError, match="--from must be a date"):
        run(hub_home, "auth", "add", "--payer", PAYER, "--member", MEMBER, "--number", "A-78", "--visits", "4",
            "--from", "10/01/2026", "--to", "2026-12-31")
    with pytest.raises(UsageError, match="no authorization 999"):
        run(hub_home, "auth", "void", "999")
    with hub.store.session() as session:
        actions = [e.action for e in session.scalars(select(schema.AuditEvent).order_by(schema.AuditEvent.id))]
    assert actions == ["add_authorization", "list_authorizations", "void_authorization", "list_authorizations"]


@pytest.mark.parametrize(("content", "says"), [
    ("npi,payer_id,status\n", "has a header but no rows"),
    ("npi,payer_id\n1234567893,87726\n", "missing status"),
    ("npi,payer_id,status,tier\n1234567893,87726,enrolled,1\n", "unknown tier"),
    ("npi,payer_id,status\n1234567893,87726,enrolled,extra\n", "line 2: more columns than the header"),
])
def test_an_enrollment_file_that_cannot_be_read_as_a_whole_is_refused_saying_why(hub, tmp_path, content, says):
    path = tmp_path / "enrollments.csv"
    path.write_text(content, encoding="utf-8")
    with hub.store.session() as session, pytest.raises(InputError, match=says):
        credentialing.import_csv(session, path)


def test_credentialing_commands_import_add_and_list(hub, hub_home, tmp_path, capsys):
    describe_payers(hub_home, "87726")
    path = tmp_path / "enrollments.csv"
    path.write_text(f"npi,payer_id,status,effective,end,in_network,era,eft,reattestation_due\n"
                    f"{CLINICIAN},87726,enrolled,2025-01-01,,no,yes,yes,2026-12-01\n", encoding="utf-8")
    assert run(hub_home, "credentialing", "import", str(path)) == 0
    assert run(hub_home, "credentialing", "add", "--npi", OTHER_CLINICIAN, "--payer", "87726", "--status", "pending") == 0
    capsys.readouterr()
    assert run(hub_home, "credentialing", "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(e["npi"], e["status"], e["in_network"], e["era"], e["reattestation_due"]) for e in listed] == [
        (CLINICIAN, "enrolled", False, True, "2026-12-01"), (OTHER_CLINICIAN, "pending", True, False, None)]
    with pytest.raises(UsageError, match="check digit"):  # the request itself is wrong: exit code 2
        run(hub_home, "credentialing", "add", "--npi", "1234567890", "--payer", "87726", "--status", "enrolled")


# --- a request wrong in itself: exit code 2, nothing recorded ------------------------------------


def bhhub(hub_home, *argv: str) -> tuple[int, str]:
    """The whole command line (``bhhub.cli.main``): its exit code and standard error."""
    import contextlib
    import io

    from bhhub.cli.main import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--home", str(hub_home), *argv])
    return code, err.getvalue()


AUTH = ["auth", "add", "--payer", PAYER, "--member", MEMBER, "--number", "A-1"]


@pytest.mark.parametrize(("argv", "says"), [
    ([*AUTH, "--visits", "4", "--from", "2026-12-31", "--to", "2026-10-01"], "ends (2026-10-01) before it starts"),
    ([*AUTH, "--visits", "-3", "--from", "2026-10-01", "--to", "2026-12-31"], "must be positive"),
    ([*AUTH, "--visits", "4", "--from", "20261001", "--to", "2026-12-31"], "--from must be a date written YYYY-MM-DD"),
    ([*AUTH, "--visits", "inf", "--from", "2026-10-01", "--to", "2026-12-31"], "must be a finite number"),
    ([*AUTH, "--visits", "nan", "--from", "2026-10-01", "--to", "2026-12-31"], "must be a finite number"),
    ([*AUTH, "--units", "1e400", "--from", "2026-10-01", "--to", "2026-12-31"], "must be below 1,000,000"),
    ([*AUTH, "--visits", "1.5", "--from", "2026-10-01", "--to", "2026-12-31"], "visits are counted whole"),
    ([*AUTH, "--units", "0.0005", "--from", "2026-10-01", "--to", "2026-12-31"], "kept to a thousandth"),
    ([*AUTH, "--visits", "twelve", "--from", "2026-10-01", "--to", "2026-12-31"], "--visits 'twelve' is not a number"),
    (["auth", "add", "--payer", "NOSUCHPLAN", "--member", MEMBER, "--number", "A-1", "--visits", "4",
      "--from", "2026-10-01", "--to", "2026-12-31"], "'NOSUCHPLAN' is no payer the hub knows (known: AUTHPLAN)"),
    (["credentialing", "add", "--npi", CLINICIAN, "--payer", PAYER, "--status", "enrolled",
      "--effective", "2026-10-01", "--end", "2026-01-01"], "ends (2026-01-01) before it is effective"),
    (["credentialing", "add", "--npi", CLINICIAN, "--payer", "NOSUCHPLAN", "--status", "enrolled"],
     "[payer.\"NOSUCHPLAN\"] table to <home>/mappings/payers.toml"),
])
def test_an_authorization_or_enrollment_wrong_in_itself_is_a_usage_error(hub, hub_home, argv, says):
    describe_payers(hub_home, PAYER)
    code, err = bhhub(hub_home, *argv)
    assert code == 2 and says in err and err.count("\n") == 1, err
    with hub.store.session() as session:
        assert ledger.list_authorizations(session, include_void=True) == []
        assert credentialing.list_enrollments(session) == []


@pytest.mark.parametrize("quantity", [Decimal("Infinity"), Decimal("NaN"), Decimal("2.5"), float("inf")])
def test_the_ledger_itself_refuses_a_count_that_is_not_a_whole_finite_visit(hub, quantity):
    # a grant from a plugin reaches ledger.add without the CLI's parser
    with hub.store.session() as session, pytest.raises(InputError, match="finite|whole"):
        ledger.add(session, payer_id=PAYER, member_id=MEMBER, number="A-9", quantity=quantity,
                   start=date(2026, 10, 1), end=date(2026, 12, 31))


def test_part_units_stay_allowed(hub):
    with hub.store.session() as session:
        row = ledger.add(session, payer_id=PAYER, member_id=MEMBER, number="A-9", quantity=Decimal("1.5"),
                         unit_type="units", start=date(2026, 10, 1), end=date(2026, 12, 31))
        assert row.quantity == Decimal("1.5")


@pytest.mark.parametrize("stored", [Decimal("Infinity"), Decimal("-Infinity"), Decimal("NaN"), float("inf")])
def test_a_count_that_is_not_finite_is_shown_as_it_is_not_a_traceback(stored):
    from bhhub.cli.output import count

    shown = count(stored)
    assert isinstance(shown, float) and str(shown) == str(float(stored))


def test_the_same_authorization_twice_and_a_second_void_are_usage_errors(hub, hub_home):
    describe_payers(hub_home, PAYER)
    good = [*AUTH, "--visits", "4", "--from", "2026-10-01", "--to", "2026-12-31"]
    assert bhhub(hub_home, *good) == (0, "")
    code, err = bhhub(hub_home, *good)
    assert code == 2 and "already on file as 1" in err
    assert bhhub(hub_home, "auth", "void", "1") == (0, "")
    code, err = bhhub(hub_home, "auth", "void", "1")
    assert code == 2 and "void already" in err


def test_an_imported_row_for_a_payer_the_hub_does_not_know_imports_nothing(hub, hub_home, tmp_path):
    describe_payers(hub_home, PAYER)
    auths = tmp_path / "auths.csv"
    auths.write_text("payer_id,member_id,number,quantity,start,end\n"
                     f"{PAYER},{MEMBER},A-1,4,2026-10-01,2026-12-31\n"
                     f"NOSUCHPLAN,{MEMBER},A-2,4,2026-10-01,2026-12-31\n", encoding="utf-8")
    code, err = bhhub(hub_home, "auth", "import", str(auths))
    assert code == 1 and "line 3: payer 'NOSUCHPLAN' is no payer the hub knows" in err and "line 2" not in err
    enrollments = tmp_path / "enrollments.csv"
    enrollments.write_text(f"npi,payer_id,status\n{CLINICIAN},{PAYER},enrolled\n{CLINICIAN},NOSUCHPLAN,enrolled\n",
                           encoding="utf-8")
    code, err = bhhub(hub_home, "credentialing", "import", str(enrollments))
    assert code == 1 and "line 3: payer 'NOSUCHPLAN' is no payer the hub knows" in err
    with hub.store.session() as session:
        assert ledger.list_authorizations(session) == [] and credentialing.list_enrollments(session) == []


def test_counts_in_json_are_integers_not_money(hub, hub_home, capsys):
    describe_payers(hub_home, PAYER)
    assert bhhub(hub_home, *AUTH, "--visits", "5", "--from", "2026-10-01", "--to", "2026-12-31") == (0, "")
    assert bhhub(hub_home, "auth", "add", "--payer", PAYER, "--member", MEMBER, "--number", "A-2", "--units", "1.5",
                 "--from", "2026-10-01", "--to", "2026-12-31") == (0, "")
    capsys.readouterr()
    assert run(hub_home, "auth", "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(a["authorized"], a["used"], a["remaining"]) for a in listed] == [(5, 0, 5), (1.5, 0, 1.5)]
    assert all(type(a["used"]) is int for a in listed) and type(listed[0]["authorized"]) is int


def test_a_payers_benefit_count_that_is_not_finite_is_left_as_the_payer_wrote_it():
    # the same float/Decimal reading as an authorization's count, in `eligibility --json`
    from bhhub.cli.eligibility import _amounts

    shown = _amounts({"visits_allowed": "Infinity", "copay": "NaN", "visits_remaining": "12"})
    assert shown == {"visits_allowed": "Infinity", "copay": "NaN", "visits_remaining": 12}
