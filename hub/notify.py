"""Alerts reach people: email (SMTP), a webhook, and plugins (``bhhub_alert_raised``).

An alert is a row in the store (``hub.exchange.alerts``), raised by whichever process saw the
incident: the runner, a person's ``bhhub exchange``, an intake. Delivering it is the runner's
work, from the store: every dispatcher tick (and at start) sends each alert not yet delivered to
every target, and records per target that it went. So an alert raised by a command while the
runner was down still goes out when it starts; two deliveries at once (a second runner, a twin
process) send each alert once per target, as each takes its targets before sending; a process
killed between sending and recording sends it again once its lease (``LEASE``) runs out rather
than never (at least once, at most ``MAX_ATTEMPTS`` times); a target that is down is tried again
on the next tick, up to ``MAX_ATTEMPTS`` ticks, without repeating the targets that already have it.

Configured in ``bhhub.toml`` (both optional; secrets from the environment or a file, never here):

    [notify.email]
    host = "smtp.example.org"
    port = 587                      # default 587 with starttls, 25 without
    starttls = true
    username = "bhhub@example.org"
    password_env = "BHHUB_SMTP_PASSWORD"   # or password_file = "/etc/bhhub/smtp.pw"
    sender = "bhhub@example.org"
    to = ["billing@example.org"]
    timeout = 20

    [notify.webhook]
    url = "https://chat.example.org/hooks/billing"  # no user:password@ in it: the token goes below
    timeout = 10
    token_env = "BHHUB_WEBHOOK_TOKEN"      # sent as "Authorization: Bearer ..." when set

    [notify]
    deadline = 30                   # seconds for the whole of one send to one target (a plugin too)

``timeout`` bounds each connection and each read only: a server that answers a byte every few
seconds never trips it. So every send (to email, the webhook, each plugin) runs in a daemon
thread that the caller stops waiting for at ``deadline`` (or as soon as the runner is told to
stop): the send counts as failed, is recorded so, and is tried again on the next tick like any
target that is down. The abandoned thread cannot hold up the process's exit (daemon), and while
it still hangs no second thread is started for the same target (``hanging``).

What leaves the hub by email and webhook is ids only: the alert's id, kind, key (which names
rows of the hub: a mailbox, a transmission, ``patient:42``, never a name or member id) and when
it was raised. The message (an eligibility alert's gives the date of service) goes too only with

    [notify]
    include_message = true

Plugins (``bhhub_alert_raised``) run inside the hub and are given the whole alert.
"""

from __future__ import annotations

import logging
import os
import smtplib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import select

from hub.crashpoints import crash_point
from hub.errors import ConfigError
from hub.store import schema
from hub.store.schema import utcnow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10  # ticks: about ten minutes of a target being down
SENT = "sent"


@dataclass(frozen=True)
class AlertNotice:
    """What a notifier is given: no PHI by construction (see ``hub.exchange.alerts``)."""

    id: int
    key: str
    kind: str
    message: str
    raised_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "key": self.key, "kind": self.kind, "message": self.message,
                "raised_at": self.raised_at.isoformat()}

    def outside(self, include_message: bool) -> dict[str, Any]:
        """What leaves the hub by email or webhook: ids (the alert's, its kind, its key, which
        names rows of the hub, never a person) unless ``[notify] include_message`` lets the
        message go too. A message may say more than ids (an eligibility alert gives the date of
        service), and mail and chat rooms are not the hub's protected store."""
        shown = {"id": self.id, "key": self.key, "kind": self.kind, "raised_at": self.raised_at.isoformat()}
        if include_message:
            shown["message"] = self.message
        return shown

    def text(self, include_message: bool) -> str:
        if include_message:
            return f"{self.subject}: {self.message}"
        return f"{self.subject} (alert {self.id}); `bhhub alerts` on the hub says what it is"

    @property
    def subject(self) -> str:
        return f"bhhub alert: {self.kind}: {self.key}"


