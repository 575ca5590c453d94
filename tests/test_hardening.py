"""Smaller promises of issue 13: a listing piped to `head`, a parse worker outliving its intake,
an inbox item that keeps failing, and a file stored but never applied seen again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from bhhub.intake import inbox as intake
from bhhub.demo.synthetic import encounter_bundle
from bhhub.store import schema

PROJECT = Path(__file__).resolve().parent.parent


def _bhhub(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bhhub.cli.main", *args], cwd=PROJECT, **kwargs)


def test_a_listing_whose_reader_goes_away_ends_quietly_without_a_traceback(sqlite_hub):
    for seed in range(1, 12):
        intake.receive(sqlite_hub, json.dumps(encounter_bundle(seed)).encode(), f"v{seed}.json")
    hub_home = sqlite_hub.settings.home
    for listing in (("claims",), ("claims", "--json"), ("inbox",)):
        read, write = os.pipe()
        os.close(read)  # `| head` that has already had enough
        process = _bhhub("--home", str(hub_home), *listing, stdout=write, stderr=subprocess.PIPE)
        os.close(write)
        _, err = process.communicate(timeout=120)
        assert b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()
        assert process.returncode == 141  # as a shell reports a command ended by SIGPIPE


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir() or (os.cpu_count() or 1) < 2,
                    reason="needs /proc and two cores (the worker starts only then)")
def test_the_parse_worker_ends_when_its_intake_is_killed(tmp_path):
    from bhhub.cli.commands import PARALLEL_FROM

    folder = tmp_path / "visits"
    folder.mkdir()
    for seed in range(PARALLEL_FROM + 10):
        (folder / f"v{seed}.json").write_text(json.dumps(encounter_bundle(seed % 40 + 1)))
    env = {**os.environ, "BHHUB_PAUSE_AT": "intake:before_commit", "BHHUB_PAUSE_SECONDS": "60"}
    assert _bhhub("--home", str(tmp_path / "home"), "init", stdout=subprocess.DEVNULL).wait(timeout=120) == 0
    process = _bhhub("--home", str(tmp_path / "home"), "intake", str(folder), env=env,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        workers: list[int] = []
        while time.monotonic() < deadline and not workers:
            workers = [child for child in _children(process.pid) if "python" in
                       (Path("/proc") / str(child) / "cmdline").read_bytes().decode(errors="replace")]
            time.sleep(0.2)
        assert workers, "the intake never started its parse worker"
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.2)
        assert not any(_alive(w) for w in workers), "the parse worker outlived its intake"
    finally:
        if process.poll() is None:
            process.kill()


def test_an_item_that_keeps_failing_stays_kept_and_raises_one_alert(hub, monkeypatch):
    content = json.dumps(encounter_bundle(4)).encode()

    def broken(*_args, **_kwargs):
        raise RuntimeError("a bug in a plugin")

    monkeypatch.setattr(intake, "_process_once", broken)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            intake.receive(hub, content, "visit.json")
    for _ in range(3):
        intake.finish_received(hub)  # every exchange tries it again
    with hub.store.session() as session:
        item = session.scalars(select(schema.InboxItem)).one()
        assert item.state == "received" and item.attempts == 5
        assert "RuntimeError" in item.reason
        alerts = session.scalars(select(schema.Alert).where(schema.Alert.kind == "inbox_item_failing")).all()
        assert len(alerts) == 1 and str(item.id) in alerts[0].message
    monkeypatch.undo()
    done = intake.finish_received(hub)
    assert [r.outcome for r in done] == ["imported"]


def test_the_same_bytes_as_an_item_left_received_are_processed_not_called_a_duplicate(hub):
    content = json.dumps(encounter_bundle(6)).encode()
    with hub.store.writer() as session:
        intake.store_raw(session, hub.store.dialect, "visit.json", content)
        session.commit()  # stored raw, then the process died
    again = intake.receive(hub, content, "visit.json")
    assert again.outcome == "imported"
    assert intake.receive(hub, content, "visit.json").outcome == "duplicate"
    with hub.store.session() as session:
        assert len(session.scalars(select(schema.Claim)).all()) == 1
