"""``bhhub demo`` finds the sandbox clearinghouse through the plugin manager, by its registered
name; without it the demo says so in one line and stops (exit code 1), before starting anything."""

from __future__ import annotations

from importlib import metadata

from bhhub.cli import main as cli
from bhhub.runtime.plugin_host import build_plugin_host


def _installed_without_sandbox():
    return build_plugin_host([ep for ep in metadata.entry_points(group="bhhub") if ep.name != "sandbox"])


def _sandbox_that_fails_to_load():
    broken = metadata.EntryPoint("sandbox", "bhhub.plugins.clearinghouse.no_such_sandbox", "bhhub")
    return build_plugin_host([broken])


def test_demo_without_the_sandbox_plugin_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "build_plugin_host", _installed_without_sandbox)
    assert cli.main(["--home", str(tmp_path), "demo"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no plugin named 'sandbox' is installed" in err
    assert not (tmp_path / "demo" / "sandbox").exists()  # no clearinghouse was started


def test_demo_with_a_sandbox_that_failed_to_load_says_why(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "build_plugin_host", _sandbox_that_fails_to_load)
    assert cli.main(["--home", str(tmp_path), "demo"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the plugin 'sandbox' did not load (ModuleNotFoundError" in err
