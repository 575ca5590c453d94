"""Running a benchmark's phases each in a process of its own, so each peak memory is its own.

A benchmark script runs itself again as ``script --phase NAME ...``; the child measures its one
phase and prints its figures as the last line of its output, a JSON object, which
``run_phase`` returns to the parent.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys


def peak_mb() -> float:
    """This process's peak resident set size so far, in MB (ru_maxrss is in KB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_phase(script: str, name: str, *args: str) -> dict:
    """The figures phase ``name`` of ``script`` prints, run in a fresh Python process with ``args``;
    a phase that fails stops the benchmark with its error output."""
    out = subprocess.run([sys.executable, script, "--phase", name, *args], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"phase {name} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def print_phase(figures: dict) -> None:
    """In the child: a phase's figures, with the process's peak memory, as the line the parent reads."""
    figures["peak_mb"] = peak_mb()
    print(json.dumps(figures))
