"""The SFTP transport against OpenSSH's real sshd and the in-process paramiko test server.

Each behaviour that both servers can show runs on both; a misbehaving server (write-once,
refused rename or remove) is the paramiko test server. Faults on the wire come from a TCP
proxy between client and server (tests/sftp_support.py). Both servers log in as an ordinary
account (never root), so a file's permissions count as they do at a clearinghouse.
"""

from __future__ import annotations

import ast
import os
import posixpath
import random
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import paramiko
import pytest

from bhhub.connectors.sftp.client import RemoteRefusedError, SftpClient, test_connection
from bhhub.connectors.sftp.connection import DISABLED_ALGORITHMS, AuthenticationError, HostKeyError
from bhhub.connectors.sftp.settings import SftpSettings, parse_known_hosts_line
from bhhub.connectors.sftp.testserver import SftpTestServer, generate_ed25519_key
from bhhub.errors import ConfigError, RemoteFileError, RetriableError
from sftp_support import FaultProxy, SilentPeer, give_to_login, openssh_server, sshd_available

PROJECT = Path(__file__).resolve().parent.parent
NO_SSHD = pytest.mark.skipif(not sshd_available(), reason="OpenSSH's sshd is not installed (/usr/sbin/sshd)")
KINDS = ["paramiko", pytest.param("openssh", marks=NO_SSHD)]
FAST = dict(connect_timeout=5.0, operation_timeout=5.0)


@dataclass
class Box:
    """One test's folder on one server, as the client and as the disk see it."""

    kind: str
    folder: str
    root: Path
    address: tuple[str, int]
    host_public_key: str
    make_settings: Callable[..., SftpSettings]
    test_server: SftpTestServer | None = None

    def settings(self, **overrides) -> SftpSettings:
        return self.make_settings(**{**FAST, **overrides})

    def remote(self, *parts: str) -> str:
        return posixpath.join(self.folder, *parts)

    def local(self, *parts: str) -> Path:
        return self.root.joinpath(self.folder, *parts)


@pytest.fixture(scope="module")
def openssh(tmp_path_factory):
    with openssh_server(tmp_path_factory.mktemp("sshd"), unprivileged=True) as server:
        yield server


def _openssh_folder(server) -> str:
    folder = f"t-{uuid.uuid4().hex[:8]}"
    (server.root / folder).mkdir()
    give_to_login(server, server.root / folder)
    return folder


@pytest.fixture
def test_server(tmp_path):
    with SftpTestServer(tmp_path / "served") as server:
        yield server


def _paramiko_box(server: SftpTestServer, tmp_path: Path) -> Box:
    key = server.new_client_key(tmp_path / "client_key")

    def make(port: int | None = None, **overrides) -> SftpSettings:
        values = dict(host=server.host, port=port or server.port, username=server.username,
                      known_hosts=(server.host_public_key,), key_file=str(key))
        return SftpSettings(**{**values, **overrides})

    (server.root / "box").mkdir()
    return Box("paramiko", "box", server.root, server.address, server.host_public_key, make, server)


@pytest.fixture(params=KINDS)
def box(request, tmp_path) -> Box:
    if request.param == "paramiko":
        return _paramiko_box(request.getfixturevalue("test_server"), tmp_path)
    server = request.getfixturevalue("openssh")
    folder = _openssh_folder(server)
    return Box("openssh", folder, server.root, server.address, server.host_public_key, server.settings)


@pytest.fixture
def misbehaving(test_server, tmp_path) -> Box:
    return _paramiko_box(test_server, tmp_path)


def _spooled(spool: Path) -> list[str]:
    """The files left in a spool folder (none if it was never made)."""
    return sorted(p.name for p in spool.iterdir()) if spool.exists() else []


def _client_threads_ended(client_transport) -> bool:
    """The connection's own thread and every deadline timer are gone."""
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        timers = [t for t in threading.enumerate() if isinstance(t, threading.Timer)]
        if not client_transport.is_alive() and not timers:
            return True
        time.sleep(0.05)
    return False


# --- uploads ------------------------------------------------------------------------------------


def test_upload_by_rename_leaves_the_whole_file_under_its_final_name_and_no_temporary(box):
    data = os.urandom(200_000)
    with SftpClient(box.settings()) as client:
        client.makedirs(box.remote("outbound"))
        client.upload(data, box.remote("outbound"), "batch-1.837", method="rename", temp_suffix=".part")
        assert [f.name for f in client.listdir(box.remote("outbound"))] == ["batch-1.837"]
    assert box.local("outbound", "batch-1.837").read_bytes() == data


