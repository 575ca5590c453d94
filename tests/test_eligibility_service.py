"""Eligibility through the hub, as a biller uses it: `bhhub eligibility check | list | sweep`.

Through the CLI with a temporary hub home on SQLite and PostgreSQL. The practice's visits are
synthetic FHIR bundles (``bhhub.demo.synthetic``): seed 4 is a subscriber of payer 87726 (member
M00000004, a 90837 on 2026-10-16), seed 2 a child on a parent's plan with the same payer, seed 3
another payer. The payers' answers are the 271 fixtures in tests/fixtures/x12/271/, read with
``read_271``, with the fixture's payer id, member id and trace number replaced by this
practice's: a payer-portal plugin registered in the test hands them back, or they arrive
through `bhhub intake` as a clearinghouse mailbox would deliver them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

import bhhub.cli.main as cli_main
from bhhub import hookimpl
from bhhub.runtime.app import Hub
from bhhub.demo.synthetic import encounter_bundle
from bhhub.eligibility.x271 import read_271
from bhhub.errors import RetriableError
from bhhub.runtime.plugin_host import build_plugin_host
from bhhub.store import schema
from sandbox_support import sandbox_mailbox

FIXTURES = Path(__file__).parent / "fixtures" / "x12" / "271"
PAYER, MEMBER, MRN = "87726", "M00000004", "MRN0000004"  # seed 4, a subscriber
CHILD_MRN = "MRN0000002"  # seed 2, a dependent on a parent's plan with payer 87726
CLAIM_DATE = "2026-10-16"
MAILBOX = """
[mailboxes.clearinghouse]
profile = "generic"
host = "127.0.0.1"
port = 9
username = "practice"
password_env = "NO_SUCH_PASSWORD"
known_hosts = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"]
"""


def fixture_271(name: str, *, trace: str | None = None, member: str = MEMBER, **replace: str) -> str:
    """A 271 fixture addressed to this practice: payer 60054 -> 87726, the fixture's member id ->
    ``member``, its first trace number -> ``trace``, then any other ``replace`` (old=new)."""
    text = (FIXTURES / f"{name}.x12").read_text()
    text = text.replace("PI*60054", f"PI*{PAYER}")
    for fixture_member in ("ZQX10000101", "ZQX20000200", "ZQX40000400"):
        text = text.replace(fixture_member, member)
    if trace:
        for fixture_trace in ("ELIG-0001", "ELIG-0002", "ELIG-0007"):
            text = text.replace(f"TRN*2*{fixture_trace}*", f"TRN*2*{trace}*")
    for old, new in replace.items():
        text = text.replace(old.replace("_", "*"), new.replace("_", "*"))
    return text


def covered():
    """The commercial plan: active, $30 psychotherapy copay, 8 of 20 visits left. Its one benefit
    needing an authorization is for 90838 here (the fixture's is for 90837, seed 4's code)."""
    return read_271(fixture_271("commercial-psychotherapy", **{"HC:90837": "HC:90838"}))[0]


def ended_on_october_15():
    """Coverage terminated (EB*6) with an eligibility end date before the claim's visit."""
    return read_271(fixture_271("dependents", DTP_357_D8_20261031="DTP_357_D8_20261015"))[1]


class Portal:
    """A payer-portal plugin answering for payer 87726 with whatever the test sets."""

    def __init__(self):
        self.answer = covered()
        self.error: Exception | None = None
        self.asked: list[tuple[str, str]] = []

    @hookimpl
    def bhhub_check_eligibility(self, patient, coverage, service_date, service_types):
        if coverage.payer.payer_id != PAYER:
            return None
        self.asked.append((coverage.member_id, str(service_date)))
        if self.error is not None:
            raise self.error
        return self.answer


@pytest.fixture
def home(hub_home, tmp_path, capsys) -> Path:
    for seed in (4, 2, 3):
        (tmp_path / f"visit-{seed}.json").write_text(json.dumps(encounter_bundle(seed)), encoding="utf-8")
    assert bhhub(hub_home, "intake", *(str(tmp_path / f"visit-{s}.json") for s in (4, 2, 3))) == 0
    capsys.readouterr()
    return hub_home


@pytest.fixture
def portal(monkeypatch) -> Portal:
    plugin = Portal()
    monkeypatch.setattr(cli_main, "build_plugin_host", lambda: build_plugin_host(extra=[("test_portal", plugin)]))
    return plugin


