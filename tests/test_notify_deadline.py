"""A notification has a deadline: an SMTP server or a webhook that answers a line a second for ever
(every read inside its timeout) is given up at ``[notify] deadline``, counted as a failed attempt
and tried again on a later tick, and never holds up ``bhhub notify test``, the dispatcher, or the
runner's shutdown on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bhhub.runtime.app import Hub
from bhhub.cli.main import main
from bhhub.exchange.observe import RunnerWatch
from bhhub.notify import deliver_pending
from bhhub.store import schema
from notify_support import drips, raise_one  # noqa: F401 - a fixture

PROJECT = Path(__file__).resolve().parent.parent
DEADLINE = 1  # seconds: small, so the tests are quick
SLACK = 5  # generous: a loaded machine must not fail these


def _dripping_home(hub_home: Path, drips, *, email: bool = True, deadline: float = DEADLINE) -> Path:
    config = hub_home / "bhhub.toml"
    smtp = f"""
[notify.email]
host = "127.0.0.1"
port = {drips['smtp'].port}
starttls = false
sender = "bhhub@practice.example"
to = ["billing@practice.example"]
timeout = 5
""" if email else ""
    config.write_text(config.read_text() + f"""
[notify]
deadline = {deadline}
{smtp}
[notify.webhook]
url = "{drips['http'].url}"
timeout = 5
""")
    return hub_home


def _still_hanging(url: str) -> bool:
    """Whether the send to ``url`` given up at its deadline still runs: looked up by the address
    the deliverer keys it by (scheme://host:port, never the URL's path)."""
    from bhhub.notify.deadline import _hanging
    from bhhub.notify.targets import origin

    _, thread = _hanging.get(origin(url), ("", None))
    return thread is not None and thread.is_alive()


def _wait_until(condition, seconds: float = 20) -> bool:
    ends = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > ends:
            return False
        time.sleep(0.1)
    return True


def test_notify_test_gives_up_on_servers_that_drip_at_the_deadline(hub_home, drips, capsys):
    _dripping_home(hub_home, drips)
    started = time.monotonic()
    assert main(["--home", str(hub_home), "notify", "test", "--json"]) == 1
    took = time.monotonic() - started
    captured = capsys.readouterr()
    by_target = {o["target"]: o for o in json.loads(captured.out)}
    assert by_target["email"]["sent"] is False and "no answer within the deadline (1 s)" in by_target["email"]["error"]
    assert by_target["webhook"]["sent"] is False and "deadline" in by_target["webhook"]["error"]
    assert drips["smtp"].connections == 1 and drips["http"].connections == 1  # each was really tried
    assert took < 2 * DEADLINE + SLACK  # one deadline per target, not the servers' for ever
    assert "not delivered by email, webhook" in captured.err and "Traceback" not in captured.err


def test_a_webhook_that_drips_fails_the_attempt_and_gets_the_alert_once_it_answers(hub_home, drips):
    _dripping_home(hub_home, drips, email=False)
    with Hub.open(hub_home) as hub:
        alert_id = raise_one(hub, "job_failed:dispatcher")
        started = time.monotonic()
        counts = deliver_pending(hub)
        assert time.monotonic() - started < DEADLINE + SLACK
        with hub.store.session() as session:
            alert = session.get(schema.Alert, alert_id)
            # Recorded as failed (not left leased): tried again next tick, not ten minutes later.
            assert alert.notifications["webhook"] == "failed: no answer within the deadline (1 s)"
            assert alert.notified_at is None and alert.notify_attempts == 1
        assert counts["failed"] == 1 and counts["sent"] == 0
        # /healthz names it (no scheduler runs here, so its status is not the point)
        assert "webhook" in RunnerWatch(hub).health()[1]["notify_hanging"]

        deliver_pending(hub)  # the first send still hangs: no second thread on the same server
        assert drips["http"].connections == 1
        with hub.store.session() as session:
            assert session.get(schema.Alert, alert_id).notifications["webhook"].endswith("still hangs")
        assert _still_hanging(drips["http"].url)  # (so the wait below waits for the right thread)

        drips["http"].heal()  # the server is fixed: the hanging send ends, the next one is answered
        assert _wait_until(lambda: not _still_hanging(drips["http"].url))
        deliver_pending(hub)
        deliver_pending(hub)  # and nothing is left to send
        with hub.store.session() as session:
            alert = session.get(schema.Alert, alert_id)
            assert alert.notifications == {"webhook": "sent"} and alert.notified_at is not None
    assert [body["alert"]["id"] for body in drips["http"].bodies] == [alert_id]  # once


def test_a_plugin_that_hangs_is_given_up_at_the_deadline_and_the_others_still_get_the_alert(hub_home, drips):
    import threading

    from bhhub import hookimpl
    from bhhub.runtime.plugin_host import build_plugin_host

    config = hub_home / "bhhub.toml"
    config.write_text(config.read_text() + f"\n[notify]\ndeadline = {DEADLINE}\n")
    released = threading.Event()
    got: list[str] = []

    class Stuck:
        @hookimpl
        def bhhub_alert_raised(self, alert):
            released.wait(60)

    class Steady:
        @hookimpl
        def bhhub_alert_raised(self, alert):
            got.append(alert.key)

    host = build_plugin_host(extra=[("stuck", Stuck()), ("steady", Steady())])
    try:
        with Hub.open(hub_home, plugins=host) as hub:
            alert_id = raise_one(hub, "job_failed:dispatcher")
            started = time.monotonic()
            deliver_pending(hub)
            assert time.monotonic() - started < DEADLINE + SLACK
            with hub.store.session() as session:
                done = session.get(schema.Alert, alert_id).notifications
    finally:
        released.set()
    assert got == ["job_failed:dispatcher"]
    assert done == {"plugin:steady": "sent", "plugin:stuck": "failed: no answer within the deadline (1 s)"}


def test_bhhub_run_stops_on_sigterm_while_a_webhook_drips(hub_home, drips):
    _dripping_home(hub_home, drips, email=False, deadline=300)  # the deadline is far off: SIGTERM must not wait
    with Hub.open(hub_home) as hub:
        raise_one(hub, "job_failed:dispatcher")
    env = {**os.environ, "BHHUB_HOME": str(hub_home)}
    env.pop("BHHUB_DATABASE_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "bhhub.cli.main", "run"], env=env, cwd=PROJECT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert drips["http"].connected.wait(30), "the dispatcher never tried the webhook"
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        process.wait(timeout=30)
        took = time.monotonic() - stopped
    finally:
        if process.poll() is None:
            process.kill()
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert took < 20  # the deadline is 300 s: anything short of it shows the stop did not wait for the send
    with Hub.open(hub_home) as hub, hub.store.session() as session:
        alert = session.query(schema.Alert).one()
        # Recorded, not left leased: the next start sends it (at least once).
        assert alert.notifications["webhook"] == "failed: not finished when the runner stopped"
        assert alert.notified_at is None