def test_direct_upload_writes_the_final_name(box):
    with SftpClient(box.settings()) as client:
        client.upload(b"ISA*00*...~", box.folder, "direct.837", method="direct")
        assert client.stat(box.remote("direct.837")).size == len(b"ISA*00*...~")
    assert box.local("direct.837").read_bytes() == b"ISA*00*...~"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_upload_cut_at_a_random_byte_never_leaves_a_partial_file_under_the_final_name(box, seed):
    rng = random.Random(seed)
    data = os.urandom(150_000)
    final = box.local("cut.837")
    with FaultProxy(box.address) as proxy:
        client = SftpClient(box.settings(port=proxy.port))
        client.connect()
        cut_after = rng.randrange(1, int(len(data) * 1.05))
        proxy.cut("client_to_server", after=cut_after)
        with pytest.raises(RetriableError):
            client.upload(data, box.folder, "cut.837")
        client.close()
    time.sleep(0.2)  # let the server finish whatever reached it
    assert not final.exists() or final.read_bytes() == data, f"partial file under the final name (seed {seed})"
    # The next attempt goes through and replaces any leftover temporary file.
    with SftpClient(box.settings()) as client:
        client.upload(data, box.folder, "cut.837")
    assert final.read_bytes() == data
    assert not box.local("cut.837.part").exists()


def test_an_existing_final_name_is_not_overwritten_without_posix_rename(misbehaving):
    misbehaving.test_server.offer_posix_rename = False
    misbehaving.local("taken.837").write_bytes(b"first copy")
    with SftpClient(misbehaving.settings()) as client:
        assert "posix-rename@openssh.com" not in client.server_extensions
        with pytest.raises(RetriableError, match="already exists"):
            client.upload(b"second copy", misbehaving.folder, "taken.837")
        client.upload(b"other", misbehaving.folder, "free.837")  # a plain rename works when the name is free
    assert misbehaving.local("taken.837").read_bytes() == b"first copy"
    assert misbehaving.local("free.837").read_bytes() == b"other"


@NO_SSHD
def test_openssh_offers_posix_rename_so_a_resend_replaces_the_earlier_copy(openssh):
    folder = _openssh_folder(openssh)
    with SftpClient(openssh.settings(**FAST)) as client:
        assert "posix-rename@openssh.com" in client.server_extensions
        client.upload(b"first", folder, "same.837")
        client.upload(b"second", folder, "same.837")
    assert (openssh.root / folder / "same.837").read_bytes() == b"second"


def test_a_write_once_server_works_with_direct_upload_without_confirmation(misbehaving):
    misbehaving.test_server.move_on_close = True
    with SftpClient(misbehaving.settings()) as client:
        client.upload(b"ISA~", misbehaving.folder, "once.837", method="direct", confirm=False)
        assert client.listdir(misbehaving.folder) == []  # taken away at once, as such servers do
    assert (misbehaving.test_server.moved_dir / "box" / "once.837").read_bytes() == b"ISA~"


@pytest.mark.parametrize("confirm", [True, False])
def test_a_write_once_server_fails_a_rename_upload_cleanly_saying_what_to_change(misbehaving, confirm):
    misbehaving.test_server.move_on_close = True
    with SftpClient(misbehaving.settings()) as client:
        with pytest.raises(RemoteRefusedError, match='"direct"'):
            client.upload(b"ISA~", misbehaving.folder, "once.837", method="rename", confirm=confirm)
        assert client.connected  # a refusal, not a broken connection
    assert not misbehaving.local("once.837").exists()


def test_a_direct_upload_with_confirmation_on_a_write_once_server_says_to_turn_it_off(misbehaving):
    misbehaving.test_server.move_on_close = True
    with SftpClient(misbehaving.settings()) as client:
        with pytest.raises(RemoteRefusedError, match="confirm = false"):
            client.upload(b"ISA~", misbehaving.folder, "once.837", method="direct", confirm=True)


def test_a_server_refusing_renames_is_a_clear_error_and_leaves_no_temporary_file(misbehaving):
    misbehaving.test_server.refuse_rename = True
    with SftpClient(misbehaving.settings()) as client:
        with pytest.raises(RemoteRefusedError, match="permission denied"):
            client.upload(b"ISA~", misbehaving.folder, "x.837")
    assert not misbehaving.local("x.837").exists() and not misbehaving.local("x.837.part").exists()


# --- downloads ----------------------------------------------------------------------------------


def test_download_streams_to_the_spool_with_its_hash(box, tmp_path):
    import hashlib

    data = os.urandom(300_000)
    box.local("835.x12").write_bytes(data)
    spool = tmp_path / "spool"
    with SftpClient(box.settings()) as client:
        got = client.download(box.remote("835.x12"), spool)
    assert got.path.read_bytes() == data and got.size == len(data)
    assert got.sha256 == hashlib.sha256(data).hexdigest()
    assert [p.name for p in spool.iterdir()] == [got.path.name]