def with_mailbox(home: Path) -> None:
    with (home / "bhhub.toml").open("a", encoding="utf-8") as config:
        config.write(MAILBOX)


def bhhub(home: Path, *argv: str) -> int:
    return cli_main.main(["--home", str(home), *argv])


def run_json(home: Path, capsys, *argv: str, code: int = 0):
    assert bhhub(home, *argv, "--json") == code
    return json.loads(capsys.readouterr().out)


def claim_of(home: Path, capsys, member: str = MEMBER) -> dict:
    listed = run_json(home, capsys, "claims")
    return next(c for c in listed if c["member_id"] == member)


def open_alerts(home: Path) -> dict[str, str]:
    with Hub.open(home) as hub, hub.store.session() as session:
        return {a.key: a.message for a in session.scalars(select(schema.Alert).where(schema.Alert.cleared_at.is_(None)))}


def count(home: Path, table) -> int:
    with Hub.open(home) as hub, hub.store.session() as session:
        return session.scalar(select(func.count()).select_from(table))


# --- a payer portal answers at once -----------------------------------------------------------------


def test_a_portal_answer_is_stored_at_once_and_listed_with_its_benefits(home, portal, capsys):
    checked = run_json(home, capsys, "eligibility", "check", "--patient", MRN, "--date", "2026-11-30")
    assert (checked["state"], checked["source"], checked["active"]) == ("answered", "portal:test_portal", True)
    assert portal.asked == [(MEMBER, "2026-11-30")]

    [listed] = run_json(home, capsys, "eligibility", "list")
    assert (listed["member_id"], listed["payer_id"], listed["active"]) == (MEMBER, PAYER, True)
    assert listed["checked_at"] and listed["service_date"] == "2026-11-30"
    psychotherapy = listed["benefits"]["A6"]
    assert (psychotherapy["copay"], psychotherapy["coinsurance"]) == (30.0, None)  # money: numbers
    assert (psychotherapy["visits_allowed"], psychotherapy["visits_remaining"]) == (20, 8)
    assert psychotherapy["auth_required"] is False
    deductible = listed["benefits"]["30"]
    assert (deductible["deductible"], deductible["deductible_remaining"]) == (1500, 750)
    assert listed["benefits"]["CF"]["auth_required"] is True
    # The patient is found by the hub's id (as `bhhub claims --json` shows it) as well as by chart
    # number; a stranger is not.
    assert claim_of(home, capsys)["patient_id"] == listed["patient_id"]
    assert len(run_json(home, capsys, "eligibility", "list", "--patient", str(listed["patient_id"]))) == 1
    assert bhhub(home, "eligibility", "list", "--patient", "MRN9999999") == 2


def test_an_answer_that_ends_coverage_alerts_and_holds_the_ready_claim_until_coverage_is_back(home, portal, capsys,
                                                                                                 caplog):
    caplog.set_level("INFO", logger="hub")
    assert claim_of(home, capsys)["status"] == "ready"
    first = run_json(home, capsys, "eligibility", "check", "--patient", MRN, "--date", CLAIM_DATE)
    assert first["effects"]["raised"] == [] and open_alerts(home) == {}

    portal.answer = ended_on_october_15()
    ended = run_json(home, capsys, "eligibility", "check", "--patient", MRN, "--date", CLAIM_DATE)
    assert ended["active"] is False and ended["effects"]["raised"] == ["inactive"]
    [changed] = ended["effects"]["rescrubbed"]["changed"]
    assert (changed["from"], changed["to"]) == ("ready", "needs_attention")
    claim = claim_of(home, capsys)
    assert claim["status"] == "needs_attention"
    [finding] = [f for f in claim["findings"] if f["code"] == "eligibility.inactive"]
    assert finding["severity"] == "error" and f"coverage inactive on {CLAIM_DATE}" in finding["message"]
    [(key, message)] = open_alerts(home).items()
    assert key.startswith(f"eligibility_inactive:payer:{PAYER}:patient:")
    assert MEMBER not in message and "coverage is inactive" in message  # ids and the payer only

    portal.answer = covered()
    back = run_json(home, capsys, "eligibility", "check", "--patient", MRN, "--date", CLAIM_DATE)
    assert back["effects"]["cleared"] == ["inactive"]
    assert claim_of(home, capsys)["status"] == "ready" and open_alerts(home) == {}
    assert len(run_json(home, capsys, "eligibility", "list", "--patient", MRN)) == 3  # history, never overwritten
    assert "eligibility check" in caplog.text and "alert raised" in caplog.text
    assert MEMBER not in caplog.text and MRN not in caplog.text  # ids of the hub's own rows only


