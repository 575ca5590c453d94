"""The command line as a new user meets it: the demo, help, and clear errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from bhhub.cli.main import main
from bhhub.demo.synthetic import encounter_bundle
from bhhub.x12.validate import validate_x12


def test_demo_exchanges_with_the_sandbox_and_shows_each_claims_status_from_its_answers(tmp_path, capsys):
    from bhhub.acknowledgments.x277ca import read_277ca
    from bhhub.remittance.x835 import read_835
    from bhhub.remittance.x835_events import ClaimPayment

    assert main(["--home", str(tmp_path), "demo"]) == 0
    out = capsys.readouterr().out
    path = Path(re.search(r"the 837P sent: (\S+)", out).group(1))
    assert path.is_file() and validate_x12(path.read_bytes()) == []
    assert "diagnosis.not_billable" in out
    assert "quarantined  zz-truncated-export.json: truncated JSON" in out
    built, answered = out.split("\n4. ", 1)
    clms = [seg for seg in path.read_text().split("~\n") if seg.startswith("CLM*")]
    ready = re.findall(r"^(BH\d+) +ready ", built, re.MULTILINE)
    assert sorted(c.split("*")[1] for c in clms) == sorted(ready)  # every ready claim, only those
    assert re.search(r"sent +BHHUB_\d{9}\.837: %d claims" % len(ready), built)
    final = dict(re.findall(r"^(BH\d+) +(\w+) ", answered, re.MULTILINE))

    # What the sandbox really answered, read from the files the hub picked up over SFTP.
    picked = tmp_path / "demo" / "sandbox" / "picked-up"
    [ack] = picked.glob("*.277")
    rejected = {c.patient_control_number for c in read_277ca(ack.read_bytes()) if c.rejected}
    [remit] = picked.glob("*.835")
    outcomes = {}
    for event in read_835(remit.read_bytes()):
        if isinstance(event, ClaimPayment):
            denied = [a for a in event.all_adjustments if a.group != "PR" and (a.group, a.reason) != ("CO", "45")]
            outcomes[event.patient_control_number] = ("denied" if event.status_code == "4" or event.paid == 0
                                                      else "partially_paid" if denied else "paid")
    assert rejected and {"paid", "denied"} <= set(outcomes.values())
    for pcn in ready:
        expected = "rejected" if pcn in rejected else outcomes[pcn]
        assert final[pcn] == expected, pcn
    assert re.search(r"^  BH\d+ rejected: 277CA: .*member number", answered, re.MULTILINE)
    assert re.search(r"^  BH\d+ denied: 835 .*CO-197", answered, re.MULTILINE)
    assert "the 837 was accepted" in built
    worklist = answered.split("\n5. ", 1)[1]
    denied = [pcn for pcn, status in final.items() if status == "denied"]
    assert denied and all(re.search(rf"^\d+ +\d{{4}}-\d\d-\d\d +{pcn} .*CO-197 .*authorization", worklist, re.MULTILINE)
                          for pcn in denied)
    assert re.search(r"A/R: insurance \d+\.\d\d, patient \d+\.\d\d", worklist)

    # The eligibility sweep's 270 went up with the 837P; the sandbox's 271 answers every patient.
    from bhhub.eligibility.x271 import read_271

    assert re.search(r"sent +BHHUB_\d{9}\.270: 270 inquiry", built)
    [answer] = picked.glob("*.271")
    responses = read_271(answer.read_bytes())
    coverage = worklist.split("\n6. ", 1)[1]
    listed = dict(re.findall(r"^\d+ +\d+ +\d+ +(\S+) +\S+ +x12 +answered +(\w+) ", coverage, re.MULTILINE))
    assert listed == {r.member_id: "yes" if r.active else "NO" for r in responses}
    assert len(listed) == len(ready) + 1  # every patient with an unsent claim, the held one included


def test_demo_runs_again_from_scratch(tmp_path, capsys):
    assert main(["--home", str(tmp_path), "demo"]) == 0
    first = capsys.readouterr().out
    assert main(["--home", str(tmp_path), "demo"]) == 0
    again = capsys.readouterr().out
    assert re.findall(r"^BH\d+ +\w+", again, re.MULTILINE) == re.findall(r"^BH\d+ +\w+", first, re.MULTILINE)


def test_help_explains_every_command():
    run = subprocess.run([sys.executable, "-m", "bhhub.cli.main", "--help"], capture_output=True, text=True)
    assert run.returncode == 0
    for command in ("init", "intake", "claims", "export-837", "inbox", "plugins", "demo", "exchange", "run",
                    "mailbox", "transmissions", "alerts", "resubmit", "sandbox", "listen", "auth", "credentialing"):
        assert command in run.stdout
    assert "exit codes" in run.stdout


def test_a_usage_mistake_is_one_line_and_exit_code_2(tmp_path, capsys):
    assert main(["--home", str(tmp_path / "h"), "init"]) == 0
    capsys.readouterr()
    assert main(["--home", str(tmp_path / "h"), "export-837", "--out", str(tmp_path / "x"), "--max-claims", "0"]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "max-claims" in err


def test_a_missing_file_is_named_and_the_others_still_import(tmp_path, capsys):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(encounter_bundle(3)))
    assert main(["--home", str(tmp_path / "h"), "init"]) == 0
    capsys.readouterr()
    assert main(["--home", str(tmp_path / "h"), "intake", str(tmp_path / "missing.json"), str(good), "--json"]) == 1
    results = {Path(r["source"]).name: r["outcome"] for r in json.loads(capsys.readouterr().out)}
    assert results == {"missing.json": "unreadable", "good.json": "imported"}


def test_a_claim_the_837p_cannot_carry_needs_attention_and_the_rest_are_batched(tmp_path, capsys):
    bad = encounter_bundle(5)
    coverage = next(e["resource"] for e in bad["entry"] if e["resource"]["resourceType"] == "Coverage")
    coverage["subscriberId"] = "M*123~456"  # X12 delimiters inside a member id cannot be sent
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    (tmp_path / "good.json").write_text(json.dumps(encounter_bundle(8)))
    home = tmp_path / "h"
    assert main(["--home", str(home), "init"]) == 0
    assert main(["--home", str(home), "intake", str(tmp_path / "bad.json"), str(tmp_path / "good.json")]) == 0
    capsys.readouterr()
    assert main(["--home", str(home), "claims", "--status", "needs_attention", "--json"]) == 0
    [claim] = json.loads(capsys.readouterr().out)
    assert [f["code"] for f in claim["findings"]] == ["x12.unwritable"]
    assert "member id" in claim["findings"][0]["message"]
    assert main(["--home", str(home), "export-837", "--out", str(tmp_path / "o.x12"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["claims"] == 1


def test_the_exchange_logs_and_alerts_carry_no_phi(tmp_path, caplog, capsys):
    """The whole demo path (intake, SFTP, sandbox answers, 999/277CA/835 applied) at DEBUG."""
    import logging

    from sqlalchemy import select

    from bhhub.runtime.app import Hub
    from bhhub.cli.demo import SEEDS
    from bhhub.store import schema

    caplog.set_level(logging.DEBUG)
    assert main(["--home", str(tmp_path), "-v", "demo"]) == 0
    capsys.readouterr()
    with Hub.open(tmp_path / "demo") as hub, hub.store.session() as session:
        stored = [a.message for a in session.scalars(select(schema.Alert))]
        stored += [a.detail or "" for a in session.scalars(select(schema.Acknowledgment))]
        stored += [e.detail or "" for e in session.scalars(select(schema.TransmissionEvent))]
    logged = "\n".join(r.getMessage() for r in caplog.records) + "\n".join(stored)
    assert "uploaded" in logged and "inbox item" in logged  # the logs did run
    for seed in (*SEEDS, 41):
        bundle = encounter_bundle(seed)
        patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
        coverage = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Coverage")
        for phi in (patient["name"][0]["family"], patient["birthDate"], coverage["subscriberId"]):
            assert phi not in logged, phi


def test_the_demo_still_bills_cleanly_a_year_from_now(tmp_path, capsys, monkeypatch):
    """Its visits are dated from "today", so the filing-window and future-date rules never stop it."""
    monkeypatch.setenv("BHHUB_TODAY", "2027-11-29")
    assert main(["--home", str(tmp_path), "demo"]) == 0
    out = capsys.readouterr().out
    built = out.split("\n3. ", 1)[0]
    assert len(re.findall(r"^BH\d+ +ready ", built, re.MULTILINE)) == 9
    assert "filing." not in out and "service_date_future" not in out


def test_verbose_and_home_are_taken_after_the_command_word_too(tmp_path, capsys):
    from bhhub.cli.main import build_parser

    parse = build_parser().parse_args
    assert parse(["-v", "run"]).verbose and parse(["run", "-v"]).verbose and parse(["run", "--verbose"]).verbose
    assert not parse(["run"]).verbose
    assert parse(["inbox", "retry", "3", "-v"]).verbose  # an action's own parser too
    assert parse(["--home", "a", "claims"]).home == "a" and parse(["claims", "--home", "b"]).home == "b"
    assert parse(["batch", "write", "1", "--out", "f", "--home", "c"]).home == "c"
    assert parse(["-v", "--home", "a", "claims", "--json"]).verbose  # one given before stays
    home = tmp_path / "hub"
    assert main(["init", "--home", str(home)]) == 0 and (home / "bhhub.toml").is_file()
    capsys.readouterr()
    assert main(["claims", "--json", "--home", str(home), "-v"]) == 0
    assert json.loads(capsys.readouterr().out) == []
