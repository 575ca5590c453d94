"""Scrubbing beside writing the 837P for the same claims, measured in the same run.

    python benchmarks/scrub_vs_837p.py [--claims 10000] [--json]

Takes N synthetic encounters into a fresh SQLite hub (not timed), then times, on the same
stored claims:

- **scrub**: every registered claim check on every claim, as `bhhub scrub` runs them (one
  `BulkContext`, so a database-backed check reads what it needs once for all claims);
- **837P**: rendering every claim's 837P segments and assembling them into interchanges (what
  intake and export together do to write them), from the same claim records.

Target: scrubbing costs no more than writing the 837P. Timings on a shared 2-core machine move
by 10-30% between runs; the ratio is what counts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

TARGET = 1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=10_000, help="claims to scrub and write (default 10000)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.claims < 1:
        parser.error("--claims must be at least 1")

    from sqlalchemy import select

    from bhhub.runtime.app import Hub
    from bhhub.demo.synthetic import encounter_bundle
    from bhhub.intake.many import receive_many
    from bhhub.scrub.engine import BulkContext, scrub
    from bhhub.store import schema
    from bhhub.store.repo import claim_record
    from bhhub.claims.claim837p import assemble_837p, render_claim
    from bhhub.x12.envelope import ControlNumbers

    with tempfile.TemporaryDirectory(prefix="bhhub-scrub-bench-") as home, Hub.open(home, create=True) as hub:
        print(f"taking in {args.claims:,} encounters (not timed) ...", file=sys.stderr)
        from datetime import timedelta

        from bhhub.runtime.clock import today

        start = today() - timedelta(days=60)  # within every filing window, whenever it runs
        payloads = ((f"e{n}.json", json.dumps(encounter_bundle(n, start=start)).encode()) for n in range(args.claims))
        for _ in receive_many(hub, payloads):
            pass
        with hub.store.session() as session:
            rows = session.scalars(select(schema.Claim).order_by(schema.Claim.id)).all()
            claims = [claim_record(session, row) for row in rows]
        checks = hub.claim_checks
        print(f"scrubbing {len(claims):,} claims with {len(checks)} checks ...", file=sys.stderr)
        start = time.perf_counter()
        context = BulkContext(hub)  # as `bhhub scrub` checks them: what checks read once is kept
        findings = sum(len(scrub(claim, checks, context)) for claim in claims)
        scrub_seconds = time.perf_counter() - start

        print("writing their 837P ...", file=sys.stderr)
        start = time.perf_counter()
        by_provider: dict[str, list] = {}
        for claim in claims:
            rendered = render_claim(claim)
            by_provider.setdefault(claim.billing_provider.npi, [claim.billing_provider, []])[1].append(rendered)
        size, chunk, written = 0, 5000, 0  # interchanges of at most 5,000 claims, as export makes them
        flat = [(p, r) for p, rs in by_provider.values() for r in rs]
        for n, first in enumerate(range(0, len(flat), chunk), start=1):
            part: dict[str, list] = {}
            for provider, rendered in flat[first:first + chunk]:
                part.setdefault(provider.npi, [provider, []])[1].append(rendered)
            content = assemble_837p([(p, r) for p, r in part.values()], hub.settings.envelope,
                                    ControlNumbers(n, n, n), datetime.now(timezone.utc))
            size += len(content)
            written += 1
        write_seconds = time.perf_counter() - start

    ratio = scrub_seconds / write_seconds
    figures = {"claims": len(claims), "checks": [c.name for c in checks], "findings": findings,
               "scrub_seconds": scrub_seconds, "write_837p_seconds": write_seconds, "interchanges": written,
               "bytes_837p": size, "ratio": ratio, "target": TARGET, "met": ratio <= TARGET}
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{'phase':<46} {'seconds':>9} {'claims/s':>10}")
    print(f"{'scrub (' + str(len(checks)) + ' checks, ' + str(findings) + ' findings)':<46} {scrub_seconds:>9.2f} "
          f"{len(claims) / scrub_seconds:>10,.0f}")
    print(f"{'baseline: write the 837P (render + assemble)':<46} {write_seconds:>9.2f} "
          f"{len(claims) / write_seconds:>10,.0f}")
    print(f"\nchecks: {', '.join(figures['checks'])}")
    print(f"scrub / 837P = {ratio:.2f}x (target <= {TARGET:.1f}x): {'met' if figures['met'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
