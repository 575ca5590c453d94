"""Listings at a practice's scale: ``bhhub claims --json`` and ``bhhub inbox --json`` on a big hub,
beside the bare SELECT of the same rows, in the same run.

    python benchmarks/listings.py [--claims 20000] [--database-url URL] [--json]

Fills a fresh hub with N claims by bulk inserts straight into the store (fast; the claims look
like a practice's: one or two lines each, a status history, findings on the ones needing
attention, a batch and a 277CA on the billed ones, an 835 posting with remarks on the paid
ones, one stored payload per visit), then runs, each in its own process (so each peak is its own):

  claims --json           the command's function (bhhub.cli.commands.cmd_claims) as a user runs it,
                          without plugins (a listing needs none), output to a file
  bhhub claims --json     the whole CLI, start-up included (plugin loading: issue 14 item 5)
  inbox --json            bhhub.cli.commands.cmd_inbox, the same way
  baseline: bare SELECT   SQLAlchemy Core, the same claims with their payer, lines and findings
                          (and the same inbox rows), every row fetched and written as text

"peak MB" is the process's maximum resident set size (ru_maxrss from wait4). Targets: the
listing within 3x of its SELECT's time, and under 150 MB at its peak, at 100,000 claims.
Timings are wall clock on this machine; the ratio is what the target is about.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the hub, when not installed

TARGET_RATIO = 3.0
TARGET_PEAK_MB = 150.0
INSERT_CHUNK = 5000
CLAIMS_PER_BATCH = 50


def fill(home: Path, claims: int, database_url: str | None) -> None:
    """A hub of ``claims`` claims, written with bulk inserts (no intake: that is another benchmark)."""
    from sqlalchemy import insert

    from bhhub.runtime.app import Hub
    from bhhub.store import schema

    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    if database_url:
        (home / "bhhub.toml").write_text(f'[store]\nurl = "{database_url}"\n', encoding="utf-8")
    rng = random.Random(14)
    now = datetime(2026, 11, 29, 12, tzinfo=timezone.utc)
    with Hub.open(home, plugins=_no_plugins(), create=True) as hub, hub.store.engine.begin() as conn:
        def put(table, rows):
            for start in range(0, len(rows), INSERT_CHUNK):
                conn.execute(insert(table.__table__), rows[start:start + INSERT_CHUNK])

        payers = [{"id": n, "payer_id": f"PAYER{n:02d}", "name": f"Payer {n}"} for n in range(1, 9)]
        put(schema.Payer, payers)
        put(schema.Provider, [{"id": 1, "npi": "1234567893", "organization_name": "Practice"}])
        patients = max(1, claims // 20)
        put(schema.Patient, [{"id": n, "key": f"p{n}", "family_name": "Synthetic", "given_name": f"P{n}"}
                             for n in range(1, patients + 1)])
        put(schema.Coverage, [{"id": n, "patient_id": n, "payer_id": 1 + n % len(payers), "member_id": f"M{n:09d}"}
                              for n in range(1, patients + 1)])
        # a batch a day of about 50 claims, as a group practice exports them, each with its 999
        batches = claims // CLAIMS_PER_BATCH + 1
        put(schema.Batch, [{"id": b, "sender_id": "SENDER", "interchange_control_number": f"{b:09d}",
                            "group_control_number": str(b), "transaction_control_number": f"{b:04d}",
                            "usage_indicator": "T", "claim_count": 0, "total_charge": Decimal(0),
                            "content": b"", "sha256": "0" * 64} for b in range(1, batches + 1)])
        items, encounters, rows, lines, findings, events, acks, remits = [], [], [], [], [], [], [], []
        first_day = date(2023, 1, 1)
        for n in range(1, claims + 1):
            patient = 1 + n % patients
            day = first_day + timedelta(days=rng.randrange(4 * 365))
            items.append({"id": n, "sha256": f"{n:064x}", "source_name": f"visit-{n}.json", "size": 1024,
                          "content": bytes(1024), "received_at": now, "state": "processed", "format": "fhir-r4",
                          "attempts": 1})
            encounters.append({"id": n, "key": f"e{n}", "source_ref": f"Encounter/{n}", "inbox_item_id": n,
                               "patient_id": patient, "service_date": day, "minutes": 53})
            roll = rng.random()
            status = ("needs_attention" if roll < 0.1 else "ready" if roll < 0.3 else "accepted" if roll < 0.7
                      else "paid")
            billed = status in ("accepted", "paid")
            batch = 1 + n // CLAIMS_PER_BATCH
            two = rng.random() < 0.3
            charge = Decimal("150.00") + (Decimal("40.00") if two else 0)
            rows.append({"id": n, "patient_control_number": f"C{n:08d}", "status": status, "encounter_id": n,
                         "patient_id": patient, "coverage_id": patient, "billing_provider_id": 1,
                         "place_of_service": "11", "service_date": day, "total_charge": charge,
                         "diagnoses": ["F41.1", "F33.1"], "batch_id": batch if billed else None,
                         "payer_claim_control_number": f"ICN{n}" if billed else None, "created_at": now})
            lines.append({"claim_id": n, "line_number": 1, "procedure_code": "90837", "modifiers": ["95"],
                          "charge": Decimal("150.00"), "units": Decimal(1), "diagnosis_pointers": [1],
                          "service_date": day, "control_number": f"{n}-1"})
            if two:
                lines.append({"claim_id": n, "line_number": 2, "procedure_code": "90785", "modifiers": [],
                              "charge": Decimal("40.00"), "units": Decimal(1), "diagnosis_pointers": [1, 2],
                              "service_date": day, "control_number": f"{n}-2"})
            events.append({"claim_id": n, "status": "ready" if status != "needs_attention" else status, "at": now,
                           "reason": None})
            if status == "needs_attention":
                findings.append({"claim_id": n, "line_number": 1, "code": "DX_NOT_BILLABLE", "severity": "error",
                                 "message": "diagnosis 1 is a category, not a billable code",
                                 "fix": "use a code to the highest specificity", "check_name": "coding"})
            if billed:
                events.append({"claim_id": n, "status": status, "at": now, "reason": "277CA A2: accepted"})
                acks.append({"inbox_item_id": n, "kind": "277CA", "batch_id": batch, "claim_id": n, "accepted": True,
                             "code": "A2", "detail": "accepted", "outcome": "accepted", "source": "payer",
                             "effective_on": day, "at": now})
            if status == "paid":
                remits.append({"payment_id": 1, "sequence": n, "claim_id": n, "state": "posted",
                               "patient_control_number": f"C{n:08d}", "status_code": "1", "charge": charge,
                               "paid": Decimal("120.00"), "patient_responsibility": Decimal("20.00"),
                               "contractual": charge - Decimal("140.00"), "other_adjustments": Decimal(0),
                               "payer_claim_control_number": f"ICN{n}", "remarks": ["N862"], "segment_number": n,
                               "fingerprint": f"{n:064x}", "generation": 1})
        put(schema.InboxItem, items)
        acks += [{"inbox_item_id": 1, "kind": "999", "batch_id": b, "claim_id": None, "accepted": True, "code": "A",
                  "detail": "accepted", "outcome": "received", "source": "clearinghouse",
                  "effective_on": date(2026, 1, 1), "at": now} for b in range(1, batches + 1)]
        put(schema.RemitPayment, [{"id": 1, "inbox_item_id": 1, "payer_id": "PAYER01", "payer_name": "Payer 1",
                                   "trace_number": "TRACE1", "amount": Decimal(0), "credit_debit": "C",
                                   "payment_date": date(2026, 11, 20), "method": "ACH", "handling": "I",
                                   "payee_id": "1234567893", "transaction_control_number": "0001"}])
        put(schema.Encounter, encounters)
        put(schema.Claim, rows)
        put(schema.ServiceLine, lines)
        put(schema.Finding, findings)
        put(schema.ClaimStatusEvent, events)
        put(schema.Acknowledgment, acks)
        put(schema.RemitClaim, remits)


def _no_plugins():
    from bhhub.runtime.plugin_host import build_plugin_host

    return build_plugin_host([])


COMMAND = """
import argparse, sys
from bhhub.runtime.plugin_host import build_plugin_host
from bhhub.cli import commands
args = argparse.Namespace(home=sys.argv[1], status=None, payer=None, since=None, until=None, limit=None, after=None,
                          state=None, json=True, plugin_host=build_plugin_host([]))