def test_a_portal_that_times_out_is_a_failed_check_with_the_reason_and_changes_nothing(home, portal, capsys):
    portal.error = RetriableError("payer portal 87726 timed out after 3 attempts")
    failed = run_json(home, capsys, "eligibility", "check", "--patient", MRN, code=1)
    assert failed["state"] == "failed" and "test_portal" in failed["error"] and "timed out" in failed["error"]
    assert claim_of(home, capsys)["status"] == "ready" and open_alerts(home) == {}


def test_a_portal_that_does_not_find_the_subscriber_holds_their_claim_until_it_answers(home, portal, capsys):
    portal.answer = read_271(fixture_271("subscriber-not-found"))[0]  # AAA 75 at 2100C
    refused = run_json(home, capsys, "eligibility", "check", "--patient", MRN, "--date", CLAIM_DATE, code=1)
    assert refused["state"] == "failed" and "(75)" in refused["error"]
    assert refused["effects"]["raised"] == ["rejected"]
    claim = claim_of(home, capsys)
    assert claim["status"] == "needs_attention"
    [finding] = [f for f in claim["findings"] if f["code"] == "eligibility.identity"]
    assert "member id, name and date of birth" in finding["fix"]

    portal.answer = covered()
    back = run_json(home, capsys, "eligibility", "check", "--patient", MRN, "--date", CLAIM_DATE)
    assert back["effects"]["cleared"] == ["rejected"]
    assert claim_of(home, capsys)["status"] == "ready" and open_alerts(home) == {}


def test_with_no_portal_and_no_mailbox_the_check_says_how_to_set_one_up(home, capsys):
    assert bhhub(home, "eligibility", "check", "--patient", MRN) == 1
    err = capsys.readouterr().err
    assert "no payer-portal plugin serves it and no clearinghouse mailbox is configured" in err
    assert "[mailboxes.NAME]" in err and "Traceback" not in err
    assert count(home, schema.EligibilityCheck) == 0


# --- a 270 through the mailbox, its 271 through intake -----------------------------------------------


def test_a_queued_270_is_answered_by_the_271_given_to_intake_and_a_second_copy_changes_nothing(home, tmp_path, capsys):
    with_mailbox(home)
    queued = run_json(home, capsys, "eligibility", "check", "--patient", MRN, "--date", CLAIM_DATE)
    assert (queued["state"], queued["source"]) == ("requested", "x12") and queued["batch_id"]
    with Hub.open(home) as hub, hub.store.session() as session:
        batch = session.get(schema.Batch, queued["batch_id"])
        assert batch.kind == "270" and f"TRN*1*{queued['trace_number']}*".encode() in batch.content

    answer = tmp_path / "answer.271"
    answer.write_text(fixture_271("commercial-psychotherapy", trace=queued["trace_number"]))
    assert bhhub(home, "intake", str(answer)) == 0
    assert "271: 1 answered" in capsys.readouterr().out
    [listed] = run_json(home, capsys, "eligibility", "list")
    assert (listed["id"], listed["state"], listed["active"]) == (queued["id"], "answered", True)
    assert listed["benefits"]["A6"]["visits_remaining"] == 8 and listed["inbox_item_id"]

    # The same answer again, in an envelope of its own (another ISA13): kept in the inbox, no new check.
    again = tmp_path / "again.271"
    again.write_text(answer.read_text().replace("000000101", "000000102"))
    assert bhhub(home, "intake", str(again)) == 0
    assert "1 repeat" in capsys.readouterr().out
    assert count(home, schema.EligibilityCheck) == 1


def test_a_dependent_is_asked_about_under_the_subscriber(home, capsys):
    with_mailbox(home)
    queued = run_json(home, capsys, "eligibility", "check", "--patient", CHILD_MRN)
    with Hub.open(home) as hub, hub.store.session() as session:
        content = session.get(schema.Batch, queued["batch_id"]).content.decode()
    assert "*23*0~" in content and "NM1*03*1*" in content  # a 2000D loop with the patient
    assert "NM1*IL*1*" in content and "MI*M00000002" in content  # the subscriber, by the plan's member id


