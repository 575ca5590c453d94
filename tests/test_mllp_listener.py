"""``bhhub listen``: a real MLLP listener on loopback, a real client, the real inbox.

The messages are read by a small test intake format (``test-hl7``: a DFT^P03 → one encounter)
so these tests do not depend on the HL7 v2 EHR plugin; the subprocess tests run the installed
plugins, where a message nothing reads is stored and quarantined (AE).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import date
from importlib import metadata
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bhhub import hookimpl
from bhhub.errors import InputError
from bhhub.model import Address, Coverage, Encounter, Patient, Payer, PersonName, Provider, ServiceLine
from bhhub.store import schema
from bhhub.types import IntakeFormat

from bhhub.connectors.mllp.answer import Answerer
from bhhub.connectors.mllp.server import MllpListener

PROJECT = Path(__file__).resolve().parent.parent
VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"
CANARY = "Zqxjcanary"  # a patient name that must never reach a log line


# --- the sending side: an MLLP client written independently of the listener's framing -----------

class MllpClient:
    def __init__(self, address, timeout: float = 10.0):
        self.sock = socket.create_connection(address, timeout=timeout)
        self.buffer = b""

    def send(self, message: bytes) -> None:
        self.sock.sendall(VT + message + FS + CR)

    def read_ack(self) -> bytes:
        """The next ACK; ConnectionError when the listener closed the connection first."""
        while FS + CR not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed by the listener")
            self.buffer += data
        frame, self.buffer = self.buffer.split(FS + CR, 1)
        assert frame.startswith(VT), "an ACK frame starts with <VT>"
        return frame[1:]

    def call(self, message: bytes) -> bytes:
        self.send(message)
        return self.read_ack()

    def closed_by_peer(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


def msa(ack: bytes) -> list[str]:
    segment = next(s for s in ack.decode("latin-1").split("\r") if s.startswith("MSA"))
    return (segment.split("|") + ["", ""])[1:4]


def err(ack: bytes) -> str | None:
    return next((s for s in ack.decode("latin-1").split("\r") if s.startswith("ERR")), None)


# --- messages and the test intake format ---------------------------------------------------------

def dft(n: int, *, visit: bool = True, version: str = "2.5.1", family: str = "Testpatient") -> bytes:
    segments = [f"MSH|^~\\&|EHR|CLINIC|BHHUB|PRACTICE|20261101120000||DFT^P03^DFT_P03|MSG{n:07d}|P|{version}",
                "EVN|P03|20261101120000",
                f"PID|1||MRN{n:07d}^^^EHR^MR||{family}^Alpha||19800101|F"]
    if visit:
        segments.append(f"PV1|1|O|||||1245319599^Clinician^Pat||||||||||||V{n:07d}")
    segments.append("FT1|1|||20261015||CG|90837^Psychotherapy 60 min^CPT|||1|||||||||F33.1")
    return ("\r".join(segments) + "\r").encode()


def _parse_dft(content: bytes, context) -> list[Encounter]:
    fields = {}
    for segment in content.decode("latin-1").split("\r"):
        if segment:
            fields.setdefault(segment[:3], segment.split("|"))
    if "PV1" not in fields:
        raise InputError("no PV1 segment, so no visit to bill", where="PV1")
    pid, pv1, ft1 = fields["PID"], fields["PV1"], fields["FT1"]
    mrn, (family, given) = pid[3].split("^")[0], pid[5].split("^")[:2]
    day = date(int(ft1[4][:4]), int(ft1[4][4:6]), int(ft1[4][6:8]))
    practice = Provider(npi="1234567893", organization_name="SAMPLE BEHAVIORAL HEALTH PLLC", tin="123456789",
                        taxonomy="1041C0700X", address=Address("100 Main St", "Springfield", "IL", "627010001"))
    patient = Patient(name=PersonName(family, given), birth_date=date(1980, 1, 1), gender="F",
                      address=Address("1 Sample St", "Springfield", "IL", "62701"), key=f"test-hl7:MR|{mrn}")
    return [Encounter(
        key=f"test-hl7:visit|{pv1[19]}", source_ref=f"visit {pv1[19]}", service_date=day, patient=patient,
        coverages=(Coverage(1, Payer("87726", "SAMPLE COMMERCIAL HEALTH PLAN"), f"M{mrn}"),),
        billing_provider=practice,
        rendering_provider=Provider(npi="1245319599", name=PersonName("Clinician", "Pat"), taxonomy="1041C0700X"),
        diagnoses=(ft1[19],), services=(ServiceLine(ft1[7].split("^")[0], day),), place_of_service="11",
    )]


class TestHl7Format:
    @hookimpl
    def bhhub_register_intake_formats(self):
        return [IntakeFormat("test-hl7", "DFT^P03 for the MLLP tests", lambda c: c.startswith(b"MSH"), _parse_dft)]


@pytest.fixture
def hub(tmp_path):
    """A hub whose only message reader is the test format (installed EHR plugins left out)."""
    from bhhub.runtime.app import Hub
    from bhhub.runtime.plugin_host import build_plugin_host

    others = [ep for ep in metadata.entry_points(group="bhhub") if not ep.value.startswith("bhhub.plugins.ehr")]
    host = build_plugin_host(others, extra=[("test-hl7", TestHl7Format())])
    with Hub.open(tmp_path / "home", plugins=host, create=True) as opened:
        yield opened


@pytest.fixture
def listener(hub):
    with MllpListener(hub, port=0, idle_timeout=10) as running:
        yield running


def inbox(hub) -> dict[str, str]:
    """sha256 → state of every inbox item."""
    with hub.store.session() as session:
        return dict(session.execute(select(schema.InboxItem.sha256, schema.InboxItem.state)).all())


def inbox_count(hub) -> int:
    with hub.store.session() as session:
        return session.execute(select(func.count()).select_from(schema.InboxItem)).scalar()


def sha(message: bytes) -> str:
    return hashlib.sha256(message).hexdigest()


def wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


# --- the story -------------------------------------------------------------------------------------

def test_a_thousand_messages_from_four_senders_get_a_thousand_acks_and_are_stored_once(hub, listener):
    messages = [dft(n) for n in range(1000)]
    acks: dict[int, bytes] = {}
    failures = []

    def sender(numbers):
        client = MllpClient(listener.address)
        try:
            for n in numbers:
                acks[n] = client.call(messages[n])
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(repr(exc))
        finally:
            client.close()

    started = time.monotonic()
    threads = [threading.Thread(target=sender, args=(range(k, 1000, 4),)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    elapsed = time.monotonic() - started
    assert not failures and len(acks) == 1000
    assert all(msa(acks[n])[:2] == ["AA", f"MSG{n:07d}"] for n in range(1000))
    stored = inbox(hub)
    assert inbox_count(hub) == 1000 and set(stored) == {sha(m) for m in messages}
    assert set(stored.values()) == {"processed"}
    with hub.store.session() as session:
        assert session.execute(select(func.count()).select_from(schema.Claim)).scalar() == 1000
    assert listener.counts.accepted == 1000 and listener.counts.connections == 4
    assert elapsed < 30, f"1,000 messages took {elapsed:.1f} s"


def test_pipelined_messages_on_one_connection_are_answered_in_order(hub, listener):
    client = MllpClient(listener.address)
    client.sock.sendall(b"".join(VT + dft(n) + FS + CR for n in range(50)))
    control_ids = [msa(client.read_ack())[1] for _ in range(50)]
    client.close()
    assert control_ids == [f"MSG{n:07d}" for n in range(50)]
    assert inbox_count(hub) == 50


def test_no_ack_leaves_before_the_message_is_committed(hub):
    from bhhub.intake import inbox as intake

    release = threading.Event()
    held_when_answered = []

    def gated_receive(hub, content, source_name):
        assert release.wait(10)
        result = intake.receive(hub, content, source_name)
        held_when_answered.append(sha(content) in inbox(hub))
        return result

    with MllpListener(hub, port=0, answerer=Answerer(hub, receive=gated_receive)) as gated:
        client = MllpClient(gated.address, timeout=0.5)
        client.send(dft(18))
        with pytest.raises(TimeoutError):
            client.read_ack()  # intake has not returned: no answer yet
        release.set()
        client.sock.settimeout(10)
        assert msa(client.read_ack())[0] == "AA"
        client.close()
    assert held_when_answered == [True]


def test_a_resent_message_is_acknowledged_again_and_stored_once(hub, listener):
    client = MllpClient(listener.address)
    first = client.call(dft(7))
    client.close()
    again = MllpClient(listener.address)  # the sender reconnects after losing the first ACK
    second = again.call(dft(7))
    again.close()
    assert msa(first)[:2] == msa(second)[:2] == ["AA", "MSG0000007"]
    assert inbox_count(hub) == 1


def test_a_bad_message_gets_ae_with_the_reason_and_the_next_one_is_still_accepted(hub, listener):
    client = MllpClient(listener.address)
    bad = client.call(dft(1, visit=False))
    good = client.call(dft(2))
    client.close()
    code, control_id, text = msa(bad)
    assert (code, control_id) == ("AE", "MSG0000001")
    assert "quarantined: PV1: no PV1 segment" in text
    assert "no PV1 segment, so no visit to bill" in err(bad).split("|")[8]
    assert msa(good)[:2] == ["AA", "MSG0000002"]
    assert inbox(hub) == {sha(dft(1, visit=False)): "quarantined", sha(dft(2)): "processed"}


def test_a_resent_quarantined_message_hears_the_same_ae_and_is_stored_once(hub, listener):
    client = MllpClient(listener.address)
    first = client.call(dft(19, visit=False))
    again = client.call(dft(19, visit=False))
    client.close()
    assert msa(first)[0] == msa(again)[0] == "AE"
    assert msa(first)[2] == msa(again)[2] and "no PV1 segment" in msa(again)[2]
    assert inbox_count(hub) == 1


def test_a_resent_message_a_crash_left_unprocessed_is_processed_then(hub, listener):
    from bhhub.intake import inbox as intake

    with hub.store.session() as session:  # committed raw, then the listener died before parsing
        intake.store_raw(session, hub.store.dialect, "mllp://127.0.0.1/MSG0000020", dft(20))
        session.commit()
    assert inbox(hub) == {sha(dft(20)): "received"}
    client = MllpClient(listener.address)
    assert msa(client.call(dft(20)))[:2] == ["AA", "MSG0000020"]
    client.close()
    assert inbox(hub) == {sha(dft(20)): "processed"}


def test_a_payload_that_is_not_hl7_gets_ar_and_is_not_stored(hub, listener):
    client = MllpClient(listener.address)
    refused = client.call(b'{"resourceType": "Bundle"}')
    accepted = client.call(dft(3))
    client.close()
    assert msa(refused)[0] == "AR" and "no MSH segment" in msa(refused)[2]
    assert msa(accepted)[0] == "AA"
    assert inbox_count(hub) == 1


def test_garbage_between_frames_is_skipped(hub, listener):
    client = MllpClient(listener.address)
    client.sock.sendall(b"\r\n\x00 junk \n" + VT + dft(4) + FS + CR + b"\n\n")
    assert msa(client.read_ack())[:2] == ["AA", "MSG0000004"]
    assert msa(client.call(dft(5)))[0] == "AA"
    client.close()


def test_an_oversized_message_gets_ar_naming_it_and_the_connection_is_closed(hub):
    with MllpListener(hub, port=0, max_bytes=1000) as small:
        client = MllpClient(small.address)

        def push():  # still sending long after the limit was passed
            try:
                client.send(dft(6) + b"ZNT|" + b"x" * 8_000_000 + b"\r")
            except OSError:
                pass

        pusher = threading.Thread(target=push)
        pusher.start()
        code, control_id, text = msa(client.read_ack())
        assert (code, control_id) == ("AR", "MSG0000006") and "larger than 1000 bytes" in text
        pusher.join(10)
        assert not pusher.is_alive() and client.closed_by_peer()
        client.close()
    assert inbox_count(hub) == 0


def test_a_sender_that_disconnects_mid_frame_loses_only_that_unacknowledged_message(hub, listener):
    cut = MllpClient(listener.address)
    assert msa(cut.call(dft(8)))[0] == "AA"
    cut.sock.sendall(VT + dft(9)[:60])
    cut.close()
    assert wait_for(lambda: listener.counts.dropped_partial == 1)
    client = MllpClient(listener.address)
    assert msa(client.call(dft(10)))[0] == "AA"
    client.close()
    assert set(inbox(hub)) == {sha(dft(8)), sha(dft(10))}


def test_an_idle_connection_is_closed_after_the_timeout(hub):
    with MllpListener(hub, port=0, idle_timeout=0.3) as quick:
        client = MllpClient(quick.address, timeout=5)
        started = time.monotonic()
        assert client.closed_by_peer()
        assert time.monotonic() - started < 3
        client.close()


def test_a_half_sent_frame_does_not_hold_a_connection_past_the_idle_timeout(hub):
    with MllpListener(hub, port=0, idle_timeout=0.3) as quick:
        client = MllpClient(quick.address, timeout=5)
        client.sock.sendall(VT + b"MSH|^~\\&|EHR")
        assert client.closed_by_peer()
        client.close()
        assert wait_for(lambda: quick.counts.dropped_partial == 1)
    assert inbox_count(hub) == 0


def test_a_connection_over_the_limit_is_closed_and_the_others_keep_working(hub):
    with MllpListener(hub, port=0, max_connections=1) as single:
        first = MllpClient(single.address)
        assert msa(first.call(dft(11)))[0] == "AA"
        second = MllpClient(single.address, timeout=5)
        assert second.closed_by_peer()
        second.close()
        assert msa(first.call(dft(12)))[0] == "AA"
        first.close()


def test_a_store_that_fails_before_the_commit_gets_ar_and_nothing_is_held(hub):
    def locked(hub, content, source_name):
        from sqlalchemy.exc import OperationalError

        raise OperationalError("INSERT", {}, Exception("database is locked"))

    with MllpListener(hub, port=0, answerer=Answerer(hub, receive=locked)) as failing:
        client = MllpClient(failing.address)
        code, control_id, text = msa(client.call(dft(13)))
        client.close()
    assert (code, control_id) == ("AR", "MSG0000013") and "not stored (OperationalError)" in text
    assert inbox_count(hub) == 0


def test_a_failure_after_the_commit_gets_ae_naming_the_stored_item(hub):
    from bhhub.intake import inbox as intake

    def stored_then_crashed(hub, content, source_name):
        with hub.store.session() as session:
            intake.store_raw(session, hub.store.dialect, source_name, content)
            session.commit()
        raise RuntimeError("parser fell over")

    with MllpListener(hub, port=0, answerer=Answerer(hub, receive=stored_then_crashed)) as failing:
        client = MllpClient(failing.address)
        code, _, text = msa(client.call(dft(14)))
        client.close()
    assert code == "AE" and re.search(r"stored as inbox item \d+ but not processed \(RuntimeError\)", text)
    assert inbox(hub) == {sha(dft(14)): "received"}  # `bhhub inbox retry` finishes it


def test_stopping_finishes_the_message_in_hand_then_closes(hub):
    from bhhub.intake import inbox as intake

    storing = threading.Event()

    def slow_receive(hub, content, source_name):
        storing.set()
        time.sleep(0.5)
        return intake.receive(hub, content, source_name)

    listener = MllpListener(hub, port=0, answerer=Answerer(hub, receive=slow_receive))
    listener.start()
    client = MllpClient(listener.address)
    client.send(dft(15))
    assert storing.wait(5)
    stopper = threading.Thread(target=listener.stop)
    stopper.start()
    ack = client.read_ack()
    stopper.join(10)
    assert msa(ack)[:2] == ["AA", "MSG0000015"] and not stopper.is_alive()
    assert client.closed_by_peer()
    client.close()
    assert set(inbox(hub)) == {sha(dft(15))}


def test_no_message_content_reaches_the_log(hub, listener, caplog):
    caplog.set_level(logging.DEBUG)
    client = MllpClient(listener.address)
    client.call(dft(16, family=CANARY))
    client.call(dft(17, family=CANARY, visit=False))
    client.sock.sendall(VT + f"MSH|^~\\&|{CANARY}".encode())
    client.close()
    assert wait_for(lambda: listener.counts.dropped_partial == 1)
    assert "inbox item" in caplog.text
    assert CANARY not in caplog.text and "MRN00000" not in caplog.text


# --- the command, as a separate process -------------------------------------------------------------

class ListenProcess:
    """``bhhub listen --port 0`` in its own process; ``address`` from the line it prints."""

    def __init__(self, home: Path, *extra: str):
        from bhhub.runtime.app import Hub
        from bhhub.runtime.config import is_hub_home

        if not is_hub_home(home):  # bhhub makes a hub only with `init` (here: what init does)
            Hub.open(home, create=True).close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bhhub.cli.main", "--home", str(home), "listen", "--port", "0", *extra],
            cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        first = self._readline(timeout=60)
        found = re.search(r"mllp://([\d.]+):(\d+)", first)
        assert found, f"no address in {first!r}; stderr: {self._stderr()}"
        self.address = (found.group(1), int(found.group(2)))

    def _readline(self, timeout: float) -> str:
        got: list[str] = []
        reader = threading.Thread(target=lambda: got.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not got:
            self.proc.kill()
            raise AssertionError(f"bhhub listen printed nothing in {timeout} s")
        return got[0]

    def _stderr(self) -> str:
        if self.proc.poll() is None:
            return "(running)"
        return self.proc.stderr.read()

    def finish(self, sig: int, timeout: float = 20) -> tuple[int, str, str]:
        self.proc.send_signal(sig)
        out, errors = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, errors


def test_listener_killed_mid_stream_keeps_every_acknowledged_message(tmp_path):
    home = tmp_path / "home"
    messages = [dft(n, version="2.3" if n % 2 else "2.5.1") for n in range(400)]
    listening = ListenProcess(home)
    client = MllpClient(listening.address)
    acknowledged: dict[int, str] = {}

    def read_acks():
        try:
            while True:
                ack = client.read_ack()
                acknowledged[int(msa(ack)[1][3:])] = msa(ack)[0]
        except (OSError, ConnectionError):
            return

    reader = threading.Thread(target=read_acks)
    reader.start()

    def send_all():
        try:
            for m in messages:
                client.send(m)
        except OSError:  # the listener is gone
            return

    writer = threading.Thread(target=send_all)
    writer.start()
    assert wait_for(lambda: len(acknowledged) >= 60, timeout=60), "the listener stopped answering"
    listening.proc.send_signal(signal.SIGKILL)  # mid-stream: messages are in flight
    listening.proc.communicate(timeout=20)
    reader.join(20)
    writer.join(20)
    client.close()
    assert 60 <= len(acknowledged) < len(messages), "the kill came too late to be mid-stream"
    assert set(acknowledged.values()) <= {"AA", "AE"}  # both mean "committed"

    from bhhub.store.db import open_store
    from bhhub.runtime.config import load_settings

    store = open_store(load_settings(home).database_url)
    try:
        with store.session() as session:
            held = set(session.execute(select(schema.InboxItem.sha256)).scalars())
    finally:
        store.close()
    assert {sha(messages[n]) for n in acknowledged} <= held, "an acknowledged message was lost"

    # The sender resends what it never got an ACK for; a copy already committed is answered again.
    again = ListenProcess(home)
    client = MllpClient(again.address)
    for n in sorted(set(range(len(messages))) - set(acknowledged)):
        assert msa(client.call(messages[n]))[:2] in (["AA", f"MSG{n:07d}"], ["AE", f"MSG{n:07d}"])
    client.close()
    code, out, errors = again.finish(signal.SIGTERM)
    assert code == 0, errors

    store = open_store(load_settings(home).database_url)
    try:
        with store.session() as session:
            rows = session.execute(select(schema.InboxItem.sha256, schema.InboxItem.state)).all()
    finally:
        store.close()
    assert len(rows) == len(messages) and {r.sha256 for r in rows} == {sha(m) for m in messages}
    assert {r.state for r in rows} <= {"processed", "quarantined"}  # none left half-done


def test_sigterm_stops_the_listener_cleanly_with_a_summary(tmp_path):
    listening = ListenProcess(tmp_path / "home", "--idle-timeout", "60")
    client = MllpClient(listening.address)
    assert msa(client.call(dft(1)))[0] in ("AA", "AE")
    code, out, errors = listening.finish(signal.SIGTERM)
    assert client.closed_by_peer()
    client.close()
    assert code == 0, errors
    assert "bhhub listen stopped: 1 messages" in out
    assert "Traceback" not in errors


def test_a_port_in_use_is_one_clear_line_and_exit_code_2(tmp_path):
    from bhhub.runtime.app import Hub

    Hub.open(tmp_path / "home", create=True).close()
    taken = socket.create_server(("127.0.0.1", 0))
    try:
        port = str(taken.getsockname()[1])
        done = subprocess.run(
            [sys.executable, "-m", "bhhub.cli.main", "--home", str(tmp_path / "home"), "listen", "--port", port],
            cwd=PROJECT, capture_output=True, text=True, timeout=60)
    finally:
        taken.close()
    assert done.returncode == 2
    assert done.stderr.startswith(f"bhhub: cannot listen on 127.0.0.1:{port}") and "Traceback" not in done.stderr


def test_listen_help_says_what_is_acknowledged_when(capsys):
    from bhhub.cli.main import main

    with pytest.raises(SystemExit):
        main(["listen", "--help"])
    text = capsys.readouterr().out
    assert "AA  the message is committed" in text and "AR  the message is NOT stored" in text
    assert "gets the answer its first copy earned" in text
    assert "--idle-timeout" in text and "--max-bytes" in text
