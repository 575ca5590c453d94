"""The exchange with a clearinghouse mailbox, against real SFTP servers, with faults injected.

Each test runs against OpenSSH's own sshd/sftp-server and against the paramiko test server,
reached through a loopback TCP proxy that can cut or stall the connection. Both log in as an
ordinary account, so a file the clearinghouse left unreadable is unreadable here too. After every fault the
invariants hold: nothing lost (the batch's bytes reach the server whole; every response file
ends up in the inbox), nothing twice (one file per batch, the same ISA13 on a resend, a
response applied once), and the receiver never sees a partial file under its final name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bhhub.connectors.sftp.testserver import SftpTestServer
from bhhub.intake import inbox as intake
from bhhub.runtime.app import Hub
from bhhub.demo.synthetic import encounter_bundle
from bhhub.exchange.cycle import check_acknowledgments_due, exchange
from bhhub.exchange.inbound import pick_up
from bhhub.exchange.mailboxes import load_mailboxes
from bhhub.store import schema
from sftp_support import FaultProxy, SilentPeer, give_to_login, openssh_server, sshd_available

PROJECT = Path(__file__).resolve().parent.parent
NO_SSHD = pytest.mark.skipif(not sshd_available(), reason="OpenSSH's sshd is not installed (/usr/sbin/sshd)")
SERVERS = ["paramiko", pytest.param("openssh", marks=NO_SSHD)]

PROFILE = """
name = "test clearinghouse"
[folders]
outbound = "{folder}/outbound"
inbound = "{folder}/inbound"
archive = "{folder}/archive"
[upload]
method = "{method}"
temp_suffix = ".part"
confirm = {confirm}
file_name = "{{sender_id}}_{{isa13}}.837"
[pickup]
after = "{after}"
patterns = ["*.999", "*.277", "*.835", "*.ta1", "*.x12"]
stable_seconds = 60
[interchange]
receiver_id = "TESTCH"
[acknowledgments]
expect_999_within_hours = 2
"""


@dataclass
class Site:
    """A hub home with one mailbox ("ch") whose server sits behind a fault proxy."""

    home: Path
    root: Path  # the server's files, as the disk sees them
    folder: str
    proxy: FaultProxy
    server: object

    def remote(self, *parts: str) -> Path:
        return self.root.joinpath(self.folder, *parts)

    def outbound_files(self) -> list[str]:
        return sorted(p.name for p in self.remote("outbound").iterdir())

    def drop_response(self, name: str, content: bytes, *, age: float = 3600) -> Path:
        path = self.remote("inbound", name)
        path.write_bytes(content)
        stamp = time.time() - age
        os.utime(path, (stamp, stamp))
        return path

    def hub(self) -> Hub:
        return Hub.open(self.home)

    def exchange(self):
        with self.hub() as hub:
            return exchange(hub, load_mailboxes(hub)["ch"])

    def cli(self, *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "BHHUB_HOME": str(self.home)}
        env.pop("BHHUB_CRASH_AT", None)
        if crash_at:
            env["BHHUB_CRASH_AT"] = crash_at
        return subprocess.run([sys.executable, "-m", "bhhub.cli.main", *args], env=env, cwd=PROJECT,
                              capture_output=True, text=True, timeout=120)

    def rows(self, table, *where):
        with self.hub() as hub, hub.store.session() as session:
            return list(session.scalars(select(table).where(*where)))


def _make_site(kind, request, tmp_path, *, method="rename", confirm="true", after="delete", claims=3,
               database_url: str | None = None, connection: str = "") -> Site:
    folder = f"t-{uuid.uuid4().hex[:8]}"
    if kind == "paramiko":
        server = request.getfixturevalue("paramiko_server")
        root, host_key = server.root, server.host_public_key
        key = server.new_client_key(tmp_path / "client_key")
    else:
        server = request.getfixturevalue("openssh")
        root, host_key, key = server.root, server.host_public_key, server.client_key
    for sub in ("outbound", "inbound", "archive"):
        (root / folder / sub).mkdir(parents=True)
    if kind != "paramiko":
        give_to_login(server, root / folder)
    proxy = FaultProxy(server.address)
    request.addfinalizer(proxy.close)
    home = tmp_path / "home"
    (home / "mappings" / "clearinghouses").mkdir(parents=True)
    (home / "mappings" / "clearinghouses" / "testch.toml").write_text(
        PROFILE.format(folder=folder, method=method, confirm=confirm, after=after))
    store = f'[store]\nurl = "{database_url}"\n' if database_url else ""
    (home / "bhhub.toml").write_text(store + f"""
