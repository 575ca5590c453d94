"""What a payer's 271 says reaches the claims it concerns, as a biller meets it through `bhhub`.

Each test imports the practice's visits (synthetic FHIR bundles from ``bhhub.demo.synthetic``:
seed 4 is member M00000004 of payer 87726, a 90837 at the office on 2026-10-16), then gives
`bhhub intake` a 271 built here the way payers send them (005010X279A1: the payer, the
practice, the subscriber with the date asked about, then the benefit loops or the AAA
refusing the question), and reads the claims and the eligibility listing back. Every test
runs on SQLite and PostgreSQL.

The rules (domain reference 8.3): EB01 I (non-covered) or E (exclusion) on a service type a
claim line falls under (``mappings/rules/eligibility.toml``) holds the claim; an AAA refusing
the question for the member's identity holds the member's claims, naming the field to
correct; an authorization the payer requires under a condition (a visit count, a procedure)
holds only the claims that meet it, and one the hub cannot read is a warning.
"""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

import bhhub.cli.main as cli_main
from bhhub.runtime.app import Hub
from bhhub.demo.synthetic import encounter_bundle
from bhhub.store import schema

PAYER, MEMBER, MRN = "87726", "M00000004", "MRN0000004"  # seed 4: a 90837 on 2026-10-16
CLAIM_DATE = date(2026, 10, 16)
PLAN_ACTIVE = "EB*1*IND*30*PR*GOLD PPO"


def a_271(*loops: str, member: str = MEMBER, asked: date = CLAIM_DATE, refusal: str | None = None,
          interchange: int = 201, made: date = date(2026, 11, 29), subscriber_born: str | None = None,
          dependent: tuple[str, str, tuple[str, ...]] | None = None) -> str:
    """A 271 about ``member``, made by the payer on ``made`` (BHT04): 2100C with the date asked
    about (DTP*291), then ``refusal`` (an AAA reject reason at 2100C) or the 2110C benefit loops
    given (segments separated by "~"); with ``dependent`` (family name, birth date CCYYMMDD,
    loops), a 2000D dependent under the subscriber with their own benefit loops."""
    body = [
        f"BHT*0022*11*271REF*{made:%Y%m%d}*1015", "HL*1**20*1", f"NM1*PR*2*ACME HEALTH PLAN*****PI*{PAYER}",
        "HL*2*1*21*1", "NM1*1P*2*SAMPLE BEHAVIORAL HEALTH*****XX*1234567893", f"HL*3*2*22*{1 if dependent else 0}",
        f"TRN*2*PAYER{interchange}*9ACMEHEALT", f"NM1*IL*1*DOE*JANE****MI*{member}",
    ]
    if subscriber_born:
        body.append(f"DMG*D8*{subscriber_born}")
    if refusal:
        body.append(f"AAA*N**{refusal}*C")
    body.append(f"DTP*291*D8*{asked:%Y%m%d}")
    for loop in loops:
        body += loop.split("~")
    if dependent:
        family, born, dependent_loops = dependent
        body += ["HL*4*3*23*0", f"NM1*03*1*{family}*KIM", f"DMG*D8*{born}", "INS*N*19", f"DTP*291*D8*{asked:%Y%m%d}"]
        for loop in dependent_loops:
            body += loop.split("~")
    control = f"{interchange:09d}"
    segments = [
        f"ISA*00*          *00*          *ZZ*ACMEHEALTH     *ZZ*BHHUBPRACTICE  *261129*1015*^*00501*{control}*0*T*:",
        f"GS*HB*ACMEHEALTH*BHHUBPRACTICE*20261129*1015*{interchange}*X*005010X279A1",
        "ST*271*0001*005010X279A1", *body, f"SE*{len(body) + 2}*0001", f"GE*1*{interchange}", f"IEA*1*{control}",
    ]
    return "~\n".join(segments) + "~\n"


def bhhub(home: Path, *argv: str) -> int:
    return cli_main.main(["--home", str(home), *argv])


def run_json(home: Path, capsys, *argv: str):
    assert bhhub(home, *argv, "--json") == 0
    return json.loads(capsys.readouterr().out)


