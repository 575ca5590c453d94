"""Reaching a clearinghouse's SFTP server: connecting, the pinned host key, logging in, deadlines.

- The server's key is checked against the mailbox's pinned ``known_hosts`` lines and nothing
  else (never the user's ~/.ssh/known_hosts, never trust on first use).
- Every step is bounded, and the whole connection runs under a ``Watchdog`` that closes it from
  outside when its deadline passes (paramiko's own timeouts do not stop a stalled transfer,
  #1380/#1832); ``bhhub.connectors.sftp.client`` runs each operation under one too.
- A server that goes silent or hangs up is said to have done so, at the step it did it ("accepted
  the connection but did not answer the SSH handshake within 15 s", "stopped answering during
  log in"), never in paramiko's words ("No existing session"); paramiko's exception is chained.
  paramiko logs each failure of its connection thread as an ERROR traceback; those lines go to
  ``bhhub.connectors.sftp.client.ssh`` (under the client's logger, where they always went) and
  are shown only when it logs at DEBUG.

What a failed call raises (the errors of ``bhhub.connectors.sftp.client``) is listed there.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Callable

import paramiko
from paramiko.sftp import CMD_INIT, CMD_VERSION, SFTPError

from bhhub.connectors.sftp.settings import PinnedKey, SftpSettings, check_secret_file
from bhhub.errors import ConfigError, FatalError, HubError, RetriableError

# paramiko's own log of each connection: a child of the client's logger, so that the name
# operators configure stays what it was before the connecting code had a module of its own.
SSH_LOG = "bhhub.connectors.sftp.client.ssh"


class _DebugOnly(logging.Filter):
    """paramiko's lines are for whoever debugs: the failures they tell are raised as one clear error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno <= logging.DEBUG or logging.getLogger(SSH_LOG).isEnabledFor(logging.DEBUG)


for _name in (SSH_LOG, f"{SSH_LOG}.sftp"):
    logging.getLogger(_name).addFilter(_DebugOnly())

# What paramiko still offers that no current server needs; OpenSSH 9.2 negotiates without them
# (tests/test_sftp_connector.py checks what was negotiated).
DISABLED_ALGORITHMS = {
    "ciphers": ["3des-cbc", "aes128-cbc", "aes192-cbc", "aes256-cbc"],
    "macs": ["hmac-md5", "hmac-md5-96", "hmac-sha1-96"],
    "kex": ["diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1", "diffie-hellman-group-exchange-sha1"],
    "keys": ["ssh-dss", "ssh-rsa"],  # ssh-rsa here is the SHA-1 signature; rsa-sha2-* stay
    "pubkeys": ["ssh-dss", "ssh-rsa"],
}
CONNECT_STEPS = ("connect", "host key", "log in", "open SFTP")
# How each step reads in "the server at HOST:PORT stopped answering <during ...>".
DURING = {"host key": "during the key exchange", "log in": "during log in",
          "open SFTP": "while opening the SFTP session"}


class HostKeyError(FatalError):
    """The server's host key is not pinned for this mailbox, or it changed."""


class AuthenticationError(FatalError):
    """The server refused the login with the configured credentials."""


def establish(settings: SftpSettings, note: Callable[[str, str], None] = lambda step, message: None):
    """Connect, check the host key, log in, open SFTP; each step bounded, the whole under a watchdog."""
    where = f"{settings.host}:{settings.port}"
    seconds = settings.connect_timeout * len(CONNECT_STEPS)
    watchdog = Watchdog(seconds, None)
    transport = None
    step = "connect"
    try:
        with watchdog:
            sock = _open_socket(settings)
            watchdog.target = sock
            note(step, f"reached {where}")
            step = "host key"
            transport, offered = _handshake(sock, settings)
            watchdog.target = transport
            note(step, f"the server's {offered.get_name()} key {offered.fingerprint} is pinned")
            step = "log in"
            methods = _authenticate(transport, settings)
            note(step, f"logged in as {settings.username} with {methods}")
            step = "open SFTP"
            sftp = _open_sftp(transport, settings)
            note(step, "SFTP session open")
            if settings.keepalive_interval:
                transport.set_keepalive(settings.keepalive_interval)
            return transport, sftp
    except HubError:
        close_transport(transport)
        if watchdog.fired:
            raise _stopped_answering(where, step, seconds) from None
        raise
    except (OSError, EOFError, paramiko.SSHException) as exc:
        # paramiko's "SSH session not active" says only that the connection is gone; why is the
        # exception its thread kept
        why = transport.get_exception() if transport is not None and not transport.is_active() else None
        close_transport(transport)
        if watchdog.fired:
            raise _stopped_answering(where, step, seconds) from exc
        raise _connecting_failure(where, step, why or exc, settings.connect_timeout) from exc


def _stopped_answering(where: str, step: str, seconds: float) -> RetriableError:
    if step == "connect":
        return RetriableError(f"no answer from {where} within {in_seconds(seconds)} s")
    return RetriableError(f"the server at {where} stopped answering {DURING[step]} (no answer within "
                          f"{in_seconds(seconds)} s)")


