"""Intake throughput and 837P generation, each beside a baseline measured in the same run.

    python benchmarks/intake_and_837p.py [--encounters 10000] [--json]

Intake: N synthetic FHIR R4 encounter bundles (one file per encounter, as EHR exports come) go
through the whole intake (raw store with sha256, parse, map, code, scrub, render, store claims)
into a fresh SQLite hub, as `bhhub intake FOLDER` runs it: with that many files it parses in a
second process while the first stores. The same intake in one process is shown beside it.
Baseline: fhir.resources alone parsing the same bundles in one process. Target: at most 2x.

837P: the N stored claims are written as 837P batches (5,000 claims per transaction set, as the
TR3 recommends), as `bhhub export-837` does: each claim was rendered and checked once when it
became ready (inside the intake figure), so export assembles the rendered claims under their
billing providers with hierarchy numbers, counts and envelope. Baseline: merely joining the
very same segments into a string. Target: at most 3x. For reference, rendering every claim anew
from canonical records is timed too. Peak memory is each phase's own process's maximum
resident set size.

Each phase runs in its own process so its peak memory is its own. Timings are wall clock on
this machine; the ratios are what the targets are about.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import _timing  # beside this file
from _timing import print_phase

TARGET_INTAKE_RATIO = 2.0
TARGET_837P_RATIO = 3.0


def bundles(n: int) -> list[bytes]:
    from bhhub.demo.synthetic import encounter_bundle

    from datetime import timedelta

    from bhhub.runtime.clock import today

    start = today() - timedelta(days=60)  # within every filing window, whenever it runs
    return [json.dumps(encounter_bundle(seed, start=start)).encode() for seed in range(n)]


def phase_parse(n: int, _work: Path) -> dict:
    from fhir.resources.R4B.bundle import Bundle

    payloads = bundles(n)
    start = time.perf_counter()
    for payload in payloads:
        Bundle.model_validate_json(payload)
    return {"seconds": time.perf_counter() - start}


def phase_intake(n: int, work: Path, parse_in_worker: bool = True) -> dict:
    from bhhub.intake import many as intake_many
    from bhhub.runtime.app import Hub

    payloads = bundles(n)
    with Hub.open(work / ("hub" if parse_in_worker else "hub-single"), create=True) as hub:
        hub.intake_formats, hub.claim_checks  # plugin loading is start-up, not intake
        start = time.perf_counter()
        # As `bhhub intake FOLDER` does: receive_many, in chunks, parsing in a second process
        # when there are many files (or, for comparison, all in this one).
        named = ((f"encounter-{i}.json", p) for i, p in enumerate(payloads))
        outcomes = [r.outcome for r in intake_many.receive_many(hub, named, parse_in_worker=parse_in_worker)]
        seconds = time.perf_counter() - start
    imported = outcomes.count("imported")
    if imported != n:
        raise SystemExit(f"only {imported} of {n} bundles imported")
    return {"seconds": seconds}


def phase_837p(n: int, work: Path) -> dict:
    from sqlalchemy import select

    from bhhub.runtime.app import Hub
    from bhhub.claims.batches import MAX_CLAIMS_PER_BATCH, rendered_by_billing_provider
    from bhhub.store import schema
    from bhhub.store.repo import claim_record
    from bhhub.claims.claim837p import assemble_837p, write_837p
    from bhhub.x12.envelope import ControlNumbers

    with Hub.open(work / "hub") as hub, hub.store.session() as session:
        rows = session.scalars(select(schema.Claim).where(schema.Claim.status == "ready")
                               .order_by(schema.Claim.billing_provider_id, schema.Claim.id)).all()
        if len(rows) != n:
            raise SystemExit(f"expected {n} ready claims, found {len(rows)}")
        chunks = [rows[i:i + MAX_CLAIMS_PER_BATCH] for i in range(0, len(rows), MAX_CLAIMS_PER_BATCH)]
        # What export reads from the store: each claim as rendered when it became ready.
        grouped = [rendered_by_billing_provider(session, chunk) for chunk in chunks]
        canonical = [[claim_record(session, row) for row in chunk] for chunk in chunks]
        envelope = hub.settings.envelope
    created = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
    controls = [ControlNumbers(i + 1, i + 1, i + 1) for i in range(len(chunks))]
    start = time.perf_counter()
    files = [assemble_837p(groups, envelope, c, created) for groups, c in zip(grouped, controls)]
    seconds = time.perf_counter() - start
    # Baseline: the same segments, already split into elements, merely joined.
    segment_lists = [[seg.split("*") for seg in f.decode().split("~\n") if seg] for f in files]
    start = time.perf_counter()
    joined = ["~\n".join("*".join(elements) for elements in segs) + "~\n" for segs in segment_lists]
    join_seconds = time.perf_counter() - start
    if [j.encode() for j in joined] != files:
        raise SystemExit("the join baseline does not reproduce the files; the comparison would be unfair")
    # For reference: rendering every claim from canonical records too (done once per claim at
    # intake, when it becomes ready, so it is inside the intake figure).
    start = time.perf_counter()
    rendered_files = [write_837p(claims, envelope, c, created) for claims, c in zip(canonical, controls)]
    render_seconds = time.perf_counter() - start
    if rendered_files != files:
        raise SystemExit("rendering from the store's records differs from the stored renderings")
    segments = sum(len(s) for s in segment_lists)
    return {"seconds": seconds, "join_seconds": join_seconds, "render_seconds": render_seconds,
            "segments": segments, "bytes": sum(len(f) for f in files)}


PHASES = {"parse": phase_parse, "intake": phase_intake, "837p": phase_837p,
          "intake-single": lambda n, work: phase_intake(n, work, parse_in_worker=False)}


def run_phase(name: str, n: int, work: Path) -> dict:
    return _timing.run_phase(__file__, name, "--encounters", str(n), "--work", str(work))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encounters", type=int, default=10_000, help="number of encounters (default 10000)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    n = args.encounters
    if args.phase:
        print_phase(PHASES[args.phase](n, args.work))
        return 0

    with tempfile.TemporaryDirectory(prefix="bhhub-bench-") as tmp:
        work = Path(tmp)
        print(f"{n} synthetic encounters; each phase in its own process ...", file=sys.stderr)
        parse = run_phase("parse", n, work)
        intake = run_phase("intake", n, work)
        single = run_phase("intake-single", n, work)
        gen = run_phase("837p", n, work)
    intake_ratio = intake["seconds"] / parse["seconds"]
    gen_ratio = gen["seconds"] / gen["join_seconds"]
    figures = {
        "encounters": n,
        "parse_seconds": parse["seconds"], "intake_seconds": intake["seconds"],
        "intake_encounters_per_s": n / intake["seconds"], "parse_bundles_per_s": n / parse["seconds"],
        "intake_ratio": intake_ratio, "intake_single_process_seconds": single["seconds"],
        "intake_single_process_ratio": single["seconds"] / parse["seconds"], "intake_peak_mb": intake["peak_mb"], "parse_peak_mb": parse["peak_mb"],
        "generate_seconds": gen["seconds"], "join_seconds": gen["join_seconds"],
        "render_seconds": gen["render_seconds"],
        "claims_per_s": n / gen["seconds"], "generate_ratio": gen_ratio, "generate_peak_mb": gen["peak_mb"],
        "segments": gen["segments"], "x12_bytes": gen["bytes"],
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        rows = [
            ("intake (store raw, parse, map, code, scrub, render, store)", f"{intake['seconds']:.2f} s",
             f"{n / intake['seconds']:,.0f} encounters/s", f"{intake['peak_mb']:.0f} MB"),
            ("  the same in one process", f"{single['seconds']:.2f} s",
             f"{n / single['seconds']:,.0f} encounters/s", f"{single['peak_mb']:.0f} MB"),
            ("  baseline: fhir.resources parse only", f"{parse['seconds']:.2f} s",
             f"{n / parse['seconds']:,.0f} bundles/s", f"{parse['peak_mb']:.0f} MB"),
            ("837P generation (export: assemble the batch)", f"{gen['seconds']:.3f} s",
             f"{n / gen['seconds']:,.0f} claims/s", f"{gen['peak_mb']:.0f} MB"),
            ("  baseline: join the same segments", f"{gen['join_seconds']:.3f} s",
             f"{gen['segments']:,} segments", ""),
            ("  for reference: render every claim anew", f"{gen['render_seconds']:.3f} s",
             f"{n / gen['render_seconds']:,.0f} claims/s", ""),
        ]
        width = max(len(r[0]) for r in rows)
        print(f"{'phase'.ljust(width)}  {'time':>9}  {'throughput':>22}  {'peak RSS':>8}")
        for label, t, rate, mem in rows:
            print(f"{label.ljust(width)}  {t:>9}  {rate:>22}  {mem:>8}")
        print()
        print(f"intake / parse = {intake_ratio:.2f}x (target <= {TARGET_INTAKE_RATIO}x): "
              f"{'met' if intake_ratio <= TARGET_INTAKE_RATIO else 'NOT met'}"
              f"; in one process {single['seconds'] / parse['seconds']:.2f}x")
        print(f"837P / join    = {gen_ratio:.2f}x (target <= {TARGET_837P_RATIO}x): "
              f"{'met' if gen_ratio <= TARGET_837P_RATIO else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