@pytest.mark.parametrize("seed", [1, 2])
def test_a_download_cut_mid_transfer_leaves_no_spool_file(box, tmp_path, seed):
    data = os.urandom(400_000)
    box.local("cut.835").write_bytes(data)
    spool = tmp_path / "spool"
    with FaultProxy(box.address) as proxy:
        with SftpClient(box.settings(port=proxy.port)) as client:
            proxy.cut("server_to_client", after=random.Random(seed).randrange(10_000, len(data) - 10_000))
            with pytest.raises(RetriableError) as failed:
                client.download(box.remote("cut.835"), spool)
            assert not client.connected
    assert not isinstance(failed.value, RemoteFileError)  # the connection's fault, not the file's
    assert "closed the connection" in str(failed.value) and "dropped" not in str(failed.value)
    assert list(spool.iterdir()) == []


def test_a_missing_remote_file_is_a_per_file_failure_with_no_spool_file(box, tmp_path):
    with SftpClient(box.settings()) as client:
        with pytest.raises(RemoteFileError, match="absent.835.*no such file"):
            client.download(box.remote("absent.835"), tmp_path / "spool")
        assert client.connected
    assert _spooled(tmp_path / "spool") == []


# --- a file the server lists but cannot serve: that file's failure, the connection goes on --------


def test_a_listed_file_the_server_will_not_open_is_a_per_file_failure_and_the_next_file_comes(box, tmp_path):
    box.local("locked.835").write_bytes(b"ISA*locked~")
    box.local("locked.835").chmod(0)
    box.local("open.835").write_bytes(b"ISA*open~")
    spool = tmp_path / "spool"
    with SftpClient(box.settings()) as client:
        assert [f.name for f in client.listdir(box.folder)] == ["locked.835", "open.835"]
        with pytest.raises(RemoteFileError, match="locked.835.*permission denied") as refused:
            client.download(box.remote("locked.835"), spool)
        assert isinstance(refused.value.__cause__, RemoteRefusedError)  # what the server said, chained
        assert client.connected
        assert client.download(box.remote("open.835"), spool).path.read_bytes() == b"ISA*open~"
        box.local("locked.835").chmod(0o644)  # fixed on the server: the next try gets it
        assert client.download(box.remote("locked.835"), spool).path.read_bytes() == b"ISA*locked~"
    assert len(list(spool.iterdir())) == 2


def test_a_read_error_midway_through_a_file_is_a_per_file_failure_and_the_connection_stays_usable(
        misbehaving, tmp_path):
    misbehaving.test_server.fail_reads = {"broken.835": 150_000}
    misbehaving.local("broken.835").write_bytes(os.urandom(400_000))
    after = os.urandom(300_000)
    misbehaving.local("after.835").write_bytes(after)
    spool = tmp_path / "spool"
    with SftpClient(misbehaving.settings()) as client:
        with pytest.raises(RemoteFileError, match="broken.835"):
            client.download(misbehaving.remote("broken.835"), spool)
        assert client.connected
        assert list(spool.iterdir()) == []
        # answers still in flight for the broken file must not leak into the next transfer
        assert client.download(misbehaving.remote("after.835"), spool).path.read_bytes() == after
        assert [f.name for f in client.listdir(misbehaving.folder)] == ["after.835", "broken.835"]


def _append(path: Path, size: int) -> None:
    with path.open("ab") as out:
        out.write(b"~" * size)


@pytest.mark.parametrize("change", ["cut short", "grows"])
def test_a_file_that_changes_on_the_server_while_it_is_read_is_a_per_file_failure(box, tmp_path, change):
    box.local("changing.835").write_bytes(os.urandom(2_000_000))
    spool = tmp_path / "spool"
    with FaultProxy(box.address) as proxy:
        with SftpClient(box.settings(port=proxy.port, max_prefetch_requests=2)) as client:
            proxy.throttle("server_to_client", 600_000)  # over three seconds for the whole file
            if change == "cut short":
                changing = threading.Timer(0.3, os.truncate, (box.local("changing.835"), 100_000))
            else:
                changing = threading.Timer(0.3, _append, (box.local("changing.835"), 100_000))
            changing.start()
            with pytest.raises(RemoteFileError, match="changing.835.*(changing|being written)"):
                client.download(box.remote("changing.835"), spool)
            changing.join()
            assert client.connected
            proxy.heal()
            expected = 100_000 if change == "cut short" else 2_100_000
            assert client.download(box.remote("changing.835"), spool).size == expected


def test_a_file_larger_than_max_download_bytes_is_refused_before_its_content_is_read(box, tmp_path):
    box.local("huge.835").write_bytes(b"x" * 50_000)
    with SftpClient(box.settings(max_download_bytes=10_000)) as client:
        with pytest.raises(RemoteFileError, match="huge.835 .*50000 bytes.*max_download_bytes .*10000"):
            client.download(box.remote("huge.835"), tmp_path / "spool")
        assert client.connected
    assert _spooled(tmp_path / "spool") == []
    with pytest.raises(ConfigError, match="max_download_bytes"):
        box.settings(max_download_bytes=0)


