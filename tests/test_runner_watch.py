"""A runner you can watch: a log line per cycle and per file, /metrics and /healthz scraped over
HTTP, and alerts delivered to a real SMTP server and a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import date
from email import message_from_bytes
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from bhhub.intake import inbox as intake
from bhhub.runtime.app import Hub
from bhhub.demo.synthetic import encounter_bundle
from bhhub.exchange.alerts import raise_alert
from bhhub.exchange.observe import RunnerWatch
from bhhub.exchange.runner import _exchange_job
from bhhub.runtime.logs import configure
from bhhub.notify import MAX_ATTEMPTS, deliver_pending
from bhhub.runtime.plugin_host import build_plugin_host
from bhhub.store import schema
from sandbox_support import sandbox_mailbox
from notify_support import notify_home, raise_one, receivers  # noqa: F401 - a fixture

PROJECT = Path(__file__).resolve().parent.parent
SEEDS = (3, 5, 8)


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def _patients(hub) -> list[str]:
    """What must never be logged or served: the patients' names and member ids."""
    with hub.store.session() as session:
        names = [p.family_name for p in session.scalars(select(schema.Patient))]
        members = [c.member_id for c in session.scalars(select(schema.Coverage))]
    return [v for v in names + members if v]


# --- one line per cycle and per file, metrics from the same run -----------------------------------

def test_an_exchange_logs_a_line_per_file_and_per_cycle_and_counts_them_for_metrics(tmp_path, restore_logging):
    pytest.importorskip("pyx12")
    from bhhub.plugins.clearinghouse.sandbox import SandboxClearinghouse

    sandbox = SandboxClearinghouse(tmp_path / "sandbox", today=date(2026, 11, 30)).start()
    try:
        home = tmp_path / "home"
        home.mkdir()
        (home / "bhhub.toml").write_text(sandbox_mailbox(sandbox))
        log_file = tmp_path / "run.log"
        configure(watched=True, log_file=str(log_file), log_format="json")
        with Hub.open(home) as hub:
            for seed in SEEDS:
                assert intake.receive(hub, json.dumps(encounter_bundle(seed)).encode(), f"e{seed}.json").outcome == "imported"
            watch = RunnerWatch(hub)
            _exchange_job(hub, "sandbox", watch)  # sends the 837P; the answers are there at once
            _exchange_job(hub, "sandbox", watch)  # picks them up
            with hub.store.session() as session:
                transmissions = session.scalar(select(func.count()).select_from(schema.Transmission))
                picked = session.scalar(select(func.count()).select_from(schema.InboxItem)
                                        .where(schema.InboxItem.source_name.like("sandbox:%")))
                statuses = dict(session.execute(select(schema.Claim.status, func.count())
                                                .group_by(schema.Claim.status)).all())
            secrets = _patients(hub)
            host, port = watch.serve("127.0.0.1", 0)
            try:
                metrics = requests.get(f"http://{host}:{port}/metrics", timeout=5).text
                health = requests.get(f"http://{host}:{port}/healthz", timeout=5)
            finally:
                watch.close()
    finally:
        sandbox.stop()

    for handler in logging.getLogger().handlers:
        handler.flush()
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    events = [line.get("fields", {}).get("event") for line in lines if line["logger"] == "hub.run"]
    assert transmissions >= 1 and picked >= 3  # a TA1/999, a 277CA, an 835 at least
    assert events.count("file_sent") == transmissions
    assert events.count("file_received") == picked
    assert events.count("cycle") == 2  # one per exchange
    assert set(events) == {"file_sent", "file_received", "cycle"}
    # Nothing else at the default level but warnings (no library's per-connection chatter).
    assert all(line["level"] in ("warning", "error") for line in lines if line["logger"] != "hub.run")
    for line in lines:
        assert line["time"].endswith("+00:00")  # timestamps carry their timezone
    text = log_file.read_text()
    assert not [s for s in secrets if s in text], "a patient's name or member id was logged"

    assert f'bhhub_files_total{{direction="sent",mailbox="sandbox"}} {float(transmissions)}' in metrics
    assert f'bhhub_files_total{{direction="received",mailbox="sandbox"}} {float(picked)}' in metrics
    assert 'bhhub_mailbox_last_success_timestamp_seconds{mailbox="sandbox"}' in metrics
    for status, count in statuses.items():  # read from the store at the scrape
        assert f'bhhub_claims{{status="{status}"}} {float(count)}' in metrics
    assert "bhhub_store_up 1.0" in metrics
    assert not [s for s in secrets if s in metrics]
    # No scheduler in this test: the runner is not healthy, and says why.
    assert health.status_code == 503 and "scheduler" in health.json()["problems"][0]


