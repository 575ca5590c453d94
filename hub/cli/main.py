"""``bhhub``: entry point, argument parsing and error handling.

Exit codes: 0 success; 1 some inputs failed (each named with its reason) or the hub could not
do the work; 2 usage error; 130 interrupted; 141 the reader of the output went away (``| head``).
A mistake prints one clear line, never a traceback.

Start-up is kept light: this module and the command modules import only the standard library and
small hub modules at the top; each command imports what it needs when it runs. Plugins are loaded
only for a plugin's command or ``bhhub plugins`` (``bhhub --help`` lists plugin commands from
``bhhub.runtime.plugin_host.command_summaries``), or when a command asks the hub for a hook.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from bhhub import __version__
from bhhub.cli import accounts as accounts_cli
from bhhub.cli import claim_show as claim_show_cli
from bhhub.cli import commands, demo
from bhhub.cli import eligibility as eligibility_cli
from bhhub.cli import exchange as exchange_cli
from bhhub.cli import ledger as ledger_cli
from bhhub.cli import notices as notices_cli
from bhhub.cli import notify as notify_cli
from bhhub.cli import plugin_new as plugin_new_cli
from bhhub.cli import remit as remit_cli
from bhhub.cli import rules as rules_cli
from bhhub.cli import serve as serve_cli
from bhhub.cli.json_option import honour_json_before_action
from bhhub.errors import HubError, UsageError
from bhhub.runtime.logs import DEFAULT_BACKUPS, DEFAULT_MAX_BYTES
from bhhub.runtime.logs import configure as configure_logging
from bhhub.model import ClaimStatus

DESCRIPTION = """\
bhhub turns the encounters your EHR records into clean 837P professional claims and keeps
every file it receives or sends traceable. Data lives in the hub home: --home DIR, else
$BHHUB_HOME, else ./.bhhub (a SQLite store unless bhhub.toml names another database).
Commands need a hub there, made by `bhhub init` (demo makes its own; plugins and plugin new
need none). --home and -v go before or after the command.
"""

EPILOG = """\
typical day:
  bhhub intake exports/             read FHIR bundles (files or folders)
  bhhub claims --status needs_attention
  bhhub exchange                    send ready claims to the clearinghouse, pick up responses
  bhhub run                         ... or let the scheduler do that unattended
  bhhub denials                     what payers denied, oldest deadline first, with the next step
  bhhub ar                          what is owed, by age, payer and provider; days in A/R and rates

