"""The example third-party package (examples/csv_practice_export), installed the way a practice
would install a vendor's plugin, in a fresh virtual environment: its own tests pass there,
`bhhub plugins` lists it, and `bhhub intake` of its golden CSV gives ready claims whose 837P
passes pyx12."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from test_plugin_scaffold import bhhub_in, fresh_venv, install, run_in

from bhhub.x12.validate import validate_x12

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "csv_practice_export"


def test_the_example_csv_plugin_installs_and_bills_its_golden_export_through_bhhub_intake(tmp_path):
    # A copy: installing writes build metadata into the package folder, never into the repo.
    package = shutil.copytree(EXAMPLE, tmp_path / "csv_practice_export",
                              ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", ".pytest_cache"))
    python = fresh_venv(tmp_path / "venv")
    install(python, package)

    tests = run_in(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", cwd=package)
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    assert "skipped" not in tests.stdout

    home = str(tmp_path / "home")
    assert bhhub_in(python, package, "--home", home, "init").returncode == 0  # bhhub makes a hub only with `init`
    listing = bhhub_in(python, package, "--home", home, "plugins", "--json")
    plugin = {p["name"]: p for p in json.loads(listing.stdout)["plugins"]}["csv_practice_export"]
    assert plugin["loaded"] and plugin["distribution"] == "bhhub-csv-practice-export"
    assert plugin["hooks"] == ["bhhub_register_intake_formats"]

    intake = bhhub_in(python, package, "--home", home, "intake", "tests/goldens/day-export.csv", "--json")
    assert intake.returncode == 0, intake.stdout + intake.stderr
    [result] = json.loads(intake.stdout)
    assert result["outcome"] == "imported" and result["format"] == "csv-practice-export"
    assert [c["status"] for c in result["claims"]] == ["ready", "ready", "ready"]

    claims = json.loads(bhhub_in(python, package, "--home", home, "claims", "--json").stdout)
    codes = sorted(tuple(line["procedure_code"] for line in c["lines"]) for c in claims)
    assert codes == [("90834",), ("90837",), ("99214", "90833")]

    out = tmp_path / "claims.837"
    export = bhhub_in(python, package, "--home", home, "export-837", "--out", str(out), "--json")
    assert export.returncode == 0, export.stderr
    assert json.loads(export.stdout)["claims"] == 3
    assert validate_x12(out.read_bytes()) == []