def test_a_271_nobody_asked_for_is_kept_under_its_member(home, tmp_path, capsys):
    unsolicited = tmp_path / "payer-sent.271"
    unsolicited.write_text(fixture_271("commercial-psychotherapy"))
    assert bhhub(home, "intake", str(unsolicited)) == 0
    assert "271: 1 unsolicited" in capsys.readouterr().out
    [kept] = run_json(home, capsys, "eligibility", "list", "--patient", MRN)
    assert (kept["source"], kept["reason"], kept["state"], kept["active"]) == ("x12", "unsolicited", "answered", True)

    # A member the hub does not know: kept, with no patient; a refusal about one: kept as failed.
    stranger = tmp_path / "stranger.271"
    stranger.write_text(fixture_271("commercial-psychotherapy", member="ZZ404").replace("000000101", "000000103"))
    nobody = tmp_path / "nobody.271"
    nobody.write_text(fixture_271("subscriber-not-found"))
    assert bhhub(home, "intake", str(stranger), str(nobody)) == 0
    capsys.readouterr()
    listed = run_json(home, capsys, "eligibility", "list")
    assert sorted((c["patient_id"] is None, c["state"]) for c in listed) == [
        (False, "answered"), (True, "answered"), (True, "failed"), (True, "failed")]


def test_a_refused_request_fails_the_question_with_the_payers_reason(home, tmp_path, capsys):
    with_mailbox(home)
    queued = run_json(home, capsys, "eligibility", "check", "--patient", MRN)
    refused = tmp_path / "refused.271"
    refused.write_text(fixture_271("payer-unable-to-respond").replace("TRN*2*ELIG-0006*", f"TRN*2*{queued['trace_number']}*"))
    assert bhhub(home, "intake", str(refused)) == 0
    assert "271: 1 refused" in capsys.readouterr().out
    [check] = run_json(home, capsys, "eligibility", "list")
    assert (check["id"], check["state"], check["active"]) == (queued["id"], "failed", None)
    assert "(42)" in check["error"]  # unable to respond at current time
    assert claim_of(home, capsys)["status"] == "ready"


# --- the sweep ----------------------------------------------------------------------------------------


def book(home: Path, mrn: str, day: str, status: str = "booked") -> None:
    from datetime import date

    with Hub.open(home) as hub, hub.store.session() as session:
        patient = session.scalar(select(schema.Patient).where(schema.Patient.key.like(f"%|{mrn}")))
        item = session.scalar(select(schema.InboxItem.id).limit(1))
        session.add(schema.Appointment(key=f"test|appointment|{mrn}|{day}", patient_key=patient.key,
                                       patient_id=patient.id, service_date=date.fromisoformat(day), status=status,
                                       inbox_item_id=item))
        session.commit()


def test_the_sweep_asks_once_per_member_about_appointments_and_unsent_claims_and_not_again(home, portal, capsys):
    book(home, MRN, "2026-12-02")
    book(home, MRN, "2026-12-03")  # the same member twice: one question
    book(home, CHILD_MRN, "2027-01-15")  # beyond the week ahead: only its unsent claim brings it in
    first = run_json(home, capsys, "eligibility", "sweep")
    assert (first["appointments"], first["claims"]) == (2, 3)
    by_member = {(c["payer_id"], c["member_id"]): c for c in first["checks"]}
    assert len(first["checks"]) == 3 and len(by_member) == 3
    assert by_member[(PAYER, MEMBER)]["service_date"] == "2026-12-02"  # the appointment's day
    assert first["states"] == {"answered": 2, "not_asked": 1}  # payer 77027 has no portal and no mailbox
    assert sorted(portal.asked) == [("M00000002", "2026-10-04"), (MEMBER, "2026-12-02")]

    second = run_json(home, capsys, "eligibility", "sweep")
    assert second["asked"] == 1 and second["states"] == {"not_asked": 1}  # only the one never answered
    assert len(portal.asked) == 2


