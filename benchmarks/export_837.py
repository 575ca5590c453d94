"""The whole `bhhub export-837`, beside the per-claim ledger it replaced and the bare work, in one run.

    python benchmarks/export_837.py [--claims 2000] [--json]

Setup (not timed): N synthetic encounters go through intake into a fresh SQLite hub; members
recur (about four visits each, as a month of weekly sessions), and each member's payer has
authorized three visits, so some authorizations run out inside the batch. The hub is then
copied, so each measured export starts from the very same store.

Measured, each in its own process on its own copy:

- export-837: ``export_837p``, the function `bhhub export-837` calls, from taking the ready
  claims to the committed batch and its file on disk: claims selection and locking, duplicate
  check, authorization consumption, assembly, the staged file, the commit, the rename.
- the same with the authorizations consumed one claim at a time (the code before this
  benchmark existed: ~6 queries per claim), for comparison.
- baseline: the bare work any export must do: SELECT the ready claims' stored renderings,
  assemble the 837P, write and fsync the file, move the claims to ``batched`` in one UPDATE and
  commit. Target: the whole command within 3x of it.
- the command in its own process (`bhhub export-837 --out FILE`), start-up included, for scale.

Timings are wall clock on this machine; the ratios are what the targets are about.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import _timing  # beside this file
from _timing import print_phase

TARGET_RATIO = 3.0
VISITS_PER_MEMBER = 4
AUTHORIZED_VISITS = 3


def bundles(n: int) -> list[bytes]:
    from bhhub.runtime.clock import today
    from bhhub.demo.synthetic import encounter_bundle

    start = today() - timedelta(days=60)  # within every filing window, whenever it runs
    seen: dict[str, int] = {}  # visits per payer so far: every VISITS_PER_MEMBER make one member
    out = []
    for seed in range(n):
        bundle = encounter_bundle(seed, start=start)
        resources = [entry["resource"] for entry in bundle["entry"]]
        payer = next(r["identifier"][0]["value"] for r in resources if r["id"].startswith("payer-"))
        visit = seen[payer] = seen.get(payer, -1) + 1
        for r in resources:
            if r["resourceType"] == "Coverage":
                r["subscriberId"] = f"B{payer}{visit // VISITS_PER_MEMBER:06d}"
        out.append(json.dumps(bundle).encode())
    return out


def phase_setup(n: int, work: Path) -> dict:
    from sqlalchemy import select

    from bhhub.intake import many as intake_many
    from bhhub.runtime.app import Hub
    from bhhub.runtime.clock import today
    from bhhub.ledger import authorizations as ledger
    from bhhub.store import schema

    with Hub.open(work / "hub", create=True) as hub:
        named = ((f"encounter-{i}.json", p) for i, p in enumerate(bundles(n)))
        list(intake_many.receive_many(hub, named))
        with hub.store.session() as session:
            pairs = session.execute(
                select(schema.Payer.payer_id, schema.Coverage.member_id).distinct()
                .join(schema.Coverage, schema.Coverage.payer_id == schema.Payer.id)
                .join(schema.Claim, schema.Claim.coverage_id == schema.Coverage.id)
                .where(schema.Claim.status == "ready")).all()
            for payer_id, member_id in pairs:
                ledger.insert(session, payer_id=payer_id, member_id=member_id, number=f"A{member_id}",
                              quantity=AUTHORIZED_VISITS, start=today() - timedelta(days=120),
                              end=today() + timedelta(days=120), procedure_codes=[], unit_type="visits",
                              rendering_npi=None, source="typed", patient_id=None)
            session.commit()
            ready = len(session.scalars(select(schema.Claim.id).where(schema.Claim.status == "ready")).all())
    return {"ready": ready, "authorizations": len(pairs)}


def _copy(work: Path, name: str) -> Path:
    target = work / name
    shutil.copytree(work / "hub", target)
    return target


def phase_export(n: int, work: Path, *, per_claim: bool = False) -> dict:
    from bhhub.runtime.app import Hub
    from bhhub.claims.export import export_837p

    home = _copy(work, "hub-per-claim" if per_claim else "hub-export")
    if per_claim:
        from bhhub.ledger import authorization_uses

        def one_at_a_time(session, rows):
            for row in rows:
                authorization_uses.consume(session, row)

        authorization_uses.consume_many = one_at_a_time
    out = work / ("per-claim.x12" if per_claim else "export.x12")
    with Hub.open(home) as hub:
        hub.plugins.hooks  # plugin loading is start-up, not export
        start = time.perf_counter()
        result = export_837p(hub, out)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "claims": result.claim_count, "bytes": out.stat().st_size,
            "uses": _uses(home)}


def _uses(home: Path) -> list:
    from sqlalchemy import select

    from bhhub.runtime.app import Hub
    from bhhub.store import schema

    u = schema.AuthorizationUse
    with Hub.open(home) as hub, hub.store.session() as session:
        return [list(map(str, row)) for row in session.execute(
            select(u.authorization_id, u.claim_id, u.line_number, u.units).order_by(u.claim_id, u.line_number))]


def phase_baseline(n: int, work: Path) -> dict:
    from datetime import datetime, timezone

    from sqlalchemy import select, update

    from bhhub.runtime.app import Hub
    from bhhub.claims.batches import rendered_by_billing_provider
    from bhhub.claims.export_file import write_atomically
    from bhhub.store import schema
    from bhhub.claims.claim837p import assemble_837p
    from bhhub.x12.envelope import ControlNumbers

    home = _copy(work, "hub-baseline")
    out = work / "baseline.x12"
    with Hub.open(home) as hub:
        envelope = hub.settings.envelope
        start = time.perf_counter()
        with hub.store.writer() as session:
            c = schema.Claim
            rows = session.scalars(select(c).where(c.status == "ready").order_by(c.billing_provider_id, c.id)).all()
            content = assemble_837p(rendered_by_billing_provider(session, rows), envelope, ControlNumbers(1, 1, 1),
                                    datetime.now(timezone.utc))
            write_atomically(out, content)
            session.execute(update(c).where(c.status == "ready").values(status="batched"))
            session.commit()
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "claims": len(rows)}


def phase_command(n: int, work: Path) -> dict:
    home = _copy(work, "hub-command")
    out = work / "command.x12"
    env = {**os.environ, "BHHUB_HOME": str(home)}
    env.pop("BHHUB_DATABASE_URL", None)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bhhub.cli.main", "export-837", "--out", str(out)], env=env, check=True,
                   capture_output=True)
    return {"seconds": time.perf_counter() - start}


PHASES = {"setup": phase_setup, "export": phase_export, "baseline": phase_baseline, "command": phase_command,
          "per-claim": lambda n, work: phase_export(n, work, per_claim=True)}


def run_phase(name: str, n: int, work: Path) -> dict:
    return _timing.run_phase(__file__, name, "--claims", str(n), "--work", str(work))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=2000, help="number of claims (default 2000)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    n = args.claims
    if args.phase:
        print_phase(PHASES[args.phase](n, args.work))
        return 0

    with tempfile.TemporaryDirectory(prefix="bhhub-bench-export-") as tmp:
        work = Path(tmp)
        print(f"{n} synthetic encounters: intake (not timed) ...", file=sys.stderr)
        setup = run_phase("setup", n, work)
        print("export, each way in its own process ...", file=sys.stderr)
        export = run_phase("export", n, work)
        per_claim = run_phase("per-claim", n, work)
        baseline = run_phase("baseline", n, work)
        command = run_phase("command", n, work)
    if export.pop("uses") != per_claim.pop("uses"):
        raise SystemExit("the set-wise and per-claim ledgers differ; the comparison would be meaningless")
    claims = export["claims"]
    ratio = export["seconds"] / baseline["seconds"]
    figures = {
        "claims": claims, "authorizations": setup["authorizations"],
        "export_seconds": export["seconds"], "export_claims_per_s": claims / export["seconds"],
        "export_peak_mb": export["peak_mb"],
        "per_claim_ledger_seconds": per_claim["seconds"], "baseline_seconds": baseline["seconds"],
        "command_seconds": command["seconds"], "ratio": ratio,
        "speedup_over_per_claim_ledger": per_claim["seconds"] / export["seconds"],
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    rows = [
        ("export-837 (select, lock, ledger, assemble, stage, commit, rename)", export["seconds"], export["peak_mb"]),
        ("  the same, authorizations consumed one claim at a time", per_claim["seconds"], per_claim["peak_mb"]),
        ("  baseline: SELECT renderings, assemble, write, one UPDATE, commit", baseline["seconds"],
         baseline["peak_mb"]),
        ("  for scale: `bhhub export-837` in its own process, start-up included", command["seconds"], None),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{claims} claims, {setup['authorizations']} authorizations ({AUTHORIZED_VISITS} visits each, "
          f"about {VISITS_PER_MEMBER} visits per member)")
    print(f"{'phase'.ljust(width)}  {'seconds':>8}  {'claims/s':>9}  {'peak RSS':>8}")
    for label, seconds, mb in rows:
        print(f"{label.ljust(width)}  {seconds:8.2f}  {claims / seconds:9,.0f}  "
              f"{'' if mb is None else f'{mb:.0f} MB':>8}")
    print()
    print(f"export-837 / baseline = {ratio:.2f}x (target <= {TARGET_RATIO}x): "
          f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}; "
          f"{per_claim['seconds'] / export['seconds']:.1f}x faster than consuming one claim at a time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