def give(home: Path, tmp_path: Path, capsys, content: str, name: str = "payer.271") -> str:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert bhhub(home, "intake", str(path)) == 0
    return capsys.readouterr().out


def visit(seed: int = 4, day: date | None = None, key: str = "") -> dict:
    """Seed ``seed``'s visit, moved to ``day`` as a visit of its own (another encounter id)."""
    bundle = encounter_bundle(seed)
    if day is None:
        return bundle
    bundle = copy.deepcopy(bundle)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Encounter":
            resource["id"] = f"enc-{seed}-{key or day.isoformat()}"
            entry["fullUrl"] = entry["fullUrl"].rsplit("/", 1)[0] + "/" + resource["id"]
            resource["period"]["start"] = f"{day.isoformat()}T10:00:00-05:00"
    return bundle


def import_visits(home: Path, tmp_path: Path, capsys, bundles: list[dict]) -> None:
    paths = []
    for n, bundle in enumerate(bundles):
        path = tmp_path / f"visit-{n}.json"
        path.write_text(json.dumps(bundle), encoding="utf-8")
        paths.append(str(path))
    assert bhhub(home, "intake", *paths) == 0
    capsys.readouterr()


@pytest.fixture
def home(hub_home, tmp_path, capsys) -> Path:
    import_visits(hub_home, tmp_path, capsys, [visit(4), visit(3)])  # seed 3: another payer, another member
    return hub_home


def claims(home: Path, capsys, member: str = MEMBER) -> list[dict]:
    return [c for c in run_json(home, capsys, "claims") if c["member_id"] == member]


def the_claim(home: Path, capsys, day: date = CLAIM_DATE) -> dict:
    [claim] = [c for c in claims(home, capsys) if c["service_date"] == day.isoformat()]
    return claim


def codes(claim: dict) -> dict[str, str]:
    return {f["code"]: f["severity"] for f in claim["findings"]}


def open_alerts(home: Path) -> dict[str, str]:
    with Hub.open(home) as hub, hub.store.session() as session:
        return {a.key: a.message for a in session.scalars(select(schema.Alert).where(schema.Alert.cleared_at.is_(None)))}


# --- (a) a service the plan does not cover ------------------------------------------------------------


def test_mental_health_not_covered_holds_the_claim_and_the_summary_says_so(home, tmp_path, capsys):
    assert the_claim(home, capsys)["status"] == "ready"
    out = give(home, tmp_path, capsys, a_271(PLAN_ACTIVE, "EB*I*IND*MH^A6^CF", "EB*1*IND*98"))
    assert "not covered" in out  # the intake line names what changed

    claim = the_claim(home, capsys)
    assert claim["status"] == "needs_attention"
    [finding] = [f for f in claim["findings"] if f["code"] == "eligibility.not_covered"]
    assert finding["severity"] == "error" and "90837" in finding["message"] and "not covered" in finding["message"]
    assert finding["fix"] and MEMBER not in finding["message"]
    seed_3 = [c for c in run_json(home, capsys, "claims") if c["member_id"] != MEMBER]
    assert [c["status"] for c in seed_3] == ["ready"]  # another member's claim is not touched

    [check] = run_json(home, capsys, "eligibility", "list")
    assert check["active"] is True  # the plan is active ...
    summary = check["mental_health"]
    assert summary["active"] is False  # ... mental health is not
    assert {n["service_type"] for n in summary["not_covered"]} == {"MH", "A6", "CF"}
    assert bhhub(home, "eligibility", "list") == 0
    listing = capsys.readouterr().out
    row = next(line for line in listing.splitlines() if MEMBER in line)
    assert "NOT COVERED" in row and " yes " not in row
    [(key, message)] = open_alerts(home).items()
    assert key.startswith(f"eligibility_not_covered:payer:{PAYER}:patient:") and MEMBER not in message


