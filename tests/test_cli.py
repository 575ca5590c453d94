"""The command line as a new user meets it: the demo, help, and clear errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from hub.cli.main import main
from hub.demo.synthetic import encounter_bundle
from hub.x12.validate import validate_x12


def test_demo_builds_claims_and_writes_a_valid_837p(tmp_path, capsys):
    assert main(["--home", str(tmp_path), "demo"]) == 0
    out = capsys.readouterr().out
    path = Path(re.search(r"837P written to: (\S+)", out).group(1))
    assert path.is_file() and validate_x12(path.read_bytes()) == []
    assert "needs_attention" in out and "diagnosis.not_billable" in out
    assert "quarantined  zz-truncated-export.json: truncated JSON" in out
    clms = [seg for seg in path.read_text().split("~\n") if seg.startswith("CLM*")]
    ready = re.findall(r"^(BH\d+) +ready ", out, re.MULTILINE)
    assert sorted(c.split("*")[1] for c in clms) == sorted(ready)  # every ready claim, only those


def test_demo_runs_again_from_scratch(tmp_path, capsys):
    assert main(["--home", str(tmp_path), "demo"]) == 0
    first = capsys.readouterr().out
    assert main(["--home", str(tmp_path), "demo"]) == 0
    again = capsys.readouterr().out
    assert re.findall(r"^BH\d+ +\w+", again, re.MULTILINE) == re.findall(r"^BH\d+ +\w+", first, re.MULTILINE)


def test_help_explains_every_command():
    run = subprocess.run([sys.executable, "-m", "hub.cli.main", "--help"], capture_output=True, text=True)
    assert run.returncode == 0
    for command in ("init", "intake", "claims", "export-837", "inbox", "plugins", "demo"):
        assert command in run.stdout
    assert "exit codes" in run.stdout


def test_a_usage_mistake_is_one_line_and_exit_code_2(tmp_path, capsys):
    assert main(["--home", str(tmp_path), "export-837", "--out", str(tmp_path / "x"), "--max-claims", "0"]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "max-claims" in err


def test_a_missing_file_is_named_and_the_others_still_import(tmp_path, capsys):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(encounter_bundle(3)))
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
    assert main(["--home", str(home), "intake", str(tmp_path / "bad.json"), str(tmp_path / "good.json")]) == 0
    capsys.readouterr()
    assert main(["--home", str(home), "claims", "--status", "needs_attention", "--json"]) == 0
    [claim] = json.loads(capsys.readouterr().out)
    assert [f["code"] for f in claim["findings"]] == ["x12.unwritable"]
    assert "member id" in claim["findings"][0]["message"]
    assert main(["--home", str(home), "export-837", "--out", str(tmp_path / "o.x12"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["claims"] == 1