@dataclass(frozen=True)
class EmailTarget:
    host: str
    sender: str
    to: tuple[str, ...]
    port: int = 587
    starttls: bool = True
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 20.0
    ca_file: str | None = None
    include_message: bool = False  # [notify] include_message: see AlertNotice.outside
    deadline: float = 30.0  # [notify] deadline: the whole send, see within_deadline
    name: str = "email"

    @property
    def address(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def send(self, notice: AlertNotice) -> None:
        message = EmailMessage()
        message["Subject"] = notice.subject
        message["From"] = self.sender
        message["To"] = ", ".join(self.to)
        said = f"{notice.message}\n\n" if self.include_message else ""
        message.set_content(f"{said}alert {notice.id}: {notice.key} ({notice.kind}), raised "
                            f"{notice.raised_at.isoformat()}\n`bhhub alerts` on the hub lists what is open"
                            f"{'' if self.include_message else ' and what each says'}.\n")
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                # The server's certificate and name verified (system CAs, or the practice's own):
                # smtplib's default context checks neither, and the login follows.
                import ssl

                smtp.starttls(context=ssl.create_default_context(cafile=self.ca_file))
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)


@dataclass(frozen=True)
class WebhookTarget:
    url: str
    timeout: float = 10.0
    token: str | None = field(default=None, repr=False)
    include_message: bool = False  # [notify] include_message: see AlertNotice.outside
    deadline: float = 30.0  # [notify] deadline: the whole send, see within_deadline
    name: str = "webhook"

    @property
    def address(self) -> str:
        return self.url  # never holds a secret: the model refuses user:password@ in it

    def send(self, notice: AlertNotice) -> None:
        import requests

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        body = {"alert": notice.outside(self.include_message), "text": notice.text(self.include_message)}
        response = requests.post(self.url, json=body,
                                 headers=headers, timeout=self.timeout, allow_redirects=False)
        if not 200 <= response.status_code < 300:  # a redirect is not delivery (it would be followed as a GET)
            raise DeliveryFailed(f"HTTP {response.status_code}")


class DeliveryFailed(Exception):
    """A target answered, but did not take the alert (its status is the message), or did not
    answer in time (``within_deadline``)."""


# Sends given up at their deadline whose threads still run, by target address: one per target at
# most, so a server that hangs for days costs one thread, not one per tick.
_hanging: dict[str, tuple[str, threading.Thread]] = {}
_hanging_lock = threading.Lock()
POLL_SECONDS = 0.2  # how soon a wait notices that the runner is stopping