def test_an_exclusion_of_psychotherapy_holds_the_claim(home, tmp_path, capsys):
    give(home, tmp_path, capsys, a_271(PLAN_ACTIVE, "EB*E*IND*A6~MSG*PSYCHOTHERAPY EXCLUDED FROM THIS PLAN"))
    claim = the_claim(home, capsys)
    assert claim["status"] == "needs_attention" and codes(claim)["eligibility.not_covered"] == "error"


@pytest.mark.parametrize("loops", [
    ("EB*1*IND*30^MH^A6", "EB*I*IND*33"),  # chiropractic is not covered; mental health is
    ("EB*1*IND*30^MH^A6", "EB*I*IND*BD"),  # cognitive therapy is not covered: not what a 90837 is
    ("EB*1*IND*30^MH^A6", "EB*I*IND*A6*********N"),  # psychotherapy out of network only; the practice bills in network
    ("EB*1*IND*30^MH^A6", "EB*I*IND*A6**********HC:90791"),  # only the diagnostic evaluation
    ("EB*1*IND*30^MH^A6", "EB*I*IND*MH~III*ZZ*21"),  # only in an inpatient hospital; the visit was at the office
], ids=["chiropractic", "cognitive-therapy", "out-of-network", "another-procedure", "another-place"])
def test_mental_health_covered_and_only_something_else_not_covered_stays_ready(home, tmp_path, capsys, loops):
    give(home, tmp_path, capsys, a_271(*loops))
    claim = the_claim(home, capsys)
    assert claim["status"] == "ready" and not [c for c in codes(claim) if c.startswith("eligibility.")]
    [check] = run_json(home, capsys, "eligibility", "list")
    assert check["mental_health"]["active"] is True


def test_a_procedure_the_plan_does_not_cover_holds_that_procedures_claim(home, tmp_path, capsys):
    give(home, tmp_path, capsys, a_271("EB*1*IND*30^MH^A6", "EB*I*IND*A6**********HC:90837"))
    claim = the_claim(home, capsys)
    assert claim["status"] == "needs_attention" and codes(claim)["eligibility.not_covered"] == "error"


def test_covered_again_releases_the_claim_and_clears_the_alert(home, tmp_path, capsys):
    give(home, tmp_path, capsys, a_271(PLAN_ACTIVE, "EB*I*IND*MH^A6^CF"), "first.271")
    assert the_claim(home, capsys)["status"] == "needs_attention"
    give(home, tmp_path, capsys, a_271("EB*1*IND*30^MH^A6", "EB*B*IND*A6***27*30****N*Y", interchange=202),
         "second.271")
    assert the_claim(home, capsys)["status"] == "ready" and open_alerts(home) == {}


def test_an_answer_both_covering_and_not_covering_psychotherapy_is_a_warning(home, tmp_path, capsys):
    give(home, tmp_path, capsys, a_271("EB*1*IND*30^MH^A6", "EB*I*IND*A6~MSG*COUPLES THERAPY"))
    claim = the_claim(home, capsys)
    assert claim["status"] == "ready" and codes(claim)["eligibility.not_covered"] == "warning"


# --- (b) the payer refused the question ------------------------------------------------------------


@pytest.mark.parametrize("reason, field", [
    ("72", "member id"), ("75", "member id"), ("73", "name"), ("58", "date of birth"), ("71", "date of birth"),
])
def test_a_refusal_for_the_members_identity_holds_their_claims_naming_the_field(home, tmp_path, capsys, reason,
                                                                                 field):
    out = give(home, tmp_path, capsys, a_271(refusal=reason))
    assert "271: 1 refused" in out
    claim = the_claim(home, capsys)
    assert claim["status"] == "needs_attention"
    [finding] = [f for f in claim["findings"] if f["code"] == "eligibility.identity"]
    assert finding["severity"] == "error" and f"({reason})" in finding["message"]
    assert field in finding["fix"] and MEMBER not in finding["message"] + finding["fix"]
    other = [c for c in run_json(home, capsys, "claims") if c["member_id"] != MEMBER]
    assert [c["status"] for c in other] == ["ready"]
    [(key, message)] = open_alerts(home).items()
    assert key.startswith("eligibility_rejected:") and MEMBER not in message