def _connecting_failure(where: str, step: str, exc: BaseException, seconds: float) -> RetriableError:
    """What a failed step looked like from here: silence, a hang-up, or the server's own words."""
    if _timed_out(exc):
        return _stopped_answering(where, step, seconds)
    during = f" {DURING[step]}" if step in DURING else ""
    if hung_up(exc):
        return RetriableError(f"the server at {where} closed the connection{during}")
    return RetriableError(f"connecting to {where} failed{during}: {reason_of(exc)}")


def _open_socket(settings: SftpSettings) -> socket.socket:
    where = f"{settings.host}:{settings.port}"
    try:
        return socket.create_connection((settings.host, settings.port), timeout=settings.connect_timeout)
    except socket.gaierror as exc:
        raise RetriableError(f"cannot find the host {settings.host} (name lookup failed: {exc.strerror})") from exc
    except TimeoutError as exc:
        raise RetriableError(f"no answer from {where} within {settings.connect_timeout:.0f} s") from exc
    except OSError as exc:
        raise RetriableError(f"cannot reach {where}: {reason_of(exc)}") from exc


def _handshake(sock: socket.socket, settings: SftpSettings) -> tuple[paramiko.Transport, paramiko.PKey]:
    """Key exchange, then the server's key against the pinned ones. Nothing else is trusted."""
    where = f"{settings.host}:{settings.port}"
    pinned = settings.pinned_keys()
    transport = paramiko.Transport(sock, disabled_algorithms=DISABLED_ALGORITHMS)
    transport.set_log_channel(SSH_LOG)
    transport.auth_timeout = transport.channel_timeout = settings.connect_timeout
    # paramiko's own banner and handshake limits outlast ours, so the wait below decides, and
    # can tell a silent server from one that hung up (paramiko reports both as an EOF).
    transport.banner_timeout = transport.handshake_timeout = settings.connect_timeout + 30
    options = transport.get_security_options()
    # Ask only for the kinds of key that are pinned, so a server holding several presents ours.
    pinned_types = {p.key.get_name() for p in pinned}
    wanted = tuple(a for a in options.key_types if _key_type_of(a) in pinned_types)
    if wanted:
        options.key_types = wanted
    done = threading.Event()
    transport.start_client(event=done)
    # paramiko's start_client(timeout=...) returns at its timeout as if all went well, and the
    # next call fails with "No existing session": wait here, and say what happened instead.
    if not done.wait(settings.connect_timeout) or not transport.is_active():
        failure = transport.get_exception()
        greeted = bool(transport.remote_version)
        close_transport(transport)
        if failure is not None and "host key" in str(failure).lower():
            raise HostKeyError(f"{where} offers none of the pinned kinds of host key ({', '.join(sorted(pinned_types))})"
                               f"; its key may have changed. Ask the clearinghouse for the server's current key "
                               f"fingerprint before pinning another one") from failure
        raise _handshake_failure(where, settings.connect_timeout, greeted, failure) from failure
    offered = transport.get_remote_server_key()
    if not any(p.key.asbytes() == offered.asbytes() for p in pinned):
        close_transport(transport)
        raise HostKeyError(_host_key_message(where, offered, pinned))
    return transport, offered


def _handshake_failure(where: str, seconds: float, greeted: bool, failure: BaseException | None) -> RetriableError:
    """The SSH handshake did not complete within ``seconds``: silence, a hang-up, or not SSH."""
    silent = failure is None or _timed_out(failure)
    text = str(failure)
    if "Incompatible version" in text or "protocol version" in text or "Invalid SSH banner" in text:
        return RetriableError(f"{where} answered, but not as an SSH 2 server (is the port right?)")
    if not greeted:
        if silent:
            return RetriableError(f"the server at {where} accepted the connection but did not answer the SSH "
                                  f"handshake within {in_seconds(seconds)} s")
        if hung_up(failure):
            return RetriableError(f"the server at {where} accepted the connection but closed it without an SSH "
                                  f"greeting")
    elif silent:
        return RetriableError(f"the server at {where} sent its SSH greeting, then stopped answering during the "
                              f"key exchange (no answer within {in_seconds(seconds)} s)")
    elif hung_up(failure):
        return RetriableError(f"the server at {where} closed the connection during the key exchange")
    return RetriableError(f"the SSH handshake with {where} failed: {reason_of(failure)}")


def _key_type_of(algorithm: str) -> str:
    return "ssh-rsa" if algorithm.startswith("rsa-sha2-") else algorithm


def _host_key_message(where: str, offered: paramiko.PKey, pinned: list[PinnedKey]) -> str:
    said = f"the SFTP server at {where} presented the {offered.get_name()} host key {offered.fingerprint}"
    if any(p.key.get_name() == offered.get_name() for p in pinned):
        known = ", ".join(p.key.fingerprint for p in pinned if p.key.get_name() == offered.get_name())
        return (f"{said}, not the pinned {known}: the server's key has CHANGED. Do not connect until the "
                f"clearinghouse confirms the new fingerprint (someone may be intercepting the connection); "
                f"then replace the key in this mailbox's known_hosts")
    return (f"{said}, which is not pinned in this mailbox's known_hosts. Confirm that fingerprint with the "
            f"clearinghouse (not from the server itself), then add the key to known_hosts")