def test_a_spool_that_cannot_be_written_is_a_local_failure_not_blamed_on_the_file_or_the_server(box, tmp_path):
    import resource
    import signal

    box.local("fits-not.835").write_bytes(os.urandom(300_000))
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
    try:
        with SftpClient(box.settings()) as client:
            resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, limits[1]))
            try:
                with pytest.raises(RetriableError, match="spool") as failed:
                    client.download(box.remote("fits-not.835"), tmp_path / "spool")
            finally:
                resource.setrlimit(resource.RLIMIT_FSIZE, limits)
    finally:
        signal.signal(signal.SIGXFSZ, previous)
    assert not isinstance(failed.value, RemoteFileError) and "127.0.0.1" not in str(failed.value)
    assert list((tmp_path / "spool").iterdir()) == []


def test_download_memory_stays_flat_in_file_size(box, tmp_path):
    import tracemalloc

    box.local("big.835").write_bytes(os.urandom(16 * 1024 * 1024))
    with SftpClient(box.settings()) as client:
        tracemalloc.start()
        try:
            got = client.download(box.remote("big.835"), tmp_path / "spool")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert got.size == 16 * 1024 * 1024
    assert peak < 6 * 1024 * 1024, f"download held {peak / 1e6:.1f} MB of a 16 MB file"


# --- deadlines ----------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["download", "upload"])
def test_a_stalled_server_gives_a_retriable_error_within_the_deadline(box, tmp_path, direction):
    data = os.urandom(600_000)
    box.local("stall.835").write_bytes(data)
    settings = box.settings(operation_timeout=1.0, min_transfer_rate=10 * 1024 * 1024)
    deadline = settings.transfer_deadline(len(data))
    with FaultProxy(box.address) as proxy:
        client = SftpClient(SftpSettings(**{**settings.__dict__, "port": proxy.port}))
        client.connect()
        transport = client._transport
        if direction == "download":
            proxy.stall("server_to_client", after=100_000)
            call = lambda: client.download(box.remote("stall.835"), tmp_path / "spool")  # noqa: E731
        else:
            proxy.stall("client_to_server", after=100_000)
            call = lambda: client.upload(data, box.folder, "stalled.837")  # noqa: E731
        started = time.monotonic()
        with pytest.raises(RetriableError, match="stopped answering .*no answer") as failed:
            call()
        elapsed = time.monotonic() - started
        assert not isinstance(failed.value, RemoteFileError)
    assert deadline - 0.1 <= elapsed < deadline + 1.5, f"took {elapsed:.2f} s for a {deadline:.2f} s deadline"
    assert _client_threads_ended(transport), "a thread of the failed connection is still running"
    assert not box.local("stalled.837").exists()


def test_a_server_that_stops_answering_mid_transfer_is_abandoned_at_the_deadline(misbehaving, tmp_path):
    misbehaving.test_server.stall_after_bytes = 64 * 1024
    misbehaving.local("slow.835").write_bytes(os.urandom(300_000))
    settings = misbehaving.settings(operation_timeout=0.5, min_transfer_rate=10 * 1024 * 1024)
    with SftpClient(settings) as client:
        transport = client._transport
        started = time.monotonic()
        with pytest.raises(RetriableError, match="no answer"):
            client.download(misbehaving.remote("slow.835"), tmp_path / "spool")
        assert time.monotonic() - started < settings.transfer_deadline(300_000) + 1.5
        with pytest.raises(RetriableError, match="not connected"):
            client.listdir(misbehaving.folder)  # the connection is closed for good, not half-usable
    assert _client_threads_ended(transport)
    assert list((tmp_path / "spool").iterdir()) == []


def test_a_connection_is_never_used_by_two_threads_at_once(misbehaving, tmp_path):
    misbehaving.test_server.stall_after_bytes = 0
    misbehaving.local("slow.835").write_bytes(b"x" * 1000)
    errors = []
    with SftpClient(misbehaving.settings(operation_timeout=1.0)) as client:
        worker = threading.Thread(target=lambda: errors.append(
            pytest.raises(RetriableError, client.download, misbehaving.remote("slow.835"), tmp_path / "spool")))
        worker.start()
        time.sleep(0.3)
        with pytest.raises(RuntimeError, match="two threads"):
            client.listdir(misbehaving.folder)
        worker.join(timeout=5)
    assert errors