def test_a_portal_that_answers_garbage_or_crashes_is_a_failed_check_naming_it(home, portal, capsys):
    portal.answer = {"active": True}  # the hook's old shape: not an EligibilityResponse
    garbage = run_json(home, capsys, "eligibility", "check", "--patient", MRN, code=1)
    assert "returned dict, not an EligibilityResponse" in garbage["error"]
    portal.error = KeyError("coverage")
    crashed = run_json(home, capsys, "eligibility", "check", "--patient", MRN, code=1)
    assert "'test_portal' crashed (KeyError)" in crashed["error"]
    assert claim_of(home, capsys)["status"] == "ready"


def test_a_payer_no_portal_serves_goes_to_the_mailbox(home, portal, capsys):
    with_mailbox(home)
    queued = run_json(home, capsys, "eligibility", "check", "--patient", "MRN0000003")  # payer 77027
    assert (queued["state"], queued["source"], queued["payer_id"]) == ("requested", "x12", "77027")
    assert portal.asked == []


def test_the_daily_job_with_no_way_to_ask_is_one_alert(home, capsys):
    from bhhub.exchange.runner import _eligibility_sweep

    with Hub.open(home) as hub:
        _eligibility_sweep(hub)
        _eligibility_sweep(hub)
    [(key, message)] = open_alerts(home).items()
    assert key == "eligibility_no_route" and "could not ask about 3 member(s)" in message
    with_mailbox(home)
    with Hub.open(home) as hub:
        _eligibility_sweep(hub)  # now a 270 is queued; asked recently from then on
    assert open_alerts(home) == {} and count(home, schema.EligibilityCheck) == 3


# --- end to end: schedule, sweep, the sandbox clearinghouse's 271, the visit's claim ------------------

HL7 = Path(__file__).parent / "fixtures" / "hl7v2"
PRACTICE = """
[practices.SUNRISE_BH]
npi = "1234567893"
organization_name = "Sunrise Behavioral Health"
tin = "123456789"
[practices.SUNRISE_BH.address]
line1 = "100 Main Street"
city = "Springfield"
state = "IL"
postal_code = "627011234"
"""


def casey(name: str, **replace: str) -> bytes:
    """An HL7 fixture about Casey (MRN20004), insured by the sandbox's payer 87726 as a member
    whose coverage ended (the sandbox answers SBXENDED* as inactive, last covered 2026-06-30)."""
    text = (HL7 / name).read_text().replace("62308", PAYER).replace("C0011223344", "SBXENDED0001")
    for old, new in replace.items():
        text = text.replace(old, new)
    return text.encode()


def test_the_sweep_over_booked_appointments_runs_through_the_sandbox_and_the_ended_coverage_holds_the_visit(
        tmp_path, capsys, monkeypatch):
    pytest.importorskip("pyx12")
    from datetime import date

    from bhhub.plugins.clearinghouse.sandbox import SandboxClearinghouse

    sandbox = SandboxClearinghouse(tmp_path / "sandbox", today=date(2026, 11, 30)).start()
    try:
        home = tmp_path / "home"
        (home / "mappings" / "ehr").mkdir(parents=True)
        (home / "mappings" / "ehr" / "practices.toml").write_text(PRACTICE, encoding="utf-8")
        (home / "bhhub.toml").write_text('[eligibility]\nprovider_npi = "1234567893"\n' + sandbox_mailbox(sandbox),
                                         encoding="utf-8")
        (tmp_path / "visit-4.json").write_text(json.dumps(encounter_bundle(4)), encoding="utf-8")  # a known patient
        (tmp_path / "casey.adt").write_bytes(casey("adt-a04-v251.hl7"))  # registered, not yet seen
        (tmp_path / "casey.siu").write_bytes(casey("siu-s12-v251.hl7"))  # booked for 2026-12-10
        assert bhhub(home, "intake", *(str(tmp_path / n) for n in ("visit-4.json", "casey.adt", "casey.siu"))) == 0
        capsys.readouterr()

        swept = run_json(home, capsys, "eligibility", "sweep", "--days", "14")
        assert (swept["appointments"], swept["states"]) == (1, {"requested": 2})  # Casey's visit, seed 4's claim
        casey_check = next(c for c in swept["checks"] if c["member_id"] == "SBXENDED0001")
        assert casey_check["service_date"] == "2026-12-10"

        for _ in range(3):  # the 270 goes up; the sandbox's 999 and 271 come down (maybe a cycle later)
            assert bhhub(home, "exchange") == 0
            capsys.readouterr()
            answered = {c["member_id"]: c for c in run_json(home, capsys, "eligibility", "list")}
            if answered["SBXENDED0001"]["state"] != "requested":
                break
        assert (answered["SBXENDED0001"]["state"], answered["SBXENDED0001"]["active"]) == ("answered", False)
        assert (answered[MEMBER]["state"], answered[MEMBER]["active"]) == ("answered", True)
        assert [k for k in open_alerts(home) if k.startswith("eligibility_inactive")]
        assert run_json(home, capsys, "eligibility", "sweep", "--days", "14")["asked"] == 0  # asked recently

        # Casey comes anyway; the visit's charge arrives the day after.
        monkeypatch.setenv("BHHUB_TODAY", "2026-12-11")
        (tmp_path / "casey.dft").write_bytes(casey("dft-p03-after-adt.hl7", **{"20261105": "20261210"}))
        assert bhhub(home, "intake", str(tmp_path / "casey.dft")) == 0
        capsys.readouterr()
        [claim] = [c for c in run_json(home, capsys, "claims") if c["member_id"] == "SBXENDED0001"]
        assert claim["status"] == "needs_attention"
        assert "eligibility.inactive" in {f["code"] for f in claim["findings"]}
    finally:
        sandbox.stop()


