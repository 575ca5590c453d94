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

What is sent is the alert's kind, key, message and times: alerts name mailboxes, files and
claims' control numbers, never patients (``hub.exchange.alerts``).
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
    name: str = "email"

    def send(self, notice: AlertNotice) -> None:
        message = EmailMessage()
        message["Subject"] = notice.subject
        message["From"] = self.sender
        message["To"] = ", ".join(self.to)
        message.set_content(f"{notice.message}\n\nalert {notice.key} ({notice.kind}), raised "
                            f"{notice.raised_at.isoformat()}\n`bhhub alerts` lists what is open.\n")
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
    name: str = "webhook"

    def send(self, notice: AlertNotice) -> None:
        import requests

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = requests.post(self.url, json={"alert": notice.as_dict(), "text": f"{notice.subject}: {notice.message}"},
                                 headers=headers, timeout=self.timeout, allow_redirects=False)
        if not 200 <= response.status_code < 300:  # a redirect is not delivery (it would be followed as a GET)
            raise DeliveryFailed(f"HTTP {response.status_code}")


class DeliveryFailed(Exception):
    """A target answered, but did not take the alert (its status is the message)."""


def targets(settings) -> list:
    """The notifiers ``[notify]`` in bhhub.toml configures (none by default)."""
    section = (getattr(settings, "raw", None) or {}).get("notify") or {}
    where = f"{settings.home / 'bhhub.toml'} [notify]"
    unknown = set(section) - {"email", "webhook"}
    if unknown:
        raise ConfigError(f"{where}: unknown notifier {sorted(unknown)[0]!r}; bhhub has email and webhook")
    found: list = []
    if "email" in section:
        found.append(_email(section["email"], f"{where}.email"))
    if "webhook" in section:
        found.append(_webhook(section["webhook"], f"{where}.webhook"))
    return found


def _email(raw: dict, where: str) -> EmailTarget:
    _only(raw, where, {"host", "port", "starttls", "ca_file", "username", "password_env", "password_file", "sender",
                       "to", "timeout"})
    for key in ("host", "sender", "to"):
        if not raw.get(key):
            raise ConfigError(f"{where}: {key} is required")
    to = raw["to"]
    if isinstance(to, str):
        to = [to]
    starttls = bool(raw.get("starttls", True))
    if raw.get("username") and not starttls:
        raise ConfigError(f"{where}: username without starttls would send the password in clear; "
                          "set starttls = true (and ca_file for a private CA)")
    if raw.get("ca_file") and not Path(raw["ca_file"]).is_file():
        raise ConfigError(f"{where}: ca_file {raw['ca_file']} is not a file")
    return EmailTarget(ca_file=raw.get("ca_file"), host=str(raw["host"]), sender=str(raw["sender"]), to=tuple(str(t) for t in to),
                       port=int(raw.get("port", 587 if starttls else 25)), starttls=starttls,
                       username=raw.get("username"), password=_secret(raw, "password", where),
                       timeout=float(raw.get("timeout", 20)))


def _webhook(raw: dict, where: str) -> WebhookTarget:
    _only(raw, where, {"url", "timeout", "token_env", "token_file"})
    url = str(raw.get("url") or "")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: url must be an http:// or https:// address")
    return WebhookTarget(url=url, timeout=float(raw.get("timeout", 10)), token=_secret(raw, "token", where))


def _only(raw: dict, where: str, allowed: set[str]) -> None:
    import difflib

    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    for key in raw:
        if key not in allowed:
            near = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else f"; known keys: {', '.join(sorted(allowed))}"
            if key in ("password", "token"):
                hint = f"; secrets are never written here: use {key}_env or {key}_file"
            raise ConfigError(f"{where}: unknown key {key!r}{hint}")


def _secret(raw: dict, name: str, where: str) -> str | None:
    if raw.get(f"{name}_env"):
        value = os.environ.get(raw[f"{name}_env"])
        if value is None:
            raise ConfigError(f"{where}: the environment variable {raw[f'{name}_env']} ({name}_env) is not set")
        return value
    if raw.get(f"{name}_file"):
        try:
            return Path(raw[f"{name}_file"]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read {name}_file: {exc.strerror}") from None
    return None


def deliver_pending(hub, *, limit: int = 100) -> dict[str, int]:
    """Send every alert not yet delivered to each target still owed it; returns counts."""
    configured = targets(hub.settings)
    receivers = hub.plugins.hooks.alert_receivers()
    counts = {"sent": 0, "failed": 0, "alerts": 0}
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


def _deliver(hub, alert: schema.Alert, configured: list, receivers: list[str], counts: dict[str, int],
             down: set[str]) -> None:
    counts["alerts"] += 1
    notice = AlertNotice(alert.id, alert.key, alert.kind, alert.message, alert.raised_at)
    done = dict(alert.notifications or {})
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


def _mark_nothing_to_do(hub) -> None:
    """With no target at all, alerts are marked as needing no delivery (not a backlog that a
    notifier configured months later would flood people with)."""
    with hub.store.session() as session:
        for alert in session.scalars(select(schema.Alert).where(schema.Alert.notified_at.is_(None))):
            alert.notified_at = utcnow()
            alert.notifications = {}
        session.commit()