def test_the_test_server_stops_promptly_with_a_session_stalled(tmp_path):
    server = SftpTestServer(tmp_path / "served", stall_after_bytes=0).start()
    (server.root / "f").write_bytes(b"x" * 100)
    os.environ["BHHUB_TEST_SFTP_PASSWORD"] = server.password
    settings = SftpSettings(host=server.host, port=server.port, username=server.username,
                            known_hosts=(server.host_public_key,), password_env="BHHUB_TEST_SFTP_PASSWORD",
                            operation_timeout=30)
    client = SftpClient(settings)
    client.connect()
    failure = []
    worker = threading.Thread(target=lambda: failure.append(_try(client.download, "f", tmp_path / "spool")))
    worker.start()
    time.sleep(0.3)
    started = time.monotonic()
    server.stop()
    worker.join(timeout=10)
    assert time.monotonic() - started < 8 and not worker.is_alive()
    assert isinstance(failure[0], RetriableError)
    client.close()
    assert server.sessions_open == 0


def _try(call, *args):
    try:
        call(*args)
    except Exception as exc:  # noqa: BLE001 - handed to the test to inspect
        return exc
    return None


# --- host keys ----------------------------------------------------------------------------------


def test_a_server_whose_key_is_not_the_pinned_one_is_refused_naming_its_fingerprint(box):
    other = generate_ed25519_key()
    settings = box.settings(known_hosts=(f"{other.get_name()} {other.get_base64()}",))
    offered = parse_known_hosts_line(box.host_public_key).key
    with pytest.raises(HostKeyError) as refused:
        SftpClient(settings).connect()
    message = str(refused.value)
    assert offered.fingerprint in message and "127.0.0.1" in message and "CHANGED" in message
    assert offered.fingerprint.startswith("SHA256:")


def test_a_pinned_key_of_another_kind_is_refused_too(box):
    other = paramiko.ECDSAKey.generate()
    settings = box.settings(known_hosts=(f"{other.get_name()} {other.get_base64()}",))
    with pytest.raises(HostKeyError, match="fingerprint|pinned"):
        SftpClient(settings).connect()


def test_a_mailbox_without_a_pinned_key_is_refused_before_connecting(box):
    with pytest.raises(ConfigError, match="pins no host key"):
        box.settings(known_hosts=())
    with pytest.raises(ConfigError, match="known_hosts is required"):
        SftpSettings.from_mapping({"host": "sftp.example.org", "username": "u", "password_env": "X"},
                                  where="[mailboxes.x]")


def test_the_pinned_line_may_name_the_host_and_port(box):
    host, port = box.address
    with SftpClient(box.settings(known_hosts=(f"[{host}]:{port} {box.host_public_key}",))) as client:
        assert client.connected


def test_only_the_sftp_client_may_set_a_host_key_policy():
    """Structural guard: nothing else in connectors/ or hub/ may weaken host-key checking."""
    offenders = []
    for folder in ("connectors", "hub"):
        for path in (PROJECT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
                relative = path.relative_to(PROJECT).as_posix()
                if name == "set_missing_host_key_policy" and relative != "connectors/sftp/connection.py":
                    offenders.append(f"{relative}:{node.lineno} {name}")
                if name in ("AutoAddPolicy", "WarningPolicy", "load_system_host_keys"):
                    offenders.append(f"{relative}:{node.lineno} {name}")
    assert offenders == []


@NO_SSHD
def test_openssh_negotiates_none_of_the_disabled_algorithms(openssh):
    with SftpClient(openssh.settings(**FAST)) as client:
        transport = client._transport
        negotiated = {"ciphers": {transport.local_cipher, transport.remote_cipher},
                      "macs": {transport.local_mac, transport.remote_mac} - {None}}
    assert not negotiated["ciphers"] & set(DISABLED_ALGORITHMS["ciphers"])
    assert not negotiated["macs"] & set(DISABLED_ALGORITHMS["macs"])


# --- credentials ---------------------------------------------------------------------------------


def test_password_from_an_environment_variable(test_server, monkeypatch):
    monkeypatch.setenv("BHHUB_SFTP_PASSWORD", test_server.password)
    settings = SftpSettings(host=test_server.host, port=test_server.port, username=test_server.username,
                            known_hosts=(test_server.known_hosts_line,), password_env="BHHUB_SFTP_PASSWORD")
    with SftpClient(settings) as client:
        assert client.listdir(".") == []


def test_password_from_a_file(test_server, tmp_path):
    secret = tmp_path / "password"
    secret.write_text(test_server.password + "\n")
    secret.chmod(0o600)
    with SftpClient(_password_file_settings(test_server, secret)) as client:
        assert client.connected


def _password_file_settings(server: SftpTestServer, secret: Path) -> SftpSettings:
    return SftpSettings(host=server.host, port=server.port, username=server.username,
                        known_hosts=(server.known_hosts_line,), password_file=str(secret))


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o660], ids=lambda mode: f"{mode:04o}")
def test_a_password_file_other_users_can_read_or_write_is_refused_naming_it_and_the_fix(test_server, tmp_path, mode):
    secret = tmp_path / "password"
    secret.write_text(test_server.password + "\n")
    secret.chmod(mode)
    settings = _password_file_settings(test_server, secret)
    with pytest.raises(ConfigError) as refused:
        SftpClient(settings).connect()
    message = str(refused.value)
    assert str(secret) in message and f"{mode:04o}" in message and f"chmod 600 {secret}" in message
    assert "\n" not in message and test_server.password not in message
    secret.chmod(0o600)
    with SftpClient(settings) as client:
        assert client.connected