def test_a_question_the_270_cannot_carry_is_named_and_the_others_still_go(home, tmp_path, capsys):
    # Casey is booked but has never been billed; the practice named for such patients is a
    # clinician with no tax id, which a 270's trace (TRN03) needs.
    with Hub.open(home) as hub, hub.store.session() as session:
        clinician = session.scalar(select(schema.Provider.npi).where(schema.Provider.tin.is_(None)).limit(1))
    with (home / "bhhub.toml").open("a", encoding="utf-8") as config:
        config.write(f'[eligibility]\nprovider_npi = "{clinician}"\n' + MAILBOX)
    (tmp_path / "casey.adt").write_bytes(casey("adt-a04-v251.hl7"))
    (tmp_path / "casey.siu").write_bytes(casey("siu-s12-v251.hl7"))
    assert bhhub(home, "intake", str(tmp_path / "casey.adt"), str(tmp_path / "casey.siu")) == 0
    capsys.readouterr()

    assert bhhub(home, "eligibility", "check", "--patient", "MRN20004") == 1
    assert "tax id" in capsys.readouterr().err

    swept = run_json(home, capsys, "eligibility", "sweep", "--days", "14")
    states = {c["member_id"]: c["state"] for c in swept["checks"]}
    assert states.pop("SBXENDED0001") == "unwritable"
    assert set(states.values()) == {"requested"} and len(states) == 3  # the three billed members, one 270
    assert len({c["batch_id"] for c in swept["checks"] if c["state"] == "requested"}) == 1
    assert count(home, schema.EligibilityCheck) == 3


def test_the_exchange_asks_about_claims_it_is_about_to_batch_and_a_portal_answer_holds_one_in_time(
        home, portal, capsys):
    with_mailbox(home)  # a mailbox nobody answers: the exchange fails after the check, as it may
    portal.answer = ended_on_october_15()
    assert claim_of(home, capsys)["status"] == "ready"
    bhhub(home, "exchange")
    capsys.readouterr()
    # each ready claim's member with this portal's payer, about its visit (seed 2 is a child on a plan)
    assert sorted(portal.asked) == [("M00000002", "2026-10-04"), (MEMBER, CLAIM_DATE)]
    held = claim_of(home, capsys)
    assert held["status"] == "needs_attention"
    assert "eligibility.inactive" in {f["code"] for f in held["findings"]}
    [check] = [c for c in run_json(home, capsys, "eligibility", "list") if c["member_id"] == MEMBER]
    assert check["reason"] == "before_batch"
    bhhub(home, "exchange")  # asked recently: not again
    capsys.readouterr()
    assert len(portal.asked) == 2


def test_checking_before_the_batch_can_be_turned_off(home, portal, capsys):
    with_mailbox(home)
    (home / "mappings" / "rules").mkdir(parents=True, exist_ok=True)
    (home / "mappings" / "rules" / "eligibility.toml").write_text("[sweep]\ncheck_before_batch = false\n")
    bhhub(home, "exchange")
    capsys.readouterr()
    assert portal.asked == []
