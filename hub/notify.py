"""Alerts reach people: email (SMTP), a webhook, and plugins (``bhhub_alert_raised``).

An alert is a row in the store (``hub.exchange.alerts``), raised by whichever process saw the
incident: the runner, a person's ``bhhub exchange``, an intake. Delivering it is the runner's
work, from the store: every dispatcher tick (and at start) sends each alert not yet delivered to
every target, and records per target that it went. So an alert raised by a command while the
runner was down still goes out when it starts, a crash between sending and recording sends it
again rather than never (at least once), and a target that is down is tried again on the next
tick, up to ``MAX_ATTEMPTS`` ticks, without repeating the targets that already have it.

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
    url = "https://chat.example.org/hooks/billing"
    timeout = 10
    token_env = "BHHUB_WEBHOOK_TOKEN"      # sent as "Authorization: Bearer ..." when set

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
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import select

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
    name: str = "email"

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
    name: str = "webhook"

    def send(self, notice: AlertNotice) -> None:
        import requests

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        body = {"alert": notice.outside(self.include_message), "text": notice.text(self.include_message)}
        response = requests.post(self.url, json=body,
                                 headers=headers, timeout=self.timeout, allow_redirects=False)
        if not 200 <= response.status_code < 300:  # a redirect is not delivery (it would be followed as a GET)
            raise DeliveryFailed(f"HTTP {response.status_code}")


class DeliveryFailed(Exception):
    """A target answered, but did not take the alert (its status is the message)."""


def targets(settings) -> list:
    """The notifiers ``[notify]`` in bhhub.toml configures (none by default), read from its
    checked model (``hub.configuration.hub_file.Notify``): the file is read once, by the model,
    and only the secrets it names (an environment variable, a file) are looked up here."""
    from hub.configuration.hub_file import Notify

    section = settings.section(Notify)
    where = f"{settings.config_path} [notify]"
    found: list = []
    if section.email is not None:
        found.append(_email(section.email, f"{where}.email", section.include_message))
    if section.webhook is not None:
        found.append(_webhook(section.webhook, f"{where}.webhook", section.include_message))
    return found


def _email(config, where: str, include_message: bool) -> EmailTarget:
    """``[notify.email]`` (an ``EmailNotifier``) as a target, its password looked up."""
    if config.ca_file and not Path(config.ca_file).is_file():
        raise ConfigError(f"{where}: ca_file {config.ca_file} is not a file")
    to = [config.to] if isinstance(config.to, str) else list(config.to)
    return EmailTarget(host=config.host, sender=config.sender, to=tuple(to),
                       port=config.port or (587 if config.starttls else 25), starttls=config.starttls,
                       username=config.username, ca_file=config.ca_file, timeout=config.timeout,
                       password=_secret(config, "password", where), include_message=include_message)


def _webhook(config, where: str, include_message: bool) -> WebhookTarget:
    """``[notify.webhook]`` (a ``WebhookNotifier``) as a target, its token looked up."""
    return WebhookTarget(url=config.url, timeout=config.timeout, token=_secret(config, "token", where),
                         include_message=include_message)


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
            target.send(notice)
        except DeliveryFailed as exc:
            outcomes[target.name] = str(exc)
        except Exception as exc:  # noqa: BLE001 - each target's failure is reported, the others still tried
            outcomes[target.name] = f"{type(exc).__name__}: {str(exc)[:200]}".rstrip(": ")
        else:
            outcomes[target.name] = None
    receivers = hub.plugins.hooks.alert_receivers()
    if receivers:
        for plugin_name, error in hub.plugins.hooks.alert_raised(notice, only=receivers).items():
            outcomes[f"plugin:{plugin_name}"] = None if error is None else str(error)
    return outcomes


def deliver_pending(hub, *, limit: int = 100) -> dict[str, int]:
    """Send every alert not yet delivered to each target still owed it; returns counts."""
    configured = targets(hub.settings)
    receivers = hub.plugins.hooks.alert_receivers()
    counts = {"sent": 0, "failed": 0, "alerts": 0, "cleared": 0}
    if not configured and not receivers:
        _mark_nothing_to_do(hub)
        return counts
    down: set[str] = set()  # targets that failed this tick: tried again next tick, not once per alert
    last_id = 0
    for _ in range(limit):
        with hub.store.session() as session:
            # One alert per transaction, locked while it is delivered (PostgreSQL: a runner on
            # another machine skips it rather than sending it too; SQLite has one runner per home).
            alert = session.scalars(
                select(schema.Alert).where(schema.Alert.notified_at.is_(None), schema.Alert.id > last_id)
                .order_by(schema.Alert.id).limit(1).with_for_update(skip_locked=True)).first()
            if alert is None:
                break
            last_id = alert.id
            _deliver(hub, alert, configured, receivers, counts, down)
            session.commit()  # what went out is recorded before the next alert is tried
    return counts


CLEARED = "not sent: cleared before delivery"


def _deliver(hub, alert: schema.Alert, configured: list, receivers: list[str], counts: dict[str, int],
             down: set[str]) -> None:
    counts["alerts"] += 1
    done = dict(alert.notifications or {})
    if alert.cleared_at is not None:
        _close_cleared(alert, done, [t.name for t in configured] + [f"plugin:{name}" for name in receivers])
        counts["cleared"] += 1
        return
    notice = AlertNotice(alert.id, alert.key, alert.kind, alert.message, alert.raised_at)
    for target in configured:
        if done.get(target.name) == SENT:
            continue
        if target.name in down:
            done.setdefault(target.name, "failed: not tried (the target failed earlier in this tick)")
            continue
        try:
            target.send(notice)
        except Exception as exc:  # noqa: BLE001 - a target down is tried again next tick
            down.add(target.name)
            done[target.name] = f"failed: {exc}" if isinstance(exc, DeliveryFailed) else f"failed: {type(exc).__name__}"
            counts["failed"] += 1
            log.warning("alert %s not delivered by %s: %s", alert.id, target.name, type(exc).__name__)
        else:
            done[target.name] = SENT
            counts["sent"] += 1
            log.info("alert %s delivered by %s", alert.id, target.name)
    owed = [name for name in receivers if done.get(f"plugin:{name}") != SENT and f"plugin:{name}" not in down]
    if owed:
        for plugin_name, error in hub.plugins.hooks.alert_raised(notice, only=owed).items():
            done[f"plugin:{plugin_name}"] = SENT if error is None else f"failed: {error}"
            if error is not None:
                down.add(f"plugin:{plugin_name}")
            counts["sent" if error is None else "failed"] += 1
    alert.notifications = done
    alert.notify_attempts = (alert.notify_attempts or 0) + 1
    if all(value == SENT for value in done.values()):
        alert.notified_at = utcnow()
    elif alert.notify_attempts >= MAX_ATTEMPTS:
        alert.notified_at = utcnow()  # given up; `bhhub alerts --json` shows which target failed
        log.error("alert %s: gave up notifying after %d attempts: %s", alert.id, alert.notify_attempts,
                  ", ".join(f"{k} {v}" for k, v in sorted(done.items()) if v != SENT))


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
