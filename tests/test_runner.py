"""`bhhub run`: one runner per hub home, jobs from configuration, missed runs never silent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from bhhub.runtime.app import Hub
from bhhub.exchange.runner import MISFIRE_GRACE_SECONDS, _on_event, build_scheduler, run
from bhhub.store import schema

PROJECT = Path(__file__).resolve().parent.parent

MAILBOX = """
[mailboxes.{name}]
profile = "generic"
schedule = "{schedule}"
host = "127.0.0.1"
port = 9
username = "practice"
password_env = "NO_SUCH_PASSWORD"
known_hosts = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"]
"""


def _home(tmp_path: Path, mailboxes: dict[str, str]) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "bhhub.toml").write_text("".join(MAILBOX.format(name=n, schedule=s) for n, s in mailboxes.items()))
    return home


def _cli(home: Path, *args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "BHHUB_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-m", "bhhub.cli.main", *args], env=env, cwd=PROJECT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def test_jobs_come_from_configuration_with_explicit_misfire_coalescing_and_one_instance(tmp_path):
    home = _home(tmp_path, {"officeally": "*/15 * * * *", "stedi": "0 6 * * 1-5"})
    with Hub.open(home) as hub:
        scheduler = build_scheduler(hub)
        scheduler.start(paused=True)  # job defaults are applied when the scheduler starts
        jobs = {job.id: job for job in scheduler.get_jobs()}
        scheduler.shutdown(wait=False)
    assert set(jobs) == {"exchange:officeally", "exchange:stedi", "dispatcher", "enrollments",
                         "eligibility_sweep"}
    for job in jobs.values():
        assert job.coalesce is True and job.max_instances == 1
        assert job.misfire_grace_time == MISFIRE_GRACE_SECONDS
    assert "minute='*/15'" in str(jobs["exchange:officeally"].trigger)
    assert "day_of_week='1-5'" in str(jobs["exchange:stedi"].trigger)
    assert jobs["exchange:officeally"].args[1] == "officeally"  # a name, nothing pickled


def test_a_schedule_that_is_not_cron_is_a_clear_error(tmp_path):
    home = _home(tmp_path, {"ch": "every fifteen minutes"})
    process = _cli(home, "run")
    out, err = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "not a cron expression" in err and "Traceback" not in err


def test_a_second_runner_on_the_same_home_refuses_to_start(tmp_path):
    home = _home(tmp_path, {"ch": "0 3 * * *"})
    first = _cli(home, "run")
    try:
        deadline = time.monotonic() + 60
        while not (home / "bhhub.run.lock").exists() or not (home / "bhhub.run.lock").read_text().strip():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        second = _cli(home, "run")
        out, err = second.communicate(timeout=60)
        assert second.returncode == 2
        assert "another bhhub run is already using" in err and str(first.pid) in err
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert first.returncode == 0


def test_a_missed_run_is_an_alert_and_a_later_good_run_clears_it(tmp_path):
    """APScheduler's own missed-run event, from a job whose time passed beyond its grace."""
    home = _home(tmp_path, {})
    with Hub.open(home) as hub:
        scheduler = build_scheduler(hub)
        scheduler.start(paused=True)
        try:
            ran = threading.Event()
            scheduler.add_job(ran.set, "date", run_date=datetime.now(timezone.utc) - timedelta(hours=1),
                              id="exchange:ch", misfire_grace_time=1)
            scheduler.resume()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with hub.store.session() as session:
                    if session.scalars(select(schema.Alert)).first():
                        break
                time.sleep(0.05)
            assert not ran.is_set()
            scheduler.add_job(ran.set, id="exchange:ch", replace_existing=True)
            assert ran.wait(10)
            time.sleep(0.5)
        finally:
            scheduler.shutdown(wait=True)
        with hub.store.session() as session:
            [alert] = session.scalars(select(schema.Alert)).all()
    assert alert.kind == "job_missed" and "exchange:ch" in alert.message
    assert alert.cleared_at is not None


def test_a_failing_job_is_one_alert_however_often_it_fails(tmp_path):
    home = _home(tmp_path, {})

    class Event:
        def __init__(self, code):
            self.code, self.job_id, self.exception = code, "exchange:ch", RuntimeError("boom")
            self.scheduled_run_time = datetime.now(timezone.utc)

    from apscheduler.events import EVENT_JOB_ERROR

    with Hub.open(home) as hub:
        for _ in range(3):
            _on_event(hub, Event(EVENT_JOB_ERROR))
        with hub.store.session() as session:
            [alert] = session.scalars(select(schema.Alert)).all()
    assert alert.kind == "job_failed" and alert.occurrences == 3 and alert.cleared_at is None


def test_the_runner_exchanges_on_schedule_and_an_unreachable_mailbox_is_an_alert(tmp_path, monkeypatch):
    """A real run: the every-minute schedule fires, the mailbox (nothing listens on port 9)
    cannot be reached, and that is one alert, not a crash of the runner."""
    pytest.importorskip("apscheduler")
    home = _home(tmp_path, {"ch": "* * * * *"})
    monkeypatch.setenv("NO_SUCH_PASSWORD", "x")
    stop = threading.Event()
    with Hub.open(home) as hub:
        scheduler_thread = threading.Thread(target=run, args=(hub,), kwargs={"stop": stop})
        scheduler_thread.start()
        try:
            deadline = time.monotonic() + 75  # the next whole minute
            alert = None
            while time.monotonic() < deadline and alert is None:
                time.sleep(0.5)
                with hub.store.session() as session:
                    alert = session.scalars(select(schema.Alert).where(schema.Alert.kind == "mailbox_unreachable")).first()
        finally:
            stop.set()
            scheduler_thread.join(timeout=30)
    assert alert is not None and "mailbox ch" in alert.message
    assert not scheduler_thread.is_alive()
