"""Faults injected and survived: the long version of tests/test_fault_injection.py.

    python benchmarks/fault_campaign.py [--rounds 2] [--backend sqlite,postgresql] [--json]

Each round kills the `bhhub` command with SIGKILL at every fault point of intake, batching,
upload, pickup and posting (``bhhub.runtime.crashpoints.POINTS``), on a fresh practice (six visits, bhhub's
sandbox clearinghouse on loopback SFTP), then runs the next command or the next scheduled
exchange as cron would; and it runs each batching command twice at once. Then it counts, from the
store and from what the clearinghouse received (tests/fault_support.py, ``Practice.figures``):

  faults injected        kills that landed at their point, plus pairs run at once
  survived               the rerun finished the work: every file applied, every claim sent,
                         nothing counted below
  files lost             inputs stored and never applied, visits with no claim
  claims billed twice    claims in two 837Ps, visits made two claims, a batch processed twice
  payments posted twice  claim payments posted more than once

The suite asserts the same invariants on one kill per point; this script repeats the campaign
and prints the totals the README reports. PostgreSQL at $BHHUB_TEST_POSTGRES_URL (the test
suite's default when unset), one fresh schema per scenario.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import uuid
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

from fault_support import Practice  # noqa: E402
from bhhub.runtime.crashpoints import POINTS  # noqa: E402

PG_URL = os.environ.get("BHHUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
INTAKE = {"intake:after_store_raw", "intake:before_commit"}
EXPORT = {"batch:after_take", "batch:before_commit", "export:before_file"}


class Scenario:
    """One practice on one backend in its own directory and (on PostgreSQL) its own schema."""

    def __init__(self, backend: str, clearinghouse: bool):
        self.tmp = Path(tempfile.mkdtemp(prefix="bhhub-faults-"))
        self.schema = None
        if backend == "postgresql":
            from sqlalchemy import create_engine, text

            self.schema = f"f_{uuid.uuid4().hex[:12]}"
            with create_engine(PG_URL).begin() as conn:
                conn.execute(text(f'create schema "{self.schema}"'))
            url = f"{PG_URL}?options=-csearch_path%3D{self.schema}"
        else:
            url = f"sqlite:///{self.tmp / 'store.db'}"
        self.server = None
        if clearinghouse:
            from bhhub.plugins.clearinghouse.sandbox import SandboxClearinghouse

            self.server = SandboxClearinghouse(self.tmp / "sandbox", today=date(2026, 11, 30)).start()
        self.practice = Practice(self.tmp, url, sandbox=self.server)

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.schema:
            from sqlalchemy import create_engine, text

            with create_engine(PG_URL).begin() as conn:
                conn.execute(text(f'drop schema "{self.schema}" cascade'))
        shutil.rmtree(self.tmp, ignore_errors=True)


def kill_at(backend: str, point: str) -> dict:
    scenario = Scenario(backend, clearinghouse=point not in INTAKE | EXPORT)
    p = scenario.practice
    try:
        if point in INTAKE:
            injected = p.bhhub("intake", str(p.exports), crash_at=point).killed
            finished = p.here("intake", str(p.exports)).returncode == 0
            figures = p.figures()
            figures["left_ready"] = 0  # an intake does not bill
        elif point in EXPORT:
            finished = p.here("intake", str(p.exports)).returncode == 0
            out = scenario.tmp / "out" / "batch.x12"
            injected = p.bhhub("export-837", "--out", str(out), crash_at=point).killed
            finished &= p.here("export-837", "--out", str(scenario.tmp / "out" / "again.x12")).returncode == 0
            figures = p.figures()
        else:
            finished = p.here("intake", str(p.exports)).returncode == 0
            injected = p.bhhub("exchange", crash_at=point).killed
            for _ in range(2):
                finished &= p.here("exchange").returncode == 0
            figures = p.figures()
        return {"injected": int(injected), "finished": finished, **figures}
    finally:
        scenario.close()


def twice_at_once(backend: str, first: tuple[str, ...], second: tuple[str, ...], pause_at: str) -> dict:
    scenario = Scenario(backend, clearinghouse=True)
    p = scenario.practice
    try:
        first, second = ([arg.format(exports=p.exports) for arg in args] for args in (first, second))
        finished = first[0] == "intake" or p.here("intake", str(p.exports)).returncode == 0
        a, b = p.together(first, second, pause_at=pause_at)
        finished &= a.returncode == 0 and b.returncode == 0
        finished &= p.here("exchange").returncode == 0  # what either left behind goes on the next run
        return {"injected": 1, "finished": finished, **p.figures()}
    finally:
        scenario.close()


def campaign(backend: str, rounds: int, show) -> dict:
    totals = {"injected": 0, "survived": 0, "files_lost": 0, "claims_twice": 0, "payments_twice": 0}
    runs = []
    for _ in range(rounds):
        runs += [(f"kill at {point}", lambda point=point: kill_at(backend, point)) for point in POINTS]
        runs += [("exchange twice at once", lambda: twice_at_once(backend, ("exchange",), ("exchange",),
                                                                   "batch:after_take")),
                 ("intake twice at once", lambda: twice_at_once(backend, ("intake", "{exports}"),
                                                                 ("intake", "{exports}"), "intake:before_commit")),
                 ("export beside exchange", lambda: twice_at_once(backend, ("exchange",),
                                                                   ("export-837", "--out", "/dev/null"),
                                                                   "batch:after_take"))]
    for number, (name, run) in enumerate(runs, 1):
        result = run()
        survived = (result["finished"] and result["left_ready"] == 0 and result["files_lost"] == 0
                    and result["claims_twice"] == 0 and result["payments_twice"] == 0)
        totals["injected"] += result["injected"]
        totals["survived"] += int(survived and result["injected"] == 1)
        for key in ("files_lost", "claims_twice", "payments_twice"):
            totals[key] += result[key]
        show(f"  [{backend} {number}/{len(runs)}] {name}: {'survived' if survived else 'FAILED ' + str(result)}")
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="campaigns per backend (default 2)")
    parser.add_argument("--backend", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--json", action="store_true", help="print the totals as JSON")
    args = parser.parse_args(argv)
    show = (lambda _line: None) if args.json else (lambda line: print(line, file=sys.stderr, flush=True))
    results = {backend: campaign(backend, args.rounds, show) for backend in args.backend.split(",")}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{'store':<12}{'faults injected':>17}{'survived':>10}{'files lost':>12}"
              f"{'billed twice':>14}{'posted twice':>14}")
        for backend, t in results.items():
            print(f"{backend:<12}{t['injected']:>17}{t['survived']:>10}{t['files_lost']:>12}"
                  f"{t['claims_twice']:>14}{t['payments_twice']:>14}")
    bad = any(t["survived"] != t["injected"] or t["files_lost"] or t["claims_twice"] or t["payments_twice"]
              for t in results.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
