"""Notifications as a reader of bhhub.toml and as a sender: which targets ``[notify]`` makes, what
leaves the hub, what is never sent, and delivery that survives a twin and a kill."""

from __future__ import annotations

import dataclasses

import pytest

from bhhub.runtime.config import load_settings
from bhhub.errors import ConfigError
from bhhub.notify import EmailTarget, WebhookTarget, targets
from notify_support import notify_home, raise_one, receivers  # noqa: F401 - a fixture


def _settings(tmp_path, text: str):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "bhhub.toml").write_text(text, encoding="utf-8")
    return load_settings(home)


EMAIL = '[notify.email]\nhost = "smtp.example.org"\nsender = "bhhub@example.org"\nto = "billing@example.org"\n'
WEBHOOK = '[notify.webhook]\nurl = "https://chat.example.org/hook"\n'


def test_the_targets_come_from_the_checked_model_not_a_second_reading_of_the_file(tmp_path):
    settings = _settings(tmp_path, EMAIL + WEBHOOK)
    # The raw TOML is what the model was built from; the notifiers must not read it again.
    found = targets(dataclasses.replace(settings, raw={}))
    assert [type(t) for t in found] == [EmailTarget, WebhookTarget]
    email = found[0]
    assert email.to == ("billing@example.org",) and email.port == 587 and email.starttls


def test_the_smtp_port_defaults_to_587_with_starttls_and_25_without(tmp_path):
    plain = _settings(tmp_path, EMAIL + "starttls = false\n")
    assert targets(plain)[0].port == 25
    named = _settings(tmp_path, EMAIL + "port = 2525\n")
    assert targets(named)[0].port == 2525


def test_secrets_are_looked_up_where_the_file_names_them(tmp_path, monkeypatch):
    secret = tmp_path / "smtp.pw"
    secret.write_text("from-a-file\n")
    by_file = _settings(tmp_path, EMAIL + f'username = "u"\npassword_file = "{secret}"\n')
    assert targets(by_file)[0].password == "from-a-file"
    monkeypatch.setenv("BHHUB_TEST_TOKEN", "from-the-env")
    by_env = _settings(tmp_path, WEBHOOK + 'token_env = "BHHUB_TEST_TOKEN"\n')
    assert targets(by_env)[0].token == "from-the-env"
    monkeypatch.delenv("BHHUB_TEST_TOKEN")
    with pytest.raises(ConfigError, match="BHHUB_TEST_TOKEN"):
        targets(by_env)


@pytest.mark.parametrize("extra, complaint", [
    ('password = "hunter2"\n', "secrets are never written here"),
    ('starttls = false\nusername = "u"\npassword_env = "X"\n', "password in clear"),
    ('username = "u"\npassword_env = "X"\npassword_file = "/f"\n', "password_env or password_file"),
])
def test_a_password_in_clear_is_refused_when_the_file_is_read(tmp_path, extra, complaint):
    with pytest.raises(ConfigError, match=complaint) as refused:
        _settings(tmp_path, EMAIL + extra)
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize("section, complaint", [
    (EMAIL.replace('to = "billing@example.org"', "to = []"), "notify.email.to must name at least one email address"),
    (EMAIL.replace('sender = "bhhub@example.org"', 'sender = "bhhub"'),
     "notify.email.sender must be one email address"),
    (EMAIL.replace('to = "billing@example.org"', 'to = ["billing@example.org", "owner"]'),
     "notify.email.to must be email addresses, one per entry (entry 2)"),
    (EMAIL.replace('to = "billing@example.org"', 'to = "billing@example.org, owner@example.org"'),
     "several go in a list"),
    (WEBHOOK.replace("https://", "https://bhhub:hunter2@"), "notify.webhook.url must not carry a user or password"),
    (WEBHOOK.replace("https://", "https://hunter2@"), "token_env"),
    (WEBHOOK + "[notify]\ndeadline = 0\n", "notify.deadline must be greater than 0"),
    # a deadline the clock cannot hold (OverflowError at the first send) or that never ends
    (WEBHOOK + "[notify]\ndeadline = inf\n", "notify.deadline must be a finite number"),
    (WEBHOOK + "[notify]\ndeadline = nan\n", "notify.deadline"),
    (WEBHOOK + "[notify]\ndeadline = 99999999999999999999\n", "notify.deadline must be at most 300"),
    (WEBHOOK + "[notify]\ndeadline = 301\n", "notify.deadline must be at most 300"),
    (WEBHOOK + "timeout = inf\n", "notify.webhook.timeout must be a finite number"),
    (EMAIL + "timeout = 1e20\n", "notify.email.timeout must be at most 300"),
    # a line break in an address would add a header of the sender's choosing (a Bcc: to someone)
    (EMAIL.replace('sender = "bhhub@example.org"', 'sender = "X\\r\\nBcc: victim <hunter2@b.org>"'),
     "notify.email.sender must not hold a line break"),
    (EMAIL.replace('to = "billing@example.org"', 'to = ["billing@example.org", "Y\\nBcc: v2 <hunter2@y.org>"]'),
     "notify.email.to must not hold a line break or other control character: in a mail header it would start "
     "another header (a Bcc: to someone else) (entry 2)"),
    (EMAIL.replace('to = "billing@example.org"', 'to = "billing@example.org\\u2028Bcc: hunter2@y.org"'),
     "notify.email.to must not hold a line break"),
    (EMAIL.replace('sender = "bhhub@example.org"', 'sender = "Bill\\ting <bhhub@example.org>"'),
     "notify.email.sender must not hold a line break"),
])
def test_a_notify_section_that_could_reach_nobody_or_leaks_a_secret_is_refused_naming_file_and_key(
        tmp_path, section, complaint):
    with pytest.raises(ConfigError) as refused:
        _settings(tmp_path, section)
    said = str(refused.value)
    assert said.startswith(f"{tmp_path / 'home' / 'bhhub.toml'}: ") and complaint in said
    assert "\n" not in said and "hunter2" not in said  # one line, and the secret is not repeated