def test_a_key_file_other_users_can_read_is_refused_as_openssh_refuses_it(test_server, tmp_path):
    key = test_server.new_client_key(tmp_path / "client_key")
    settings = SftpSettings(host=test_server.host, port=test_server.port, username=test_server.username,
                            known_hosts=(test_server.host_public_key,), key_file=str(key))
    key.chmod(0o644)
    with pytest.raises(ConfigError, match=f"{key} .*0644.*chmod 600 {key}"):
        SftpClient(settings).connect()
    key.chmod(0o600)
    with SftpClient(settings) as client:
        assert client.connected


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another account needs root")
def test_a_secret_file_another_account_shares_with_a_group_is_used_but_not_one_open_to_everyone(test_server, tmp_path):
    import pwd

    secret = tmp_path / "password"
    secret.write_text(test_server.password)
    os.chown(secret, pwd.getpwnam("nobody").pw_uid, 0)
    secret.chmod(0o640)  # root:bhhub 0640, read by the service's group: the way to share a secret
    settings = _password_file_settings(test_server, secret)
    with SftpClient(settings) as client:
        assert client.connected
    secret.chmod(0o644)
    with pytest.raises(ConfigError, match=f"{secret} .*0644.*chmod o-rwx {secret}"):
        SftpClient(settings).connect()


def test_a_missing_password_variable_is_a_config_error_naming_it(test_server, monkeypatch):
    monkeypatch.delenv("BHHUB_SFTP_MISSING", raising=False)
    settings = SftpSettings(host=test_server.host, port=test_server.port, username=test_server.username,
                            known_hosts=(test_server.known_hosts_line,), password_env="BHHUB_SFTP_MISSING")
    with pytest.raises(ConfigError, match="BHHUB_SFTP_MISSING"):
        SftpClient(settings).connect()
    with pytest.raises(ConfigError, match="nowhere/pw"):
        SftpSettings(**{**settings.__dict__, "password_env": None, "password_file": "/nowhere/pw"}).password()


def test_a_wrong_password_is_refused_without_echoing_it(test_server, monkeypatch):
    monkeypatch.setenv("BHHUB_SFTP_PASSWORD", "not-the-password-7781")
    settings = SftpSettings(host=test_server.host, port=test_server.port, username=test_server.username,
                            known_hosts=(test_server.known_hosts_line,), password_env="BHHUB_SFTP_PASSWORD")
    with pytest.raises(AuthenticationError) as refused:
        SftpClient(settings).connect()
    assert "not-the-password-7781" not in str(refused.value) and test_server.username in str(refused.value)


def test_key_authentication(box):
    with SftpClient(box.settings()) as client:  # every box logs in with a key
        assert client.connected


def test_a_key_with_a_passphrase_from_an_environment_variable(test_server, tmp_path, monkeypatch):
    key = test_server.new_client_key(tmp_path / "locked_key", passphrase="open sesame")
    settings = SftpSettings(host=test_server.host, port=test_server.port, username=test_server.username,
                            known_hosts=(test_server.host_public_key,), key_file=str(key),
                            key_passphrase_env="BHHUB_KEY_PASSPHRASE")
    monkeypatch.setenv("BHHUB_KEY_PASSPHRASE", "open sesame")
    with SftpClient(settings) as client:
        assert client.connected
    monkeypatch.delenv("BHHUB_KEY_PASSPHRASE")
    with pytest.raises(ConfigError, match="BHHUB_KEY_PASSPHRASE"):
        SftpClient(settings).connect()


def test_config_refuses_an_inline_password_and_lists_every_problem():
    with pytest.raises(ConfigError) as refused:
        SftpSettings.from_mapping({"host": "sftp.example.org", "username": "practice", "password": "hunter2",
                                   "port": "22", "known_hosts": [], "colour": "blue"}, where="[mailboxes.oa]")
    message = str(refused.value)
    assert message.startswith("[mailboxes.oa]")
    for problem in ("'password' must not be written", "port must be a whole number", "unknown setting 'colour'",
                    "pins no host key"):
        assert problem in message
    assert "hunter2" not in message


