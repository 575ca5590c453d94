"""bhhub installs one top-level import package, ``bhhub``: the repository's ``hub/``, ``plugins/``,
``connectors/`` and ``mappings/`` folders become ``bhhub``, ``bhhub.plugins``, ``bhhub.connectors``
and ``bhhub.mappings`` (setup.py), so no other distribution's ``plugins`` or ``mappings`` can
collide with them. Checked on a wheel built from this tree and installed in a fresh venv."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "--no-index", "-q", "-w", str(out), str(PROJECT)], capture_output=True, text=True,
                           timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    (found,) = out.glob("bhhub-*.whl")
    return found


@pytest.fixture(scope="module")
def fresh_venv(wheel, tmp_path_factory) -> Path:
    """A new venv with the wheel installed; bhhub's dependencies come from this environment's
    site-packages as a plain path (its .pth files, the editable install's finder among them, are
    not run there)."""
    where = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, capture_output=True)
    python = where / "bin" / "python"
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                                "--no-deps", "--no-index", str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return where


def test_the_wheel_holds_one_top_level_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"bhhub"}
    for expected in ("bhhub/cli/main.py", "bhhub/plugins/ehr/fhir_r4/__init__.py", "bhhub/connectors/sftp/client.py",
                     "bhhub/mappings/payers.toml", "bhhub/mappings/ehr/fhir_r4.toml"):
        assert expected in names, expected
    assert any(name.startswith("bhhub/scaffold/templates/") and name.endswith(".tmpl") for name in names)
    # every package folder of the repository is in the wheel (a subpackage setup.py missed is not)
    for folder, installed in (("hub", "bhhub"), ("plugins", "bhhub/plugins"), ("connectors", "bhhub/connectors")):
        for init in (PROJECT / folder).rglob("__init__.py"):
            if "templates" in init.parts:
                continue
            assert f"{installed}/{init.relative_to(PROJECT / folder).as_posix()}" in names, init
    entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    values = [line.split("=", 1)[1].strip() for line in zipfile.ZipFile(wheel).read(entry_points).decode().splitlines()
              if "=" in line]
    assert values and all(value.startswith("bhhub.") for value in values), values


def _run(venv: Path, code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, cwd=cwd,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)})


def test_in_a_fresh_venv_only_the_name_bhhub_is_installed(fresh_venv, tmp_path):
    for name in ("plugins", "connectors", "mappings", "hub"):
        result = _run(fresh_venv, f"import {name}", tmp_path)
        assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr, (name, result.stderr)
    loaded = _run(fresh_venv, "import bhhub, bhhub.cli.main, bhhub.plugins.ehr.fhir_r4, bhhub.connectors.sftp\n"
                              "from importlib import resources\n"
                              "print(bhhub.__file__)\n"
                              "print(resources.files('bhhub.mappings').joinpath('payers.toml').is_file())", tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    where, packaged = loaded.stdout.split()
    assert str(fresh_venv) in where and str(PROJECT) not in where
    assert packaged == "True"


def test_the_installed_command_finds_every_built_in_plugin(fresh_venv, tmp_path):
    listing = subprocess.run([str(fresh_venv / "bin" / "bhhub"), "plugins", "--json"], capture_output=True, text=True,
                             cwd=tmp_path, timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                                             "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert listing.returncode == 0, listing.stderr
    plugins = {entry["name"]: entry for entry in json.loads(listing.stdout)["plugins"]}
    for name in ("fhir_r4", "hl7v2", "sftp", "sandbox", "core_checks"):
        assert plugins[name]["loaded"], plugins.get(name)
