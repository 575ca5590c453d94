"""The MLLP listener: a TCP server, one thread per connection, each message stored then answered.

    listener = MllpListener(hub, port=0)      # 127.0.0.1, a free port
    listener.start(); listener.address        # ('127.0.0.1', 50123)
    ...
    listener.stop()                           # finishes the message in hand on every connection

Deadlines: every read waits at most ``POLL_SECONDS`` (so a stop is seen quickly) and a
connection that sends nothing for ``idle_timeout`` seconds is closed; every ACK write has
``idle_timeout`` to finish. A connection that ends mid-frame loses only that message, which
was never acknowledged. At most ``max_connections`` senders at once; one more is closed at once.

Log lines carry peers, inbox item ids and counts, never message content (PHI).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass, field

from connectors.mllp.ack import APPLICATION_INTERNAL_ERROR, REJECT, NotHL7, build_ack, read_header
from connectors.mllp.answer import Answerer
from connectors.mllp.framing import FrameReader, FrameTooLarge, frame

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_IDLE_TIMEOUT = 300.0  # seconds; engines usually keep a connection open and idle between messages
DEFAULT_MAX_BYTES = 4 * 1024 * 1024  # a DFT or ADT is a few KB; an embedded document can be larger
DEFAULT_MAX_CONNECTIONS = 32
POLL_SECONDS = 0.5
RECV_BYTES = 65536
LINGER_SECONDS = 1.0


@dataclass
class Counts:
    """What the listener did, for its log lines and its closing summary."""

    connections: int = 0
    messages: int = 0
    accepted: int = 0  # AA
    errors: int = 0  # AE
    rejected: int = 0  # AR
    dropped_partial: int = 0  # connections that ended mid-frame
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **increments: int) -> None:
        with self._lock:
            for name, n in increments.items():
                setattr(self, name, getattr(self, name) + n)

    def summary(self) -> str:
        return (f"{self.messages} messages (AA {self.accepted}, AE {self.errors}, AR {self.rejected}) "
                f"on {self.connections} connections")


class MllpListener:
    def __init__(self, hub, *, host: str = DEFAULT_HOST, port: int = 0,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS, answerer: Answerer | None = None):
        if idle_timeout <= 0 or max_bytes <= 0 or max_connections <= 0:
            raise ValueError("idle_timeout, max_bytes and max_connections must be positive")
        self.host, self.port = host, port
        self.idle_timeout = idle_timeout
        self.max_bytes = max_bytes
        self.max_connections = max_connections
        self.answerer = answerer or Answerer(hub)
        self.counts = Counts()
        self._stopping = threading.Event()
        self._server: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._connections: set[threading.Thread] = set()
        self._lock = threading.Lock()

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("the listener is not started")
        host, port = self._server.getsockname()[:2]
        return host, port

    def start(self) -> None:
        """Bind and listen (OSError when the address is taken), then accept in a thread."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        server = socket.socket(family, socket.SOCK_STREAM)
        try:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind((self.host, self.port))
            server.listen(64)
            server.settimeout(POLL_SECONDS)
        except OSError:
            server.close()
            raise
        self._server = server
        self._acceptor = threading.Thread(target=self._accept_loop, name="mllp-accept", daemon=True)
        self._acceptor.start()
        log.info("mllp: listening on %s:%s", *self.address)

    def stop(self, grace: float = 30.0) -> None:
        """Stop accepting; let each connection finish the message in hand, then close it."""
        self._stopping.set()
        if self._acceptor is not None:
            self._acceptor.join(grace)
        if self._server is not None:
            self._server.close()
        deadline = time.monotonic() + grace
        with self._lock:
            threads = list(self._connections)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        log.info("mllp: stopped after %s", self.counts.summary())

    def __enter__(self) -> MllpListener:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- accepting ---

    def _accept_loop(self) -> None:
        assert self._server is not None
        while not self._stopping.is_set():
            try:
                conn, addr = self._server.accept()
            except TimeoutError:
                continue
            except OSError:  # closed under us
                break
            peer = f"{addr[0]}:{addr[1]}"
            with self._lock:
                busy = len(self._connections) >= self.max_connections
                if not busy:
                    thread = threading.Thread(target=self._serve, args=(conn, peer), name=f"mllp-{peer}",
                                              daemon=True)
                    self._connections.add(thread)
            if busy:
                log.warning("mllp: refused a connection from %s: %d connections open already",
                            addr[0], self.max_connections)
                conn.close()
                continue
            self.counts.add(connections=1)
            thread.start()

    # --- one connection ---

    def _serve(self, conn: socket.socket, peer: str) -> None:
        host = peer.rsplit(":", 1)[0]
        reader = FrameReader(self.max_bytes)
        answered = 0
        log.info("mllp: connection from %s", peer)
        try:
            last_heard = time.monotonic()
            while True:
                try:
                    message = reader.next_message()
                except FrameTooLarge as big:
                    self._refuse_oversized(conn, big)
                    return
                if message is not None:
                    self._answer(conn, message, host)
                    answered += 1
                    last_heard = time.monotonic()
                    if self._stopping.is_set():
                        return  # the message in hand is answered; any others were never acknowledged
                    continue
                if self._stopping.is_set():
                    return
                if time.monotonic() - last_heard >= self.idle_timeout:
                    log.info("mllp: closing %s after %.0f s without data", peer, self.idle_timeout)
                    return
                conn.settimeout(min(POLL_SECONDS, self.idle_timeout))
                try:
                    data = conn.recv(RECV_BYTES)
                except TimeoutError:
                    continue
                except OSError as exc:
                    log.info("mllp: connection from %s failed (%s)", peer, type(exc).__name__)
                    return
                if not data:
                    return
                reader.feed(data)
                last_heard = time.monotonic()
        except _SendFailed:
            return
        except Exception as exc:  # noqa: BLE001 - a bug ends this connection only; no text (PHI)
            log.error("mllp: connection from %s ended by an internal error (%s)", peer, type(exc).__name__)
        finally:
            if reader.in_frame:
                self.counts.add(dropped_partial=1)
                log.info("mllp: %s closed mid-message; that message was not acknowledged", peer)
            if reader.skipped:
                log.info("mllp: skipped %d bytes outside frames from %s", reader.skipped, peer)
            log.info("mllp: %s closed after %d messages", peer, answered)
            _close_gently(conn)
            with self._lock:
                self._connections.discard(threading.current_thread())

    def _answer(self, conn: socket.socket, message: bytes, host: str) -> None:
        answer = self.answerer.answer(message, host)
        self.counts.add(messages=1, **{_COUNTER[answer.code]: 1})
        if answer.item_id is None:
            log.info("mllp: message from %s: not stored, answered %s", host, answer.code)
        else:
            log.info("mllp: message from %s: inbox item %s %s, answered %s",
                     host, answer.item_id, answer.outcome, answer.code)
        self._send(conn, answer.ack)

    def _refuse_oversized(self, conn: socket.socket, big: FrameTooLarge) -> None:
        try:
            header = read_header(big.head)
        except NotHL7:
            header = None
        text = f"message larger than {big.limit} bytes; not stored"
        self.counts.add(messages=1, rejected=1)
        log.warning("mllp: refused a message over %d bytes; closing the connection", big.limit)
        self._send(conn, build_ack(header, REJECT, text, error_code=APPLICATION_INTERNAL_ERROR))

    def _send(self, conn: socket.socket, ack: bytes) -> None:
        conn.settimeout(self.idle_timeout)  # an ACK is one small write: this bounds it
        try:
            conn.sendall(frame(ack))
        except OSError as exc:  # TimeoutError included
            # The message is stored; a resend gets the same answer for the copy the hub holds.
            log.info("mllp: could not send an ACK (%s)", type(exc).__name__)
            raise _SendFailed from exc


def _close_gently(conn: socket.socket) -> None:
    """Close after the peer has had a moment to read the last ACK.

    Closing with unread bytes pending (the rest of an oversized message, frames pipelined behind
    the one answered at a stop) makes the kernel send a reset, which can destroy an ACK the
    peer has not read yet. So: stop writing, discard what still arrives for up to LINGER_SECONDS.
    """
    try:
        conn.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + LINGER_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            conn.settimeout(left)
            if not conn.recv(RECV_BYTES):
                break
    except OSError:  # timed out, or the peer is gone already
        pass
    finally:
        conn.close()


class _SendFailed(Exception):
    """The ACK could not be written: the connection is over."""


_COUNTER = {"AA": "accepted", "AE": "errors", "AR": "rejected"}