def test_config_from_a_mailbox_table():
    key = generate_ed25519_key()
    settings = SftpSettings.from_mapping(
        {"host": "sftp.example.org", "username": "practice", "password_env": "OA_PASSWORD",
         "known_hosts": [f"sftp.example.org {key.get_name()} {key.get_base64()}"], "operation_timeout": 30},
        where="[mailboxes.oa]")
    assert settings.port == 22 and settings.operation_timeout == 30.0 and len(settings.pinned_keys()) == 1
    with pytest.raises(ConfigError, match="is for other.example.org"):
        SftpSettings.from_mapping({"host": "sftp.example.org", "username": "u", "password_env": "P",
                                   "known_hosts": [f"other.example.org {key.get_name()} {key.get_base64()}"]},
                                  where="[mailboxes.oa]")


# --- listings and removal -------------------------------------------------------------------------


def test_listdir_gives_regular_files_with_sizes_and_mtimes_sorted_by_name(box):
    box.local("b.999").write_bytes(b"x" * 10)
    box.local("a.835").write_bytes(b"y" * 2000)
    box.local("sub").mkdir()
    os.utime(box.local("a.835"), (1_700_000_000, 1_700_000_000))
    with SftpClient(box.settings()) as client:
        listing = client.listdir(box.folder)
    assert [(f.name, f.size) for f in listing] == [("a.835", 2000), ("b.999", 10)]
    assert listing[0].mtime == 1_700_000_000
    assert listing[1].mtime == int(box.local("b.999").stat().st_mtime)


def test_a_file_still_being_written_shows_a_changing_size_between_listings(box):
    growing = box.local("growing.835")
    growing.write_bytes(b"ISA" * 300)
    with SftpClient(box.settings()) as client:
        first = client.listdir(box.folder)[0]
        with growing.open("ab") as out:
            out.write(b"GS" * 500)
        second = client.listdir(box.folder)[0]
    assert (first.size, second.size) == (900, 1900)


def test_stat_of_an_absent_file_is_none(box):
    with SftpClient(box.settings()) as client:
        assert client.stat(box.remote("nothing-here")) is None


def test_remove_and_rename_and_makedirs(box):
    box.local("in.835").write_bytes(b"835")
    with SftpClient(box.settings()) as client:
        client.makedirs(box.remote("archive/2026/11"))
        client.makedirs(box.remote("archive/2026/11"))  # again: nothing to do
        client.rename(box.remote("in.835"), box.remote("archive/2026/11/in.835"))
        box.local("in.835").write_bytes(b"again")
        with pytest.raises(RetriableError, match="already exists"):
            client.rename(box.remote("in.835"), box.remote("archive/2026/11/in.835"))
        client.remove(box.remote("in.835"))
        client.remove(box.remote("in.835"))  # already gone: not an error
    assert box.local("archive/2026/11/in.835").read_bytes() == b"835"
    assert not box.local("in.835").exists()


def test_a_refused_remove_is_a_clear_error(misbehaving):
    misbehaving.test_server.fail_remove = True
    misbehaving.local("keep.999").write_bytes(b"999")
    with SftpClient(misbehaving.settings()) as client:
        with pytest.raises(RemoteRefusedError, match="remove box/keep.999: .* permission denied"):
            client.remove(misbehaving.remote("keep.999"))
        assert client.connected
    assert misbehaving.local("keep.999").exists()


# --- the test server itself and test_connection -----------------------------------------------