# --- bhhub run itself, watched from outside ---------------------------------------------------------

def test_bhhub_run_serves_metrics_and_health_and_logs_json_until_sigterm(tmp_path, database_url):
    home = tmp_path / "home"
    home.mkdir()
    (home / "bhhub.toml").write_text(f'[store]\nurl = "{database_url}"\n')
    with Hub.open(home) as hub, hub.store.session() as session:
        raise_alert(session, "mailbox_unreachable:x", "mailbox_unreachable", "mailbox x could not be reached")
        session.commit()
    log_file = tmp_path / "logs" / "run.log"
    log_file.parent.mkdir()
    env = {**os.environ, "BHHUB_HOME": str(home)}
    process = subprocess.Popen([sys.executable, "-m", "bhhub.cli.main", "run", "--metrics-port", "0",
                                "--log-file", str(log_file), "--log-format", "json"],
                               env=env, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert "metrics on http://127.0.0.1:" in line, (line, process.stderr.read() if process.poll() else "")
        url = line.split("metrics on ", 1)[1].split(";", 1)[0].rsplit("/metrics", 1)[0]
        deadline = time.monotonic() + 20
        while True:  # the dispatcher runs at start; wait until it has run once
            metrics = requests.get(f"{url}/metrics", timeout=5).text
            if 'bhhub_job_runs_total{job="dispatcher",outcome="succeeded"}' in metrics or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        health = requests.get(f"{url}/healthz", timeout=5)
        missing = requests.get(f"{url}/other", timeout=5)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert health.status_code == 200 and health.json()["scheduler"] == "running" and health.json()["store"] == "ok"
    assert missing.status_code == 404
    assert 'bhhub_alerts_open{kind="mailbox_unreachable"} 1.0' in metrics
    assert 'bhhub_job_duration_seconds_count{job="dispatcher"}' in metrics
    events = [json.loads(line).get("fields", {}).get("event") for line in log_file.read_text().splitlines()]
    assert events[0] == "started" and events[-1] == "stopped"
    assert err == ""  # everything went to the log file


# --- alerts reach people ------------------------------------------------------------------------------

def test_an_alert_goes_once_to_email_and_webhook_and_a_target_that_was_down_gets_it_later(
        hub_home, receivers, monkeypatch):
    monkeypatch.setenv("BHHUB_TEST_WEBHOOK_TOKEN", "t0ken")
    notify_home(hub_home, receivers, token=True)
    receivers["handler"].failures_left = 1  # the webhook is down for the first try
    with Hub.open(hub_home) as hub:
        first = raise_one(hub, "ack_missing:transmission:7")
        assert raise_one(hub, "ack_missing:transmission:7") == first  # counted, not a second alert
        deliver_pending(hub)
        assert len(receivers["mails"]) == 1 and receivers["handler"].bodies == []
        with hub.store.session() as session:
            alert = session.get(schema.Alert, first)
            assert alert.notified_at is None and alert.notifications["email"] == "sent"
            assert alert.notifications["webhook"].startswith("failed")
        deliver_pending(hub)  # the next tick: the webhook only, the email is not sent again
        deliver_pending(hub)  # and then nothing
        with hub.store.session() as session:
            assert session.get(schema.Alert, first).notified_at is not None
    assert len(receivers["mails"]) == 1
    mail = message_from_bytes(receivers["mails"][0]) if isinstance(receivers["mails"][0], bytes) else receivers["mails"][0]
    assert "ack_missing:transmission:7" in mail["Subject"]
    assert "billing@practice.example" in mail["To"] and "owner@practice.example" in mail["To"]
    assert len(receivers["handler"].bodies) == 1
    body, auth = receivers["handler"].bodies[0]
    assert body["alert"]["key"] == "ack_missing:transmission:7" and body["alert"]["id"] == first
    assert auth == "Bearer t0ken"


def test_a_target_down_for_good_is_given_up_after_the_attempts_and_others_still_get_theirs(hub_home, receivers,
                                                                                          capsys):
    notify_home(hub_home, receivers)
    receivers["handler"].failures_left = 10 ** 6
    with Hub.open(hub_home) as hub:
        alert_id = raise_one(hub, "mailbox_unreachable:oa")
        for _ in range(MAX_ATTEMPTS + 3):
            deliver_pending(hub)
        with hub.store.session() as session:
            alert = session.get(schema.Alert, alert_id)
            assert alert.notify_attempts == MAX_ATTEMPTS and alert.notified_at is not None
            assert alert.notifications["email"] == "sent" and alert.notifications["webhook"].startswith("failed")
    assert len(receivers["mails"]) == 1
    from bhhub.cli.main import main

    assert main(["--home", str(hub_home), "alerts", "--json"]) == 0  # a person sees what did not go out
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["notifications"]["webhook"].startswith("failed") and listed[0]["notified_at"]


def test_a_plugin_receives_alerts_and_one_that_fails_is_tried_again_alone(hub_home, receivers):
    from bhhub import hookimpl

    got: dict[str, list] = {"steady": [], "flaky": []}

    class Steady:
        @hookimpl
        def bhhub_alert_raised(self, alert):
            got["steady"].append(alert.key)

    class Flaky:
        failures = 1

        @hookimpl
        def bhhub_alert_raised(self, alert):
            if Flaky.failures:
                Flaky.failures -= 1
                raise ConnectionError("pager down")
            got["flaky"].append(alert.key)

    host = build_plugin_host(extra=[("steady", Steady()), ("flaky", Flaky())])
    with Hub.open(hub_home, plugins=host) as hub:
        raise_one(hub, "job_failed:dispatcher")
        deliver_pending(hub)
        deliver_pending(hub)
        deliver_pending(hub)
    assert got == {"steady": ["job_failed:dispatcher"], "flaky": ["job_failed:dispatcher"]}


def test_alerts_raised_before_any_notifier_was_configured_are_not_mailed_out_later(hub_home, receivers):
    with Hub.open(hub_home) as hub:
        raise_one(hub, "old:1")
        deliver_pending(hub)  # nothing configured: marked as needing no delivery
    notify_home(hub_home, receivers)
    with Hub.open(hub_home) as hub:
        raise_one(hub, "new:2")
        deliver_pending(hub)
    assert [m["Subject"] for m in receivers["mails"]] == ["bhhub alert: new: new:2"]


@pytest.mark.parametrize("section, complaint", [
    ('[notify.email]\nhost = "h"\nsender = "bhhub@h.example"\nto = ["billing@h.example"]\npassword = "hunter2"\n',
     "secrets are never written here"),
    ('[notify.webhook]\nurl = "http://h/x"\ntimout = 5\n', "did you mean 'timeout'"),
    ('[notify.pager]\nurl = "http://h/x"\n', "unknown key 'notify.pager'"),
    ('[notify.webhook]\nurl = "ftp://h/x"\n', "http:// or https://"),
    ('[notify.email]\nhost = "h"\nsender = "bhhub@h.example"\n', "'notify.email.to' is missing"),
])
def test_a_wrong_notify_section_stops_bhhub_run_at_start_naming_the_key(tmp_path, section, complaint):
    home = tmp_path / "home"
    home.mkdir()
    (home / "bhhub.toml").write_text(section)
    result = subprocess.run([sys.executable, "-m", "bhhub.cli.main", "--home", str(home), "run"], cwd=PROJECT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert complaint in result.stderr and "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize("verbose, watched, shown", [
    (False, False, {"apscheduler WARNING"}),
    (False, True, {"apscheduler WARNING", "hub.run INFO"}),
    (True, False, {"apscheduler WARNING", "hub.run INFO", "bhhub.intake.inbox INFO", "bhhub.plugins.ehr INFO"}),
])
def test_what_each_level_shows_and_library_chatter_never(tmp_path, restore_logging, verbose, watched, shown):
    log_file = tmp_path / "l.log"
    configure(verbose=verbose, watched=watched, log_file=str(log_file))
    logging.getLogger("paramiko.transport").info("Connected (version 2.0)")  # a line per connection
    logging.getLogger("apscheduler.executors").info("Running job dispatcher")  # a line per tick
    logging.getLogger("apscheduler.scheduler").warning("Run time of job was missed")
    logging.getLogger("hub.run").info("exchange x: 0 file(s) sent")
    logging.getLogger("bhhub.intake.inbox").info("inbox item 7 stored")
    logging.getLogger("bhhub.intake.inbox").debug("parsed")
    logging.getLogger("bhhub.plugins.ehr").info("read")
    for handler in logging.getLogger().handlers:
        handler.flush()
    seen = set()
    for line in log_file.read_text().splitlines():  # "date time LEVEL logger: message"
        level, name = line.split()[2], line.split()[3].rstrip(":")
        seen.add(f"{'apscheduler' if name.startswith('apscheduler') else name} {level}")
    assert seen == shown