sys.exit(getattr(commands, sys.argv[2])(args))
"""

BARE_SELECT = """
import sys
from sqlalchemy import select
from sqlalchemy import create_engine
from bhhub.runtime.config import load_settings
from bhhub.store import schema as s
engine = create_engine(load_settings(sys.argv[1]).database_url)
c, cov, p, l, f, i = s.Claim, s.Coverage, s.Payer, s.ServiceLine, s.Finding, s.InboxItem
if sys.argv[2] == "claims":
    queries = [
        select(c.id, c.patient_control_number, c.patient_id, c.revision, c.frequency_code, c.status, p.payer_id,
               cov.member_id, c.service_date, c.total_charge, c.place_of_service, c.prior_authorization, c.diagnoses,
               c.batch_id, c.payer_claim_control_number)
        .join(cov, cov.id == c.coverage_id).join(p, p.id == cov.payer_id).order_by(c.id),
        select(l.claim_id, l.line_number, l.procedure_code, l.modifiers, l.units, l.charge, l.diagnosis_pointers,
               l.service_date).order_by(l.claim_id, l.line_number),
        select(f.claim_id, f.code, f.severity, f.line_number, f.message, f.fix).order_by(f.claim_id, f.id),
    ]
else:
    queries = [select(i.id, i.source_name, i.state, i.format, i.size, i.sha256, i.received_at, i.attempts, i.reason)
               .order_by(i.id)]
