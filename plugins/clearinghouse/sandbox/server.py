"""The sandbox clearinghouse: an SFTP mailbox on 127.0.0.1 that answers 837P, 270 and 276 uploads.

    with SandboxClearinghouse(tmp_path / "sandbox", today=date(2026, 11, 30)) as sandbox:
        sandbox.known_hosts_line, sandbox.port, sandbox.password   # what a mailbox needs
        ... upload NAME.837 to /to-clearinghouse (as NAME.837.part, then rename) ...
        sandbox.processed[-1].replies    # ('000000001.999', '000000001.277', ...) already in place

It serves ``root`` (``/to-clearinghouse``, ``/from-clearinghouse``, ``/picked-up``) through
``bhhub.connectors.sftp.testserver.SftpTestServer``. When a file lands under its final name in
``/to-clearinghouse`` (renamed into place, or closed after a direct write), the answer is
written inside that rename, before the client hears back: when ``rename`` returns the replies
are in ``/from-clearinghouse``. That makes demos and tests deterministic. ``*.part`` files and
dot files are never read.

Its own things live in ``root/.sandbox/``, which SFTP clients can neither list nor open: the
host key (generated once, mode 600, so the pinned known_hosts line survives restarts), the
password file (mode 600), the state (control numbers, interchanges seen) and the uploads it
has dealt with (``processed/``, and ``rejected/`` for files it could not read).
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
import threading
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

import paramiko

from bhhub.connectors.sftp.testserver import SftpTestServer, generate_ed25519_key
from bhhub.errors import ConfigError

from bhhub.plugins.clearinghouse.sandbox.clearinghouse import Answer, answer_upload
from bhhub.plugins.clearinghouse.sandbox.rules import Rules, load_rules
from bhhub.plugins.clearinghouse.sandbox.state import SandboxState

log = logging.getLogger(__name__)

OUTBOUND, INBOUND, ARCHIVE = "to-clearinghouse", "from-clearinghouse", "picked-up"  # as the hub names them
PRIVATE = ".sandbox"
TEMPORARY_SUFFIX = ".part"  # mappings/clearinghouses/sandbox.toml: uploads are renamed from NAME.part


@dataclass(frozen=True)
class Handled:
    """What the sandbox did with one upload (``SandboxClearinghouse.processed``)."""

    upload: str  # its name in /to-clearinghouse
    outcome: str  # answered | duplicate | interchange_rejected | unreadable | failed
    interchange_control_number: str | None
    replies: tuple[str, ...]  # file names written to /from-clearinghouse, in order
    accepted_claims: tuple[str, ...] = ()
    rejected_claims: tuple[str, ...] = ()
    remitted_claims: tuple[str, ...] = ()
    note: str = ""


class SandboxClearinghouse:
    """A local clearinghouse over real SFTP; a context manager that starts and stops it."""

    host = SftpTestServer.host

    def __init__(self, root: Path, *, port: int = 0, host_key_path: Path | None = None,
                 password: str | None = None, username: str = "bhhub", rules: Rules | None = None,
                 today: date | datetime | None = None, realtime_port: int | None = None):
        _require_pyx12()
        self.root = Path(root).resolve()
        self.private = self.root / PRIVATE
        for folder in (OUTBOUND, INBOUND, ARCHIVE):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        for folder in ("processed", "rejected"):
            (self.private / folder).mkdir(parents=True, exist_ok=True)
        os.chmod(self.private, 0o700)
        self.host_key_path = Path(host_key_path) if host_key_path else self.private / "host_key"
        self.password_path = self.private / "password"
        self.rules = rules or load_rules()
        self.today = today
        self.state = SandboxState(self.private / "state.json")
        self.processed: list[Handled] = []
        self.realtime = None  # the real-time HTTP endpoint (``realtime.RealtimeSandbox``), when asked for
        self._realtime_port = realtime_port
        self._lock = threading.Lock()
        self._server = SftpTestServer(
            self.root, username=username, password=self._password(password), host_key=self._host_key(),
            moved_dir=self.private, port=port, on_file_ready=self._file_ready)

    # --- what a client needs ------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def username(self) -> str:
        return self._server.username

    @property
    def password(self) -> str:
        return self._server.password

    @property
    def known_hosts_line(self) -> str:
        return self._server.known_hosts_line

    # --- life cycle ---------------------------------------------------------------------------

    def start(self) -> SandboxClearinghouse:
        self._server.start()
        log.info("sandbox clearinghouse listening on %s:%d", self.host, self.port)
        if self._realtime_port is not None:
            from bhhub.plugins.clearinghouse.sandbox.realtime import RealtimeSandbox

            try:  # the same rules, state (control numbers) and credentials as the mailbox
                self.realtime = RealtimeSandbox(self.rules, self.state, port=self._realtime_port,
                                                username=self.username, password=self.password,
                                                today=self.today).start()
            except OSError:
                self._server.stop()
                raise
        return self

    def stop(self) -> None:
        if self.realtime is not None:
            self.realtime.stop()
            self.realtime = None
        self._server.stop()

    def __enter__(self) -> SandboxClearinghouse:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- answering uploads --------------------------------------------------------------------

    def _file_ready(self, local: Path) -> None:
        """Called by the SFTP server inside the client's rename (or close): answer, then return."""
        if local.parent.resolve() != self.root / OUTBOUND:
            return
        if local.name.endswith(TEMPORARY_SUFFIX) or local.name.startswith("."):
            return
        with self._lock:
            try:
                handled = self._handle(local)
            except Exception as exc:  # noqa: BLE001 - a bad upload or a bug must not stop the server
                log.error("sandbox: could not answer %s (%s)", local.name, type(exc).__name__)
                self._set_aside(local, "rejected")
                handled = Handled(local.name, "failed", None, (), note=type(exc).__name__)
            self.processed.append(handled)

    def _handle(self, local: Path) -> Handled:
        content = local.read_bytes()
        answer = answer_upload(content, self.rules, self.state, self._now())
        names = tuple(self._deliver(answer, kind, reply) for kind, reply in answer.replies)
        if answer.outcome == "unreadable":
            log.warning("sandbox: %s (%d bytes) is not an X12 interchange it can answer; set aside",
                        local.name, len(content))
        self._set_aside(local, "rejected" if answer.outcome == "unreadable" else "processed")
        return Handled(local.name, answer.outcome, answer.interchange_control_number, names, answer.accepted_claims,
                       answer.rejected_claims, answer.remitted_claims, answer.note)

    def _now(self) -> datetime:
        if isinstance(self.today, datetime):
            return self.today
        if isinstance(self.today, date):
            return datetime.combine(self.today, time(12, 0))
        return datetime.now().replace(second=0, microsecond=0)

    def _deliver(self, answer: Answer, kind: str, content: bytes) -> str:
        """Write a reply aside under a dot name, then link it into place under a free name."""
        inbound = self.root / INBOUND
        fd, temporary = tempfile.mkstemp(dir=inbound, prefix=".reply-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            stem = answer.interchange_control_number
            for n in range(1, 1000):
                name = f"{stem}.{kind}" if n == 1 else f"{stem}-{n}.{kind}"
                try:
                    os.link(temporary, inbound / name)  # never replaces: an earlier reply may be unread
                    return name
                except FileExistsError:
                    continue
            raise FileExistsError(f"no free name for {stem}.{kind}")
        finally:
            os.unlink(temporary)

    def _set_aside(self, local: Path, folder: str) -> None:
        target = self.private / folder / local.name
        n = 1
        while target.exists():
            n += 1
            target = target.with_name(f"{local.name}.{n}")
        try:
            os.replace(local, target)
        except OSError as exc:
            log.error("sandbox: could not move %s out of the mailbox (%s)", local.name, type(exc).__name__)

    # --- secrets ------------------------------------------------------------------------------

    def _host_key(self) -> paramiko.PKey:
        """The persisted host key, generated on first start (mode 600)."""
        if self.host_key_path.exists():
            try:
                return paramiko.Ed25519Key(filename=str(self.host_key_path))
            except (OSError, paramiko.SSHException) as exc:
                raise ConfigError(f"cannot read the sandbox host key {self.host_key_path}: {exc}") from exc
        return generate_ed25519_key(self.host_key_path)

    def _password(self, given: str | None) -> str:
        """The given password, else the one saved under the root, else a new one (saved, mode 600)."""
        if given is None and self.password_path.exists():
            saved = self.password_path.read_text(encoding="utf-8").strip()
            if saved:
                return saved
        password = given if given is not None else secrets.token_urlsafe(18)
        fd = os.open(self.password_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(password + "\n")
        os.chmod(self.password_path, 0o600)
        return password


def _require_pyx12() -> None:
    try:
        import pyx12  # noqa: F401
    except ImportError as exc:
        raise ConfigError("the sandbox clearinghouse checks uploads with pyx12: "
                          "pip install 'bhhub[validate]' (or pip install pyx12)") from exc
