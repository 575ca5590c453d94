"""No tracebacks and no silent surprises: a wrong --home, a folder given as --out, a reader that
goes away, an override that would make the 837P invalid. Each is one clear line and the exit
code the README gives."""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bhhub.runtime import clock
from bhhub.intake import inbox as intake
from bhhub.runtime.app import Hub
from bhhub.cli.main import BUILTIN, build_parser, main
from bhhub.errors import UsageError
from bhhub.demo.synthetic import encounter_bundle
from bhhub.runtime.plugin_host import build_plugin_host
from bhhub.scrub.never_overridden import never_overridden
from bhhub.store import schema

PROJECT = Path(__file__).resolve().parent.parent


def _every_command_on_a_hub(tmp_path: Path) -> list[list[str]]:
    """One runnable command line for every command that works on a hub, built-in or plugin."""
    csv = tmp_path / "rows.csv"
    csv.write_text("npi\n")
    return [
        ["intake", str(csv)], ["claims"], ["export-837", "--out", str(tmp_path / "out.x12")],
        ["batch", "write", "1", "--out", str(tmp_path / "again.x12")], ["inbox"],
        ["inbox", "retry", "1"], ["exchange"], ["run"], ["mailbox"], ["mailbox", "test", "ch"], ["transmissions"],
        ["resubmit", "BH1"], ["scrub"], ["override", "BH1", "coding.time_mismatch", "--reason", "payer said so"],
        ["alerts"], ["remit", "list"], ["denials"], ["followup", "void", "BH1"], ["ar"], ["notice", "list", "BH1"],
        ["auth", "list"], ["credentialing", "import", str(csv)], ["eligibility", "list"], ["status", "list"],
        ["rules", "load-ncci", str(csv)], ["notify", "test"], ["listen", "--port", "0"], ["sandbox", "serve"],
        ["serve", "--port", "0"], ["user", "list"], ["audit", "verify"],
    ]


def _top_level_commands() -> set[str]:
    host = build_plugin_host()
    parser = build_parser(host.hooks.commands(taken=BUILTIN))
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_the_list_below_covers_every_command_that_opens_a_hub(tmp_path):
    covered = {argv[0] for argv in _every_command_on_a_hub(tmp_path)}
    # plugins and plugin need no hub; init and demo make theirs (tested apart).
    assert covered | {"plugins", "plugin", "init", "demo"} == _top_level_commands()


def test_a_home_that_does_not_exist_is_an_error_and_no_empty_hub_is_made(tmp_path, capsys):
    missing = tmp_path / "typo-of-the-practice-hub"
    for argv in _every_command_on_a_hub(tmp_path):
        assert main(["--home", str(missing), *argv]) == 2, argv
        captured = capsys.readouterr()
        assert captured.err.count("\n") == 1 and captured.err.startswith(f"bhhub: no hub at {missing} (--home)"), argv
        assert not missing.exists(), argv