out = sys.stdout.write
with engine.connect() as conn:
    for query in queries:
        for rows in conn.execute(query.execution_options(yield_per=1000)).partitions():
            for row in rows:
                out("\\t".join(map(str, row)) + "\\n")
"""


COUNT = "import json, sys; print(len(json.load(open(sys.argv[1], encoding='utf-8'))))"


def run(argv: list[str], out: Path) -> tuple[float, float, float]:
    """(wall seconds, peak MB, CPU seconds) of one process writing to ``out``."""
    with out.open("wb") as sink:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed ({process.returncode}): {process.stderr.read().decode()[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=20_000, help="claims in the hub (default 20,000; "
                        "the README's figures are for 100,000)")
    parser.add_argument("--database-url", help="a PostgreSQL (or other) URL to fill instead of a fresh SQLite file")
    parser.add_argument("--no-cli", action="store_true", help="skip the whole-CLI run (start-up included)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--fill", metavar="HOME", help=argparse.SUPPRESS)  # the filling child
    args = parser.parse_args()
    if args.fill:
        fill(Path(args.fill), args.claims, args.database_url)
        return 0
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="bhhub-listings-") as tmp:
        home = Path(tmp) / "home"
        # Filled in its own process: a child inherits its parent's peak (ru_maxrss survives exec),
        # so this one stays small and each figure below is the child's own.
        started = time.perf_counter()
        fill_argv = [python, __file__, "--fill", str(home), "--claims", str(args.claims)]
        subprocess.run(fill_argv + (["--database-url", args.database_url] if args.database_url else []), check=True)
        fill_s = time.perf_counter() - started
        out = Path(tmp) / "out"
        rows = []
        for noun, function in (("claims", "cmd_claims"), ("inbox", "cmd_inbox")):
            select_s, select_mb, select_cpu = run([python, "-c", BARE_SELECT, str(home), noun], out)
            listing_s, listing_mb, listing_cpu = run([python, "-c", COMMAND, str(home), function], out)
            listed = int(subprocess.run([python, "-c", COUNT, str(out)], check=True, capture_output=True).stdout)
            assert listed == args.claims, (noun, listed)  # valid JSON, every row
            rows.append({"listing": f"{noun} --json", "seconds": listing_s, "peak_mb": listing_mb,
                         "baseline_seconds": select_s, "baseline_peak_mb": select_mb,
                         "ratio": listing_s / select_s, "cpu_seconds": listing_cpu, "baseline_cpu_seconds": select_cpu,
                         "cpu_ratio": listing_cpu / select_cpu})
        if not args.no_cli:
            bhhub = [python, "-m", "bhhub.cli.main", "--home", str(home), "claims", "--json"]
            cli_s, cli_mb, cli_cpu = run(bhhub, out)
            base = rows[0]
            rows.append({"listing": "bhhub claims --json (whole CLI)", "seconds": cli_s, "peak_mb": cli_mb,
                         "baseline_seconds": base["baseline_seconds"], "baseline_peak_mb": base["baseline_peak_mb"],
                         "ratio": cli_s / base["baseline_seconds"], "cpu_seconds": cli_cpu,
                         "baseline_cpu_seconds": base["baseline_cpu_seconds"],
                         "cpu_ratio": cli_cpu / base["baseline_cpu_seconds"]})
    figures = {"claims": args.claims, "store": "postgresql" if args.database_url else "sqlite",
               "fill_seconds": round(fill_s, 1), "rows": rows,
               "targets": {"ratio": TARGET_RATIO, "peak_mb": TARGET_PEAK_MB}}
    for row in rows:
        row["met"] = row["ratio"] <= TARGET_RATIO and row["peak_mb"] < TARGET_PEAK_MB
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{args.claims:,} claims on {figures['store']} (filled in {fill_s:.1f} s)\n")
    print(f"{'listing':32} {'time':>9} {'CPU':>8} {'peak RSS':>9}   {'bare SELECT':>11} {'CPU':>8} {'peak RSS':>9}"
          f"   ratio (CPU)")
    for row in rows:
        print(f"{row['listing']:32} {row['seconds']:>7.2f} s {row['cpu_seconds']:>6.2f} s {row['peak_mb']:>6.0f} MB   "
              f"{row['baseline_seconds']:>9.2f} s {row['baseline_cpu_seconds']:>6.2f} s {row['baseline_peak_mb']:>6.0f} MB"
              f"   {row['ratio']:.2f}x ({row['cpu_ratio']:.2f}x)  {'met' if row['met'] else 'NOT met'}")
    print(f"\ntargets: within {TARGET_RATIO:.0f}x of the bare SELECT, peak under {TARGET_PEAK_MB:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