@pytest.mark.parametrize("reason", ["42", "79", "80"])
def test_a_payer_that_cannot_answer_now_says_nothing_about_the_claim(home, tmp_path, capsys, reason):
    give(home, tmp_path, capsys, a_271(refusal=reason))
    claim = the_claim(home, capsys)
    assert claim["status"] == "ready" and not [c for c in codes(claim) if c.startswith("eligibility.")]
    assert open_alerts(home) == {}


def test_a_refusal_about_the_provider_is_a_warning(home, tmp_path, capsys):
    give(home, tmp_path, capsys, a_271(refusal="43"))  # invalid or missing provider identification
    claim = the_claim(home, capsys)
    assert claim["status"] == "ready" and codes(claim)["eligibility.rejected"] == "warning"


def test_an_answer_after_the_refusal_releases_the_claims(home, tmp_path, capsys):
    give(home, tmp_path, capsys, a_271(refusal="72"), "refused.271")
    assert the_claim(home, capsys)["status"] == "needs_attention"
    give(home, tmp_path, capsys, a_271("EB*1*IND*30^MH^A6", interchange=202), "answered.271")
    assert the_claim(home, capsys)["status"] == "ready" and open_alerts(home) == {}


def test_a_refusal_of_the_hubs_own_question_holds_the_claim(home, tmp_path, capsys):
    with (home / "bhhub.toml").open("a", encoding="utf-8") as config:
        config.write('\n[mailboxes.clearinghouse]\nprofile = "generic"\nhost = "127.0.0.1"\nport = 9\n'
                     'username = "practice"\npassword_env = "NO_SUCH_PASSWORD"\nknown_hosts = ["ssh-ed25519 '
                     'AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"]\n')
    queued = run_json(home, capsys, "eligibility", "check", "--patient", MRN, "--date", CLAIM_DATE.isoformat())
    answer = a_271(refusal="75").replace("TRN*2*PAYER201*", f"TRN*2*{queued['trace_number']}*")
    assert "271: 1 refused" in give(home, tmp_path, capsys, answer)
    [check] = run_json(home, capsys, "eligibility", "list")
    assert (check["id"], check["state"]) == (queued["id"], "failed")
    assert the_claim(home, capsys)["status"] == "needs_attention"


# --- (c) an authorization required under a condition -------------------------------------------------


def visits_before(n: int) -> list[dict]:
    """``n`` earlier visits of seed 4's member, two days apart from 2026-09-02 (within the payer's
    filing limit, so each is a ready claim of its own)."""
    return [visit(4, date(2026, 9, 2) + timedelta(days=2 * k)) for k in range(n)]


@pytest.mark.parametrize("message", [
    "VISITS OVER 20 REQUIRE AUTHORIZATION",
    "PRIOR AUTHORIZATION REQUIRED AFTER 20 VISITS PER CALENDAR YEAR",
    "AUTHORIZATION REQUIRED AFTER THE 20TH VISIT",
    "NO PRIOR AUTHORIZATION REQUIRED FOR THE FIRST 20 VISITS",
])
def test_visits_over_the_threshold_need_an_authorization_and_those_before_do_not(home, tmp_path, capsys, message):
    import_visits(home, tmp_path, capsys, visits_before(20))
    give(home, tmp_path, capsys, a_271("EB*1*IND*30^MH^A6", f"EB*B*IND*MH***27*30****N*Y~MSG*{message}"))
    member_claims = claims(home, capsys)
    assert len(member_claims) == 21
    held = [c for c in member_claims if c["status"] != "ready"]
    assert [c["service_date"] for c in held] == [CLAIM_DATE.isoformat()]  # the 21st visit only
    assert codes(held[0]) == {"eligibility.auth_required": "error"}
    assert "visit 21" in held[0]["findings"][0]["message"]

    # The authorization the payer gave for it releases it.
    assert bhhub(home, "auth", "add", "--payer", PAYER, "--member", MEMBER, "--number", "A-21", "--visits", "10",
                 "--from", CLAIM_DATE.isoformat(), "--to", "2026-12-31") == 0
    capsys.readouterr()
    assert the_claim(home, capsys)["status"] == "ready"