def test_a_sender_with_a_display_name_and_several_recipients_are_taken(tmp_path):
    named = EMAIL.replace('sender = "bhhub@example.org"', 'sender = "Billing <bhhub@example.org>"')
    settings = _settings(tmp_path, named.replace('to = "billing@example.org"',
                                                 'to = ["billing@example.org", "owner@localhost"]'))
    email = targets(settings)[0]
    assert email.sender == "Billing <bhhub@example.org>" and email.to == ("billing@example.org", "owner@localhost")
    assert email.deadline == 30  # [notify] deadline's default, the whole of one send


def test_a_ca_file_that_is_not_there_is_named(tmp_path):
    settings = _settings(tmp_path, EMAIL + f'ca_file = "{tmp_path / "missing.pem"}"\n')
    with pytest.raises(ConfigError, match="ca_file"):
        targets(settings)


# --- an incident that ended before anyone heard of it ---------------------------------------------------

def _clear(hub, key: str) -> None:
    from bhhub.exchange.alerts import clear_alert

    with hub.store.session() as session:
        assert clear_alert(session, key)
        session.commit()


def _alert(hub, alert_id: int):
    from bhhub.store import schema

    with hub.store.session() as session:
        return session.get(schema.Alert, alert_id)


def test_an_alert_cleared_before_delivery_goes_to_no_target(hub_home, receivers):
    from bhhub.runtime.app import Hub
    from bhhub.notify import CLEARED, deliver_pending

    notify_home(hub_home, receivers)
    with Hub.open(hub_home) as hub:
        gone = raise_one(hub, "mailbox_unreachable:oa")
        _clear(hub, "mailbox_unreachable:oa")  # the mailbox answered again before the runner's tick
        still = raise_one(hub, "job_failed:dispatcher")
        counts = deliver_pending(hub)
        deliver_pending(hub)
        closed, open_one = _alert(hub, gone), _alert(hub, still)
    assert [m["Subject"] for m in receivers["mails"]] == ["bhhub alert: job_failed: job_failed:dispatcher"]
    assert [body["alert"]["id"] for body, _ in receivers["handler"].bodies] == [still]
    assert closed.notified_at is not None  # done with: not a backlog tried every tick
    assert closed.notifications == {"email": CLEARED, "webhook": CLEARED}
    assert open_one.notifications == {"email": "sent", "webhook": "sent"}
    assert counts["cleared"] == 1


def test_a_target_that_was_down_does_not_get_an_alert_cleared_meanwhile(hub_home, receivers):
    from bhhub.runtime.app import Hub
    from bhhub.notify import CLEARED, deliver_pending

    notify_home(hub_home, receivers)
    receivers["handler"].failures_left = 1  # the webhook misses the first tick
    with Hub.open(hub_home) as hub:
        alert_id = raise_one(hub, "ack_missing:transmission:3")
        deliver_pending(hub)
        _clear(hub, "ack_missing:transmission:3")  # the 999 came
        deliver_pending(hub)
        alert = _alert(hub, alert_id)
    assert len(receivers["mails"]) == 1  # the email had gone before the clearing: it stays sent
    assert receivers["handler"].bodies == [] and receivers["handler"].requests == 1
    assert alert.notifications == {"email": "sent", "webhook": CLEARED} and alert.notified_at is not None


