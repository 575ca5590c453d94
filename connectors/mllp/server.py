"""The MLLP listener: a TCP server, one thread per connection, each message stored then answered.

    listener = MllpListener(hub, port=0)      # 127.0.0.1, a free port
    listener.start(); listener.address        # ('127.0.0.1', 50123)
    ...
    listener.stop()                           # finishes the message in hand on every connection

Deadlines (``bhhub.connectors.mllp.settings`` says why the defaults):

- a message must arrive whole within ``message_timeout`` of its first byte (its start block, or
  anything but line ends sent after the last answer); bytes trickling in do not extend it, so a
  sender feeding a byte every few seconds loses its connection then;
- a connection that sends nothing (line ends aside) for ``idle_timeout`` is closed;
- every ACK write has ``message_timeout`` to finish; every read waits at most ``POLL_SECONDS``
  (so a stop, a deadline or a displacement is seen quickly).

A connection that ends mid-frame loses only that message, which was never acknowledged.

Slots: at most ``max_connections_per_peer`` connections from one address (one more is closed at
once, so one sender cannot take every slot) and ``max_connections`` in all. When every slot is
taken, a new connection takes the place of the one whose message has been on its way longest
(never one being answered, never an idle one): a sender that trickles holds a slot only until
someone else needs it. No such connection: the new one is closed.

Log lines carry peers, inbox item ids and counts, never message content (PHI).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass, field

from bhhub.connectors.mllp.ack import APPLICATION_INTERNAL_ERROR, REJECT, NotHL7, build_ack, read_header
from bhhub.connectors.mllp.answer import Answerer
from bhhub.connectors.mllp.framing import FrameReader, FrameTooLarge, frame
from bhhub.connectors.mllp.settings import ListenSettings

log = logging.getLogger(__name__)

_DEFAULTS = ListenSettings()
DEFAULT_HOST = _DEFAULTS.host
DEFAULT_IDLE_TIMEOUT = _DEFAULTS.idle_timeout
DEFAULT_MESSAGE_TIMEOUT = _DEFAULTS.message_timeout
DEFAULT_MAX_BYTES = _DEFAULTS.max_bytes
DEFAULT_MAX_CONNECTIONS = _DEFAULTS.max_connections
DEFAULT_MAX_CONNECTIONS_PER_PEER = _DEFAULTS.max_connections_per_peer
POLL_SECONDS = 0.2
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
    timed_out: int = 0  # closed because a message did not arrive whole within message_timeout
    refused_peer: int = 0  # closed at once: their address had max_connections_per_peer open
    refused_full: int = 0  # closed at once: every slot taken, nobody to displace
    displaced: int = 0  # closed to make room for a new connection
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **increments: int) -> None:
        with self._lock:
            for name, n in increments.items():
                setattr(self, name, getattr(self, name) + n)

    def summary(self) -> str:
        text = (f"{self.messages} messages (AA {self.accepted}, AE {self.errors}, AR {self.rejected}) "
                f"on {self.connections} connections")
        closed = [(self.timed_out, "closed at the message deadline"),
                  (self.displaced, "displaced by a new connection"),
                  (self.refused_peer, "refused: too many from one address"),
                  (self.refused_full, "refused: every slot taken")]
        return "; ".join([text] + [f"{n} {what}" for n, what in closed if n])


@dataclass(eq=False)
class _Connection:
    """One connection's clocks, shared by its thread and the acceptor (which may displace it)."""

    sock: socket.socket
    peer: str  # host:port
    host: str
    last_heard: float  # when it opened, last sent anything but line ends, or was last answered
    message_started: float | None = None  # the first byte of the message on its way
    answering: bool = False  # its message is with intake: never displaced then
    displaced: threading.Event = field(default_factory=threading.Event)