def test_twelve_visits_used_under_a_limit_of_twenty_stays_ready(home, tmp_path, capsys):
    import_visits(home, tmp_path, capsys, visits_before(11))
    give(home, tmp_path, capsys, a_271("EB*1*IND*30^MH^A6", "EB*B*IND*MH***27*30****N*Y~MSG*VISITS OVER 20 REQUIRE "
                                       "AUTHORIZATION"))
    assert {c["status"] for c in claims(home, capsys)} == {"ready"}
    [check] = run_json(home, capsys, "eligibility", "list")
    assert check["mental_health"]["auth_required"] is not True  # not "required" without its condition
    assert open_alerts(home) == {}


def test_a_visit_in_a_new_calendar_year_starts_counting_again(home, tmp_path, capsys):
    # 20 visits last year; this is the first of 2026.
    earlier = [visit(4, date(2025, 6, 2) + timedelta(days=7 * k)) for k in range(20)]
    import_visits(home, tmp_path, capsys, earlier)
    give(home, tmp_path, capsys, a_271("EB*1*IND*30^MH^A6", "EB*B*IND*MH***27*30****N*Y~MSG*PRIOR AUTHORIZATION "
                                       "REQUIRED AFTER 20 VISITS PER CALENDAR YEAR"))
    assert the_claim(home, capsys)["status"] == "ready"


@pytest.mark.parametrize("message, held", [
    ("PRIOR AUTH REQUIRED FOR 90837", True),
    ("PRIOR AUTH REQUIRED FOR 90834 AND 90838", False),
])
def test_an_authorization_for_one_procedure_holds_only_that_procedure(home, tmp_path, capsys, message, held):
    give(home, tmp_path, capsys, a_271("EB*1*IND*30^MH^A6", f"EB*B*IND*A6***27*30****N*Y~MSG*{message}"))
    claim = the_claim(home, capsys)
    assert (claim["status"] == "needs_attention") is held
    assert ("eligibility.auth_required" in codes(claim)) is held


def test_an_authorization_the_payer_requires_on_the_procedures_benefit_holds_that_procedure(home, tmp_path, capsys):
    # EB13 names the procedure, EB11 says an authorization is required for it (domain reference 8.3).
    give(home, tmp_path, capsys, a_271("EB*1*IND*30^MH^A6", "EB*B*IND*A6***27*30****N*Y",
                                       "EB*B*IND*A6***27*50****Y*Y*HC:90834"))
    assert the_claim(home, capsys)["status"] == "ready"
    give(home, tmp_path, capsys, a_271("EB*1*IND*30^MH^A6", "EB*B*IND*A6***27*30****N*Y",
                                       "EB*B*IND*A6***27*50****Y*Y*HC:90837", interchange=202), "second.271")
    claim = the_claim(home, capsys)
    assert claim["status"] == "needs_attention" and "eligibility.auth_required" in codes(claim)


def test_a_condition_the_hub_cannot_read_is_a_warning_not_a_hold(home, tmp_path, capsys):
    give(home, tmp_path, capsys, a_271("EB*1*IND*30^MH^A6", "EB*B*IND*MH***27*30****N*Y~MSG*PRIOR AUTHORIZATION "
                                       "REQUIRED IF MORE THAN TWO SESSIONS IN ONE WEEK"))
    claim = the_claim(home, capsys)
    assert claim["status"] == "ready" and codes(claim) == {"eligibility.auth_condition": "warning"}
    assert "TWO SESSIONS" in claim["findings"][0]["message"]


def test_an_authorization_required_without_condition_still_holds(home, tmp_path, capsys):
    give(home, tmp_path, capsys, a_271("EB*1*IND*30^MH^A6", "EB*B*IND*MH***27*30****N*Y~MSG*PRIOR AUTHORIZATION "
                                       "REQUIRED FOR OUTPATIENT MENTAL HEALTH"))
    claim = the_claim(home, capsys)
    assert claim["status"] == "needs_attention" and codes(claim) == {"eligibility.auth_required": "error"}


