"""How fast `bhhub` starts, beside Python's own start measured in the same run.

    python benchmarks/cli_start.py [--claims 10000] [--runs 7] [--json]

Each command runs as a new process (cold: nothing of bhhub in memory; the OS file cache warm, as
on a machine in use), `--runs` times; the median wall time and CPU time (user + system) are shown.
Commands: `bhhub --version`, `bhhub --help` (the plugins' commands from the cache the first
--help wrote; the first, which loads every plugin once, is shown too), `bhhub plugins` (which
loads every plugin, by design), and `bhhub claims --json` on a hub of N claims (filled as
`bhhub intake FOLDER` does, from synthetic bundles) with its time to first byte and to the end.
Baselines: `python -c pass` and `python -c "import sqlalchemy"` (what any command that reads the
store must import). Target: --version and --help under 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 0.5


def fill_hub(home: Path, claims: int) -> float:
    """A hub of ``claims`` claims, taken in as `bhhub intake` does; the seconds it took."""
    from datetime import timedelta

    from bhhub.intake import many as intake_many
    from bhhub.runtime.app import Hub
    from bhhub.runtime.clock import today
    from bhhub.demo.synthetic import encounter_bundle

    start_day = today() - timedelta(days=60)
    started = time.perf_counter()
    with Hub.open(home, create=True) as hub:
        named = ((f"encounter-{i}.json", json.dumps(encounter_bundle(i, start=start_day)).encode())
                 for i in range(claims))
        outcomes = [r.outcome for r in intake_many.receive_many(hub, named, parse_in_worker=claims >= 500)]
    if outcomes.count("imported") != claims:
        raise SystemExit(f"only {outcomes.count('imported')} of {claims} bundles imported")
    return time.perf_counter() - started


def bhhub_command() -> list[str]:
    script = Path(sys.executable).with_name("bhhub")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bhhub.cli.main"]


def run_once(argv: list[str], env: dict) -> dict:
    """Wall seconds to the first byte on stdout and to the end, and CPU seconds, of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    first = process.stdout.read(1)
    first_byte = time.perf_counter() - started
    process.stdout.read()
    err = process.stderr.read()
    code = process.wait()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({code}): {err.decode(errors='replace')[:300]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "first_byte": first_byte if first else wall, "cpu": cpu}


def measure(argv: list[str], env: dict, runs: int) -> dict:
    samples = [run_once(argv, env) for _ in range(runs)]
    return {key: statistics.median(s[key] for s in samples) for key in ("wall", "first_byte", "cpu")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=10_000, help="claims in the hub (default 10,000)")
    parser.add_argument("--runs", type=int, default=7, help="processes per command (default 7)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bhhub-cli-start-"))
    try:
        home, cache = work / "hub", work / "cache"
        env = {**os.environ, "XDG_CACHE_HOME": str(cache), "BHHUB_HOME": str(home)}
        env.pop("BHHUB_DATABASE_URL", None)
        print(f"filling a hub with {args.claims:,} claims ...", file=sys.stderr)
        filled = fill_hub(home, args.claims)
        bhhub = bhhub_command()
        py = sys.executable
        rows: list[tuple[str, dict]] = [
            ("baseline: python -c pass", measure([py, "-c", "pass"], env, args.runs)),
            ("baseline: python -c 'import sqlalchemy'", measure([py, "-c", "import sqlalchemy"], env, args.runs)),
            ("bhhub --version", measure([*bhhub, "--version"], env, args.runs)),
        ]
        rows.append(("bhhub --help, first (loads plugins, keeps their commands)", run_once([*bhhub, "--help"], env)))
        rows += [
            ("bhhub --help", measure([*bhhub, "--help"], env, args.runs)),
            ("bhhub claims --help", measure([*bhhub, "claims", "--help"], env, args.runs)),
            ("bhhub plugins (loads every plugin)", measure([*bhhub, "plugins"], env, args.runs)),
            (f"bhhub claims --json ({args.claims:,} claims)",
             measure([*bhhub, "claims", "--json"], env, max(1, min(args.runs, 3)))),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    figures = {name: {k: round(v, 3) for k, v in row.items()} for name, row in rows}
    version, help_ = figures["bhhub --version"]["wall"], figures["bhhub --help"]["wall"]
    verdict = {"version_met": version < TARGET_SECONDS, "help_met": help_ < TARGET_SECONDS}
    if args.json:
        print(json.dumps({"claims": args.claims, "fill_seconds": round(filled, 1), "figures": figures, **verdict},
                         indent=2))
        return 0
    print(f"hub of {args.claims:,} claims filled in {filled:.1f} s; median of {args.runs} processes each "
          f"(claims --json: of {max(1, min(args.runs, 3))}); 'first byte' is when output began\n")
    print(f"{'command':<58}{'wall':>9}{'first byte':>12}{'CPU':>9}")
    for name, row in figures.items():
        print(f"{name:<58}{row['wall']:>8.3f}s{row['first_byte']:>11.3f}s{row['cpu']:>8.3f}s")
    print()
    for label, seconds, met in (("--version", version, verdict["version_met"]), ("--help", help_, verdict["help_met"])):
        print(f"bhhub {label:<10} {seconds:.3f} s (target < {TARGET_SECONDS} s): {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