# --- what leaves the hub -----------------------------------------------------------------------------------

ELIGIBILITY_KEY = "eligibility_inactive:payer:87726:patient:42"
SAID = "eligibility check 9: payer 87726 says coverage inactive for patient 42 (date of service 2026-10-14)"


def _raise_said(hub) -> int:
    from sqlalchemy import select

    from bhhub.exchange.alerts import raise_alert
    from bhhub.store import schema

    with hub.store.session() as session:
        raise_alert(session, ELIGIBILITY_KEY, "eligibility_inactive", SAID)
        session.commit()
        return session.scalar(select(schema.Alert.id).where(schema.Alert.key == ELIGIBILITY_KEY))


def _received(receivers) -> tuple[str, str]:
    """Everything the SMTP server and the HTTP receiver were given, as text."""
    import json

    mails = "\n".join(m.as_string() for m in receivers["mails"])
    posts = "\n".join(json.dumps(body) for body, _ in receivers["handler"].bodies)
    return mails, posts


def test_email_and_webhook_carry_ids_only_unless_the_practice_opts_in(hub_home, receivers):
    from bhhub.runtime.app import Hub
    from bhhub.notify import deliver_pending

    notify_home(hub_home, receivers)
    with Hub.open(hub_home) as hub:
        alert_id = _raise_said(hub)
        deliver_pending(hub)
    mails, posts = _received(receivers)
    assert len(receivers["mails"]) == 1 and len(receivers["handler"].bodies) == 1
    for sent in (mails, posts):
        assert ELIGIBILITY_KEY in sent and str(alert_id) in sent  # enough to look it up on the hub
        assert "2026-10-14" not in sent and "date of service" not in sent and SAID not in sent
    body = receivers["handler"].bodies[0][0]
    assert set(body["alert"]) == {"id", "key", "kind", "raised_at"}


def test_include_message_sends_the_alerts_message_too(hub_home, receivers):
    from bhhub.runtime.app import Hub
    from bhhub.notify import deliver_pending

    notify_home(hub_home, receivers)
    config = hub_home / "bhhub.toml"
    config.write_text(config.read_text() + "\n[notify]\ninclude_message = true\n")
    with Hub.open(hub_home) as hub:
        _raise_said(hub)
        deliver_pending(hub)
    assert SAID in receivers["mails"][0].get_payload(decode=True).decode()
    assert receivers["handler"].bodies[0][0]["alert"]["message"] == SAID


# --- bhhub notify test ---------------------------------------------------------------------------------------

def test_notify_test_reaches_every_target_and_records_nothing(hub_home, receivers, capsys):
    import json

    from sqlalchemy import func, select

    from bhhub.runtime.app import Hub
    from bhhub.cli.main import main
    from bhhub.store import schema

    notify_home(hub_home, receivers)
    assert main(["--home", str(hub_home), "notify", "test", "--json"]) == 0
    outcomes = json.loads(capsys.readouterr().out)
    assert outcomes == [{"target": "email", "sent": True, "error": None},
                        {"target": "webhook", "sent": True, "error": None}]
    assert len(receivers["mails"]) == 1 and receivers["mails"][0]["Subject"].startswith("bhhub alert: notify_test")
    assert receivers["handler"].bodies[0][0]["alert"]["kind"] == "notify_test"
    with Hub.open(hub_home) as hub, hub.store.session() as session:
        assert session.scalar(select(func.count()).select_from(schema.Alert)) == 0  # a test opens no alert


def test_notify_test_exits_1_naming_the_target_that_failed_and_still_tries_the_others(hub_home, receivers, capsys):
    from bhhub.cli.main import main

    notify_home(hub_home, receivers)
    receivers["handler"].failures_left = 1
    assert main(["--home", str(hub_home), "notify", "test"]) == 1
    captured = capsys.readouterr()
    assert "email: sent" in captured.out and "webhook: FAILED: HTTP 503" in captured.out
    assert captured.err.strip() == "bhhub: notify test: not delivered by webhook"
    assert len(receivers["mails"]) == 1