# --- (d) the answer that stands, and whom and what it is about (issue 12 item 9) ----------------------


def child_of_seed_4() -> dict:
    """Seed 4's visit for the subscriber's child: the same member id (no id of their own), a
    2000D dependent in the payer's answer (born 2015-03-03)."""
    text = json.dumps(encounter_bundle(4))
    for old, new in (("pat-4", "pat-4c"), ("enc-4", "enc-4c"), ("cov-4", "cov-4c"), ("cond-4-", "cond-4c-"),
                     ("MRN0000004", "MRN0000004C"), ("1996-01-11", "2015-03-03"), ("Testpatient", "Testchild")):
        text = text.replace(old, new)
    bundle = json.loads(text)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Coverage":
            resource["relationship"]["coding"][0]["code"] = "child"
            resource["subscriber"] = {"reference": "RelatedPerson/sub-4c"}
    bundle["entry"].append({"fullUrl": "https://ehr.example.org/fhir/RelatedPerson/sub-4c", "resource": {
        "resourceType": "RelatedPerson", "id": "sub-4c", "patient": {"reference": "Patient/pat-4c"},
        "name": [{"family": "Testpatient", "given": ["Bravo"]}], "gender": "female", "birthDate": "1996-01-11",
        "address": [{"line": ["9011 Sample St"], "city": "Springfield", "state": "IL", "postalCode": "62705"}]}})
    return bundle


def family_claims(home, capsys) -> dict[str, dict]:
    """The subscriber's and the child's claim of the day."""
    subscribers = the_claim_number(home, capsys)
    return {("subscriber" if c["patient_control_number"] == subscribers else "child"): c for c in claims(home, capsys)}


def the_claim_number(home, capsys) -> str:
    with Hub.open(home) as hub, hub.store.session() as session:
        return session.scalar(select(schema.Claim.patient_control_number).join(schema.Patient)
                              .where(schema.Patient.family_name == "Testpatient"))


@pytest.fixture
def family(home, tmp_path, capsys) -> Path:
    import_visits(home, tmp_path, capsys, [child_of_seed_4()])
    return home


def test_a_dependents_not_covered_holds_only_the_dependents_claim(family, tmp_path, capsys):
    give(family, tmp_path, capsys, a_271(PLAN_ACTIVE, "EB*1*IND*MH^A6", subscriber_born="19960111",
                                         dependent=("TESTCHILD", "20150303", (PLAN_ACTIVE, "EB*I*IND*MH^A6^CF"))))
    claims_ = family_claims(family, capsys)
    assert claims_["subscriber"]["status"] == "ready"
    assert claims_["child"]["status"] == "needs_attention"
    assert codes(claims_["child"]) == {"eligibility.not_covered": "error"}


def test_a_subscriber_only_answer_does_not_hold_the_dependents_claim(family, tmp_path, capsys):
    # 005010X279A1 answers about a dependent without an id of their own in 2000D: a 2000C answer
    # is about the subscriber.
    give(family, tmp_path, capsys, a_271(PLAN_ACTIVE, "EB*I*IND*MH^A6^CF", subscriber_born="19960111"))
    claims_ = family_claims(family, capsys)
    assert claims_["subscriber"]["status"] == "needs_attention"
    assert claims_["child"]["status"] == "ready"


def test_a_subscribers_unknown_member_id_holds_the_whole_familys_claims(family, tmp_path, capsys):
    give(family, tmp_path, capsys, a_271(refusal="72"))
    assert {k: c["status"] for k, c in family_claims(family, capsys).items()} == {
        "subscriber": "needs_attention", "child": "needs_attention"}


def test_an_older_answer_arriving_late_does_not_replace_the_newer_one(home, tmp_path, capsys):
    give(home, tmp_path, capsys, a_271("EB*1*IND*30^MH^A6", made=date(2026, 11, 30), interchange=601), "new.271")
    give(home, tmp_path, capsys, a_271(PLAN_ACTIVE, "EB*I*IND*MH^A6^CF", made=date(2026, 10, 20), interchange=602),
         "old.271")
    assert the_claim(home, capsys)["status"] == "ready"