def test_paths_cannot_leave_the_served_root(misbehaving, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("not served")
    os.symlink(outside, misbehaving.local("escape"))
    with SftpClient(misbehaving.settings()) as client:
        assert client.stat("../../../../outside.txt") is None
        assert client.stat("/../box/../..") is not None  # climbs no higher than the root
        with pytest.raises(RemoteRefusedError, match="permission denied"):
            client.stat(misbehaving.remote("escape"))
        client.upload(b"x", "..", "up.txt")
    assert not (tmp_path / "up.txt").exists() and misbehaving.test_server.root.joinpath("up.txt").exists()


def test_concurrent_sessions_each_with_their_own_connection(misbehaving, tmp_path):
    errors = []

    def worker(n: int) -> None:
        try:
            with SftpClient(misbehaving.settings()) as client:
                client.upload(os.urandom(50_000), misbehaving.folder, f"w{n}.837")
                got = client.download(misbehaving.remote(f"w{n}.837"), tmp_path / f"spool{n}")
                assert got.size == 50_000
        except Exception as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == [] and not any(t.is_alive() for t in threads)
    assert misbehaving.test_server.sessions_max >= 2
    assert len(list(misbehaving.local().glob("w*.837"))) == 6


def test_test_connection_reports_each_step(box):
    report = test_connection(box.settings(), [box.folder, box.remote("missing")])
    assert not report.ok
    assert [(name, passed) for name, passed, _ in report.steps] == [
        ("connect", True), ("host key", True), ("log in", True), ("open SFTP", True),
        (f"list {box.folder}", True), (f"list {box.remote('missing')}", False)]
    assert "no such file or folder" in report.steps[-1][2]


def test_test_connection_stops_at_a_changed_host_key(box):
    other = generate_ed25519_key()
    report = test_connection(box.settings(known_hosts=(f"{other.get_name()} {other.get_base64()}",)), ["."])
    assert not report.ok and report.steps[-1][:2] == ("host key", False)
    assert "SHA256:" in report.steps[-1][2]


def test_an_unreachable_server_is_retriable():
    from sftp_support import free_port

    settings = SftpSettings(host="127.0.0.1", port=free_port(), username="u", key_file="/nonexistent",
                            known_hosts=(f"ssh-ed25519 {generate_ed25519_key().get_base64()}",), connect_timeout=2)
    with pytest.raises(RetriableError, match="cannot reach"):
        SftpClient(settings).connect()
    report = test_connection(settings)
    assert report.steps == [("connect", False, report.steps[0][2])] and not report.ok


# --- a server that goes silent: said as what happened, never as paramiko's "No existing session" ---


def _settings_for_port(port: int, **overrides) -> SftpSettings:
    values = dict(host="127.0.0.1", port=port, username="u", password_env="BHHUB_NOT_NEEDED",
                  known_hosts=(f"ssh-ed25519 {generate_ed25519_key().get_base64()}",), connect_timeout=1)
    return SftpSettings(**{**values, **overrides})


@pytest.mark.parametrize("greeting, said", [
    (None, "the server at {where} accepted the connection but did not answer the SSH handshake within 1 s"),
    (b"SSH-2.0-OpenSSH_9.2\r\n",
     "the server at {where} sent its SSH greeting, then stopped answering during the key exchange "
     "(no answer within 1 s)"),
])
def test_a_server_that_accepts_the_connection_then_stays_silent_is_reported_as_such(greeting, said):
    with SilentPeer(greeting=greeting) as peer:
        settings = _settings_for_port(peer.port)
        started = time.monotonic()
        with pytest.raises(RetriableError) as failed:
            SftpClient(settings).connect()
        elapsed = time.monotonic() - started
        report = test_connection(settings)
    expected = said.format(where=f"127.0.0.1:{peer.port}")
    assert str(failed.value) == expected
    assert 0.9 <= elapsed < 2.5, f"took {elapsed:.1f} s for a 1 s limit"
    assert report.steps[0][:2] == ("connect", True)
    assert report.steps[1] == ("host key", False, expected)


@pytest.mark.parametrize("greeting, said", [
    (None, "the server at {where} accepted the connection but closed it without an SSH greeting"),
    (b"HTTP/1.1 400 Bad Request\r\n\r\n",
     "the server at {where} accepted the connection but closed it without an SSH greeting"),
    (b"SSH-1.5-OldServer\r\n", "{where} answered, but not as an SSH 2 server"),
    (b"SSH-2.0-OpenSSH_9.2\r\n", "the server at {where} closed the connection during the key exchange"),
])
def test_a_server_that_hangs_up_or_is_not_ssh_is_reported_as_such(greeting, said):
    with SilentPeer(greeting=greeting, close_at_once=True) as peer:
        with pytest.raises(RetriableError) as failed:
            SftpClient(_settings_for_port(peer.port, connect_timeout=3)).connect()
    assert said.format(where=f"127.0.0.1:{peer.port}") in str(failed.value)
    assert "No existing session" not in str(failed.value) and failed.value.__cause__ is not None


@pytest.mark.parametrize("step, words", [("log in", "during log in"),
                                         ("open SFTP", "while opening the SFTP session")])
def test_a_server_that_stops_answering_while_connecting_says_at_which_step(misbehaving, step, words):
    misbehaving.test_server.silent_during = step
    settings = misbehaving.settings(connect_timeout=1)
    where = f"127.0.0.1:{misbehaving.address[1]}"
    started = time.monotonic()
    with pytest.raises(RetriableError) as failed:
        SftpClient(settings).connect()
    assert time.monotonic() - started < 3
    assert str(failed.value) == f"the server at {where} stopped answering {words} (no answer within 1 s)"
    report = test_connection(settings)
    assert report.steps[-1] == (step, False, str(failed.value))


def test_a_server_that_stops_answering_mid_session_names_the_operation(box):
    with FaultProxy(box.address) as proxy:
        with SftpClient(box.settings(port=proxy.port, operation_timeout=1)) as client:
            proxy.stall("server_to_client")
            with pytest.raises(RetriableError) as failed:
                client.listdir(box.folder)
    assert str(failed.value) == (f"list {box.folder}: the server at 127.0.0.1:{proxy.port} stopped answering "
                                 f"(no answer within 1 s); the connection was closed")