def test_a_redirect_is_not_delivery_and_a_target_down_is_tried_once_per_tick_not_once_per_alert(hub_home, receivers):
    notify_home(hub_home, receivers)
    receivers["handler"].redirect = True  # a webhook URL that moved: requests would follow it as a GET
    with Hub.open(hub_home) as hub:
        ids = [raise_one(hub, f"job_failed:job{n}") for n in range(3)]
        deliver_pending(hub)
        with hub.store.session() as session:
            states = [session.get(schema.Alert, i).notifications for i in ids]
    assert [s["webhook"] for s in states][0] == "failed: HTTP 302"
    assert all(s["email"] == "sent" for s in states) and all(s["webhook"].startswith("failed") for s in states)
    assert receivers["handler"].requests == 1  # the first failure skips the target for the rest of the tick
    assert receivers["handler"].bodies == []


def _self_signed(tmp_path):
    """A certificate for 127.0.0.1 that no system CA signed, and its key."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "smtp.pem", tmp_path / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_starttls_checks_the_servers_certificate_before_the_password_goes(hub_home, tmp_path, monkeypatch):
    """A server with a certificate no trusted CA signed never sees the login; with the practice's
    own CA named in ca_file the same server gets the alert."""
    import ssl

    controller = pytest.importorskip("aiosmtpd.controller")
    from aiosmtpd.handlers import Message
    from aiosmtpd.smtp import AuthResult

    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    mails, logins = [], []

    class Keep(Message):
        def handle_message(self, message):
            mails.append(message)

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append(auth_data)
        return AuthResult(success=True)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    smtp = controller.Controller(Keep(message_class=None), hostname="127.0.0.1", port=port, tls_context=context,
                                 require_starttls=True, authenticator=authenticator, auth_require_tls=True)
    smtp.start()
    monkeypatch.setenv("BHHUB_TEST_SMTP_PASSWORD", "s3cret-pw")
    config = hub_home / "bhhub.toml"
    base = config.read_text() + f"""