def _authenticate(transport: paramiko.Transport, settings: SftpSettings) -> str:
    where = f"{settings.host}:{settings.port}"
    key = _load_key(settings) if settings.key_file else None
    password = settings.password()
    tried = []
    if key is not None:
        tried.append("public key")
        try:
            transport.auth_publickey(settings.username, key)
        except paramiko.AuthenticationException as exc:
            _raise_if_lost(transport, exc, where, settings.connect_timeout)
    if not transport.is_authenticated() and password is not None:
        tried.append("password")
        try:
            transport.auth_password(settings.username, password)
        except paramiko.AuthenticationException as exc:
            _raise_if_lost(transport, exc, where, settings.connect_timeout)
    if not transport.is_authenticated():
        raise AuthenticationError(f"{where} refused the login of user {settings.username} (tried "
                                  f"{' and '.join(tried)}); check this mailbox's credentials")
    return " and ".join(tried)


def _raise_if_lost(transport: paramiko.Transport, exc: Exception, where: str, seconds: float) -> None:
    """A refusal is the caller's to report; a silent or vanished server is said as such."""
    if not transport.is_active() or _timed_out(exc):
        raise _connecting_failure(where, "log in", exc, seconds) from exc


def _load_key(settings: SftpSettings) -> paramiko.PKey:
    check_secret_file(settings.key_file, f"key_file for {settings.host}")
    passphrase = settings.key_passphrase()
    try:
        # paramiko hands the passphrase to cryptography, which wants bytes
        return paramiko.PKey.from_path(settings.key_file, password=passphrase.encode() if passphrase else None)
    except paramiko.PasswordRequiredException as exc:
        raise ConfigError(f"the key_file {settings.key_file} needs a passphrase: set key_passphrase_env") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read the key_file {settings.key_file}: {exc.strerror}") from exc
    except (paramiko.SSHException, ValueError) as exc:
        raise ConfigError(f"cannot load the key_file {settings.key_file} (wrong passphrase or not a private "
                          f"key): {type(exc).__name__}") from exc


def _open_sftp(transport: paramiko.Transport, settings: SftpSettings) -> "SFTPSession":
    channel = transport.open_session(timeout=settings.connect_timeout)
    channel.settimeout(settings.connect_timeout)  # the SFTP version exchange has no limit of its own
    channel.invoke_subsystem("sftp")
    sftp = SFTPSession(channel)
    channel.settimeout(None)  # from here each call has its own deadline (the watchdog)
    return sftp


def close_transport(transport: paramiko.Transport | None) -> None:
    if transport is None:
        return
    transport.close()
    if transport is not threading.current_thread():
        transport.join(timeout=5)


class SFTPSession(paramiko.SFTPClient):
    """paramiko's client, remembering the extensions the server announces (posix-rename)."""

    extensions: dict[str, bytes]

    def _send_version(self):
        init = paramiko.Message()
        init.add_int(3)
        self._send_packet(CMD_INIT, init)
        kind, data = self._read_packet()
        if kind != CMD_VERSION:
            raise SFTPError("Incompatible sftp protocol")
        reply = paramiko.Message(data)
        version = reply.get_int()
        self.extensions = {}
        while reply.get_remainder():
            name = reply.get_text()
            self.extensions[name] = reply.get_binary()
        return version


class Watchdog:
    """Closes ``target`` (a socket or Transport) from another thread when ``seconds`` pass."""

    def __init__(self, seconds: float, target):
        self.seconds, self.target, self.fired = seconds, target, False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        target = self.target
        if isinstance(target, socket.socket):
            try:
                target.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if target is not None:
            target.close()

    def __enter__(self) -> "Watchdog":
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        self._timer.join()  # if it fired, wait until the close is done: no thread outlives the call


# --- saying what went wrong ----------------------------------------------------------------------


def reason_of(exc: BaseException) -> str:
    """What went wrong, in the words of the OS when it has some."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def in_seconds(seconds: float) -> str:
    """``seconds`` as a message says it: 15, 0.5."""
    return f"{round(seconds, 1):g}"


def _causes(exc: BaseException | None) -> list[BaseException]:
    """``exc`` and what it was raised from or during, in order."""
    found: list[BaseException] = []
    while exc is not None and exc not in found:
        found.append(exc)
        exc = exc.__cause__ or exc.__context__
    return found


def _timed_out(exc: BaseException | None) -> bool:
    """The other end said nothing in time (paramiko words it as a timeout somewhere in the chain)."""
    return any(isinstance(e, TimeoutError) or "timeout" in str(e).lower() or "timed out" in str(e).lower()
               for e in _causes(exc))


def hung_up(exc: BaseException | None) -> bool:
    """The other end closed the connection (an EOF or reset, in paramiko's many words for it)."""
    words = ("connection dropped", "saw eof", "eof during negotiation", "channel closed")
    return any(isinstance(e, (EOFError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError))
               or any(w in str(e).lower() for w in words) for e in _causes(exc))