def test_a_stale_refusal_arriving_late_does_not_hold_the_claim(home, tmp_path, capsys):
    give(home, tmp_path, capsys, a_271("EB*1*IND*30^MH^A6", made=date(2026, 11, 30), interchange=601), "new.271")
    give(home, tmp_path, capsys, a_271(refusal="72", made=date(2026, 10, 15), interchange=602), "old.271")
    assert the_claim(home, capsys)["status"] == "ready"


def test_findings_name_the_payers_own_date_of_the_answer(home, tmp_path, capsys):
    give(home, tmp_path, capsys, a_271(PLAN_ACTIVE, "EB*I*IND*MH^A6^CF", made=date(2026, 10, 20)))
    [finding] = the_claim(home, capsys)["findings"]
    assert "answer of 2026-10-20" in finding["message"]


@pytest.mark.parametrize("loop", [
    "EB*1*IND*30^MH^A6~DTP*291*RD8*20260101-20261015",  # plan dates ended the day before the visit
    "EB*1*IND*30^MH^A6~DTP*357*D8*20261015",  # eligibility end
])
def test_coverage_whose_dates_ended_before_the_visit_holds_the_claim(home, tmp_path, capsys, loop):
    give(home, tmp_path, capsys, a_271(loop))
    claim = the_claim(home, capsys)
    assert codes(claim) == {"eligibility.inactive": "error"}
    assert "not in effect on the date of service" in claim["findings"][0]["message"]
    assert MEMBER not in claim["findings"][0]["message"]


@pytest.mark.parametrize("dates", [
    "DTP*292*RD8*20250101-20251231",  # benefit dates of another year
    "DTP*349*D8*20261015",  # benefit ended the day before
    "DTP*348*D8*20261201",  # benefit begins after the visit
])
def test_a_non_covered_benefit_whose_dates_leave_out_the_visit_does_not_hold_it(home, tmp_path, capsys, dates):
    give(home, tmp_path, capsys, a_271(PLAN_ACTIVE, f"EB*I*IND*MH^A6~{dates}"))
    assert the_claim(home, capsys)["status"] == "ready"


def test_a_non_covered_benefit_whose_dates_include_the_visit_holds_it(home, tmp_path, capsys):
    give(home, tmp_path, capsys, a_271(PLAN_ACTIVE, "EB*I*IND*MH^A6~DTP*292*RD8*20261001-20261231"))
    assert codes(the_claim(home, capsys)) == {"eligibility.not_covered": "error"}


@pytest.mark.parametrize("loop", [
    "EB*B*IND*A6***27*25****Y*Y~DTP*348*D8*20270101",  # required from next year
    "EB*B*IND*A6***27*25****Y*Y~III*ZZ*21",  # required inpatient only
    "EB*B*IND*A6***27*25****Y*N",  # required out of network only
])
def test_an_authorization_the_payer_limits_does_not_hold_a_visit_outside_the_limit(home, tmp_path, capsys, loop):
    give(home, tmp_path, capsys, a_271("EB*1*IND*30^MH^A6", loop))
    assert the_claim(home, capsys)["status"] == "ready"


def test_an_authorization_required_at_the_claims_own_place_holds_it(home, tmp_path, capsys):
    give(home, tmp_path, capsys, a_271("EB*1*IND*30^MH^A6", "EB*B*IND*A6***27*25****Y*Y~III*ZZ*11"))
    assert codes(the_claim(home, capsys)) == {"eligibility.auth_required": "error"}


@pytest.mark.parametrize("loops", [
    (PLAN_ACTIVE, "EB*6*IND*MH^A6"),  # mental health inactive while the plan is active
    ("EB*I*IND*30",),  # the plan as a whole: nothing covered
])
def test_non_coverage_said_other_ways_holds_the_claim(home, tmp_path, capsys, loops):
    give(home, tmp_path, capsys, a_271(*loops))
    assert codes(the_claim(home, capsys)) == {"eligibility.not_covered": "error"}