def test_notify_test_with_the_smtp_server_gone_names_email(hub_home, receivers, capsys):
    import json
    import socket

    from bhhub.cli.main import main

    notify_home(hub_home, receivers)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    config = hub_home / "bhhub.toml"
    config.write_text(config.read_text().replace(f"port = {receivers['smtp_port']}", f"port = {closed}"))
    assert main(["--home", str(hub_home), "notify", "test", "--json"]) == 1
    captured = capsys.readouterr()
    by_target = {o["target"]: o for o in json.loads(captured.out)}
    assert by_target["email"]["sent"] is False and "ConnectionRefusedError" in by_target["email"]["error"]
    assert by_target["webhook"]["sent"] is True
    assert "not delivered by email" in captured.err and "Traceback" not in captured.err


def test_notify_test_with_nothing_configured_says_so(hub_home, capsys):
    from bhhub.cli.main import main

    assert main(["--home", str(hub_home), "notify", "test"]) == 1
    assert "nothing to test" in capsys.readouterr().err


# --- a twin, and a kill between sending and recording -----------------------------------------------------

def _keys_received(receivers) -> tuple[list[str], list[str]]:
    mails = sorted(m["Subject"].rsplit(": ", 1)[1] for m in receivers["mails"])
    posts = sorted(body["alert"]["key"] for body, _ in receivers["handler"].bodies)
    return mails, posts


def test_two_deliveries_at_once_send_each_alert_once_to_each_target(hub_home, receivers):
    import threading

    from bhhub.runtime.app import Hub
    from bhhub.notify import deliver_pending

    notify_home(hub_home, receivers)
    receivers["handler"].delay = 0.3  # each POST takes a while: the two runs overlap on every alert
    with Hub.open(hub_home) as hub:
        keys = sorted(f"job_failed:job{n}" for n in range(5))
        for key in keys:
            raise_one(hub, key)
    errors: list[BaseException] = []

    def deliver():
        try:
            with Hub.open(hub_home) as hub:
                deliver_pending(hub)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    twins = [threading.Thread(target=deliver) for _ in range(2)]
    for twin in twins:
        twin.start()
    for twin in twins:
        twin.join(timeout=120)
    assert errors == []
    with Hub.open(hub_home) as hub:
        deliver_pending(hub)  # and a later tick has nothing left to send
    assert _keys_received(receivers) == (keys, keys)