def within_deadline(name: str, address: str, send: Callable[[], Any], deadline: float,
                    stop: threading.Event | None = None) -> Any:
    """``send()`` run in a daemon thread, waited for at most ``deadline`` seconds (less if
    ``stop`` is set meanwhile); its result, or its exception raised here. ``DeliveryFailed`` when
    it did not end in time, or when the previous send to ``address`` (the target ``name``) given
    up so still hangs (then no new one is started). The thread is left to end on its own: nothing it does after
    the deadline is recorded, so a send it completes late is repeated (at least once)."""
    with _hanging_lock:
        _, previous = _hanging.get(address, (name, None))
        if previous is not None and previous.is_alive():
            raise DeliveryFailed(f"its previous send, given up after {deadline:g} s, still hangs")
        _hanging.pop(address, None)
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            outcome["result"] = send()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            outcome["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=run, name="bhhub-notify-send", daemon=True)
    thread.start()
    ends = time.monotonic() + deadline
    while not done.is_set():
        left = ends - time.monotonic()
        if left <= 0 or (stop is not None and stop.is_set()):
            break
        done.wait(min(left, POLL_SECONDS) if stop is not None else left)
    if not done.is_set():
        with _hanging_lock:
            _hanging[address] = (name, thread)
        if stop is not None and stop.is_set():
            raise DeliveryFailed("not finished when the runner stopped")
        raise DeliveryFailed(f"no answer within the deadline ({deadline:g} s)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


def hanging() -> list[str]:
    """The targets (email, webhook, ``plugin:NAME``) whose last send was given up at its deadline
    and still hangs: shown by ``/healthz``. Addresses are not shown (a URL may hold a path secret)."""
    with _hanging_lock:
        return sorted({name for name, thread in _hanging.values() if thread.is_alive()})


def _send_one(target, notice: AlertNotice, stop: threading.Event | None) -> None:
    within_deadline(target.name, target.address, lambda: target.send(notice), target.deadline, stop)


def _to_plugin(hub, plugin_name: str, notice: AlertNotice, deadline: float,
               stop: threading.Event | None) -> str | None:
    """One plugin given the alert under the deadline: None when it took it, else why not."""
    name = f"plugin:{plugin_name}"
    try:
        return within_deadline(name, name, lambda: hub.plugins.hooks.alert_raised(notice, only=[plugin_name]),
                               deadline, stop).get(plugin_name)
    except DeliveryFailed as exc:
        log.error("plugin %s in bhhub_alert_raised: %s", plugin_name, exc)
        return str(exc)


def targets(settings) -> list:
    """The notifiers ``[notify]`` in bhhub.toml configures (none by default), read from its
    checked model (``hub.configuration.hub_file.Notify``): the file is read once, by the model,
    and only the secrets it names (an environment variable, a file) are looked up here."""
    from hub.configuration.hub_file import Notify

    section = settings.section(Notify)
    where = f"{settings.config_path} [notify]"
    found: list = []
    if section.email is not None:
        found.append(_email(section.email, f"{where}.email", section.include_message, section.deadline))
    if section.webhook is not None:
        found.append(_webhook(section.webhook, f"{where}.webhook", section.include_message, section.deadline))
    return found


def _deadline(settings) -> float:
    from hub.configuration.hub_file import Notify

    return settings.section(Notify).deadline


def _email(config, where: str, include_message: bool, deadline: float) -> EmailTarget:
    """``[notify.email]`` (an ``EmailNotifier``) as a target, its password looked up."""
    if config.ca_file and not Path(config.ca_file).is_file():
        raise ConfigError(f"{where}: ca_file {config.ca_file} is not a file")
    to = [config.to] if isinstance(config.to, str) else list(config.to)
    return EmailTarget(host=config.host, sender=config.sender, to=tuple(to),
                       port=config.port or (587 if config.starttls else 25), starttls=config.starttls,
                       username=config.username, ca_file=config.ca_file, timeout=config.timeout,
                       password=_secret(config, "password", where), include_message=include_message,
                       deadline=deadline)


def _webhook(config, where: str, include_message: bool, deadline: float) -> WebhookTarget:
    """``[notify.webhook]`` (a ``WebhookNotifier``) as a target, its token looked up."""
    return WebhookTarget(url=config.url, timeout=config.timeout, token=_secret(config, "token", where),
                         include_message=include_message, deadline=deadline)


def _secret(config, name: str, where: str) -> str | None:
    """A secret the configuration names by reference (``NAME_env`` or ``NAME_file``); a secret
    written in bhhub.toml itself never gets this far (the model refuses the key)."""
    variable, file = getattr(config, f"{name}_env"), getattr(config, f"{name}_file")
    if variable:
        value = os.environ.get(variable)
        if value is None:
            raise ConfigError(f"{where}: the environment variable {variable} ({name}_env) is not set")
        return value
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read {name}_file: {exc.strerror}") from None
    return None


TEST_KIND = "notify_test"


def send_test(hub) -> dict[str, str | None]:
    """One test notification to every target (email, webhook, each plugin receiving alerts),
    outside the store: nothing is recorded and no alert is opened. Target name -> None when it
    took the test, else why not (a status, or the error's kind and text: this is a person
    checking the setup at a terminal, not the runner's log)."""
    notice = AlertNotice(0, f"{TEST_KIND}:{utcnow():%Y%m%dT%H%M%SZ}", TEST_KIND,
                         "a test from `bhhub notify test`: notifications reach you", utcnow())
    outcomes: dict[str, str | None] = {}
    for target in targets(hub.settings):
        try:
            _send_one(target, notice, None)
        except DeliveryFailed as exc:
            outcomes[target.name] = str(exc)
        except Exception as exc:  # noqa: BLE001 - each target's failure is reported, the others still tried
            outcomes[target.name] = f"{type(exc).__name__}: {str(exc)[:200]}".rstrip(": ")
        else:
            outcomes[target.name] = None
    deadline = _deadline(hub.settings)
    for plugin_name in hub.plugins.hooks.alert_receivers():
        outcomes[f"plugin:{plugin_name}"] = _to_plugin(hub, plugin_name, notice, deadline, None)
    return outcomes


SENDING = "sending since "  # + the time a process took the target: a lease, see deliver_pending
LEASE = timedelta(minutes=10)  # far beyond a send's deadline: a lease older than this was a killed process's


def deliver_pending(hub, *, limit: int = 100, stop: threading.Event | None = None) -> dict[str, int]:
    """Send every alert not yet delivered to each target still owed it; returns counts.

    Per alert, three steps: take (one short write: the owed targets are marked ``sending since
    T`` and the attempt counted), send (no transaction open: a slow SMTP server holds no lock),
    record (one short write: ``sent`` or why not). A twin running at the same time (a second
    runner on PostgreSQL, a ``bhhub`` process on the same SQLite file) finds the targets taken
    and skips them: each alert goes once per target. A process killed between sending and
    recording leaves its lease; after ``LEASE`` the target is owed again and gets the alert a
    second time (at least once, never lost), and since every take counts an attempt, an alert
    whose sender keeps dying is given up after ``MAX_ATTEMPTS``.

    Each send ends by ``[notify] deadline`` (``within_deadline``); one that hangs is recorded as
    failed, so it is tried again next tick (not after the lease). ``stop`` set (the runner was
    told to stop) ends the wait for a send at once and takes no further alert."""
    configured = targets(hub.settings)
    receivers = hub.plugins.hooks.alert_receivers()
    counts = {"sent": 0, "failed": 0, "alerts": 0, "cleared": 0}
    if not configured and not receivers:
        _mark_nothing_to_do(hub)
        return counts
    names = [t.name for t in configured] + [f"plugin:{name}" for name in receivers]
    down: set[str] = set()  # targets that failed this tick: tried again next tick, not once per alert
    last_id = 0
    deadline = _deadline(hub.settings)
    for _ in range(limit):
        if stop is not None and stop.is_set():
            break
        taken = _take(hub, last_id, names, down, counts)
        if taken is None:
            break
        last_id, notice, owed = taken
        if owed:
            outcomes = _send(hub, notice, [t for t in configured if t.name in owed],
                             [n.removeprefix("plugin:") for n in owed if n.startswith("plugin:")], deadline, stop)
            crash_point("notify:after_send")
            _record(hub, notice.id, outcomes, down, counts)
    return counts


def _take(hub, after_id: int, names: list[str], down: set[str], counts: dict[str, int]):
    """The next alert after ``after_id`` not yet delivered, with the targets this process now
    holds for it: (its id, its notice, the targets taken); None when there is none."""
    # The writer session takes SQLite's write lock at its start, so two processes on one file
    # take in turn; PostgreSQL's SKIP LOCKED lets another runner pass to the next alert.
    with hub.store.writer() as session:
        alert = session.scalars(
            select(schema.Alert).where(schema.Alert.notified_at.is_(None), schema.Alert.id > after_id)
            .order_by(schema.Alert.id).limit(1).with_for_update(skip_locked=True)).first()
        if alert is None:
            return None
        counts["alerts"] += 1
        done = dict(alert.notifications or {})
        if alert.cleared_at is not None:
            _close_cleared(alert, done, names)
            counts["cleared"] += 1
            session.commit()
            return alert.id, None, []
        now = utcnow()
        owed = [n for n in names if done.get(n) != SENT and not _held(done.get(n), now)]
        if not owed:
            return alert.id, None, []  # another process holds every target it still owes
        if (alert.notify_attempts or 0) >= MAX_ATTEMPTS:  # its senders were killed each time: bounded
            for name in owed:
                if (done.get(name) or "").startswith(SENDING):
                    done[name] = "failed: unknown (the process sending it stopped before recording)"
            alert.notifications = done
            _give_up_if_done(alert, done)
            session.commit()
            return alert.id, None, []
        for name in owed:
            done[name] = (f"{SENDING}{now.isoformat()}" if name not in down
                          else "failed: not tried (the target failed earlier in this tick)")
        alert.notifications = done
        alert.notify_attempts = (alert.notify_attempts or 0) + 1
        taken = [n for n in owed if n not in down]
        if not taken:
            _give_up_if_done(alert, done)
        session.commit()
        return alert.id, AlertNotice(alert.id, alert.key, alert.kind, alert.message, alert.raised_at), taken


def _held(state: str | None, now: datetime) -> bool:
    """True while another process's lease on a target runs (it is sending, or was killed less
    than ``LEASE`` ago)."""
    if not state or not state.startswith(SENDING):
        return False
    since = datetime.fromisoformat(state.removeprefix(SENDING))
    if since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    return now - since < LEASE


def _send(hub, notice: AlertNotice, configured: list, plugins: list[str], deadline: float,
          stop: threading.Event | None) -> dict[str, str]:
    """Each taken target's outcome: ``sent``, or ``failed: why`` (a status, the deadline, or the
    error's kind)."""
    outcomes: dict[str, str] = {}
    for target in configured:
        try:
            _send_one(target, notice, stop)
        except Exception as exc:  # noqa: BLE001 - a target down is tried again next tick
            outcomes[target.name] = f"failed: {exc}" if isinstance(exc, DeliveryFailed) else f"failed: {type(exc).__name__}"
            log.warning("alert %s not delivered by %s: %s", notice.id, target.name,
                        exc if isinstance(exc, DeliveryFailed) else type(exc).__name__)
        else:
            outcomes[target.name] = SENT
            log.info("alert %s delivered by %s", notice.id, target.name)
    for plugin_name in plugins:
        error = _to_plugin(hub, plugin_name, notice, deadline, stop)
        outcomes[f"plugin:{plugin_name}"] = SENT if error is None else f"failed: {error}"
    return outcomes


def _record(hub, alert_id: int, outcomes: dict[str, str], down: set[str], counts: dict[str, int]) -> None:
    with hub.store.writer() as session:
        alert = session.get(schema.Alert, alert_id)
        done = dict(alert.notifications or {})
        done.update(outcomes)
        alert.notifications = done
        _give_up_if_done(alert, done)
        session.commit()
    for name, outcome in outcomes.items():
        counts["sent" if outcome == SENT else "failed"] += 1
        if outcome != SENT:
            down.add(name)


def _give_up_if_done(alert: schema.Alert, done: dict[str, str]) -> None:
    """Delivered when every target has it; given up after ``MAX_ATTEMPTS`` takes (``bhhub alerts
    --json`` shows which target did not get it)."""
    if all(value == SENT for value in done.values()):
        alert.notified_at = utcnow()
    elif (alert.notify_attempts or 0) >= MAX_ATTEMPTS:
        alert.notified_at = utcnow()
        log.error("alert %s: gave up notifying after %d attempts: %s", alert.id, alert.notify_attempts,
                  ", ".join(f"{k} {v}" for k, v in sorted(done.items()) if v != SENT))


CLEARED = "not sent: cleared before delivery"


def _close_cleared(alert: schema.Alert, done: dict[str, str], owed: list[str]) -> None:
    """An incident that ended before people heard of it is not news: no target still owed it
    gets it (a page at 3 a.m. for a mailbox that answered again a minute later helps nobody);
    ``bhhub alerts --all`` keeps the record, and says per target that it was not sent."""
    for name in owed:
        if done.get(name) != SENT:
            done[name] = CLEARED
    alert.notifications = done
    alert.notified_at = utcnow()
    log.info("alert %s cleared before delivery: not sent", alert.id)


def _mark_nothing_to_do(hub) -> None:
    """With no target at all, alerts are marked as needing no delivery (not a backlog that a
    notifier configured months later would flood people with)."""
    with hub.store.session() as session:
        for alert in session.scalars(select(schema.Alert).where(schema.Alert.notified_at.is_(None))):
            alert.notified_at = utcnow()
            alert.notifications = {}
        session.commit()
