"""How to reach one payer portal: the ``[portal]``, ``[auth]`` and ``[limits]`` tables every
portal mapping file has, as frozen settings, and where its secrets come from.

Secrets (OAuth2 client id and secret, an API key) are read when a token is needed, from the
environment variable or the file the mapping names, never from the mapping file itself and
never from a file inside bhhub's own tree (it would be committed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bhhub.errors import ConfigError

AUTH_TYPES = ("oauth2_client_credentials", "api_key", "none")

PORTAL_SCHEMA: dict[str, Any] = {
    "name": "string", "description": "string?", "example": "bool?", "payer_ids": "strings", "base_url": "url",
}
AUTH_SCHEMA: dict[str, Any] = {
    "type": "string", "token_url": "url?", "scope": "string?", "client_auth": "string?",
    "client_id_env": "string?", "client_id_file": "string?",
    "client_secret_env": "string?", "client_secret_file": "string?",
    "api_key_header": "string?", "api_key_env": "string?", "api_key_file": "string?",
}
LIMITS_SCHEMA: dict[str, Any] = {
    "requests_per_second": "number?", "requests_per_minute": "number?",
    "connect_timeout_seconds": "number?", "read_timeout_seconds": "number?",
    "max_attempts": "number?", "backoff_seconds": "number?", "max_backoff_seconds": "number?",
    "max_retry_after_seconds": "number?", "deadline_seconds": "number?",
}
_REPOSITORY = Path(__file__).resolve().parents[2]  # bhhub's own tree: no secret file may live here


@dataclass(frozen=True)
class Secret:
    """Where a secret is: an environment variable, else a file. ``what`` names it in errors."""

    what: str
    env: str | None = None
    file: str | None = None

    def read(self, portal: str) -> str:
        if self.env and os.environ.get(self.env, "").strip():
            return os.environ[self.env].strip()
        if self.file:
            path = Path(self.file).expanduser()
            try:
                value = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"portal {portal}: the {self.what} file {path} cannot be read "
                                  f"({type(exc).__name__})") from exc
            if value:
                return value
        where = " or ".join(x for x in (f"the environment variable {self.env}" if self.env else "",
                                        f"the file {self.file}" if self.file else "") if x)
        raise ConfigError(f"portal {portal}: no {self.what}: set {where}")


@dataclass(frozen=True)
class AuthSettings:
    type: str = "none"
    token_url: str | None = None
    scope: str | None = None
    client_auth: str = "basic"  # basic: HTTP Basic to the token endpoint; body: in the form
    client_id: Secret | None = None
    client_secret: Secret | None = None
    api_key_header: str = "X-API-Key"
    api_key: Secret | None = None


@dataclass(frozen=True)
class Limits:
    requests_per_second: float | None = None
    requests_per_minute: float | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    max_attempts: int = 4
    backoff: float = 1.0  # the first wait; doubled per attempt, with jitter
    max_backoff: float = 30.0
    max_retry_after: float = 60.0  # a longer Retry-After ends the check (RetriableError) instead
    deadline: float = 90.0  # one eligibility check, every attempt and wait included


@dataclass(frozen=True)
class Connection:
    name: str
    payer_ids: tuple[str, ...]
    base_url: str
    auth: AuthSettings
    limits: Limits
    example: bool = False


def problems(table: dict[str, Any]) -> list[str]:
    """Problems the schema cannot see: combinations of auth keys, secret files in the repo."""
    found: list[str] = []
    auth = table.get("auth")
    if not isinstance(auth, dict):
        return found
    kind = auth.get("type")
    if kind not in AUTH_TYPES:
        found.append(f"auth.type must be one of {', '.join(AUTH_TYPES)}, not {kind!r}")
    if kind == "oauth2_client_credentials":
        if "token_url" not in auth:
            found.append("auth.token_url is required for oauth2_client_credentials")
        for what in ("client_id", "client_secret"):
            if f"{what}_env" not in auth and f"{what}_file" not in auth:
                found.append(f"auth needs {what}_env (an environment variable) or {what}_file")
        if auth.get("client_auth", "basic") not in ("basic", "body"):
            found.append("auth.client_auth must be basic or body")
    if kind == "api_key" and "api_key_env" not in auth and "api_key_file" not in auth:
        found.append("auth needs api_key_env (an environment variable) or api_key_file")
    for key, value in auth.items():
        if key.endswith("_file") and isinstance(value, str) and _inside_repository(value):
            found.append(f"auth.{key} points inside bhhub's own tree; keep secret files outside any repository")
    limits = table.get("limits", {})
    if isinstance(limits, dict) and isinstance(limits.get("max_attempts"), (int, float)) and limits["max_attempts"] < 1:
        found.append("limits.max_attempts must be at least 1")
    return found


def _inside_repository(value: str) -> bool:
    try:
        return Path(value).expanduser().resolve().is_relative_to(_REPOSITORY)
    except (OSError, ValueError):
        return False


def connection(table: dict[str, Any]) -> Connection:
    """The settings of a table that passed the schema check and ``problems``."""
    portal, auth, limits = table["portal"], table.get("auth", {"type": "none"}), table.get("limits", {})

    def secret(what: str, key: str) -> Secret | None:
        env, file = auth.get(f"{key}_env"), auth.get(f"{key}_file")
        return Secret(what, env, file) if env or file else None

    return Connection(
        name=portal["name"],
        payer_ids=tuple(portal["payer_ids"]),
        base_url=portal["base_url"].rstrip("/"),
        example=bool(portal.get("example", False)),
        auth=AuthSettings(
            type=auth["type"], token_url=auth.get("token_url"), scope=auth.get("scope"),
            client_auth=auth.get("client_auth", "basic"),
            client_id=secret("OAuth2 client id", "client_id"),
            client_secret=secret("OAuth2 client secret", "client_secret"),
            api_key_header=auth.get("api_key_header", "X-API-Key"), api_key=secret("API key", "api_key"),
        ),
        limits=Limits(
            requests_per_second=limits.get("requests_per_second"),
            requests_per_minute=limits.get("requests_per_minute"),
            connect_timeout=float(limits.get("connect_timeout_seconds", 5)),
            read_timeout=float(limits.get("read_timeout_seconds", 20)),
            max_attempts=int(limits.get("max_attempts", 4)),
            backoff=float(limits.get("backoff_seconds", 1)),
            max_backoff=float(limits.get("max_backoff_seconds", 30)),
            max_retry_after=float(limits.get("max_retry_after_seconds", 60)),
            deadline=float(limits.get("deadline_seconds", 90)),
        ),
    )