exit codes: 0 success, 1 some inputs failed, 2 usage error
"""


def build_parser(plugin_commands: Sequence = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bhhub", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--home", metavar="DIR", help="hub home folder (default: $BHHUB_HOME or ./.bhhub)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (ids only, never PHI)")
    parser.add_argument("--version", action="version", version=f"bhhub {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("init", help="create the hub home, its configuration and its store")
    p.set_defaults(func=commands.cmd_init)

    p = sub.add_parser("intake", help="read EHR exports (files or folders) into claims",
                       description="Store each file raw, then turn its encounters into claims. "
                                   "A file that cannot be used is quarantined with the reason; "
                                   "the others still import. The same file twice changes nothing.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (folders are read recursively)")
    p.add_argument("--json", action="store_true", help="JSON array, one object per file")
    p.set_defaults(func=commands.cmd_intake)

    statuses = [s.value for s in ClaimStatus]
    p = sub.add_parser("claims", help="list claims with their status and findings; `claims show CLAIM`: one claim's page")
    p.add_argument("--status", choices=statuses, metavar="STATUS", help="only this status: " + ", ".join(statuses))
    p.add_argument("--payer", metavar="PAYER_ID", help="only claims to this payer (its payer id)")
    p.add_argument("--provider", metavar="NPI", help="only claims this rendering provider gave (their NPI)")
    p.add_argument("--patient", type=int, metavar="ID",
                   help="only this patient's claims: the hub's patient id (patient_id in --json, as "
                        "`eligibility check --patient` takes), never a name or member id")
    p.add_argument("--since", metavar="YYYY-MM-DD", help="only dates of service on or after this day")
    p.add_argument("--until", metavar="YYYY-MM-DD", help="only dates of service on or before this day")
    _paging_arguments(p, "claims")
    p.add_argument("--by-status", action="store_true",
                   help="instead of the claims, how many stand at each status and their charges (the pipeline)")
    p.add_argument("--json", action="store_true", help="JSON array, one object per claim (per status with --by-status)")
    p.set_defaults(func=commands.cmd_claims)
    claim_show_cli.add_commands(p)

    p = sub.add_parser("export-837", help="write every claim ready to bill into one 837P file",
                       description="Write one 837P (005010X222A1) batch of every claim with status "
                                   "'ready' and record it; the claims become 'batched'.")
    p.add_argument("--out", required=True, metavar="FILE", help="where to write the 837P file")
    p.add_argument("--max-claims", type=int, default=5000, metavar="N", help="at most N claims (default 5000)")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists (refused otherwise)")
    p.add_argument("--mailbox", metavar="NAME",
                   help="only the claims [routing] sends to this mailbox, in its envelope (required when several "
                        "mailboxes are configured: a file never mixes them)")
    p.add_argument("--json", action="store_true",
                   help="print the batch as a JSON object (written: false and claims: 0 when no claim is ready)")
    p.set_defaults(func=commands.cmd_export)

    p = sub.add_parser("batch", help="stored batches: write one's file again")
    batch_sub = p.add_subparsers(dest="batch_command", metavar="ACTION", required=True)
    w = batch_sub.add_parser("write", help="write a stored batch's exact bytes to a file",
                             description="Write the bytes the hub stored for batch ID (as exported or sent) to "
                                         "FILE; its claims do not change.")
    w.add_argument("batch_id", type=int, metavar="ID")
    w.add_argument("--out", required=True, metavar="FILE", help="where to write the file")
    w.add_argument("--force", action="store_true", help="replace FILE if it exists (refused otherwise)")
    w.add_argument("--json", action="store_true", help="print the result as JSON")
    w.set_defaults(func=commands.cmd_batch_write)

    p = sub.add_parser("inbox", help="list received and quarantined files; retry one after a fix")
    p.add_argument("--state", choices=["received", "processed", "quarantined"], help="only this state")
    _paging_arguments(p, "items")
    p.add_argument("--json", action="store_true", help="JSON array, one object per item")
    p.set_defaults(func=commands.cmd_inbox)
    inbox_sub = p.add_subparsers(dest="inbox_command", metavar="ACTION")
    r = inbox_sub.add_parser("retry", help="process a quarantined item again")
    r.add_argument("item_id", type=int, metavar="ID")
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    r.set_defaults(func=commands.cmd_inbox_retry)

    p = sub.add_parser("plugins", help="list plugins, their versions and the hooks they implement")
    p.add_argument("--json", action="store_true",
                   help='JSON object: {"plugins": [{name, distribution, version, hooks, loaded, error}], '
                        '"problems": [text]}')
    p.set_defaults(func=commands.cmd_plugins)

    p = sub.add_parser("demo", help="run the end-to-end demo: FHIR bundles to claims, exchanged with a local "
                                    "sandbox clearinghouse over SFTP with a 270, 999/277CA/835/271 applied",
                       description="Create a fresh demo hub under <home>/demo, read sample FHIR bundles, "
                                   "send the claims and a 270 about each patient over SFTP to bhhub's sandbox "
                                   "clearinghouse (on 127.0.0.1, its host key pinned), apply the 999, 277CA, 835 "
                                   "and 271 it answers with, and print each claim's status, the denial worklist, "
                                   "A/R, each patient's coverage, and the pyx12 check of the 837P.")
    p.add_argument("--serve", action="store_true",
                   help="then leave the demo's hub open in the workspace (`bhhub serve`) with a biller and a "
                        "viewer to sign in as; Ctrl-C stops it")
    p.add_argument("--port", type=int, metavar="PORT", help="with --serve: the workspace's port (default 8080)")
    p.set_defaults(func=demo.cmd_demo)

    exchange_cli.add_commands(sub)
    remit_cli.add_commands(sub)
    notices_cli.add_commands(sub)
    ledger_cli.add_commands(sub)
    plugin_new_cli.add_commands(sub)
    eligibility_cli.add_commands(sub)
    rules_cli.add_commands(sub)
    notify_cli.add_commands(sub)
    serve_cli.add_commands(sub)
    accounts_cli.add_commands(sub)

    for command in plugin_commands:
        p = sub.add_parser(command.name, help=command.help)
        command.configure(p)
        p.set_defaults(func=_plugin_runner(command))
    _global_options_after_the_command(sub)
    honour_json_before_action(parser)  # `bhhub remit --json list` as `bhhub remit list --json`
    return parser


def _global_options_after_the_command(sub: argparse._SubParsersAction) -> None:
    """``--home`` and ``-v`` after the command word too (``bhhub run -v``), in every command and
    action. Their default is SUPPRESS, so one given before the command is kept when none is given
    after it (argparse copies only what a command's parser set). A plugin command that took one
    of these names for its own keeps it."""
    for p in set(sub.choices.values()):
        for flags, options in (
            (("--home",), {"metavar": "DIR", "help": "hub home folder (as before the command)"}),
            (("-v", "--verbose"), {"action": "store_true", "help": "log progress (as before the command)"}),
        ):
            try:
                p.add_argument(*flags, default=argparse.SUPPRESS, **options)
            except argparse.ArgumentError:
                pass  # the command's own option of that name wins
        for action in p._actions:  # an action's own sub-commands (`inbox retry`, `batch write`)
            if isinstance(action, argparse._SubParsersAction):
                _global_options_after_the_command(action)


def _paging_arguments(p: argparse.ArgumentParser, noun: str) -> None:
    p.add_argument("--limit", type=int, metavar="N",
                   help=f"at most N {noun}; when more follow, stderr gives the --after cursor of the next page")
    p.add_argument("--after", metavar="CURSOR", help=f"the {noun} after this cursor (from the previous page)")


def _plugin_runner(command):
    def run(args: argparse.Namespace) -> int:
        with commands.open_hub(args) as hub:
            return command.run(args, hub)

    return run


BUILTIN = ("init", "intake", "claims", "export-837", "batch", "inbox", "plugins", "plugin", "demo",
           "exchange", "run", "mailbox", "transmissions", "alerts", "resubmit", "remit", "denials", "ar", "followup", "scrub", "auth", "credentialing", "override",
           "eligibility", "status", "rules", "notice", "notify", "user", "audit", "serve")


def main(argv: Sequence[str] | None = None) -> int:
    # Everything the hub writes may hold PHI (the store, raw inbound files, 837Ps, reports):
    # readable by the user running it only, whatever the shell's umask.
    # Set for the command and restored after, for callers that run it in their own process.
    previous = os.umask(0o077)
    try:
        return _main(argv)
    finally:
        os.umask(previous)


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    word = _command_word(argv)
    host = None
    if word == "plugins" or (word is not None and word not in BUILTIN):
        # A plugin's command (or a mistyped one: argparse then lists every command), or the
        # listing of plugins: load them, and keep their commands for the next --help.
        from bhhub.runtime.plugin_host import remember_commands

        host = build_plugin_host()
        plugin_commands = host.hooks.commands(taken=BUILTIN)
        remember_commands(plugin_commands)
    elif word is None and _asks_for_help(argv):
        from bhhub.runtime.plugin_host import command_summaries

        plugin_commands = command_summaries(taken=BUILTIN)
    else:
        plugin_commands = []  # a built-in command: no plugin is imported to parse it
    parser = build_parser(plugin_commands)
    try:
        args = parser.parse_args(argv)
    except BrokenPipeError:  # `bhhub --help | head -1`
        return _reader_gone()
    # A built-in command gets what builds the host: the hub loads the plugins if it needs a hook.
    args.plugin_host = host if host is not None else _plugins_when_needed
    try:
        configure_logging(verbose=args.verbose, watched=getattr(args, "watched", False),
                          log_file=getattr(args, "log_file", None), log_format=getattr(args, "log_format", "text"),
                          max_bytes=getattr(args, "log_max_bytes", DEFAULT_MAX_BYTES),
                          backups=getattr(args, "log_backups", DEFAULT_BACKUPS))
        _refuse_blank_ids(args)
        code = args.func(args)
        sys.stdout.flush()  # a reader that went away is noticed here, not at interpreter exit
        return code
    except UsageError as exc:
        print(f"bhhub: {exc}", file=sys.stderr)
        return 2
    except HubError as exc:
        print(f"bhhub: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bhhub: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _reader_gone()
    except OSError as exc:  # a folder where a file was wanted, no permission, a full disk
        where = f": {exc.filename}" if exc.filename else ""
        print(f"bhhub: {exc.strerror or type(exc).__name__}{where}", file=sys.stderr)
        return 1
    except Exception as exc:
        if type(exc).__module__.startswith("sqlalchemy"):  # the store, not the input: one line
            print(f"bhhub: the store could not do this now ({type(exc).__name__}: "
                  f"{_store_reason(exc)}); nothing was half done, run the command again", file=sys.stderr)
            return 1
        raise


# Options naming a payer, a mailbox or a member. Each one's default applies when the option is left
# out; given as "" (a script's empty variable) it is a mistake, not "use the default".
_ID_OPTIONS = {"payer": ("--payer", "payer id"), "mailbox": ("--mailbox", "mailbox name"),
               "member": ("--member", "member id")}


def _refuse_blank_ids(args: argparse.Namespace) -> None:
    """A blank ``--payer``, ``--mailbox`` or ``--member`` given explicitly: a usage error (exit 2)
    from every command, before anything is opened or asked."""
    for dest, (flag, what) in _ID_OPTIONS.items():
        value = getattr(args, dest, None)
        if isinstance(value, str) and not value.strip():
            raise UsageError(f"{flag} is blank: give a {what}")


def build_plugin_host():
    """Every installed plugin (``bhhub.runtime.plugin_host.build_plugin_host``), imported when first called."""
    from bhhub.runtime.plugin_host import build_plugin_host as build

    return build()


def _plugins_when_needed():
    return build_plugin_host()  # looked up when called, so an embedding (or a test) may replace it


def _reader_gone() -> int:
    """The reader went away (`bhhub claims | head`): stop quietly, as other tools do, with the
    status a shell gives a program SIGPIPE stopped (128 + 13). Python would otherwise fail again
    flushing stdout at exit, so stdout is pointed at /dev/null."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 141


def _command_word(argv: Sequence[str]) -> str | None:
    """The sub-command argv names (``claims`` in ``--home h claims --json``), or None."""
    tokens = iter(argv)
    for token in tokens:
        if token == "--":
            return next(tokens, None)
        if token.startswith("--ho") and "--home".startswith(token):
            next(tokens, None)  # its value
        elif not token.startswith("-"):
            return token
    return None


def _asks_for_help(argv: Sequence[str]) -> bool:
    return any(t == "-h" or (len(t) >= 4 and "--help".startswith(t)) for t in argv)


def _store_reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).splitlines()[0] if str(orig or exc) else type(exc).__name__
    from bhhub.cli.output import clip

    return clip(text, 200)  # at a word boundary, never mid-word


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