def test_a_benefit_level_refusal_of_the_member_id_holds_that_benefits_claims(home, tmp_path, capsys):
    give(home, tmp_path, capsys, a_271(PLAN_ACTIVE, "EB*1*IND*MH~AAA*N**72*C"))
    claim = the_claim(home, capsys)
    assert codes(claim) == {"eligibility.identity": "error"}
    assert "mental health (MH)" in claim["findings"][0]["message"] and MEMBER not in claim["findings"][0]["message"]


def test_a_benefit_level_refusal_for_another_reason_is_a_warning(home, tmp_path, capsys):
    give(home, tmp_path, capsys, a_271(PLAN_ACTIVE, "EB*1*IND*MH~AAA*N**57*C"))
    claim = the_claim(home, capsys)
    assert (claim["status"], codes(claim)) == ("ready", {"eligibility.rejected": "warning"})


def test_a_benefit_level_refusal_about_another_service_leaves_the_claim_alone(home, tmp_path, capsys):
    give(home, tmp_path, capsys, a_271(PLAN_ACTIVE, "EB*1*IND*MH", "EB*1*IND*AL~AAA*N**72*C"))
    assert codes(the_claim(home, capsys)) == {}


def test_not_covered_at_the_claims_place_wins_over_covered_in_general(home, tmp_path, capsys):
    give(home, tmp_path, capsys, a_271("EB*1*IND*30^MH^A6", "EB*I*IND*MH^A6~III*ZZ*11"))
    claim = the_claim(home, capsys)
    assert codes(claim) == {"eligibility.not_covered": "error"}
    assert "place of service 11" in claim["findings"][0]["message"]


def test_a_refusal_about_a_day_far_from_the_visit_does_not_hold_it(home, tmp_path, capsys):
    give(home, tmp_path, capsys, a_271(refusal="72", asked=date(2026, 3, 1)))
    assert the_claim(home, capsys)["status"] == "ready"


def test_a_managed_care_coordinator_without_a_related_entity_is_no_carve_out(home, tmp_path, capsys):
    give(home, tmp_path, capsys, a_271(PLAN_ACTIVE, "EB*MC*IND*MH"))
    assert the_claim(home, capsys)["status"] == "ready"
    [check] = run_json(home, capsys, "eligibility", "list")
    assert check["mental_health"]["carve_out"] is None


def test_a_managed_care_coordinator_naming_the_payer_is_a_carve_out(home, tmp_path, capsys):
    give(home, tmp_path, capsys, a_271(PLAN_ACTIVE, "EB*MC*IND*MH~LS*2120~NM1*PR*2*CARVE BH*****PI*55555~LE*2120"))
    assert codes(the_claim(home, capsys)) == {"eligibility.carve_out": "error"}


@pytest.mark.parametrize("message", [
    "VISITS 13 AND ABOVE REQUIRE PRIOR AUTH",
    "PRIOR AUTH REQUIRED FOR 13 OR MORE VISITS",
    "AUTHORIZATION REQUIRED FOR VISITS IN EXCESS OF 12",
    "PRIOR AUTH NEEDED FOR MORE THAN 12 VISITS",
    "PRIOR AUTH REQUIRED AFTER THE 12TH",
])
def test_the_twelfth_visit_is_not_held_by_a_rule_from_the_thirteenth(home, tmp_path, capsys, message):
    import_visits(home, tmp_path, capsys, visits_before(11))
    give(home, tmp_path, capsys, a_271("EB*1*IND*30^MH^A6", f"EB*B*IND*MH***27*30****N*Y~MSG*{message}"))
    assert {c["status"] for c in claims(home, capsys)} == {"ready"}  # visit 12 is the last without one
    import_visits(home, tmp_path, capsys, [visit(4, CLAIM_DATE + timedelta(days=3))])
    thirteenth = the_claim(home, capsys, CLAIM_DATE + timedelta(days=3))
    assert codes(thirteenth) == {"eligibility.auth_required": "error"}
