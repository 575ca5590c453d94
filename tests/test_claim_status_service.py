"""Claim status through the hub: `bhhub status check | list`, and 277s (005010X212) through intake.

Through the CLI with a temporary hub home on SQLite and PostgreSQL, a clearinghouse mailbox
configured (never connected to: a 276 is only queued). Three synthetic visits are exported in
one 837P and marked submitted. The payer's answers are the 277 fixtures in
tests/fixtures/x12/277/ with the fixture's payer id, member id, trace number and patient
control number replaced by the claim's, delivered by `bhhub intake` as a mailbox pickup would.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bhhub.runtime.app import Hub
from bhhub.claims.export import export_837p
from bhhub.cli.main import main
from bhhub.demo.synthetic import encounter_bundle
from bhhub.store import schema

FIXTURES = Path(__file__).parent / "fixtures" / "x12" / "277"
MAILBOX = """
[mailboxes.clearinghouse]
profile = "generic"
host = "127.0.0.1"
port = 9
username = "practice"
password_env = "NO_SUCH_PASSWORD"
known_hosts = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"]
"""


@pytest.fixture
def home(hub_home, tmp_path, capsys) -> Path:
    for seed in (4, 3, 8):
        (tmp_path / f"visit-{seed}.json").write_text(json.dumps(encounter_bundle(seed)), encoding="utf-8")
    assert bhhub(hub_home, "intake", *(str(tmp_path / f"visit-{s}.json") for s in (4, 3, 8))) == 0
    with Hub.open(hub_home) as hub:
        export_837p(hub, tmp_path / "batch.x12")
        with hub.store.session() as session:
            for claim in session.scalars(select(schema.Claim)):
                claim.status = "submitted"
            session.commit()
    with (hub_home / "bhhub.toml").open("a", encoding="utf-8") as config:
        config.write(MAILBOX)
    capsys.readouterr()
    return hub_home


def bhhub(home: Path, *argv: str) -> int:
    return main(["--home", str(home), *argv])


def run_json(home: Path, capsys, *argv: str, code: int = 0):
    assert bhhub(home, *argv, "--json") == code
    return json.loads(capsys.readouterr().out)


def claims(home: Path, capsys) -> dict[str, dict]:
    return {c["patient_control_number"]: c for c in run_json(home, capsys, "claims")}


def answer_277(fixture: str, claim: dict, trace: str, *, interchange: str | None = None, **replace: str) -> str:
    """``fixture`` (one claim, trace TRACE01xx and PCN01xx) answering about ``claim``."""
    text = (FIXTURES / f"{fixture}.x12").read_text()
    number = text.split("TRN*2*TRACE")[1][:4]
    text = (text.replace(f"TRACE{number}", trace).replace(f"PCN{number}", claim["patient_control_number"])
            .replace("PI*99999", f"PI*{claim['payer_id']}").replace("MEMBER123", claim["member_id"]))
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    if interchange:
        text = text.replace(text[90:99], interchange)  # ISA13
    return text


def open_alerts(home: Path) -> dict[str, str]:
    with Hub.open(home) as hub, hub.store.session() as session:
        return {a.key: a.message for a in session.scalars(select(schema.Alert).where(schema.Alert.cleared_at.is_(None)))}


def intake_277(home: Path, tmp_path: Path, capsys, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    assert bhhub(home, "intake", str(path)) == 0
    return capsys.readouterr().out


@pytest.fixture
def asked(home, capsys) -> tuple[dict, dict]:
    """A status question about the first claim: (the claim, the check)."""
    claim = sorted(claims(home, capsys).values(), key=lambda c: c["patient_control_number"])[0]
    return claim, run_json(home, capsys, "status", "check", claim["patient_control_number"])


def test_a_status_check_queues_a_276_and_the_pending_answer_marks_the_claim_accepted(home, asked, tmp_path, capsys):
    claim, check = asked
    assert (check["state"], check["patient_control_number"]) == ("requested", claim["patient_control_number"])
    with Hub.open(home) as hub, hub.store.session() as session:
        batch = session.get(schema.Batch, check["batch_id"])
        assert batch.kind == "276" and f"TRN*1*{check['trace_number']}".encode() in batch.content
        assert f"REF*EJ*{claim['patient_control_number']}".encode() in batch.content

    out = intake_277(home, tmp_path, capsys, "status.277", answer_277("pending", claim, check["trace_number"]))
    assert "277: 1 answered (1 pending)" in out
    [listed] = run_json(home, capsys, "status", "list")
    assert (listed["id"], listed["state"], listed["status"]) == (check["check_id"], "answered", "pending")
    after = claims(home, capsys)[claim["patient_control_number"]]
    assert after["status"] == "accepted" and after["payer_claim_control_number"] == "PAYERICN0101"
    assert open_alerts(home) == {}


def test_a_rejected_answer_rejects_the_claim_and_raises_an_alert(home, asked, tmp_path, capsys):
    claim, check = asked
    text = answer_277("pending", claim, check["trace_number"], **{"STC*P1:20": "STC*A7:562:82"})
    intake_277(home, tmp_path, capsys, "rejected.277", text)
    pcn = claim["patient_control_number"]
    assert claims(home, capsys)[pcn]["status"] == "rejected"
    [(key, message)] = open_alerts(home).items()
    assert key == f"claim_status_rejected:claim:{pcn}" and pcn in message and claim["member_id"] not in message


def test_a_paid_answer_is_recorded_but_only_an_835_marks_a_claim_paid(home, asked, tmp_path, capsys):
    claim, check = asked
    out = intake_277(home, tmp_path, capsys, "paid.277", answer_277("paid", claim, check["trace_number"]))
    assert "(1 paid)" in out
    [listed] = run_json(home, capsys, "status", "list")
    assert listed["status"] == "paid" and "CHK778899" in listed["description"]
    assert claims(home, capsys)[claim["patient_control_number"]]["status"] == "submitted"
    assert open_alerts(home) == {}


def test_a_denied_answer_is_alerted_without_moving_the_claim(home, asked, tmp_path, capsys):
    claim, check = asked
    intake_277(home, tmp_path, capsys, "denied.277", answer_277("denied", claim, check["trace_number"]))
    pcn = claim["patient_control_number"]
    assert claims(home, capsys)[pcn]["status"] == "submitted"
    assert list(open_alerts(home)) == [f"claim_status_denied:claim:{pcn}"]


def test_the_same_answer_twice_changes_nothing(home, asked, tmp_path, capsys):
    claim, check = asked
    text = answer_277("pending", claim, check["trace_number"])
    intake_277(home, tmp_path, capsys, "first.277", text)
    assert "duplicate" in intake_277(home, tmp_path, capsys, "copy.277", text)
    out = intake_277(home, tmp_path, capsys, "again.277", text.replace("*000000105*", "*000000106*"))
    assert "1 repeat" in out
    with Hub.open(home) as hub, hub.store.session() as session:
        assert session.scalar(select(func.count()).select_from(schema.ClaimStatusCheck)) == 1
        events = session.scalar(select(func.count()).select_from(schema.ClaimStatusEvent)
                                .where(schema.ClaimStatusEvent.status == "accepted"))
    assert events == 1


def test_an_answer_nobody_asked_for_is_kept_against_the_sent_claim_it_names(home, tmp_path, capsys):
    claim = next(iter(claims(home, capsys).values()))
    out = intake_277(home, tmp_path, capsys, "unasked.277", answer_277("pending", claim, "PAYER-TRACE-9"))
    assert "1 unsolicited" in out
    [listed] = run_json(home, capsys, "status", "list")
    assert (listed["patient_control_number"], listed["source"], listed["status"]) == (claim["patient_control_number"], "x12", "pending")


def test_an_answer_naming_nothing_the_hub_sent_is_quarantined(home, tmp_path, capsys):
    path = tmp_path / "stranger.277"
    path.write_text((FIXTURES / "pending.x12").read_text())
    assert bhhub(home, "intake", str(path)) == 1
    out = capsys.readouterr()
    assert "none of which the hub asked about or sent" in out.out + out.err


def test_a_277ca_is_still_read_as_a_claim_acknowledgment(home, tmp_path, capsys):
    path = tmp_path / "ack.277"
    path.write_text((FIXTURES / "acknowledgment-277ca.x12").read_text())
    assert bhhub(home, "intake", str(path)) == 1  # its claims are not this hub's: quarantined, as a 277CA
    out = capsys.readouterr()
    assert "a 277CA about" in out.out + out.err


def test_a_status_check_of_a_claim_not_sent_is_refused(home, tmp_path, capsys):
    (tmp_path / "new.json").write_text(json.dumps(encounter_bundle(5)), encoding="utf-8")
    assert bhhub(home, "intake", str(tmp_path / "new.json")) == 0
    capsys.readouterr()
    unsent = [c for c in claims(home, capsys).values() if c["status"] in ("ready", "needs_attention")]
    assert bhhub(home, "status", "check", unsent[0]["patient_control_number"]) == 2
    assert "has not been sent" in capsys.readouterr().err
    assert bhhub(home, "status", "check", "BH99999999") == 2


def test_a_999_rejecting_the_276_fails_its_questions(home, asked, tmp_path, capsys):
    claim, check = asked
    with Hub.open(home) as hub, hub.store.session() as session:
        batch = session.get(schema.Batch, check["batch_id"])
        sender, group, transaction = batch.sender_id, batch.group_control_number, batch.transaction_control_number
    body = ["ST*999*0001*005010X231A1", f"AK1*HR*{group}*005010X212", f"AK2*276*{transaction}*005010X212",
            "IK5*R*I5", "AK9*R*1*1*0"]
    text = (f"ISA*00*          *00*          *ZZ*{'TESTCH':<15}*ZZ*{sender:<15}*261129*0800*^*00501*000000777*0*T*:~\n"
            f"GS*FA*TESTCH*{sender}*20261129*0800*777*X*005010X231A1~\n" + "".join(s + "~\n" for s in body)
            + "SE*6*0001~\nGE*1*777~\nIEA*1*000000777~\n")
    out = intake_277(home, tmp_path, capsys, "ack.999", text)
    assert "999 rejected the 276" in out and "1 question(s) failed" in out
    [listed] = run_json(home, capsys, "status", "list")
    assert listed["state"] == "failed" and "999 rejected the 276" in listed["error"]
    assert claims(home, capsys)[claim["patient_control_number"]]["status"] == "submitted"