class MllpListener:
    def __init__(self, hub, *, host: str = DEFAULT_HOST, port: int = 0,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 message_timeout: float = DEFAULT_MESSAGE_TIMEOUT,
                 max_connections_per_peer: int = DEFAULT_MAX_CONNECTIONS_PER_PEER,
                 answerer: Answerer | None = None):
        if min(idle_timeout, message_timeout, max_bytes, max_connections, max_connections_per_peer) <= 0:
            raise ValueError("idle_timeout, message_timeout, max_bytes, max_connections and "
                             "max_connections_per_peer must be positive")
        self.host, self.port = host, port
        self.idle_timeout = idle_timeout
        self.message_timeout = message_timeout
        self.max_bytes = max_bytes
        self.max_connections = max_connections
        self.max_connections_per_peer = max_connections_per_peer
        self.answerer = answerer or Answerer(hub)
        self.counts = Counts()
        self._stopping = threading.Event()
        self._server: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._connections: dict[threading.Thread, _Connection] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, hub, settings: ListenSettings, *, port: int = 0, **extra) -> MllpListener:
        return cls(hub, host=settings.host, port=port, idle_timeout=settings.idle_timeout,
                   message_timeout=settings.message_timeout, max_bytes=settings.max_bytes,
                   max_connections=settings.max_connections,
                   max_connections_per_peer=settings.max_connections_per_peer, **extra)

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
                sock, addr = self._server.accept()
            except TimeoutError:
                continue
            except OSError:  # closed under us
                break
            peer = f"{addr[0]}:{addr[1]}"
            connection = _Connection(sock, peer, addr[0], time.monotonic())
            thread = threading.Thread(target=self._serve, args=(connection,), name=f"mllp-{peer}", daemon=True)
            with self._lock:
                refusal, victim = self._admit(connection)
                if refusal is None:
                    self._connections[thread] = connection
            if victim is not None:
                self._displace(victim, connection.host)
            if refusal is not None:
                sock.close()
                continue
            self.counts.add(connections=1)
            thread.start()

    def _admit(self, new: _Connection) -> tuple[str | None, _Connection | None]:
        """(why ``new`` is refused, or None; the connection it displaces, or None). Under the lock."""
        live = [c for c in self._connections.values() if not c.displaced.is_set()]
        if sum(c.host == new.host for c in live) >= self.max_connections_per_peer:
            self.counts.add(refused_peer=1)
            log.warning("mllp: refused a connection from %s: %d connections from that address open already",
                        new.host, self.max_connections_per_peer)
            return "peer", None
        if len(live) < self.max_connections:
            return None, None
        candidates = [c for c in live if c.message_started is not None and not c.answering]
        if not candidates:
            self.counts.add(refused_full=1)
            log.warning("mllp: refused a connection from %s: %d connections open already",
                        new.host, self.max_connections)
            return "full", None
        victim = min(candidates, key=lambda c: c.message_started)
        victim.displaced.set()  # under the lock: counted out of ``live`` from now on
        return None, victim

    def _displace(self, victim: _Connection, newcomer: str) -> None:
        self.counts.add(displaced=1)
        log.warning("mllp: every slot taken; closing %s (a message on its way for %.1f s) to serve %s",
                    victim.peer, time.monotonic() - (victim.message_started or 0.0), newcomer)
        try:
            victim.sock.shutdown(socket.SHUT_RDWR)  # wakes its thread's recv at once
        except OSError:
            pass

    # --- one connection ---

    def _serve(self, connection: _Connection) -> None:
        conn, peer, host = connection.sock, connection.peer, connection.host
        reader = FrameReader(self.max_bytes)
        answered = 0
        log.info("mllp: connection from %s", peer)
        try:
            while True:
                try:
                    message = reader.next_message()
                except FrameTooLarge as big:
                    self._refuse_oversized(conn, big)
                    return
                if message is not None:
                    with self._lock:  # once answering, the acceptor leaves this connection alone
                        if connection.displaced.is_set():
                            return  # not stored, not acknowledged: the sender sends it again
                        connection.answering = True
                    self._answer(conn, message, host)
                    answered += 1
                    connection.answering = False
                    connection.last_heard, connection.message_started = time.monotonic(), None
                    if self._stopping.is_set():
                        return  # the message in hand is answered; any others were never acknowledged
                    continue
                now = time.monotonic()
                if reader.in_frame and connection.message_started is None:
                    connection.message_started = now  # pipelined: the next message was on its way already
                if self._stopping.is_set() or connection.displaced.is_set():
                    return
                started = connection.message_started
                if started is not None and now - started >= self.message_timeout:
                    self.counts.add(timed_out=1)
                    log.info("mllp: closing %s: a message did not arrive whole within %.0f s",
                             peer, self.message_timeout)
                    return
                if now - connection.last_heard >= self.idle_timeout:
                    log.info("mllp: closing %s after %.0f s without data", peer, self.idle_timeout)
                    return
                conn.settimeout(POLL_SECONDS)
                try:
                    data = conn.recv(RECV_BYTES)
                except TimeoutError:
                    continue
                except OSError as exc:
                    if not connection.displaced.is_set():
                        log.info("mllp: connection from %s failed (%s)", peer, type(exc).__name__)
                    return
                if not data:
                    return
                if data.strip(b"\r\n"):  # line ends between frames neither start a clock nor keep one open
                    connection.last_heard = time.monotonic()
                    if connection.message_started is None:
                        connection.message_started = connection.last_heard
                reader.feed(data)
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
                self._connections.pop(threading.current_thread(), None)

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
        conn.settimeout(self.message_timeout)  # an ACK is one small write: this bounds it
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
