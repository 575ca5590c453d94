"""docs/operations.md stays true: its example systemd units are well-formed, and every bhhub
command it tells an administrator to run is one the CLI accepts."""

from __future__ import annotations

import configparser
import re
import shlex

import pytest

from conftest import PROJECT

DOC = PROJECT / "docs" / "operations.md"


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.+?)\n```", DOC.read_text(encoding="utf-8"), flags=re.S)


def _bhhub_arguments(command: str) -> list[str]:
    words = shlex.split(command, comments=True)
    at = next(i for i, w in enumerate(words) if w.endswith("bin/bhhub") or (i == 0 and w == "bhhub"))
    return words[at + 1:]


def _parser():
    """The CLI's parser with the installed plugins' commands (``listen`` is one), as ``main`` builds it."""
    from bhhub.cli.main import BUILTIN, build_parser
    from bhhub.runtime.plugin_host import build_plugin_host

    return build_parser(build_plugin_host().hooks.commands(taken=BUILTIN))


def test_the_doc_ships_a_unit_for_the_runner_and_one_for_the_listener():
    execs = [configparser.ConfigParser(strict=True, interpolation=None) for _ in _blocks("ini")]
    for parser, block in zip(execs, _blocks("ini")):
        parser.optionxform = str  # systemd keys are case-sensitive
        parser.read_string(block)
    commands = [p["Service"]["ExecStart"] for p in execs]
    assert sorted(_bhhub_arguments(c)[0] for c in commands) == ["listen", "run"]
    for parser in execs:
        service = parser["Service"]
        assert service["User"] != "root"
        assert service["KillSignal"] == "SIGTERM"  # what both stop cleanly on
        assert service["UMask"] == "0077"  # PHI files private, as the hub makes them
        assert "WantedBy" in parser["Install"]


@pytest.mark.parametrize("command", [
    line for block in _blocks("ini") for line in block.splitlines() if line.startswith("ExecStart=")
] + [
    line for block in _blocks("sh") for line in block.splitlines()
    if re.search(r"(^bhhub|bin/bhhub)\s", line)
])
def test_every_bhhub_command_in_the_doc_parses(command):
    arguments = _bhhub_arguments(command.removeprefix("ExecStart="))
    try:
        _parser().parse_args(arguments)
    except SystemExit as exc:  # argparse's way of refusing
        pytest.fail(f"docs/operations.md: `bhhub {' '.join(arguments)}` is refused by the CLI (exit {exc.code})")
