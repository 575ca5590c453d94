"""A fast start: `bhhub --version`, `--help` and the listings import no plugin, no FHIR model and
no ICD-10-CM table (the import graph is asserted here; the seconds are benchmarks/cli_start.py's).
`--help` still lists the plugins' commands, from a cache keyed by the installed entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent

# Runs `bhhub ARGS...` and writes the modules it imported, whatever way it ended, to a file.
WRAPPER = """
import json, sys
from bhhub.cli.main import main
try:
    code = main(sys.argv[2:])
except SystemExit as stop:
    code = stop.code
finally:
    with open(sys.argv[1], "w") as out:
        json.dump(sorted(sys.modules), out)
sys.exit(code)
"""

HEAVY = ("plugins", "connectors", "fhir", "fhir_core", "simple_icd_10_cm", "hl7apy", "paramiko", "pyx12",
         "requests")
STORE = ("sqlalchemy", "alembic", "bhhub.store.schema")
# Parsing the command line reads no configuration (a hub's bhhub.toml is the command's business).
CONFIGURATION = ("pydantic", "bhhub.runtime.config", "bhhub.runtime.app")


def _bhhub(tmp_path: Path, *args: str, cache: Path) -> tuple[subprocess.CompletedProcess, set[str]]:
    listing = tmp_path / "modules.json"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "PYTHONPATH": str(PROJECT)}
    done = subprocess.run([sys.executable, "-c", WRAPPER, str(listing), *args], capture_output=True, text=True,
                          cwd=PROJECT, env=env, timeout=300)
    return done, set(json.loads(listing.read_text()))


def _plugin_modules() -> set[str]:
    """Every installed plugin's entry module (the built-ins under hub/ included)."""
    from importlib import metadata

    return {ep.module for ep in metadata.entry_points(group="bhhub")}


def _imported(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in packages or m in packages)


@pytest.fixture
def warm_cache(tmp_path) -> Path:
    """A cache folder the first --help (which loads the plugins once) has filled."""
    cache = tmp_path / "cache"
    done, _ = _bhhub(tmp_path, "--help", cache=cache)
    assert done.returncode == 0
    return cache


def test_version_imports_neither_plugins_nor_heavy_tables_nor_the_store(tmp_path):
    done, modules = _bhhub(tmp_path, "--version", cache=tmp_path / "empty-cache")
    assert done.returncode == 0 and done.stdout.startswith("bhhub ")
    assert _imported(modules, HEAVY + STORE + CONFIGURATION) == [] and _plugin_modules() & modules == set()
    assert not (tmp_path / "empty-cache").exists()  # --version does not even look for plugin commands


def test_help_lists_the_plugins_commands_without_importing_a_plugin(tmp_path, warm_cache):
    done, modules = _bhhub(tmp_path, "--help", cache=warm_cache)
    assert done.returncode == 0
    assert _imported(modules, HEAVY + STORE + CONFIGURATION) == [] and _plugin_modules() & modules == set()
    commands = {line.split()[0] for line in done.stdout.splitlines() if line.startswith("    ") and line.split()}
    assert {"listen", "sandbox", "claims", "demo"} <= commands  # plugins' and built-ins' alike


def test_help_with_no_cache_loads_the_plugins_once_and_keeps_their_commands(tmp_path):
    cache = tmp_path / "cache"
    first, modules = _bhhub(tmp_path, "--help", cache=cache)
    assert "bhhub.connectors.mllp" in modules and "listen" in first.stdout
    [kept] = (cache / "bhhub").glob("plugin-commands-*.json")
    assert {"listen", "sandbox"} <= {name for name, _ in json.loads(kept.read_text())["commands"]}
    again, modules = _bhhub(tmp_path, "--help", cache=cache)
    assert again.stdout == first.stdout and _imported(modules, HEAVY) == []


def test_a_cache_written_for_other_plugins_is_not_believed(tmp_path, warm_cache):
    [kept] = (warm_cache / "bhhub").glob("plugin-commands-*.json")
    data = json.loads(kept.read_text())
    kept.write_text(json.dumps({"key": "another set of entry points", "commands": [["gone", "an uninstalled one"]]}))
    done, modules = _bhhub(tmp_path, "--help", cache=warm_cache)
    assert "gone" not in done.stdout and "listen" in done.stdout and "bhhub.connectors.mllp" in modules
    # ... and the cache is made right again.
    assert json.loads(kept.read_text())["key"] == data["key"]


def test_help_shows_what_the_cache_holds_for_the_installed_plugins(tmp_path, warm_cache):
    """The cache is really what --help reads (so keeping it right is what keeps --help right)."""
    [kept] = (warm_cache / "bhhub").glob("plugin-commands-*.json")
    data = json.loads(kept.read_text())
    data["commands"].append(["from-the-cache", "a command only the cache knows"])
    kept.write_text(json.dumps(data))
    done, _ = _bhhub(tmp_path, "--help", cache=warm_cache)
    assert "from-the-cache" in done.stdout


def test_a_plugins_command_still_runs_with_its_own_options(tmp_path, warm_cache):
    done, modules = _bhhub(tmp_path, "listen", "--help", cache=warm_cache)
    assert done.returncode == 0 and "--port" in done.stdout and "bhhub.connectors.mllp" in modules


@pytest.mark.parametrize("listing", [["claims", "--json"], ["claims"], ["inbox", "--json"], ["claims", "--help"]])
def test_listings_import_no_plugin_and_no_heavy_table(listing, tmp_path, warm_cache, hub_home):
    import datetime
    from bhhub.runtime import clock
    from bhhub.intake import inbox as intake
    from bhhub.runtime.app import Hub
    from bhhub.demo.synthetic import encounter_bundle

    with Hub.open(hub_home) as hub:  # a hub with a claim, so the listing has rows to print
        start = clock.today() - datetime.timedelta(days=20)
        intake.receive(hub, json.dumps(encounter_bundle(3, start=start)).encode(), "visit.json")
    done, modules = _bhhub(tmp_path, "--home", str(hub_home), *listing, cache=warm_cache)
    assert done.returncode == 0, done.stderr
    if listing == ["claims", "--json"]:
        assert len(json.loads(done.stdout)) == 1
    assert _imported(modules, HEAVY) == []
    assert _plugin_modules() & modules == set()
    # A store already at the newest migration is recognised without importing Alembic.
    assert listing == ["claims", "--help"] or ("sqlalchemy" in modules and _imported(modules, ("alembic",)) == [])


def test_the_newest_migration_is_read_as_alembic_reads_it():
    from alembic.script import ScriptDirectory

    from bhhub.store.db import _alembic_config, _head_revision

    assert _head_revision() == ScriptDirectory.from_config(_alembic_config()).get_current_head()


def test_a_store_behind_the_newest_migration_is_still_upgraded(database_url):
    from alembic import command
    from sqlalchemy import text

    from bhhub.store.db import Store, _alembic_config, _head_revision, open_store

    with Store(database_url) as store:  # a store as an older bhhub left it
        with store.engine.begin() as connection:
            cfg = _alembic_config()
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "0007_core")
        assert not store._at_head()
    with open_store(database_url) as store, store.engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == _head_revision()
        assert store._at_head()