def test_a_kill_between_sending_and_recording_sends_again_after_the_lease_never_sooner(
        hub_home, receivers, monkeypatch):
    import os
    import subprocess
    import sys
    from datetime import timedelta
    from pathlib import Path

    from bhhub.runtime.app import Hub
    from bhhub.notify import delivery as notify

    project = Path(__file__).resolve().parent.parent
    notify_home(hub_home, receivers)
    with Hub.open(hub_home) as hub:
        alert_id = raise_one(hub, "mailbox_unreachable:oa")
    script = "import sys; from bhhub.runtime.app import Hub; from bhhub.notify import deliver_pending\n" \
             "with Hub.open(sys.argv[1]) as hub: deliver_pending(hub)\n"
    env = {**os.environ, "BHHUB_CRASH_AT": "notify:after_send"}
    env.pop("BHHUB_DATABASE_URL", None)
    killed = subprocess.run([sys.executable, "-c", script, str(hub_home)], cwd=project, env=env,
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    assert _keys_received(receivers) == (["mailbox_unreachable:oa"], ["mailbox_unreachable:oa"])
    with Hub.open(hub_home) as hub:
        assert _alert(hub, alert_id).notified_at is None  # what went out was never recorded
        notify.deliver_pending(hub)  # within the lease: the killed process might still be sending
        assert len(receivers["mails"]) == 1 and len(receivers["handler"].bodies) == 1
        monkeypatch.setattr(notify, "LEASE", timedelta(0))  # ... ten minutes later
        notify.deliver_pending(hub)
        notify.deliver_pending(hub)
        alert = _alert(hub, alert_id)
    # At least once: the people were told twice rather than never, and then it is done.
    assert len(receivers["mails"]) == 2 and len(receivers["handler"].bodies) == 2
    assert alert.notified_at is not None and alert.notifications == {"email": "sent", "webhook": "sent"}


def test_a_sender_killed_every_time_stops_after_the_attempts(hub_home, receivers, monkeypatch):
    from datetime import timedelta

    from bhhub.runtime.app import Hub
    from bhhub.notify import delivery as notify

    class Killed(BaseException):
        """What SIGKILL does to the recording: it never happens."""

    def kill(name):
        if name == "notify:after_send":
            raise Killed

    notify_home(hub_home, receivers)
    monkeypatch.setattr(notify, "crash_point", kill)
    monkeypatch.setattr(notify, "LEASE", timedelta(0))
    with Hub.open(hub_home) as hub:
        alert_id = raise_one(hub, "job_failed:dispatcher")
        for _ in range(notify.MAX_ATTEMPTS + 5):
            try:
                notify.deliver_pending(hub)
            except Killed:
                pass
        alert = _alert(hub, alert_id)
    assert len(receivers["mails"]) == notify.MAX_ATTEMPTS  # bounded: not one more per tick for ever
    assert alert.notified_at is not None and alert.notify_attempts == notify.MAX_ATTEMPTS
    assert alert.notifications["email"].startswith("failed: unknown")


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_webhook_secret_in_its_path_or_query_is_never_printed_nor_logged(hub_home, capsys, caplog):
    import json
    import logging

    from sqlalchemy import select

    from bhhub.runtime.app import Hub
    from bhhub.cli.main import main
    from bhhub.notify import deliver_pending
    from bhhub.store import schema

    port = _closed_port()
    config = hub_home / "bhhub.toml"  # Slack-like: the secret is the path; others put it in the query
    config.write_text(config.read_text() + f'[notify.webhook]\nurl = "http://127.0.0.1:{port}/services/'
                      f'PATHSECRET42/hook?token=SECRET123"\ntimeout = 2\n')
    assert main(["--home", str(hub_home), "notify", "test"]) == 1
    text = capsys.readouterr()
    assert main(["--home", str(hub_home), "notify", "test", "--json"]) == 1
    as_json = capsys.readouterr()
    error = json.loads(as_json.out)[0]["error"]
    assert error.startswith("ConnectionError reaching http://127.0.0.1:") and f":{port}" in error
    with caplog.at_level(logging.DEBUG), Hub.open(hub_home) as hub:
        raise_one(hub, "mailbox_down:x")
        assert deliver_pending(hub)["failed"] == 1
        with hub.store.session() as session:
            recorded = json.dumps(session.scalars(select(schema.Alert.notifications)).all())
    said = text.out + text.err + as_json.out + as_json.err + caplog.text + recorded
    assert "webhook" in recorded and f"127.0.0.1:{port}" in said
    assert "SECRET123" not in said and "PATHSECRET42" not in said and "token=" not in said


def test_a_long_failure_is_cut_at_a_word_not_inside_one(hub_home, monkeypatch, capsys):
    import json

    from bhhub.cli.main import main

    config = hub_home / "bhhub.toml"
    config.write_text(config.read_text() + EMAIL)

    def refused(self, notice):
        raise RuntimeError("the server said " + "unavailable " * 40)

    monkeypatch.setattr(EmailTarget, "send", refused)
    assert main(["--home", str(hub_home), "notify", "test", "--json"]) == 1
    error = json.loads(capsys.readouterr().out)[0]["error"]
    assert len(error) <= 200 and error.endswith("unavailable...")


def test_a_webhook_address_holding_its_secret_can_come_from_the_environment_or_a_file(tmp_path, monkeypatch):
    hook = "https://hooks.example.org/services/PATHSECRET42"
    monkeypatch.setenv("BHHUB_TEST_WEBHOOK_URL", hook)
    (tmp_path / "hook.url").write_text(hook + "\n")
    for where in ('url_env = "BHHUB_TEST_WEBHOOK_URL"', f'url_file = "{tmp_path / "hook.url"}"'):
        webhook = targets(_settings(tmp_path, f"[notify.webhook]\n{where}\n"))[0]
        assert webhook.url == hook and webhook.address == "https://hooks.example.org"
        assert "PATHSECRET42" not in repr(webhook)


@pytest.mark.parametrize("section, complaint", [
    ("[notify.webhook]\ntimeout = 5\n", "notify.webhook name the address once: url, url_env or url_file"),
    (WEBHOOK + 'url_env = "BHHUB_TEST_WEBHOOK_URL"\n', "name the address once"),
    ('[notify.webhook]\nurl_env = "BHHUB_TEST_WEBHOOK_URL"\n', "url_env names must be an http:// or https://"),
    ('[notify.webhook]\nurl_env = "BHHUB_TEST_BAD_URL"\n', "url_env names must not carry a user or password"),
])
def test_a_webhook_address_from_elsewhere_is_checked_as_one_written_here(tmp_path, monkeypatch, section, complaint):
    monkeypatch.setenv("BHHUB_TEST_WEBHOOK_URL", "ftp://hooks.example.org/hunter2")
    monkeypatch.setenv("BHHUB_TEST_BAD_URL", "https://me:hunter2@hooks.example.org/x")
    with pytest.raises(ConfigError) as refused:
        targets(_settings(tmp_path, section))
    said = str(refused.value)
    assert complaint in said and "hunter2" not in said and "\n" not in said
