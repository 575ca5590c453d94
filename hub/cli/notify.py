"""``bhhub notify test``: is the practice going to hear of alerts? One test notification to every
target ``[notify]`` configures (and every plugin receiving alerts), each named with its outcome."""

from __future__ import annotations

import argparse
import sys

from bhhub.cli.commands import open_hub
from bhhub.cli.output import print_json


def add_commands(sub) -> None:
    p = sub.add_parser("notify", help="check that alerts reach people (email, webhook, plugins)")
    actions = p.add_subparsers(dest="notify_command", metavar="ACTION")
    actions.required = True
    test = actions.add_parser("test", help="send one test notification to every configured target",
                              description="Send one test notification to each target in bhhub.toml's [notify] "
                                          "(email, webhook) and to each plugin that receives alerts, each given at "
                                          "most [notify] deadline seconds (30 by default). Nothing is recorded and "
                                          "no alert is opened. Exit 1 naming every target that did not take it (or "
                                          "when none is configured), 0 when all did.")
    test.add_argument("--json", action="store_true", help="one object per target: target, sent, error")
    test.set_defaults(func=cmd_notify_test)


def cmd_notify_test(args: argparse.Namespace) -> int:
    from bhhub.notify import send_test

    with open_hub(args) as hub:
        outcomes = send_test(hub)
        where = hub.settings.config_path
    if args.json:
        print_json([{"target": name, "sent": error is None, "error": error} for name, error in outcomes.items()])
    else:
        for name, error in outcomes.items():
            print(f"{name}: {'sent' if error is None else 'FAILED: ' + error}")
    if not outcomes:
        print(f"bhhub: nothing to test: {where} has no [notify.email] or [notify.webhook], and no plugin "
              "receives alerts", file=sys.stderr)
        return 1
    failed = [name for name, error in outcomes.items() if error is not None]
    if failed:
        print(f"bhhub: notify test: not delivered by {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
