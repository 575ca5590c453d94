"""``--json`` wherever it is given in a command group: ``bhhub remit --json list`` as
``bhhub remit list --json``.

argparse copies every default of the action's parser over its group's namespace, so a group's
``--json`` given before the action word was silently reset to False by the action's own
``--json``. After the parser is built, each group whose actions print JSON gets ``--json``
itself, and its actions' ``--json`` default is suppressed, so the flag given on either side
reaches the command. An action of such a group that prints no JSON refuses it (exit code 2)
rather than ignoring it.
"""

from __future__ import annotations

import argparse

from bhhub.errors import UsageError

JSON = "--json"


def honour_json_before_action(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> None:
    """Give every command group under ``parser`` one ``--json`` (``path``: the words so far).

    The top-level parser itself is left alone: ``bhhub --json claims`` is global-option parsing."""
    for action in _subcommand_actions(parser):
        seen: set[int] = set()
        for name, sub in action.choices.items():
            if id(sub) in seen:  # an alias of one already walked
                continue
            seen.add(id(sub))
            honour_json_before_action(sub, path + (name,))
    if not path:
        return
    actions = [(name, sub) for a in _subcommand_actions(parser) for name, sub in a.choices.items()]
    if not any(_json_action(sub) for _, sub in actions):
        return
    if _json_action(parser) is None:
        parser.add_argument(JSON, action="store_true", help="print JSON (before or after the action word)")
    for name, sub in actions:
        mine = _json_action(sub)
        if mine is not None:
            mine.default = argparse.SUPPRESS  # the group's value stands unless given here
        else:
            sub.set_defaults(func=_refusing_json(" ".join(path + (name,)), sub.get_default("func")))


def _subcommand_actions(parser: argparse.ArgumentParser) -> list[argparse._SubParsersAction]:
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]


def _json_action(parser: argparse.ArgumentParser) -> argparse.Action | None:
    return next((a for a in parser._actions if JSON in a.option_strings), None)


def _refusing_json(command: str, func):
    def run(args: argparse.Namespace) -> int:
        if getattr(args, "json", False):
            raise UsageError(f"`bhhub {command}` prints no JSON; leave out --json")
        return func(args)

    return run
