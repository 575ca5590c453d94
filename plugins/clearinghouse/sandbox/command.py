"""``bhhub sandbox serve``: run the sandbox clearinghouse in the foreground until Ctrl-C.

It prints what a mailbox needs (host, port, user, the host key line to pin, where the password
file is) and a ``bhhub.toml`` mailbox table to paste; never the password itself.
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from bhhub.errors import UsageError
from bhhub.types import Command

DEFAULT_PORT = 2222


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="sandbox_command", metavar="ACTION")
    actions.required = True
    serve = actions.add_parser("serve", help="answer 837P, 270 and 276 uploads over SFTP on 127.0.0.1 until Ctrl-C",
                               description="A local clearinghouse: upload 837Ps, 270s and 276s to "
                                           "/to-clearinghouse, pick up TA1, 999, 277CA, 835, 271 and 277 "
                                           "files from /from-clearinghouse.")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="N",
                       help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0 picks a free one)")
    serve.add_argument("--realtime-port", type=int, metavar="N",
                       help="also answer real-time 270s over HTTP (CAQH CORE multipart) on 127.0.0.1:N "
                            "(0 picks a free port; default: not served)")
    serve.add_argument("--root", metavar="DIR", help="the sandbox's folder (default: <hub home>/sandbox)")
    serve.add_argument("--rules", metavar="FILE", help="adjudication rules (default: the packaged "
                                                       "mappings/clearinghouses/sandbox_rules.toml)")
    serve.add_argument("--today", metavar="YYYY-MM-DD", help="date every answer carries (default: today)")


def _print(line: str) -> None:
    print(line, flush=True)  # seen at once, even when stdout is a pipe


def run(args: argparse.Namespace, hub, *, stop: threading.Event | None = None, out=_print) -> int:
    """Serve until ``stop`` is set (tests) or Ctrl-C; 0 on a clean stop."""
    # Imported here: every bhhub command loads this plugin, few of them serve (paramiko, pyx12).
    from bhhub.plugins.clearinghouse.sandbox.rules import load_rules
    from bhhub.plugins.clearinghouse.sandbox.server import SandboxClearinghouse

    root = Path(args.root) if args.root else Path(hub.settings.home) / "sandbox"
    rules = load_rules(Path(args.rules)) if args.rules else load_rules(mappings=hub.mappings)
    from bhhub.cli.output import date_option

    today = date_option(args.today or None, "--today")  # the hub's one date rule: YYYY-MM-DD
    realtime_port = getattr(args, "realtime_port", None)
    for option, port in (("--port", args.port), ("--realtime-port", realtime_port)):
        if port is not None and not 0 <= port <= 65535:
            raise UsageError(f"{option} {port} is not a port number")
    sandbox = SandboxClearinghouse(root, port=args.port, rules=rules, today=today, realtime_port=realtime_port)
    try:
        sandbox.start()
    except OSError as exc:
        raise UsageError(f"cannot listen on {sandbox.host}:{args.port}"
                         + (f" or {realtime_port}" if realtime_port is not None else "")
                         + f" ({exc.strerror or exc}); choose another --port or --realtime-port") from None
    try:
        _announce(sandbox, out)
        if stop is not None:
            stop.wait()
        else:
            _wait_forever()
    except KeyboardInterrupt:
        out("\nsandbox clearinghouse stopped")
    finally:
        sandbox.stop()
    return 0


def _wait_forever() -> None:
    forever = threading.Event()
    while not forever.wait(3600):
        pass


def _announce(sandbox, out) -> None:
    from bhhub.plugins.clearinghouse.sandbox.server import INBOUND, OUTBOUND

    out(f"bhhub sandbox clearinghouse: sftp://{sandbox.username}@{sandbox.host}:{sandbox.port}")
    out(f"  folder:        {sandbox.root}")
    out(f"  uploads:       /{OUTBOUND}  (NAME.part, then rename to NAME)")
    out(f"  answers:       /{INBOUND}  (*.ta1 *.999 *.277 *.835 *.271)")
    out(f"  username:      {sandbox.username}")
    out(f"  password file: {sandbox.password_path}  (mode 600)")
    out(f"  pin this host key (known_hosts line):\n    {sandbox.known_hosts_line}")
    out("  bhhub.toml mailbox:")
    out("    [mailboxes.sandbox]")
    out('    profile = "sandbox"')
    out(f'    host = "{sandbox.host}"')
    out(f"    port = {sandbox.port}")
    out(f'    username = "{sandbox.username}"')
    out(f'    password_file = "{sandbox.password_path}"')
    out(f'    known_hosts = ["{sandbox.known_hosts_line}"]')
    if sandbox.realtime is not None:
        _announce_realtime(sandbox, out)
    out("Ctrl-C stops it.")


def _announce_realtime(sandbox, out) -> None:
    realtime = sandbox.realtime
    out(f"  real-time 270/271 (CAQH CORE vC2.2.0, HTTP MIME multipart): {realtime.url}")
    out("  <hub home>/mappings/clearinghouses/realtime/sandbox.toml (set BHHUB_SANDBOX_PASSWORD from the "
        "password file):")
    out("    [portal]")
    out('    name = "sandbox-realtime"')
    out('    payer_ids = ["87726", "00431", "77027"]')
    out(f'    base_url = "{realtime.url}"')
    out("    [core]")
    out(f'    sender_id = "{sandbox.username.upper()}"')
    out(f'    receiver_id = "{sandbox.rules.clearinghouse_id}"')
    out("    [envelope]")
    out(f'    sender_id = "{sandbox.username.upper()}"')
    out(f'    receiver_id = "{sandbox.rules.clearinghouse_id}"')
    out("    [provider]")
    out('    npi = "<the practice\'s billing NPI>"')
    out('    organization_name = "<the practice>"')
    out('    tax_id = "<its 9-digit EIN>"')
    out("    [auth]")
    out('    type = "core_username_password"')
    out(f'    username = "{sandbox.username}"')
    out('    password_env = "BHHUB_SANDBOX_PASSWORD"')


COMMAND = Command(name="sandbox", help="run bhhub's sandbox clearinghouse (a local SFTP mailbox that "
                                       "answers 837Ps with TA1, 999, 277CA and 835 files, "
                                       "270s with 271s and 276s with 277s)",
                  configure=configure, run=run)
