"""What a payer's 271 says reaches the claims it concerns, as a biller meets it through `bhhub`.

Each test imports the practice's visits (synthetic FHIR bundles from ``hub.demo.synthetic``:
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

import hub.cli.main as cli_main
from hub.app import Hub
from hub.demo.synthetic import encounter_bundle
from hub.store import schema

PAYER, MEMBER, MRN = "87726", "M00000004", "MRN0000004"  # seed 4: a 90837 on 2026-10-16
CLAIM_DATE = date(2026, 10, 16)
PLAN_ACTIVE = "EB*1*IND*30*PR*GOLD PPO"


def a_271(*loops: str, member: str = MEMBER, asked: date = CLAIM_DATE, refusal: str | None = None,
          interchange: int = 201) -> str:
    """A 271 about ``member``: 2100C with the date asked about (DTP*291), then ``refusal`` (an AAA
    reject reason at 2100C) or the 2110C benefit loops given (segments separated by "~")."""
    body = [
        "BHT*0022*11*271REF*20261129*1015", "HL*1**20*1", f"NM1*PR*2*ACME HEALTH PLAN*****PI*{PAYER}",
        "HL*2*1*21*1", "NM1*1P*2*SAMPLE BEHAVIORAL HEALTH*****XX*1234567893", "HL*3*2*22*0",
        f"TRN*2*PAYER{interchange}*9ACMEHEALT", f"NM1*IL*1*DOE*JANE****MI*{member}",
    ]
    if refusal:
        body.append(f"AAA*N**{refusal}*C")
    body.append(f"DTP*291*D8*{asked:%Y%m%d}")
    for loop in loops:
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