[mailboxes.ch]
profile = "testch"
host = "127.0.0.1"
port = {proxy.port}
username = "{server.username}"
key_file = "{key}"
known_hosts = ["{host_key}"]
connect_timeout = 4
operation_timeout = 4
{connection}
""")
    site = Site(home, root, folder, proxy, server)
    with site.hub() as hub:
        for seed in (3, 5, 8, 11, 19)[:claims]:
            result = intake.receive(hub, json.dumps(encounter_bundle(seed)).encode(), f"encounter-{seed}.json")
            assert result.outcome == "imported"
    return site


@pytest.fixture(scope="module")
def openssh(tmp_path_factory):
    with openssh_server(tmp_path_factory.mktemp("sshd"), unprivileged=True) as server:
        yield server


@pytest.fixture
def paramiko_server(tmp_path):
    with SftpTestServer(tmp_path / "served") as server:
        yield server


@pytest.fixture(params=SERVERS)
def site(request, tmp_path) -> Site:
    return _make_site(request.param, request, tmp_path)


def _batch(site: Site) -> schema.Batch:
    [batch] = site.rows(schema.Batch)
    return batch


def _transmission(site: Site) -> schema.Transmission:
    [transmission] = site.rows(schema.Transmission)
    return transmission


def _claim_statuses(site: Site) -> list[str]:
    return sorted(c.status for c in site.rows(schema.Claim))


def _open_alerts(site: Site, kind: str) -> list[schema.Alert]:
    return site.rows(schema.Alert, schema.Alert.kind == kind, schema.Alert.cleared_at.is_(None))


# --- sending -------------------------------------------------------------------------------------


def test_a_cycle_sends_the_ready_claims_once_as_the_stored_bytes(site):
    report = site.exchange()
    assert report.ok, report.error
    batch, transmission = _batch(site), _transmission(site)
    assert [s.how for s in report.sent] == ["uploaded"]
    assert transmission.state == "uploaded" and transmission.attempts == 1
    assert site.outbound_files() == [transmission.remote_name]
    assert site.remote("outbound", transmission.remote_name).read_bytes() == batch.content
    assert batch.claim_count == 3 and _claim_statuses(site) == ["submitted"] * 3
    history = [e.state for e in site.rows(schema.TransmissionEvent)]
    assert history == ["ready", "uploading", "uploaded"]

    again = site.exchange()
    assert again.ok and again.sent == []
    assert site.outbound_files() == [transmission.remote_name]


@pytest.mark.parametrize("kind", SERVERS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_upload_cut_at_a_random_byte_is_resent_with_the_same_bytes_and_isa13(request, tmp_path, kind, seed):
    import random

    from bhhub.exchange.outbound import submit
    from bhhub.errors import RetriableError

    site = _make_site(kind, request, tmp_path, claims=5)
    with site.hub() as hub:
        mailbox = load_mailboxes(hub)["ch"]
        with mailbox.transport.connect(mailbox.connection) as connection:
            # logged in; now the link dies somewhere inside the 837 (about 3 KB for 5 claims)
            site.proxy.cut("client_to_server", after=random.Random(seed).randrange(150, 2500))
            with pytest.raises(RetriableError):
                submit(hub, mailbox, connection)
    transmission = _transmission(site)
    assert transmission.state == "uploading" and transmission.last_error
    assert len(_batch(site).content) > 2500
    # The receiver never sees a partial file under its final name.
    assert transmission.remote_name not in site.outbound_files()
    site.proxy.heal()
    second = site.exchange()
    assert second.ok, second.error
    assert [s.how for s in second.sent] == ["resent"]
    batch, transmission = _batch(site), _transmission(site)
    assert transmission.state == "uploaded" and transmission.attempts == 2
    assert [f for f in site.outbound_files() if not f.endswith(".part")] == [transmission.remote_name]
    assert site.remote("outbound", transmission.remote_name).read_bytes() == batch.content
    assert len(site.rows(schema.Batch)) == 1  # no new control numbers


@pytest.mark.parametrize("crash_at", ["upload:before_put", "upload:after_put"])
def test_a_process_killed_around_the_upload_sends_the_batch_exactly_once(site, crash_at):
    killed = site.cli("exchange", crash_at=crash_at)
    assert killed.returncode == -9, killed.stderr
    transmission = _transmission(site)
    assert transmission.state == "uploading"
    present = transmission.remote_name in site.outbound_files()
    assert present == (crash_at == "upload:after_put")

    report = site.exchange()
    assert report.ok, report.error
    assert [s.how for s in report.sent] == ["found_on_server" if present else "resent"]
    batch, transmission = _batch(site), _transmission(site)
    assert transmission.state == "uploaded"
    assert site.outbound_files() == [transmission.remote_name]
    assert site.remote("outbound", transmission.remote_name).read_bytes() == batch.content
    assert len(site.rows(schema.Batch)) == 1 and _claim_statuses(site) == ["submitted"] * 3


def test_a_direct_upload_interrupted_is_sent_again_never_trusted_half_written(request, tmp_path):
    site = _make_site("paramiko", request, tmp_path, method="direct")
    killed = site.cli("exchange", crash_at="upload:after_put")
    assert killed.returncode == -9
    report = site.exchange()
    # With direct writes a file under the final name may be partial: it is not taken as proof.
    assert [s.how for s in report.sent] == ["resent"]
    assert site.remote("outbound", _transmission(site).remote_name).read_bytes() == _batch(site).content


def test_new_claims_after_a_send_go_in_a_new_batch_and_sent_ones_never_again(site):
    site.exchange()
    with site.hub() as hub:
        intake.receive(hub, json.dumps(encounter_bundle(29)).encode(), "late.json")
    report = site.exchange()
    assert [s.claims for s in report.sent] == [1]
    batches = site.rows(schema.Batch)
    assert len(batches) == 2 and batches[0].interchange_control_number != batches[1].interchange_control_number
    assert len(site.outbound_files()) == 2


# --- receiving -----------------------------------------------------------------------------------


def _response(site: Site, n: int = 1) -> bytes:
    """Some X12 content a clearinghouse might leave (recognised or not, it must be kept)."""
    return (b"ISA*00*          *00*          *ZZ*TESTCH         *ZZ*BHHUB          *261129*1200*^*00501*"
            + f"{n:09d}".encode() + b"*0*T*:~TA1*" + f"{n:09d}".encode() + b"*261129*1200*A*000~IEA*0*"
            + f"{n:09d}".encode() + b"~\n")


def test_a_response_file_is_stored_raw_then_removed_from_the_server(site):
    content = _response(site) + b" " * 200_000  # large enough to span many reads
    site.drop_response("big.ta1", content)
    report = site.exchange()
    assert report.ok, report.error
    [picked] = report.picked_up
    [item] = site.rows(schema.InboxItem, schema.InboxItem.id == picked.inbox_item_id)
    assert item.content == content and item.source_name == "ch:big.ta1"
    assert not site.remote("inbound", "big.ta1").exists()


@pytest.mark.parametrize("seed", [1, 2])
def test_a_download_cut_midway_keeps_the_file_on_the_server_and_stores_nothing(site, seed):
    import random

    content = _response(site) + b" " * 400_000
    site.drop_response("cut.ta1", content)
    # the listing and login go through; the file's bytes do not
    site.proxy.cut("server_to_client", after=random.Random(seed).randrange(60_000, 200_000))
    first = site.exchange()
    assert not first.ok
    # the connection failed, not the file: the cycle stops, one mailbox alert, no alert about the file
    assert len(_open_alerts(site, "mailbox_unreachable")) == 1 and _skipped_alerts(site) == []
    assert site.remote("inbound", "cut.ta1").exists()
    assert site.rows(schema.InboxItem, schema.InboxItem.source_name == "ch:cut.ta1") == []
    assert list((site.home / "spool").rglob("*")) == [] or all(p.is_dir() for p in (site.home / "spool").rglob("*"))
    site.proxy.heal()
    second = site.exchange()
    assert second.ok, second.error
    [item] = site.rows(schema.InboxItem, schema.InboxItem.source_name == "ch:cut.ta1")
    assert item.content == content
    assert not site.remote("inbound", "cut.ta1").exists()


def test_a_file_still_being_written_is_taken_only_once_it_stops_changing(site):
    path = site.drop_response("growing.ta1", _response(site)[:80], age=0)
    first = site.exchange()
    assert [p.outcome for p in first.picked_up] == ["deferred"]
    with path.open("ab") as handle:  # the clearinghouse is still writing
        handle.write(_response(site)[80:])
    second = site.exchange()
    assert [p.outcome for p in second.picked_up] == ["deferred"]
    third = site.exchange()  # same size and mtime as last time: complete
    assert [p.outcome for p in third.picked_up] != ["deferred"]
    [item] = site.rows(schema.InboxItem, schema.InboxItem.source_name == "ch:growing.ta1")
    assert item.content == _response(site)


def test_a_failed_remote_delete_is_one_alert_and_the_second_download_changes_nothing(request, tmp_path):
    site = _make_site("paramiko", request, tmp_path)
    site.server.fail_remove = True
    site.drop_response("once.ta1", _response(site))
    first = site.exchange()
    assert first.ok and first.picked_up[0].outcome != "duplicate"
    second = site.exchange()
    assert [p.outcome for p in second.picked_up] == ["duplicate"]
    assert len(site.rows(schema.InboxItem, schema.InboxItem.source_name.like("ch:once%"))) == 1
    [alert] = _open_alerts(site, "remote_cleanup_failed")
    assert alert.occurrences == 2 and "once.ta1" in alert.message
    site.server.fail_remove = False
    site.exchange()
    assert not site.remote("inbound", "once.ta1").exists()
    assert _open_alerts(site, "remote_cleanup_failed") == []
    [cleared] = site.rows(schema.Alert, schema.Alert.kind == "remote_cleanup_failed")
    assert cleared.cleared_at is not None


def test_killed_after_storing_before_the_remote_delete_the_file_is_not_applied_twice(site):
    site.drop_response("crash.ta1", _response(site))
    killed = site.cli("exchange", crash_at="pickup:before_remote_cleanup")
    assert killed.returncode == -9
    assert site.remote("inbound", "crash.ta1").exists()
    mine = schema.InboxItem.source_name.like("ch:%")
    [item] = site.rows(schema.InboxItem, mine)
    report = site.exchange()
    assert [p.outcome for p in report.picked_up] == ["duplicate"]
    assert [i.id for i in site.rows(schema.InboxItem, mine)] == [item.id]
    assert not site.remote("inbound", "crash.ta1").exists()


# --- a file the server lists but cannot serve: skipped, one alert, the others taken ----------------


def _skipped_alerts(site: Site, *, open_only: bool = True) -> list[schema.Alert]:
    where = [schema.Alert.kind == "remote_file_skipped"]
    if open_only:
        where.append(schema.Alert.cleared_at.is_(None))
    return site.rows(schema.Alert, *where)


def _mine(site: Site) -> list[str]:
    return sorted(i.source_name for i in site.rows(schema.InboxItem, schema.InboxItem.source_name.like("ch:%")))


def _break(site: Site, path: Path, fault: str) -> None:
    if fault == "unreadable":
        path.chmod(0)  # the listing shows it; opening it is refused
    else:
        site.server.fail_reads = {path.name: 100_000}  # the server's disk fails partway through


def _mend(site: Site, path: Path, fault: str) -> None:
    if fault == "unreadable":
        path.chmod(0o644)
    else:
        site.server.fail_reads = {}


FAULTS = [pytest.param("paramiko", "unreadable", id="paramiko-unreadable"),
          pytest.param("openssh", "unreadable", id="openssh-unreadable", marks=NO_SSHD),
          pytest.param("paramiko", "read_error", id="paramiko-read_error")]


@pytest.mark.parametrize("kind, fault", FAULTS)
def test_a_file_the_server_cannot_serve_is_skipped_with_one_alert_and_the_others_are_applied(
        request, tmp_path, database_url, kind, fault):
    site = _make_site(kind, request, tmp_path, database_url=database_url, claims=1)
    site.drop_response("first.ta1", _response(site, 1))
    bad = site.drop_response("bad.999", _response(site, 2) + b" " * 300_000)
    site.drop_response("last.ta1", _response(site, 3))
    _break(site, bad, fault)

    first = site.exchange()
    assert first.ok, first.error
    outcome = {p.name: p for p in first.picked_up}
    assert outcome["bad.999"].outcome == "skipped" and "bad.999" in outcome["bad.999"].reason
    assert outcome["first.ta1"].outcome != "skipped" and outcome["last.ta1"].outcome != "skipped"
    assert _mine(site) == ["ch:first.ta1", "ch:last.ta1"]  # taken and applied, though bad.999 came first
    assert sorted(p.name for p in site.remote("inbound").iterdir()) == ["bad.999"]
    [alert] = _skipped_alerts(site)
    assert "bad.999" in alert.message and alert.key.endswith(":ch:bad.999")
    assert _open_alerts(site, "mailbox_unreachable") == []

    second = site.exchange()  # still broken: tried again, counted, not alerted again
    assert [(p.name, p.outcome) for p in second.picked_up] == [("bad.999", "skipped")]
    [alert] = _skipped_alerts(site, open_only=False)
    assert alert.occurrences == 2 and alert.cleared_at is None

    _mend(site, bad, fault)
    third = site.exchange()
    assert [p.name for p in third.picked_up] == ["bad.999"] and third.picked_up[0].outcome != "skipped"
    [item] = site.rows(schema.InboxItem, schema.InboxItem.source_name == "ch:bad.999")
    assert item.content == _response(site, 2) + b" " * 300_000
    assert not bad.exists()
    [cleared] = _skipped_alerts(site, open_only=False)
    assert cleared.cleared_at is not None


@pytest.mark.parametrize("kind", SERVERS)
def test_the_alert_for_a_skipped_file_clears_when_the_file_leaves_the_server(request, tmp_path, kind):
    site = _make_site(kind, request, tmp_path, claims=1)
    locked = site.drop_response("locked.999", _response(site, 1))
    locked.chmod(0)
    site.exchange()
    assert len(_skipped_alerts(site)) == 1
    locked.unlink()  # the clearinghouse took it back (or purged it)
    report = site.exchange()
    assert report.ok and report.picked_up == []
    assert _skipped_alerts(site) == []
    [cleared] = _skipped_alerts(site, open_only=False)
    assert "locked.999" in cleared.message


class _GoneAfterListing:
    """A real connection after whose listing ``path`` leaves the server at once, as when the
    clearinghouse purges a file between the listing and the download."""

    def __init__(self, connection, path: Path):
        self.connection, self.path = connection, path

    def listdir(self, directory: str):
        listing = self.connection.listdir(directory)
        self.path.unlink()
        return listing

    def __getattr__(self, name: str):
        return getattr(self.connection, name)


@pytest.mark.parametrize("kind", SERVERS)
def test_a_file_gone_between_the_listing_and_the_download_is_skipped_and_the_rest_are_taken(request, tmp_path, kind):
    site = _make_site(kind, request, tmp_path, claims=1)
    gone = site.drop_response("gone.999", _response(site, 1))
    site.drop_response("stays.ta1", _response(site, 2))
    with site.hub() as hub:
        mailbox = load_mailboxes(hub)["ch"]
        with mailbox.transport.connect(mailbox.connection) as connection:
            results = pick_up(hub, mailbox, _GoneAfterListing(connection, gone))
    assert [(r.name, r.outcome) for r in results][0] == ("gone.999", "skipped")
    assert "no such file" in results[0].reason and results[1].outcome != "skipped"
    assert _mine(site) == ["ch:stays.ta1"]
    assert len(_skipped_alerts(site)) == 1
    assert site.exchange().ok and _skipped_alerts(site) == []  # not listed any more: over


def test_a_hostile_listing_with_a_huge_file_and_a_far_future_date_skips_only_that_file(
        request, tmp_path, database_url):
    site = _make_site("paramiko", request, tmp_path, database_url=database_url, claims=1)
    huge = site.remote("inbound", "huge.835")
    with huge.open("wb") as out:
        out.truncate(3 * 1024 ** 3)  # sparse: listed at 3 GB, nothing on disk
    latest = 2 ** 32 - 1  # the latest time SFTP version 3 can say (year 2106)
    os.utime(huge, (latest, latest))
    site.drop_response("small.ta1", _response(site, 1))
    first = site.exchange()
    assert first.ok, first.error
    assert {p.name: p.outcome for p in first.picked_up}["huge.835"] == "deferred"  # dated ahead: may be changing
    assert _mine(site) == ["ch:small.ta1"]
    second = site.exchange()
    [skipped] = second.picked_up
    assert skipped.outcome == "skipped" and "max_download_bytes" in skipped.reason
    assert "huge.835" in _skipped_alerts(site)[0].message


def test_exchange_prints_which_file_was_skipped_and_why_and_its_json_says_so_too(request, tmp_path):
    site = _make_site("paramiko", request, tmp_path, claims=1)
    site.drop_response("locked.999", _response(site, 1)).chmod(0)
    site.drop_response("fine.ta1", _response(site, 2))
    result = site.cli("exchange")
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if "locked.999" in line]
    assert "skipped" in line and "permission denied" in line
    listed = site.cli("exchange", "--json")
    [report] = json.loads(listed.stdout)
    assert report["ok"]
    [skipped] = report["picked_up"]
    assert skipped["name"] == "locked.999" and skipped["outcome"] == "skipped"
    assert "permission denied" in skipped["reason"]
    alerts = json.loads(site.cli("alerts", "--json").stdout)
    assert [a["kind"] for a in alerts if "locked.999" in a["message"]] == ["remote_file_skipped"]


def test_archive_after_pickup_moves_the_file(request, tmp_path):
    site = _make_site("paramiko", request, tmp_path, after="archive")
    site.drop_response("keep.ta1", _response(site))
    assert site.exchange().ok
    assert not site.remote("inbound", "keep.ta1").exists()
    assert site.remote("archive", "keep.ta1").read_bytes() == _response(site)


# --- faults of the connection ------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["client_to_server", "server_to_client"])
def test_a_stalled_server_ends_the_cycle_within_its_deadline_with_one_alert(site, direction):
    site.proxy.stall(direction, after=0)
    started = time.monotonic()
    first = site.exchange()
    assert not first.ok and time.monotonic() - started < 25
    site.exchange()
    [alert] = _open_alerts(site, "mailbox_unreachable")
    assert alert.occurrences == 2
    site.proxy.heal()
    assert site.exchange().ok
    assert _open_alerts(site, "mailbox_unreachable") == []
    assert _transmission(site).state == "uploaded"


def test_a_server_with_another_host_key_is_refused_and_nothing_is_sent(request, tmp_path):
    site = _make_site("paramiko", request, tmp_path)
    other = SftpTestServer(tmp_path / "impostor").start()
    request.addfinalizer(other.stop)
    toml = (site.home / "bhhub.toml").read_text().replace(f"port = {site.proxy.port}", f"port = {other.port}")
    (site.home / "bhhub.toml").write_text(toml)
    report = site.exchange()
    assert not report.ok and "CHANGED" in report.error
    [alert] = _open_alerts(site, "mailbox_refused")
    assert "SHA256:" in alert.message
    assert list((other.root).rglob("*.837")) == []
    # nothing was batched or sent: the claims wait for a trusted server
    assert site.rows(schema.Transmission) == [] and _claim_statuses(site) == ["ready"] * 3


def test_a_mailbox_that_accepts_the_connection_but_never_answers_is_reported_as_such(request, tmp_path):
    site = _make_site("paramiko", request, tmp_path, claims=1)
    with SilentPeer() as peer:
        toml = (site.home / "bhhub.toml").read_text().replace(f"port = {site.proxy.port}", f"port = {peer.port}")
        (site.home / "bhhub.toml").write_text(toml)
        result = site.cli("exchange")
    said = (f"the server at 127.0.0.1:{peer.port} accepted the connection but did not answer the SSH handshake "
            f"within 4 s")
    assert result.returncode == 1 and said in result.stdout
    assert "No existing session" not in result.stdout + result.stderr and "Traceback" not in result.stderr
    [alert] = _open_alerts(site, "mailbox_unreachable")
    assert said in alert.message


def test_a_password_file_other_users_can_read_stops_the_exchange_saying_the_fix(request, tmp_path):
    site = _make_site("paramiko", request, tmp_path, claims=1)
    secret = tmp_path / "password"
    secret.write_text(site.server.password + "\n")
    secret.chmod(0o644)
    toml = (site.home / "bhhub.toml").read_text()
    toml = "\n".join(f'password_file = "{secret}"' if line.startswith("key_file") else line
                     for line in toml.splitlines())
    (site.home / "bhhub.toml").write_text(toml)
    result = site.cli("exchange")
    assert result.returncode == 1 and f"chmod 600 {secret}" in result.stdout and "Traceback" not in result.stderr
    assert site.server.password not in result.stdout + result.stderr
    [alert] = _open_alerts(site, "mailbox_refused")
    assert str(secret) in alert.message
    assert site.rows(schema.Transmission) == []  # nothing sent on a refused login
    secret.chmod(0o600)
    assert site.exchange().ok
    assert _open_alerts(site, "mailbox_refused") == []


def test_an_unpinned_host_key_is_refused_by_configuration(request, tmp_path):
    site = _make_site("paramiko", request, tmp_path)
    toml = (site.home / "bhhub.toml").read_text()
    toml = "\n".join(line for line in toml.splitlines() if not line.startswith("known_hosts"))
    (site.home / "bhhub.toml").write_text(toml)
    result = site.cli("exchange")
    assert result.returncode != 0
    assert "known_hosts" in result.stderr and "Traceback" not in result.stderr


# --- acknowledgments due ---------------------------------------------------------------------------


def test_no_999_within_the_window_raises_one_alert(request, tmp_path):
    from datetime import timedelta

    site = _make_site("paramiko", request, tmp_path, claims=1)
    assert site.exchange().ok
    with site.hub() as hub:
        mailbox = load_mailboxes(hub)["ch"]
        check_acknowledgments_due(hub, mailbox)
        assert _open_alerts(site, "ack_missing") == []
        with hub.store.session() as session:
            transmission = session.scalars(select(schema.Transmission)).one()
            transmission.uploaded_at = transmission.uploaded_at - timedelta(hours=3)
            session.commit()
        check_acknowledgments_due(hub, mailbox)
        check_acknowledgments_due(hub, mailbox)
    [alert] = _open_alerts(site, "ack_missing")
    assert alert.occurrences == 2 and "no 999" in alert.message


# --- the command line -----------------------------------------------------------------------------


def test_exchange_json_and_transmissions(site):
    result = site.cli("exchange", "--json")
    assert result.returncode == 0, result.stderr
    [report] = json.loads(result.stdout)
    assert report["ok"] and report["sent"][0]["claims"] == 3
    listed = json.loads(site.cli("transmissions", "--json").stdout)
    assert [t["state"] for t in listed] == ["uploaded"]
    with site.hub() as hub, hub.store.session() as session:
        assert session.scalar(select(func.count()).select_from(schema.Transmission)) == 1


def test_mailbox_test_reports_each_step(site):
    result = site.cli("mailbox", "test", "ch", "--json")
    assert result.returncode == 0, result.stderr
    steps = json.loads(result.stdout)["steps"]
    assert [s["step"] for s in steps][:4] == ["connect", "host key", "log in", "open SFTP"]
    assert all(s["passed"] for s in steps)


def test_claim_quirks_of_a_profile_shape_the_file_sent(request, tmp_path):
    from bhhub.x12.validate import validate_x12

    site = _make_site("paramiko", request, tmp_path)
    profile = site.home / "mappings" / "clearinghouses" / "testch.toml"
    profile.write_text(profile.read_text().replace("[interchange]\n", '[interchange]\napplication_receiver_code = "GS03CODE"\n')
                       + "[claims]\nline_breaks = false\nmax_claims_per_file = 2\n")
    report = site.exchange()
    assert [s.claims for s in report.sent] == [2, 1]
    for name in site.outbound_files():
        content = site.remote("outbound", name).read_bytes()
        assert b"\n" not in content and b"*GS03CODE*" in content
        assert validate_x12(content) == []