[notify.email]
host = "127.0.0.1"
port = {port}
username = "bhhub"
password_env = "BHHUB_TEST_SMTP_PASSWORD"
sender = "bhhub@practice.example"
to = ["billing@practice.example"]
timeout = 5
"""
    try:
        config.write_text(base)
        with Hub.open(hub_home) as hub:
            alert_id = raise_one(hub, "ack_missing:transmission:9")
            deliver_pending(hub)
            with hub.store.session() as session:
                assert session.get(schema.Alert, alert_id).notifications["email"].startswith("failed")
        assert logins == [] and mails == []
        config.write_text(base.replace('timeout = 5\n', f'timeout = 5\nca_file = "{cert}"\n'))
        with Hub.open(hub_home) as hub:
            deliver_pending(hub)
            with hub.store.session() as session:
                assert session.get(schema.Alert, alert_id).notifications["email"] == "sent"
        assert len(mails) == 1 and len(logins) == 1
    finally:
        smtp.stop()


def test_a_username_without_starttls_is_refused_before_any_password_is_sent(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "bhhub.toml").write_text('[notify.email]\nhost = "h"\nsender = "bhhub@h.example"\n'
                                     'to = ["billing@h.example"]\nstarttls = false\n'
                                     'username = "u"\npassword_env = "X"\n')
    result = subprocess.run([sys.executable, "-m", "bhhub.cli.main", "--home", str(home), "run"], cwd=PROJECT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "password in clear" in result.stderr


def test_a_client_that_stalls_does_not_hold_up_health_checks(tmp_path):
    home = tmp_path / "home"
    with Hub.open(home, create=True) as hub:
        watch = RunnerWatch(hub)
        host, port = watch.serve("127.0.0.1", 0)
        try:
            slow = socket.create_connection((host, port), timeout=5)
            slow.sendall(b"GET /metr")  # and nothing more
            started = time.monotonic()
            health = requests.get(f"http://{host}:{port}/healthz", timeout=5)
            assert health.status_code == 503  # answered (no scheduler here), not blocked behind the slow one
            assert time.monotonic() - started < 5
            slow.close()
        finally:
            watch.close()


def test_metrics_on_a_port_in_use_is_one_line_naming_it(tmp_path):
    home = tmp_path / "home"
    Hub.open(home, create=True).close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "bhhub.cli.main", "--home", str(home), "run", "--metrics-port",
                                 str(port)], cwd=PROJECT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and f"127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr
