"""How to reach one SFTP mailbox: host, pinned host keys, credentials by reference, deadlines.

    [mailboxes.officeally]
    host = "sftp.officeally.com"
    username = "practice123"
    password_env = "OFFICEALLY_PASSWORD"           # or password_file = "/etc/bhhub/officeally.pw"
    key_file = "/etc/bhhub/officeally_ed25519"     # optional; key_passphrase_env for its passphrase
    known_hosts = ["sftp.officeally.com ssh-ed25519 AAAA..."]   # as `ssh-keyscan HOST` prints
    max_download_bytes = 268435456                 # optional; a larger response file is skipped, with an alert

Secrets never sit in ``bhhub.toml``: a ``password`` key is refused, and the password is read
from its variable or file only when a connection is made. A secret file (``password_file``,
``key_file``) other users may read or write is refused, as OpenSSH refuses an unprotected
private key: the hub's own must be mode 600; another account's may share it with a group
(``root:bhhub 0640``), never with everyone. A mailbox without a pinned host key is refused: the
hub never trusts a key on first use.
"""

from __future__ import annotations

import base64
import difflib
import binascii
import os
import re
import stat
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from types import SimpleNamespace

import paramiko

from bhhub.errors import ConfigError


@dataclass(frozen=True)
class PinnedKey:
    """One known_hosts line: the host patterns it is for (None: any host) and the public key."""

    hosts: tuple[str, ...] | None
    key: paramiko.PKey

    def applies_to(self, host: str, port: int) -> bool:
        if self.hosts is None:
            return True
        names = [f"[{host}]:{port}"] + ([host] if port == 22 else [])
        matched = False
        for pattern in self.hosts:
            if pattern.startswith("|1|"):  # a hashed host name, as `ssh-keyscan -H` writes
                if any(paramiko.HostKeys.hash_host(name, pattern) == pattern for name in names):
                    matched = True
                continue
            negated = pattern.startswith("!")
            if any(_host_pattern_matches(pattern.lstrip("!"), name) for name in names):
                if negated:
                    return False
                matched = True
        return matched


