"""The benchmark keeps working as a command (its timings are not asserted here, only its run)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import PROJECT


def test_the_benchmark_command_runs_and_reports_every_figure():
    run = subprocess.run(
        [sys.executable, str(PROJECT / "benchmarks" / "intake_and_837p.py"), "--encounters", "30", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout)
    assert figures["encounters"] == 30
    for key in ("intake_ratio", "intake_single_process_ratio", "generate_ratio", "intake_peak_mb", "segments"):
        assert figures[key] > 0
