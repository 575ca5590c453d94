"""A ledger change checks the claims it affects again, in the same command.

Through the CLI with a temporary hub home, as a biller would: the visits of
tests/fixtures/fhir/prior-auth.json (member MEM1008 of payer 87726, clinician 1999999984, on
2026-10-20 and 2026-11-03) are taken in; then an authorization or an enrollment is recorded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bhhub.cli.main import main
from bhhub.demo.synthetic import encounter_bundle

FIXTURE = Path(__file__).parent / "fixtures" / "fhir" / "prior-auth.json"
PAYER, MEMBER, NUMBER, CLINICIAN = "87726", "MEM1008", "PA-2026-0042", "1999999984"
OCTOBER, NOVEMBER = (MEMBER, "2026-10-20"), (MEMBER, "2026-11-03")  # the two visits' claims


@pytest.fixture
def home(tmp_path, capsys) -> Path:
    """A hub home holding the two visits, one unrelated claim of another member, and the
    practice's rule that payer 87726 authorizes every code."""
    home = tmp_path / "home"
    assert bhhub(home, "init") == 0
    rules = home / "mappings" / "rules"
    rules.mkdir(parents=True)
    (rules / "authorization.toml").write_text(f'[payers."{PAYER}"]\nrequires_authorization = []\n', encoding="utf-8")
    shutil.copy(FIXTURE, tmp_path / "prior-auth.json")
    (tmp_path / "other-member.json").write_text(json.dumps(encounter_bundle(5)), encoding="utf-8")
    assert bhhub(home, "intake", str(tmp_path / "prior-auth.json"), str(tmp_path / "other-member.json")) == 0
    capsys.readouterr()
    return home


def bhhub(home: Path, *argv: str) -> int:
    return main(["--home", str(home), *argv])


def claims(home: Path, capsys) -> dict[tuple[str, str], tuple[str, set[str]]]:
    """Each claim's status and finding codes, by member and date of service."""
    assert bhhub(home, "claims", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    return {(c["member_id"], c["service_date"]): (c["status"], {f["code"] for f in c["findings"]}) for c in listed}


def run_json(home: Path, capsys, *argv: str) -> dict:
    assert bhhub(home, *argv, "--json") == 0
    return json.loads(capsys.readouterr().out)


def test_entering_the_missing_authorization_makes_the_held_claim_ready_at_once(home, capsys):
    before = claims(home, capsys)
    assert before[OCTOBER][0] == "needs_attention" and "auth.missing" in before[OCTOBER][1]
    unrelated = {ref: state for ref, state in before.items() if ref not in (OCTOBER, NOVEMBER)}
    assert unrelated  # another member's claim, which no change here concerns

    added = run_json(home, capsys, "auth", "add", "--payer", PAYER, "--member", MEMBER, "--number", NUMBER,
                     "--visits", "12", "--from", "2026-10-01", "--to", "2026-10-31")
    assert added["rescrubbed"]["checked"] == 2  # the member's two claims, not the other member's
    assert [(c["from"], c["to"]) for c in added["rescrubbed"]["changed"]] == [("needs_attention", "ready")]
    after = claims(home, capsys)
    assert after[OCTOBER][0] == "ready" and "auth.missing" not in after[OCTOBER][1]
    assert after[NOVEMBER][0] == "needs_attention" and "auth.outside_dates" in after[NOVEMBER][1]
    assert {ref: state for ref, state in after.items() if ref not in (OCTOBER, NOVEMBER)} == unrelated

    voided = run_json(home, capsys, "auth", "void", str(added["id"]))
    assert [(c["from"], c["to"]) for c in voided["rescrubbed"]["changed"]] == [("ready", "needs_attention")]
    assert claims(home, capsys)[OCTOBER][0] == "needs_attention"


def test_importing_the_missing_authorization_says_how_many_claims_changed(home, tmp_path, capsys):
    path = tmp_path / "auths.csv"
    path.write_text("payer_id,member_id,number,quantity,start,end\n"
                    f"{PAYER},{MEMBER},{NUMBER},12,2026-10-01,2026-11-30\n", encoding="utf-8")
    assert bhhub(home, "auth", "import", str(path)) == 0
    out = capsys.readouterr().out
    assert "1 authorization(s) added" in out
    assert "2 claim(s) waiting to be sent checked again; 2 changed status" in out
    assert "needs_attention -> ready" in out
    after = claims(home, capsys)
    assert (after[OCTOBER][0], after[NOVEMBER][0]) == ("ready", "ready")
    assert bhhub(home, "auth", "import", str(path)) == 0  # again: nothing added, nothing to check
    assert "no claim waiting to be sent is affected" in capsys.readouterr().out


def test_recording_a_terminated_enrollment_holds_the_providers_ready_claims(home, tmp_path, capsys):
    assert bhhub(home, "auth", "add", "--payer", PAYER, "--member", MEMBER, "--number", NUMBER, "--visits", "12",
                 "--from", "2026-10-01", "--to", "2026-11-30") == 0
    capsys.readouterr()
    assert {claims(home, capsys)[ref][0] for ref in (OCTOBER, NOVEMBER)} == {"ready"}

    terminated = run_json(home, capsys, "credentialing", "add", "--npi", CLINICIAN, "--payer", PAYER,
                          "--status", "terminated", "--effective", "2026-01-01")
    assert terminated["rescrubbed"]["checked"] == 2
    assert [(c["from"], c["to"]) for c in terminated["rescrubbed"]["changed"]] == [("ready", "needs_attention")] * 2
    held = claims(home, capsys)
    assert all(held[ref][0] == "needs_attention" and "credentialing.not_enrolled" in held[ref][1]
               for ref in (OCTOBER, NOVEMBER))

    path = tmp_path / "enrollments.csv"
    path.write_text(f"npi,payer_id,status,effective\n{CLINICIAN},{PAYER},enrolled,2026-01-01\n", encoding="utf-8")
    assert bhhub(home, "credentialing", "import", str(path)) == 0
    out = capsys.readouterr().out
    assert "2 claim(s) waiting to be sent checked again; 2 changed status" in out
    assert {claims(home, capsys)[ref][0] for ref in (OCTOBER, NOVEMBER)} == {"ready"}


def test_an_enrollment_for_another_payer_checks_none_of_the_providers_claims(home, capsys):
    # a payer with no claim here yet: the practice names it, so the hub knows it (bhhub.ledger.payers)
    (home / "mappings" / "payers.toml").write_text('[payer."00431"]\nname = "OTHER PLAN"\n', encoding="utf-8")
    result = run_json(home, capsys, "credentialing", "add", "--npi", CLINICIAN, "--payer", "00431",
                      "--status", "terminated")
    assert result["rescrubbed"] == {"checked": 0, "changed": []}