def test_bhhub_home_that_does_not_exist_is_named_in_the_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BHHUB_HOME", str(tmp_path / "nowhere"))
    assert main(["claims", "--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "($BHHUB_HOME)" in err and "init" in err
    assert capsys.readouterr().out == ""


def _contents(folder: Path) -> tuple[int, list[str]]:
    return stat.S_IMODE(folder.stat().st_mode), sorted(p.name for p in folder.rglob("*"))


@pytest.mark.parametrize("holding", [{}, {"notes.txt": "a practice's letter", "photos/cat.jpg": "jpeg"}],
                         ids=["empty", "unrelated files"])
def test_a_folder_that_is_not_a_hub_is_refused_by_every_command_and_left_as_it_was(holding, tmp_path, capsys):
    folder = tmp_path / "documents"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    for name, text in holding.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_text(text)
    before = _contents(folder)
    for argv in _every_command_on_a_hub(tmp_path):
        assert main(["--home", str(folder), *argv]) == 2, argv
        captured = capsys.readouterr()
        assert captured.err.count("\n") == 1, (argv, captured.err)
        assert captured.err.startswith(f"bhhub: {folder} (--home) is not a bhhub hub"), (argv, captured.err)
        assert f"bhhub --home {folder} init" in captured.err, argv
        assert _contents(folder) == before, argv  # no store, no bhhub.toml, the mode unchanged


def test_a_folder_that_is_not_a_hub_is_refused_by_the_library_too(tmp_path):
    folder = tmp_path / "documents"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    with pytest.raises(UsageError, match="is not a bhhub hub"):
        Hub.open(folder)
    assert _contents(folder) == (0o755, [])
    with Hub.open(folder, create=True) as hub:  # what `bhhub init` does
        assert hub.settings.config_path.is_file()
    assert _contents(folder) == (0o700, ["bhhub.db", "bhhub.toml"])


def test_an_initialized_hub_works_with_either_marker(tmp_path, capsys):
    home = tmp_path / "hub"
    assert main(["--home", str(home), "init"]) == 0
    capsys.readouterr()
    assert main(["--home", str(home), "inbox", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    (home / "bhhub.toml").unlink()  # a hub made before init wrote the file: its store marks it
    assert main(["--home", str(home), "claims", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_a_home_whose_store_is_named_by_the_environment_is_a_hub_once_initialized(database_url, tmp_path,
                                                                                 monkeypatch, capsys):
    # BHHUB_DATABASE_URL chooses the store, not the folder: an empty --home beside it is refused
    # before the store is touched; `init` writes bhhub.toml there (and no bhhub.db), then it is a hub.
    monkeypatch.setenv("BHHUB_DATABASE_URL", database_url)
    folder = tmp_path / "home"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    assert main(["--home", str(folder), "claims", "--json"]) == 2
    assert "is not a bhhub hub" in capsys.readouterr().err
    assert _contents(folder) == (0o755, [])
    assert _store_tables(database_url) == set()  # not migrated either
    assert main(["--home", str(folder), "init"]) == 0
    assert _contents(folder) == (0o700, ["bhhub.toml"])
    assert "alembic_version" in _store_tables(database_url)
    capsys.readouterr()
    assert main(["--home", str(folder), "claims", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def _store_tables(url: str) -> set[str]:
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("argv", [["plugins"], ["plugins", "--json"], ["plugin", "new", "ehr", "acme"]])
def test_commands_that_need_no_hub_still_refuse_a_home_named_that_is_not_one(argv, tmp_path, capsys):
    missing, empty = tmp_path / "typo", tmp_path / "empty"
    empty.mkdir()
    for home, told in ((missing, f"no hub at {missing} (--home)"), (empty, f"{empty} (--home) is not a bhhub hub")):
        assert main(["--home", str(home), *argv, *(["--out", str(tmp_path / "work")] if argv[0] == "plugin" else [])]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"bhhub: {told}"), err
    assert not missing.exists() and list(empty.iterdir()) == [] and not (tmp_path / "work").exists()


def test_plugins_lists_without_a_hub_when_none_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no ./.bhhub here
    monkeypatch.delenv("BHHUB_HOME", raising=False)
    assert main(["plugins", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["plugins"]
    assert list(tmp_path.iterdir()) == []


def test_init_makes_the_home_and_then_every_command_finds_it(tmp_path, capsys):
    home = tmp_path / "new"
    assert main(["--home", str(home), "init"]) == 0
    assert home.is_dir()
    capsys.readouterr()
    assert main(["--home", str(home), "claims", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_a_home_that_is_a_file_is_one_line_for_every_command(tmp_path, capsys):
    a_file = tmp_path / "bhhub.db"
    a_file.write_bytes(b"not a folder")
    for argv in [["init"], ["demo"], *_every_command_on_a_hub(tmp_path)]:
        assert main(["--home", str(a_file), *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is a file" in err and "Traceback" not in err, (argv, err)
    assert a_file.read_bytes() == b"not a folder"


def _with_a_ready_claim(home: Path) -> str:
    start = clock.today() - timedelta(days=30)
    with Hub.open(home) as hub:
        result = intake.receive(hub, json.dumps(encounter_bundle(4, start=start)).encode(), "visit.json")
    [claim] = result.claims
    assert claim.status == "ready"
    return claim.patient_control_number


def _claim_statuses(home: Path) -> dict[str, str]:
    with Hub.open(home) as hub, hub.store.session() as session:
        return dict(session.execute(select(schema.Claim.patient_control_number, schema.Claim.status)).all())


@pytest.mark.parametrize("where", ["a folder", "under a file"])
def test_out_that_cannot_be_a_file_is_one_line_and_no_claim_is_batched(where, hub_home, tmp_path, capsys):
    pcn = _with_a_ready_claim(hub_home)
    (tmp_path / "a-file").write_text("x")
    out = {"a folder": tmp_path, "under a file": tmp_path / "a-file" / "b.x12"}[where]
    code = main(["--home", str(hub_home), "export-837", "--out", str(out)])
    err = capsys.readouterr().err
    assert code in (1, 2) and err.count("\n") == 1 and err.startswith("bhhub: ") and "Traceback" not in err, err
    assert _claim_statuses(hub_home) == {pcn: "ready"}  # nothing batched


def test_plugin_new_out_that_is_a_file_is_refused(tmp_path, capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(SystemExit) as stopped:
        main(["plugin", "new", "ehr", "acme_ehr", "--out", str(a_file)])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "argument --out:" in err and "is a file" in err and a_file.read_text() == "x"


def test_a_listing_piped_to_head_stops_quietly_with_the_sigpipe_status(hub_home):
    with Hub.open(hub_home) as hub:
        start = clock.today() - timedelta(days=40)
        for seed in range(30):  # enough output to overflow the pipe's buffer after head has gone
            intake.receive(hub, json.dumps(encounter_bundle(seed, start=start)).encode(), f"v{seed}.json")
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    bhhub = f"{sys.executable} -m bhhub.cli.main --home {hub_home}"
    for listing in (["claims"], ["claims", "--json"], ["inbox", "--json"], ["--help"]):
        # `true` has gone before bhhub writes a byte (bhhub takes far longer to start): the
        # first write finds no reader. `head -1` may go before or after the last write.
        for reader, statuses in (("true", {"141"}), ("head -1", {"0", "141"})):
            done = subprocess.run(
                f"{bhhub} {' '.join(listing)} | {reader} >/dev/null; echo \"exit=${{PIPESTATUS[0]}}\" >&2",
                shell=True, executable="/bin/bash", capture_output=True, text=True, cwd=PROJECT, env=env,
                timeout=120)
            lines = done.stderr.strip().splitlines()
            assert lines[:-1] == [], (listing, reader, done.stderr)  # not a word besides the status
            if listing == ["--help"]:  # argparse writes the help and exits 0 itself: quiet is enough
                statuses = {"0", "141"}
            assert lines[-1].removeprefix("exit=") in statuses, (listing, reader, done.stderr)


def test_override_refuses_every_finding_that_would_make_the_837p_invalid(hub_home, capsys):
    bundle = encounter_bundle(6, start=clock.today() - timedelta(days=30))
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Condition":
            entry["resource"]["code"]["coding"][0]["code"] = "F41"  # a category, not a billable code
    with Hub.open(hub_home) as hub:
        [claim] = intake.receive(hub, json.dumps(bundle).encode(), "vague.json").claims
    pcn = claim.patient_control_number
    assert main(["--home", str(hub_home), "claims", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert "diagnosis.not_billable" in {f["code"] for f in listed["findings"]}
    for code in never_overridden():  # the whole table, not only the finding this claim has
        assert main(["--home", str(hub_home), "override", pcn, code, "--reason", "the payer said it is fine"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{code} cannot be overridden" in err
    assert _claim_statuses(hub_home) == {pcn: "needs_attention"}
    with Hub.open(hub_home) as hub, hub.store.session() as session:
        assert session.scalars(select(schema.FindingOverride)).all() == []


def test_an_override_recorded_before_the_rule_does_not_release_an_invalid_claim(hub_home, capsys):
    bundle = encounter_bundle(7, start=clock.today() - timedelta(days=30))
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Condition":
            entry["resource"]["code"]["coding"][0]["code"] = "F41"
    with Hub.open(hub_home) as hub:
        [claim] = intake.receive(hub, json.dumps(bundle).encode(), "vague.json").claims
        with hub.store.session() as session:
            row = session.scalars(select(schema.Claim)).one()
            session.add(schema.FindingOverride(claim_id=row.id, code="diagnosis.not_billable", line_number=None,
                                               reason="recorded by an older bhhub", actor="cli:test"))
            session.commit()
    assert main(["--home", str(hub_home), "scrub"]) == 0
    assert _claim_statuses(hub_home) == {claim.patient_control_number: "needs_attention"}
