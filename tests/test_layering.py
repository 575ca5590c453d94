"""The core's promises about what it imports, read from the source (no module is imported here).

- No capability imports the command line: ``hub.cli`` sits on top of the core, and a library
  user (a plugin, a worker) must be able to use the core without it. Text and file-kind rules
  the two share live in neutral modules (``hub.text``, ``hub.filekinds``).
- The core never imports a plugin or a connector: they reach it through the plugin manager.
  The demo's use of the sandbox clearinghouse is the one exception still standing (issue 15
  removes it), listed here so that no other creeps in.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HUB = Path(__file__).resolve().parents[1] / "hub"
PLUGIN_IMPORTS_ALLOWED = {"hub/cli/demo.py"}


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def _modules() -> list[Path]:
    return sorted(HUB.rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(HUB.parent).as_posix()


def test_the_walk_sees_the_core_and_its_imports():
    # A walk that found nothing (a moved folder) would pass the checks below vacuously.
    modules = _modules()
    assert len(modules) > 100
    assert "hub.errors" in _imports(HUB / "batches.py")
    assert "plugins.clearinghouse.sandbox" in _imports(HUB / "cli" / "demo.py")


@pytest.mark.parametrize("path", [p for p in _modules() if "cli" not in p.relative_to(HUB).parts[:1]], ids=_rel)
def test_no_capability_imports_the_command_line(path):
    wrong = [name for name in _imports(path) if name == "hub.cli" or name.startswith("hub.cli.")]
    assert not wrong, f"{_rel(path)} imports {wrong}: move what it needs out of hub.cli"


def test_the_core_imports_no_plugin_or_connector():
    wrong = {}
    for path in _modules():
        if _rel(path) in PLUGIN_IMPORTS_ALLOWED:
            continue
        names = [n for n in _imports(path) if n.split(".")[0] in ("plugins", "connectors")]
        if names:
            wrong[_rel(path)] = names
    assert not wrong, f"the core imports plugins or connectors directly: {wrong}"
