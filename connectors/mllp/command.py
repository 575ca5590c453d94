"""``bhhub listen``: receive HL7 v2 messages over MLLP until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import threading

from bhhub.errors import ConfigError, UsageError
from bhhub.types import Command

from bhhub.connectors.mllp.settings import ListenSettings

DESCRIPTION = """\
Receive HL7 v2 messages over MLLP (each framed 0x0B message 0x1C 0x0D) and answer each with an
ACK once the hub has decided what to do with it:

  AA  the message is committed to the inbox and imported
  AE  the message is committed to the inbox but quarantined; MSA-3 and ERR say why
      (`bhhub inbox --state quarantined`, then `bhhub inbox retry ID` after a fix)
  AR  the message is NOT stored: no MSH segment, larger than --max-bytes (the connection is
      then closed), or the store failed; the sender may send it again

A message the hub holds already (the same bytes: a resend after a lost ACK) stores nothing
new and gets the answer its first copy earned: AA, or AE with the same reason. No message is
acknowledged before its bytes are committed, so a crash loses only messages the sender never
got an ACK for. SIGTERM or Ctrl-C stops: each connection finishes the message in
hand, then closes. Logs (-v) show inbox item ids and counts, never message content. MSA-3 and
ERR name the segment, field and problem, never a field's value (no PHI goes back on the wire).

Slow or greedy senders: a message must arrive whole within --message-timeout seconds of its
first byte (a sender trickling bytes is closed then); one address may hold at most
--max-connections-per-peer connections; when all --max-connections are taken, a new connection
takes the place of the one whose message has been on its way longest. The defaults come from
[listen] in bhhub.toml (host, idle_timeout, message_timeout, max_bytes, max_connections,
max_connections_per_peer); an option given here overrides it.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    d = ListenSettings()  # the defaults, shown in --help; bhhub.toml [listen] may change them

    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--port", type=int, required=True, metavar="N",
                        help="TCP port to listen on (0 picks a free one; the address is printed)")
    parser.add_argument("--host", metavar="H",
                        help=f"address to bind (default {d.host}, this machine only; 0.0.0.0 for every interface)")
    parser.add_argument("--idle-timeout", type=float, metavar="S",
                        help=f"close a connection with no message on its way for S seconds (default {d.idle_timeout:.0f})")
    parser.add_argument("--message-timeout", type=float, metavar="S",
                        help=f"a message must arrive whole within S seconds of its first byte, however slowly "
                             f"it trickles; else the connection is closed (default {d.message_timeout:.0f})")
    parser.add_argument("--max-bytes", type=int, metavar="B",
                        help=f"largest message accepted (default {d.max_bytes}); a larger one "
                             "gets AR and its connection is closed")
    parser.add_argument("--max-connections", type=int, metavar="N",
                        help=f"connections at once, every sender together (default {d.max_connections})")
    parser.add_argument("--max-connections-per-peer", type=int, metavar="N",
                        help=f"connections at once from one address (default {d.max_connections_per_peer})")


def _print(line: str) -> None:
    print(line, flush=True)  # seen at once, even when stdout is a pipe


def run(args: argparse.Namespace, hub, *, stop: threading.Event | None = None, out=_print) -> int:
    """Listen until ``stop`` is set (tests), SIGTERM or SIGINT; 0 on a clean stop."""
    from bhhub.connectors.mllp.server import MllpListener

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a port number")
    configured = ListenSettings.from_table(hub.settings.raw.get("listen"))
    try:
        settings = configured.with_overrides(
            host=args.host, idle_timeout=args.idle_timeout, message_timeout=args.message_timeout,
            max_bytes=args.max_bytes, max_connections=args.max_connections,
            max_connections_per_peer=args.max_connections_per_peer)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    listener = MllpListener.from_settings(hub, settings, port=args.port)
    try:
        listener.start()
    except OSError as exc:
        raise UsageError(f"cannot listen on {settings.host}:{args.port} ({exc.strerror or exc}); "
                         f"choose another --port or --host") from None
    stop = stop or threading.Event()
    restore = _stop_on_signals(stop)
    try:
        host, port = listener.address
        out(f"bhhub listen: mllp://{host}:{port}")
        out("SIGTERM or Ctrl-C stops.")
        while not stop.wait(0.5):  # short waits: signal handlers run between them
            pass
    finally:
        listener.stop()
        restore()
    out(f"bhhub listen stopped: {listener.counts.summary()}")
    return 0


def _stop_on_signals(stop: threading.Event):
    """SIGTERM and SIGINT set ``stop`` (only the main thread may install handlers); returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: stop.set())

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


COMMAND = Command(name="listen", help="receive HL7 v2 messages over MLLP and answer each with an ACK "
                                      "(AA stored, AE stored but quarantined, AR not stored)",
                  configure=configure, run=run)