def _host_pattern_matches(pattern: str, name: str) -> bool:
    """OpenSSH host patterns: ``*`` and ``?`` are wildcards; brackets are literal (``[host]:port``)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name, re.IGNORECASE) is not None


def parse_known_hosts_line(line: str) -> PinnedKey:
    """``[host]:port ssh-ed25519 AAAA... comment`` or ``ssh-ed25519 AAAA...``; ValueError if not."""
    parts = line.split()
    if not parts:
        raise ValueError("is empty")
    if parts[0].startswith("@"):
        raise ValueError(f"uses the marker {parts[0]}, which is not supported; pin the server's own key")
    if len(parts) >= 2 and _looks_like_key_type(parts[0]):
        hosts, key_type, data = None, parts[0], parts[1]
    elif len(parts) >= 3:
        hosts, key_type, data = tuple(parts[0].split(",")), parts[1], parts[2]
    else:
        raise ValueError("needs a key type and a base64 key (as `ssh-keyscan HOST` prints)")
    try:
        raw = base64.b64decode(data, validate=True)
        key = paramiko.PKey.from_type_string(key_type, raw)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"has a malformed {key_type} key") from exc
    except paramiko.SSHException as exc:  # UnknownKeyType and malformed key bytes
        raise ValueError(f"has a key of unsupported type {key_type!r}") from exc
    return PinnedKey(hosts, key)


def _looks_like_key_type(word: str) -> bool:
    return word.startswith(("ssh-", "ecdsa-", "sk-", "rsa-"))


@dataclass(frozen=True, kw_only=True)
class SftpSettings:
    host: str
    port: int = 22
    username: str
    known_hosts: tuple[str, ...]  # pinned host keys as known_hosts lines, with or without the host
    password_env: str | None = None  # name of an environment variable holding the password
    password_file: str | None = None  # path of a file holding it
    key_file: str | None = None  # private key path
    key_passphrase_env: str | None = None
    connect_timeout: float = 15.0  # TCP connect, banner, key exchange and authentication, each
    operation_timeout: float = 120.0  # deadline of one list, stat, rename or remove
    min_transfer_rate: float = 256 * 1024  # bytes/s: a transfer's deadline is operation_timeout + size / this
    keepalive_interval: int = 15
    max_prefetch_requests: int = 64  # read (and write) requests in flight at once during a transfer
    max_download_bytes: int = 256 * 1024 * 1024  # a larger remote file is skipped, not fetched (835s run to tens of MB)

    def __post_init__(self) -> None:
        if isinstance(self.known_hosts, (list, str)):
            lines = [self.known_hosts] if isinstance(self.known_hosts, str) else self.known_hosts
            object.__setattr__(self, "known_hosts", tuple(lines))
        problems = _problems(self)
        if problems:
            error = ConfigError(f"SFTP settings for {self.host}: " + "; ".join(problems))
            error.problems = problems
            raise error

    @classmethod
    def from_mapping(cls, data: dict, *, where: str) -> "SftpSettings":
        """Settings from a config table; ``ConfigError`` listing every problem at once."""
        problems: list[str] = []
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a table of SFTP settings")
        for secret in ("password", "key_passphrase", "passphrase"):
            if secret in data:
                problems.append(f"{secret!r} must not be written in the configuration; name an environment "
                                f"variable ({secret.removeprefix('key_')}_env) or, for the password, a file "
                                f"(password_file) instead")
        known = {f.name for f in fields(cls)}
        for key in sorted(set(data) - known - {"password", "key_passphrase", "passphrase"}):
            near = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"known: {', '.join(sorted(known))}"
            problems.append(f"unknown setting {key!r} ({hint})")
        values = {}
        for f in fields(cls):
            if f.name in data:
                value, problem = _coerce(f.name, data[f.name])
                if problem:
                    problems.append(problem)
                else:
                    values[f.name] = value
        for required in ("host", "username", "known_hosts"):
            if required not in data:
                problems.append(f"{required} is required" + (
                    " (the server's host key, as `ssh-keyscan -p PORT HOST` prints it)" if required == "known_hosts" else ""))
        if not problems:
            try:
                return cls(**values)
            except ConfigError as exc:
                raise ConfigError(f"{where}: " + "; ".join(getattr(exc, "problems", [str(exc)]))) from None
        # Check what was given well too, so one round of fixes is enough.
        defaults = {f.name: f.default for f in fields(cls) if f.default is not MISSING}
        given = SimpleNamespace(**{**defaults, "host": None, "username": None, "known_hosts": None, **values})
        problems.extend(_problems(given))
        raise ConfigError(f"{where}: " + "; ".join(problems))

    def pinned_keys(self) -> list[PinnedKey]:
        """The pinned keys that apply to this host and port."""
        pinned = (parse_known_hosts_line(line) for line in self.known_hosts)
        return [p for p in pinned if p.applies_to(self.host, self.port)]

    def password(self) -> str | None:
        """The password, read now from its variable or file; None when none is configured."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if not value:
                raise ConfigError(f"the environment variable {self.password_env} (password_env for "
                                  f"{self.host}) is not set or empty")
            return value
        if self.password_file:
            return _read_secret_file(self.password_file, f"password_file for {self.host}")
        return None

    def key_passphrase(self) -> str | None:
        if not self.key_passphrase_env:
            return None
        value = os.environ.get(self.key_passphrase_env)
        if not value:
            raise ConfigError(f"the environment variable {self.key_passphrase_env} (key_passphrase_env for "
                              f"{self.host}) is not set or empty")
        return value

    def transfer_deadline(self, size: int) -> float:
        return self.operation_timeout + size / self.min_transfer_rate


def check_secret_file(path: str, what: str) -> None:
    """Refuse a secret file other users may read or write (ConfigError naming it and the fix).

    As OpenSSH refuses a private key others can read ("UNPROTECTED PRIVATE KEY FILE"): the hub's
    own file must have no group or other bits; a file another account owns may be shared with a
    group (``root:bhhub 0640``, the usual way to hand a service a secret) but not with everyone.
    """
    try:
        found = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"cannot read {path} ({what}): {exc.strerror or type(exc).__name__}") from exc
    mode = stat.S_IMODE(found.st_mode)
    if found.st_uid == os.geteuid():
        if mode & 0o077:
            raise ConfigError(f"{path} ({what}) can be read or written by other users (mode {mode:04o}), so it is "
                              f"not used; make it private: chmod 600 {path}")
    elif mode & 0o007:
        raise ConfigError(f"{path} ({what}) can be read or written by every user (mode {mode:04o}), so it is not "
                          f"used; take that away: chmod o-rwx {path}")


