"""Slow and greedy senders cannot keep the MLLP listener from a real engine's messages.

A real listener on loopback, real sockets. Senders come from different loopback addresses
(127.0.0.x: all of 127/8 is this machine on Linux), so the per-address limit sees them as the
different peers they would be on a network. Deadlines are scaled down to seconds through the
listener's settings; nothing here asserts how long anything took, only what happened first.
"""

from __future__ import annotations

import select
import socket
import threading

import pytest

from bhhub.connectors.mllp.server import MllpListener
from test_mllp_listener import VT, MllpClient, dft, hub, inbox, msa, sha, wait_for  # noqa: F401 - fixture

TRICKLE_EVERY = 0.25  # seconds between bytes: "a byte every few seconds", scaled down


class Trickler:
    """A sender that opens a message and then feeds it one byte at a time, for ever."""

    def __init__(self, address, source: str):
        self.sock = socket.create_connection(address, timeout=10, source_address=(source, 0))
        self.sent = 0
        self.closed = threading.Event()  # the listener closed the connection (EOF or reset)
        self.still_sending_when_closed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        payload = VT + b"MSH|^~\\&|SLOW|SLOW|BHHUB|PRACTICE|20261101||DFT^P03|SLOW|P|2.5.1\rPID|1||"
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select([self.sock], [], [], 0)
                if readable and self.sock.recv(1) == b"":
                    break
                self.sock.send(payload[self.sent % len(payload):][:1])
                self.sent += 1
                self._stop.wait(TRICKLE_EVERY)
        except OSError:  # reset, broken pipe: closed by the listener
            pass
        self.still_sending_when_closed = not self._stop.is_set()
        self.closed.set()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


class Engine(MllpClient):
    """An interface engine's connection from its own loopback address."""

    def __init__(self, address, source: str):
        self.sock = socket.create_connection(address, timeout=10, source_address=(source, 0))
        self.buffer = b""


def closed_by_listener(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def still_open(sock: socket.socket) -> bool:
    """True while the listener has not closed ``sock`` (nothing to read, not even EOF)."""
    readable, _, _ = select.select([sock], [], [], 0)
    return not readable


@pytest.fixture
def tricklers():
    opened: list[Trickler] = []
    yield opened
    for t in opened:
        t.stop()


def test_forty_senders_trickling_bytes_do_not_keep_a_real_message_from_its_ack(hub, tricklers):
    with MllpListener(hub, port=0, message_timeout=4.0, idle_timeout=60) as listener:
        assert listener.max_connections == 32  # the default: 40 slow senders are more than every slot
        for n in range(40):
            tricklers.append(Trickler(listener.address, f"127.0.0.{10 + n}"))
        assert wait_for(lambda: all(t.sent >= 2 or t.closed.is_set() for t in tricklers))

        engine = Engine(listener.address, "127.0.0.2")  # the EHR's interface engine
        ack = engine.call(dft(1))
        # Answered before any slow sender's deadline had come: it did not wait for a slot to free up.
        assert listener.counts.timed_out == 0
        assert msa(ack)[:2] == ["AA", "MSG0000001"]
        assert inbox(hub) == {sha(dft(1)): "processed"}
        assert listener.counts.displaced >= 1

        # The slow senders keep sending, and are closed all the same: a byte does not buy time.
        assert wait_for(lambda: all(t.closed.is_set() for t in tricklers), timeout=30)
        assert all(t.still_sending_when_closed for t in tricklers)
        assert listener.counts.timed_out >= 1
        counts = listener.counts
        assert counts.timed_out + counts.displaced + counts.refused_full == 40
        assert counts.messages == 1  # no slow sender's bytes were taken for a message

        # The engine's connection, idle since its ACK, was never the one displaced.
        assert still_open(engine.sock)
        assert msa(engine.call(dft(2)))[0] == "AA"
        engine.close()


def test_one_address_cannot_take_more_than_its_share_while_others_are_served(hub):
    with MllpListener(hub, port=0, max_connections_per_peer=3, idle_timeout=60) as listener:
        greedy = [socket.create_connection(listener.address, timeout=10, source_address=("127.0.0.3", 0))
                  for _ in range(6)]
        assert wait_for(lambda: listener.counts.refused_peer == 3)
        held, refused = greedy[:3], greedy[3:]
        assert all(closed_by_listener(s) for s in refused)

        other = Engine(listener.address, "127.0.0.4")
        assert msa(other.call(dft(3)))[:2] == ["AA", "MSG0000003"]
        assert all(still_open(s) for s in held)  # its three connections are served as before

        # A slot of its own freed, the same address may connect again.
        held[0].close()
        assert wait_for(lambda: listener.counts.connections == 4 and len(listener._connections) == 3)
        again = Engine(listener.address, "127.0.0.3")
        assert msa(again.call(dft(4)))[0] == "AA"
        again.close()
        other.close()
        for s in greedy:
            s.close()
    assert set(inbox(hub)) == {sha(dft(3)), sha(dft(4))}


def test_the_deadlines_and_limits_come_from_bhhub_toml_and_options_override_them(tmp_path, capsys):
    from bhhub.runtime.app import Hub
    from bhhub.connectors.mllp import command

    home = tmp_path / "home"
    home.mkdir()
    (home / "bhhub.toml").write_text("[listen]\nmessage_timeout = 0.5\nmax_connections_per_peer = 2\n")
    lines: list[str] = []
    stop = threading.Event()
    args = _args("--port", "0")
    with Hub.open(home) as opened:
        runner = threading.Thread(target=command.run, args=(args, opened), kwargs={"stop": stop, "out": lines.append})
        runner.start()
        assert wait_for(lambda: any("mllp://" in line for line in lines))
        host, port = lines[0].rsplit("//", 1)[1].split(":")
        slow = Trickler((host, int(port)), "127.0.0.5")
        assert slow.closed.wait(10) and slow.still_sending_when_closed
        crowd = [socket.create_connection((host, int(port)), timeout=10, source_address=("127.0.0.6", 0))
                 for _ in range(3)]
        assert closed_by_listener(crowd[2])
        stop.set()
        runner.join(30)
        slow.stop()
        for s in crowd:
            s.close()
    assert "1 closed at the message deadline" in lines[-1] and "1 refused: too many from one address" in lines[-1]

    # An option given on the command line wins over the file; a typo in the file is one clear line.
    from bhhub.connectors.mllp.settings import ListenSettings

    assert ListenSettings.from_table({"message_timeout": 0.5}).with_overrides(message_timeout=9.0).message_timeout == 9.0
    (home / "bhhub.toml").write_text("[listen]\nmesage_timeout = 5\n")
    from bhhub.cli.main import main

    capsys.readouterr()
    code = main(["--home", str(home), "listen", "--port", "0"])
    errors = capsys.readouterr().err
    assert code != 0 and "unknown key 'mesage_timeout' (did you mean 'message_timeout'?)" in errors
    assert "Traceback" not in errors and len(errors.strip().splitlines()) == 1


def _args(*argv: str):
    import argparse

    from bhhub.connectors.mllp import command

    parser = argparse.ArgumentParser()
    command.configure(parser)
    return parser.parse_args(list(argv))


def test_listen_help_names_the_deadline_and_the_per_address_limit(capsys):
    from bhhub.cli.main import main

    with pytest.raises(SystemExit):
        main(["listen", "--help"])
    text = capsys.readouterr().out
    assert "--message-timeout" in text and "--max-connections-per-peer" in text
    assert "[listen] in bhhub.toml" in text.replace("\n", " ").replace("  ", " ")

