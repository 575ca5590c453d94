"""The README's promises: two quick-start commands, and CI runs the very same test command."""

from __future__ import annotations

import re

from conftest import PROJECT


def _quick_start_commands() -> list[str]:
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_quick_start_has_exactly_two_commands_demo_then_tests():
    commands = _quick_start_commands()
    assert len(commands) == 2
    assert commands[0].endswith("bhhub demo")
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (PROJECT / ".ci" / "run").read_text(encoding="utf-8")
    assert _quick_start_commands()[1] in ci.splitlines()


def test_quick_start_ends_with_the_workspace_and_its_screenshot():
    """Issue 16: the quick start ends with `bhhub serve` and the overview the browser tests took."""
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0].strip()
    last = section.splitlines()[-1]
    image = re.fullmatch(r"!\[[^\]]+\]\(([^)]+\.png)\)", last)
    assert image, f"the quick start ends with {last!r}, not the overview's screenshot"
    shot = PROJECT / image.group(1)
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "`bhhub serve`" in section and "bhhub demo --serve" in section