def _read_secret_file(path: str, what: str) -> str:
    check_secret_file(path, what)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path} ({what}): {type(exc).__name__}") from exc
    value = text.rstrip("\r\n")  # a trailing newline is the editor's, not the password's
    if not value:
        raise ConfigError(f"{path} ({what}) is empty")
    return value


_STRINGS = ("host", "username", "password_env", "password_file", "key_file", "key_passphrase_env")
_NUMBERS = ("connect_timeout", "operation_timeout", "min_transfer_rate")
_INTEGERS = ("port", "keepalive_interval", "max_prefetch_requests", "max_download_bytes")


def _coerce(name: str, value) -> tuple[object, str | None]:
    """The value in the field's type, or a problem naming the setting (never echoing a value)."""
    if name in _STRINGS:
        return (value, None) if isinstance(value, str) else (None, f"{name} must be a string")
    if name in _INTEGERS:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return (value, None) if ok else (None, f"{name} must be a whole number")
    if name in _NUMBERS:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return (float(value), None) if ok else (None, f"{name} must be a number of seconds" if "timeout" in name
                                                 else f"{name} must be a number")
    if name == "known_hosts":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            return None, "known_hosts must be a list of known_hosts lines"
        return tuple(value), None
    return value, None


def _problems(settings) -> list[str]:
    """What is wrong with these settings; a field that is None was not given (reported elsewhere)."""
    problems = []
    if settings.host is not None and (not isinstance(settings.host, str) or not settings.host.strip()):
        problems.append("host is empty")
    if settings.username is not None and (not isinstance(settings.username, str) or not settings.username.strip()):
        problems.append("username is empty")
    if not isinstance(settings.port, int) or not 0 < settings.port < 65536:
        problems.append("port must be between 1 and 65535")
    lines = [line for line in settings.known_hosts or () if line.strip() and not line.lstrip().startswith("#")]
    if settings.known_hosts is not None and not lines:
        problems.append("known_hosts pins no host key; the hub never trusts a server's key on first use. "
                        "Get the key from the clearinghouse (or `ssh-keyscan -p PORT HOST`, then confirm its "
                        "fingerprint with them) and list it in known_hosts")
    applicable = 0
    for number, line in enumerate(lines, start=1):
        try:
            pinned = parse_known_hosts_line(line)
        except ValueError as exc:
            problems.append(f"known_hosts line {number} {exc}")
            continue
        if isinstance(settings.host, str) and settings.host and isinstance(settings.port, int):
            if pinned.applies_to(settings.host, settings.port):
                applicable += 1
            else:
                problems.append(f"known_hosts line {number} is for {','.join(pinned.hosts or ())}, not for "
                                f"{settings.host} port {settings.port} (write the line without a host to pin the "
                                f"key for whatever host is configured)")
    if lines and not applicable and not any("known_hosts line" in p for p in problems):
        problems.append("known_hosts pins no key for this host")
    if settings.password_env and settings.password_file:
        problems.append("give password_env or password_file, not both")
    if not (settings.password_env or settings.password_file or settings.key_file):
        problems.append("no credentials: set password_env, password_file or key_file")
    if settings.key_passphrase_env and not settings.key_file:
        problems.append("key_passphrase_env is set but key_file is not")
    if settings.password_env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", settings.password_env):
        problems.append("password_env must be the name of an environment variable (letters, digits, _)")
    for name in ("connect_timeout", "operation_timeout", "min_transfer_rate"):
        value = getattr(settings, name)
        if not isinstance(value, (int, float)) or value <= 0:
            problems.append(f"{name} must be greater than zero")
    if not isinstance(settings.keepalive_interval, int) or settings.keepalive_interval < 0:
        problems.append("keepalive_interval must be 0 (off) or more seconds")
    if not isinstance(settings.max_prefetch_requests, int) or not 1 <= settings.max_prefetch_requests <= 1024:
        problems.append("max_prefetch_requests must be between 1 and 1024")
    if not isinstance(settings.max_download_bytes, int) or settings.max_download_bytes < 1:
        problems.append("max_download_bytes must be 1 or more")
    return problems
