"""Paths a hostile (or tired) user gives: an --out over the hub's own files, a FIFO or a socket
to read, an empty --home, a folder that only looks like a hub.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bhhub.runtime import clock
from bhhub.intake import inbox as intake
from bhhub.runtime.app import Hub
from bhhub.cli.main import main
from bhhub.demo.synthetic import encounter_bundle
from bhhub.store import schema

PROJECT = Path(__file__).resolve().parent.parent


def _ready_claim(home: Path) -> str:
    start = clock.today() - timedelta(days=30)
    with Hub.open(home) as hub:
        result = intake.receive(hub, json.dumps(encounter_bundle(4, start=start)).encode(), "visit.json")
    [claim] = result.claims
    assert claim.status == "ready"
    return claim.patient_control_number


def _statuses(home: Path) -> dict[str, str]:
    with Hub.open(home) as hub, hub.store.session() as session:
        return dict(session.execute(select(schema.Claim.patient_control_number, schema.Claim.status)).all())


def _bhhub(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    # In a child with a timeout: a regression that opens a FIFO fails here instead of hanging.
    return subprocess.run([sys.executable, "-m", "bhhub.cli.main", *args], cwd=PROJECT, capture_output=True,
                          text=True, timeout=30, env=env)


# --- 1. --out never replaces the hub's own files ------------------------------------------


@pytest.mark.parametrize("own", ["bhhub.toml", "bhhub.db", "bhhub.db-wal", "bhhub.exchange.lock",
                                 "spool/x.837", "raw/x.837", "mappings/payers.toml", "demo/bhhub.db"])
def test_export_837_never_writes_over_the_hubs_own_files_even_with_force(own, hub_home, capsys):
    pcn = _ready_claim(hub_home)
    target = hub_home / own
    target.parent.mkdir(parents=True, exist_ok=True)
    before = target.read_bytes() if target.exists() else None
    code = main(["--home", str(hub_home), "export-837", "--out", str(target), "--force"])
    err = capsys.readouterr().err
    assert code == 2 and "inside the hub home" in err and err.count("\n") == 1, err
    assert (target.read_bytes() if target.exists() else None) == before
    assert _statuses(hub_home) == {pcn: "ready"}  # nothing batched


def test_a_sqlite_store_kept_outside_the_home_is_not_an_out_either(tmp_path, capsys):
    store = tmp_path / "elsewhere" / "practice.db"
    store.parent.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    (home / "bhhub.toml").write_text(f'[store]\nurl = "sqlite:///{store}"\n', encoding="utf-8")
    pcn = _ready_claim(home)
    for name in ("practice.db", "practice.db-journal", "practice.db.exchange.lock"):
        code = main(["--home", str(home), "export-837", "--out", str(store.parent / name), "--force"])
        err = capsys.readouterr().err
        assert code == 2 and "the hub's store" in err, err
    assert store.read_bytes().startswith(b"SQLite format 3\x00")
    assert _statuses(home) == {pcn: "ready"}


def test_a_secret_file_the_config_names_is_not_an_out(hub_home, tmp_path, capsys):
    secret = tmp_path / "smtp.pw"
    secret.write_text("s3cret")
    with (hub_home / "bhhub.toml").open("a", encoding="utf-8") as config:
        config.write(f'\n[notify.email]\nhost = "smtp.example.org"\nsender = "hub@example.org"\n'
                     f'to = "billing@example.org"\npassword_file = "{secret}"\n')
    pcn = _ready_claim(hub_home)
    code = main(["--home", str(hub_home), "export-837", "--out", str(secret), "--force"])
    err = capsys.readouterr().err
    assert code == 2 and "notify.email.password_file" in err, err
    assert secret.read_text() == "s3cret" and _statuses(hub_home) == {pcn: "ready"}


def test_batch_write_never_writes_over_the_config_and_the_batches_folder_is_allowed(hub_home, tmp_path, capsys):
    _ready_claim(hub_home)
    assert main(["--home", str(hub_home), "export-837", "--out", str(hub_home / "batches" / "b1.x12")]) == 0
    config = (hub_home / "bhhub.toml").read_bytes()
    code = main(["--home", str(hub_home), "batch", "write", "1", "--out", str(hub_home / "bhhub.toml"), "--force"])
    assert code == 2 and "inside the hub home" in capsys.readouterr().err
    assert (hub_home / "bhhub.toml").read_bytes() == config
    assert main(["--home", str(hub_home), "batch", "write", "1", "--out", str(tmp_path / "again.x12")]) == 0
    assert (tmp_path / "again.x12").read_bytes() == (hub_home / "batches" / "b1.x12").read_bytes()


# --- 2. what a command reads is a regular file ---------------------------------------------


def _fifo(tmp_path: Path) -> Path:
    fifo = tmp_path / "feed.csv"
    os.mkfifo(fifo)
    return fifo


@pytest.mark.parametrize("command", [["intake"], ["auth", "import"], ["credentialing", "import"],
                                     ["rules", "load-ncci"]])
def test_a_fifo_named_as_input_is_refused_not_waited_on(command, hub_home, tmp_path):
    fifo = _fifo(tmp_path)
    run = _bhhub("--home", str(hub_home), *command, str(fifo))
    assert run.returncode == 2, run.stderr
    assert "FIFO" in run.stderr and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert _statuses(hub_home) == {}


def test_a_socket_named_for_intake_is_refused_and_nothing_is_stored(hub_home, tmp_path):
    where = tmp_path / "s"  # short: a socket's path has a length limit
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(where))
        run = _bhhub("--home", str(hub_home), "intake", str(where))
    finally:
        server.close()
    assert run.returncode == 2 and "a socket" in run.stderr, run.stderr
    assert _statuses(hub_home) == {}


def test_a_folder_with_a_fifo_in_it_is_still_walked(hub_home, tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    os.mkfifo(folder / "stuck.json")
    (folder / "visit.json").write_text(json.dumps(encounter_bundle(4, start=clock.today() - timedelta(days=30))))
    run = _bhhub("--home", str(hub_home), "intake", str(folder))
    assert run.returncode == 0, run.stderr
    assert len(_statuses(hub_home)) == 1


def test_the_csv_reader_refuses_a_fifo_itself(hub, tmp_path):
    from bhhub.errors import UsageError
    from bhhub.ledger import authorization_imports

    fifo = _fifo(tmp_path)
    # Should the reader open it (a regression), a writer comes after 10 s and ends the wait with
    # an empty file, so the test fails instead of hanging.
    writer = threading.Timer(10, lambda: os.close(os.open(fifo, os.O_WRONLY)))
    writer.daemon = True
    writer.start()
    try:
        with hub.store.session() as session, pytest.raises(UsageError, match="FIFO"):
            authorization_imports.import_csv(session, fifo)
    finally:
        writer.cancel()


# --- 3. an empty --home is a mistake --------------------------------------------------------


@pytest.mark.parametrize("argv", [["--home", "", "claims"], ["--home=", "claims"], ["claims", "--home", ""],
                                  ["--home", "", "plugins"]])
def test_an_empty_home_is_refused_not_read_as_the_default(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0  # ./.bhhub is a hub: an empty --home must not quietly use it
    capsys.readouterr()
    assert main(argv) == 2
    assert "--home is empty" in capsys.readouterr().err


def test_an_empty_bhhub_home_counts_as_unset(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BHHUB_HOME", "")
    assert main(["init"]) == 0
    assert (tmp_path / ".bhhub" / "bhhub.toml").is_file()
    assert main(["claims"]) == 0


# --- 4. only a real store makes a folder a hub ------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"my notes, not a database\n"])
def test_a_folder_with_an_empty_or_foreign_bhhub_db_is_not_a_hub(content, tmp_path, capsys):
    folder = tmp_path / "documents"
    folder.mkdir(mode=0o755)
    (folder / "bhhub.db").write_bytes(content)
    assert main(["--home", str(folder), "claims"]) == 2
    assert "is not a bhhub hub" in capsys.readouterr().err
    assert (folder / "bhhub.db").read_bytes() == content  # nothing migrated into it
    assert folder.stat().st_mode & 0o777 == 0o755  # nor chmod-ed


def test_a_hub_with_only_its_sqlite_store_still_opens_and_init_still_makes_one(tmp_path):
    home = tmp_path / "old"
    assert main(["--home", str(home), "init"]) == 0
    (home / "bhhub.toml").unlink()  # a hub made before init wrote the file
    assert main(["--home", str(home), "claims"]) == 0
    with sqlite3.connect(home / "bhhub.db") as database:
        assert database.execute("select count(*) from sqlite_master").fetchone()[0] > 0
