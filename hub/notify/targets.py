"""The targets ``[notify]`` in bhhub.toml configures (email, a webhook) and what each sends: ids
only unless ``include_message`` (``AlertNotice.outside``). Secrets are looked up here, by the
reference the checked model holds (an environment variable, a file)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bhhub.errors import ConfigError


@dataclass(frozen=True)
class AlertNotice:
    """What a notifier is given: no PHI by construction (see ``bhhub.exchange.alerts``)."""

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
        import smtplib
        from email.message import EmailMessage

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
    url: str = field(repr=False)  # its path or query may be the webhook's secret: see address
    timeout: float = 10.0
    token: str | None = field(default=None, repr=False)
    include_message: bool = False  # [notify] include_message: see AlertNotice.outside
    deadline: float = 30.0  # [notify] deadline: the whole send, see within_deadline
    name: str = "webhook"

    @property
    def address(self) -> str:
        """scheme://host[:port] only: many webhooks carry their secret in the path (Slack's) or
        the query (``?token=``), so the rest of the URL is never shown or logged."""
        return origin(self.url)

    def send(self, notice: AlertNotice) -> None:
        import requests

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        body = {"alert": notice.outside(self.include_message), "text": notice.text(self.include_message)}
        try:
            response = requests.post(self.url, json=body,
                                     headers=headers, timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            # requests' own text repeats the URL's path and query (a secret): not shown, not
            # chained (a logged traceback would print it), only its kind and the socket's reason.
            reason = _os_reason(exc)
            raise DeliveryFailed(f"{type(exc).__name__} reaching {self.address}"
                                 + (f": {reason}" if reason else "")) from None
        if not 200 <= response.status_code < 300:  # a redirect is not delivery (it would be followed as a GET)
            raise DeliveryFailed(f"HTTP {response.status_code}")


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL: what may be shown of a webhook's address."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def redact(text: str, url: str) -> str:
    """``text`` with everything of ``url`` past its origin (path, query, fragment) cut out, in
    whatever form a library repeats it (the whole URL, the path and query, the query alone)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    text = text.replace(url, f"{origin(url)}/...")
    tails = [url[len(origin(url)):] if url.startswith(origin(url)) else "",
             parts.path + (f"?{parts.query}" if parts.query else ""), parts.query, parts.fragment]
    for tail in sorted({t for t in tails if t and t != "/"}, key=len, reverse=True):
        text = text.replace(tail, "/...")
    return text


def _os_reason(exc: BaseException) -> str | None:
    """The operating system's reason (``Connection refused``) deep inside a requests error, or
    None: the one part of its text that names no URL."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        pending += [getattr(current, "reason", None), current.__cause__, current.__context__,
                    *(a for a in current.args if isinstance(a, BaseException))]
    return None


class DeliveryFailed(Exception):
    """A target answered, but did not take the alert (its status is the message), or did not
    answer in time (``within_deadline``)."""


def targets(settings) -> list:
    """The notifiers ``[notify]`` in bhhub.toml configures (none by default), read from its
    checked model (``bhhub.configuration.hub_file.Notify``): the file is read once, by the model,
    and only the secrets it names (an environment variable, a file) are looked up here."""
    from bhhub.configuration.hub_file import Notify

    section = settings.section(Notify)
    where = f"{settings.config_path} [notify]"
    found: list = []
    if section.email is not None:
        found.append(_email(section.email, f"{where}.email", section.include_message, section.deadline))
    if section.webhook is not None:
        found.append(_webhook(section.webhook, f"{where}.webhook", section.include_message, section.deadline))
    return found


def deadline_of(settings) -> float:
    """``[notify] deadline``: the seconds one send to one target may take, a plugin's too."""
    from bhhub.configuration.hub_file import Notify

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
    """``[notify.webhook]`` (a ``WebhookNotifier``) as a target, its token (and its address, when
    ``url_env`` or ``url_file`` names where it is) looked up."""
    import re

    from bhhub.configuration.hub_file import USER_INFO_REFUSED, has_user_info
    from bhhub.configuration.problems import HTTP_URL

    url = config.url
    if url is None:
        key = "url_env" if config.url_env else "url_file"
        url = _secret(config, "url", where)
        # the model's checks on url, here for a value it never saw; the value itself is not repeated
        if not re.match(HTTP_URL, url):
            raise ConfigError(f"{where}: the address {key} names must be an http:// or https:// address")
        if has_user_info(url):
            raise ConfigError(f"{where}: the address {key} names {USER_INFO_REFUSED}")
    return WebhookTarget(url=url, timeout=config.timeout, token=_secret(config, "token", where),
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
