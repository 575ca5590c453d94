"""The core's promises about what it imports, read from the source (no module is imported here).

- No capability imports the command line: ``bhhub.cli`` sits on top of the core, and a library
  user (a plugin, a worker) must be able to use the core without it. Text and file-kind rules
  the two share live in neutral modules (``bhhub.common.text``, ``bhhub.common.filekinds``).
- The core never imports a plugin or a connector: they reach it through the plugin manager (the
  demo finds the sandbox clearinghouse there, by its registered name).
- No import circles among the modules of ``hub``, ``plugins`` and ``connectors``: a module's
  import-time imports never lead back to it. Imports inside functions (deliberately lazy) and
  under ``if TYPE_CHECKING:`` (never run) are not import-time and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HUB = ROOT / "hub"
# folder -> the name it installs as (setup.py)
PACKAGES = {"hub": "bhhub", "plugins": "bhhub.plugins", "connectors": "bhhub.connectors"}


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
    assert "bhhub.errors" in _imports(HUB / "claims" / "batches.py")
    assert "bhhub.x12.segments" in _imports(HUB / "x12" / "envelope.py")


@pytest.mark.parametrize("path", [p for p in _modules() if "cli" not in p.relative_to(HUB).parts[:1]], ids=_rel)
def test_no_capability_imports_the_command_line(path):
    wrong = [name for name in _imports(path) if name == "bhhub.cli" or name.startswith("bhhub.cli.")]
    assert not wrong, f"{_rel(path)} imports {wrong}: move what it needs out of bhhub.cli"


def test_the_core_imports_no_plugin_or_connector():
    wrong = {}
    for path in _modules():
        names = [n for n in _imports(path)
                 if any(n == top or n.startswith(top + ".") for top in ("bhhub.plugins", "bhhub.connectors"))]
        if names:
            wrong[_rel(path)] = names
    assert not wrong, f"the core imports plugins or connectors directly: {wrong}"


# --- import circles ---------------------------------------------------------------------------


def _module_names(root: Path) -> dict[str, Path]:
    """Each module under ``root``'s packages by its dotted name (a package by its folder's)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root / package).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([PACKAGES[package], *parts])] = path
    return found


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_time_imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ``modules`` that importing ``name`` imports: statements run at import time
    (module body, class bodies, if/try/with blocks), not function bodies nor TYPE_CHECKING blocks.
    ``from package import name`` counts as importing the submodule when ``name`` is one."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if isinstance(node, ast.If) and _type_checking(node.test):
                visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = package[:len(package) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    found.add(f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module)
            for block in ("body", "orelse", "finalbody"):
                visit(getattr(node, block, None) or [])
            for handler in getattr(node, "handlers", None) or []:
                visit(handler.body)
            for case in getattr(node, "cases", None) or []:
                visit(case.body)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body)
    return {module for module in found if module in modules and module != name}


def _import_circles(root: Path) -> list[list[str]]:
    """Each circle of import-time imports among ``root``'s packages, as the path round it."""
    modules = _module_names(root)
    graph = {name: sorted(_import_time_imports(name, path, modules)) for name, path in modules.items()}
    circles: list[list[str]] = []
    done: set[str] = set()
    for start in sorted(graph):
        # A depth-first walk; a module met again while still on the path closes a circle.
        path: list[str] = []
        on_path: dict[str, int] = {}
        stack = [(start, iter(graph[start]))]
        path.append(start)
        on_path[start] = 0
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                del on_path[node]
                done.add(node)
            elif child in on_path:
                circle = path[on_path[child]:] + [child]
                if not any(set(circle) == set(seen) for seen in circles):
                    circles.append(circle)
            elif child not in done:
                on_path[child] = len(path)
                path.append(child)
                stack.append((child, iter(graph[child])))
    return circles


def test_the_circle_finder_sees_a_circle_and_ignores_lazy_imports(tmp_path):
    # A finder that saw nothing would pass the check below vacuously.
    (tmp_path / "hub" / "x12").mkdir(parents=True)
    (tmp_path / "hub" / "__init__.py").write_text("")
    (tmp_path / "hub" / "x12" / "__init__.py").write_text("")
    (tmp_path / "hub" / "x12" / "envelope.py").write_text("from bhhub.x12 import segments\n")
    (tmp_path / "hub" / "x12" / "segments.py").write_text("try:\n    from .envelope import Delimiters\nexcept ImportError:\n    pass\n")
    (tmp_path / "hub" / "lazy.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import bhhub.eager\n"
        "def later():\n    import bhhub.eager\n")
    (tmp_path / "hub" / "eager.py").write_text("import bhhub.lazy\n")
    assert _import_circles(tmp_path) == [["bhhub.x12.envelope", "bhhub.x12.segments", "bhhub.x12.envelope"]]


def test_no_import_circles_among_the_hub_plugins_and_connectors():
    assert len(_module_names(ROOT)) > 200  # the walk found the packages
    circles = _import_circles(ROOT)
    assert not circles, "import circles (move the shared piece into a module both import): " + "; ".join(
        " -> ".join(circle) for circle in circles)
