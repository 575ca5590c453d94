"""Reading 835 remittances: this hub's streaming reader beside other readers, on the same files.

    python benchmarks/remit_835.py [--claims 5000,50000] [--pyx12-loop-claims 2000] [--json]

For each N, benchmarks/gen835.py writes a balanced 835 of N behavioral-health claims, and each
reader reads it in a fresh process (so each peak is its own):

  read_835              bhhub.remittance.x835: every event built (claims, lines, adjustments, balancing)
  oxedi                 oxedi.parse_file (Rust), its claim count and payment sum; "not installed"
                        when absent (pip install oxedi)
  pyx12 bare segments   pyx12.x12file.X12Reader, every segment, no loops
  pyx12 loop-aware      pyx12.x12context.X12ContextReader with the 005010X221A1 map, each 2100
                        loop's CLP04; slow, so it reads a file of at most --pyx12-loop-claims
                        claims and its figures are per claim and per byte of that file
  str.split floor       the whole file in memory, split into segments and elements, nothing built

"peak MB" is the growth of the process's maximum resident set size while reading (after its
imports; it moves in coarse steps and misses memory freed before the peak of the imports);
"traced MB" is read_835's Python heap peak under tracemalloc, in a second pass. Targets:
read_835 at least 1/3 of oxedi's MB/s, 10x pyx12 loop-aware's claims/s, 2x pyx12 bare
segments' MB/s (all at the largest N), and its traced peak flat from the smallest N to the
largest. Timings are wall clock on this machine; the ratios are what the targets are about.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # gen835 beside this file
sys.path.insert(0, str(HERE.parent))  # the hub, when not installed

import _timing  # noqa: E402  (beside this file)
from _timing import peak_mb as rss_mb  # noqa: E402

TARGET_OF_OXEDI = 1 / 3
TARGET_OVER_PYX12_LOOPS = 10.0
TARGET_OVER_PYX12_SEGMENTS = 2.0
FLAT_SLACK_MB = 4.0  # peak growth at the largest N may exceed the smallest N's by this much




def phase_reader(path: Path) -> dict:
    from bhhub.remittance.x835 import read_835
    from bhhub.remittance.x835_events import BadClaim, ClaimPayment

    claims, paid = 0, Decimal(0)
    before = rss_mb()
    start = time.perf_counter()
    for event in read_835(path):
        if isinstance(event, (ClaimPayment, BadClaim)):
            claims += 1
            if isinstance(event, ClaimPayment):
                paid += event.paid
    seconds, peak = time.perf_counter() - start, rss_mb() - before
    # A second pass under tracemalloc for the Python heap's own peak (RSS moves in coarse steps).
    tracemalloc.start()
    for _ in read_835(path):
        pass
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {"seconds": seconds, "claims": claims, "paid": str(paid), "peak_mb": peak, "traced_peak_mb": traced}


def phase_oxedi(path: Path) -> dict:
    import oxedi

    before = rss_mb()
    start = time.perf_counter()
    result = oxedi.parse_file(str(path))
    claims, paid = result.count_claims(), result.sum_payments()
    return {"seconds": time.perf_counter() - start, "claims": claims, "paid": str(paid),
            "peak_mb": rss_mb() - before}


def phase_pyx12_segments(path: Path) -> dict:
    import pyx12.x12file

    claims = 0
    before = rss_mb()
    start = time.perf_counter()
    with open(path, encoding="ascii") as handle:
        for segment in pyx12.x12file.X12Reader(handle):
            if segment.get_seg_id() == "CLP":
                claims += 1
    return {"seconds": time.perf_counter() - start, "claims": claims, "peak_mb": rss_mb() - before}


def phase_pyx12_loops(path: Path) -> dict:
    import pyx12.error_handler
    import pyx12.params
    import pyx12.x12context

    claims, paid = 0, Decimal(0)
    before = rss_mb()
    start = time.perf_counter()
    with open(path, encoding="ascii") as handle:
        reader = pyx12.x12context.X12ContextReader(pyx12.params.params(), pyx12.error_handler.errh_null(), handle)
        for node in reader.iter_segments("2100"):
            if node.id == "2100":
                claims += 1
                paid += Decimal(node.get_value("CLP04") or 0)
    return {"seconds": time.perf_counter() - start, "claims": claims, "paid": str(paid),
            "peak_mb": rss_mb() - before}


def phase_split(path: Path) -> dict:
    claims = 0
    before = rss_mb()
    start = time.perf_counter()
    text = path.read_bytes().decode()
    for segment in text.replace("\n", "").split("~"):
        elements = segment.split("*")
        if elements[0] == "CLP":
            claims += 1
    return {"seconds": time.perf_counter() - start, "claims": claims, "peak_mb": rss_mb() - before}


def phase_post(path: Path) -> dict:
    """The whole of `bhhub intake FILE` on a fresh SQLite hub: store raw, read, post every claim.

    The hub holds no claims, so each claim payment is posted as unmatched (one row each, with
    its lines and adjustments); matching against sent claims adds one indexed lookup per claim.
    """
    from sqlalchemy import func, select

    from bhhub.intake import inbox as intake
    from bhhub.runtime.app import Hub
    from bhhub.store import schema

    content = path.read_bytes()
    with tempfile.TemporaryDirectory(prefix="bhhub-post-") as home, Hub.open(home, create=True) as hub:
        before = rss_mb()
        start = time.perf_counter()
        result = intake.receive(hub, content, path.name)
        seconds, peak = time.perf_counter() - start, rss_mb() - before
        if result.outcome != "imported":
            raise SystemExit(f"posting failed: {result.reason}")
        with hub.store.session() as session:
            claims = session.scalar(select(func.count()).select_from(schema.RemitClaim))
    return {"seconds": seconds, "claims": claims, "peak_mb": peak}


PHASES = {
    "read_835": phase_reader, "oxedi": phase_oxedi, "pyx12 bare segments": phase_pyx12_segments,
    "pyx12 loop-aware": phase_pyx12_loops, "str.split floor": phase_split,
    "post (bhhub intake)": phase_post,
}


def oxedi_installed() -> bool:
    try:
        import oxedi  # noqa: F401
    except ImportError:
        return False
    return True


def run_phase(name: str, path: Path) -> dict:
    return _timing.run_phase(__file__, name, "--file", str(path))


def measure(claims: list[int], pyx12_loop_claims: int, work: Path) -> list[dict]:
    import gen835

    rows = []
    for n in claims:
        path = work / f"remit-{n}.835"
        size = gen835.write(path, n)
        small_n = min(n, pyx12_loop_claims)
        small = work / f"remit-{small_n}.835"
        small_size = gen835.write(small, small_n) if not small.exists() else small.stat().st_size
        for name in PHASES:
            print(f"  {n:,} claims: {name} ...", file=sys.stderr)
            row = {"claims_in_file": n, "reader": name}
            if name == "oxedi" and not oxedi_installed():
                rows.append({**row, "installed": False})
                continue
            loops = name == "pyx12 loop-aware"
            target, target_n, target_size = (small, small_n, small_size) if loops else (path, n, size)
            figures = run_phase(name, target)
            if figures["claims"] != target_n:
                raise SystemExit(f"{name} counted {figures['claims']} claims in a file of {target_n}")
            rows.append({**row, "installed": True, "claims_read": target_n, "bytes": target_size,
                         "seconds": figures["seconds"], "mb_per_s": target_size / 1e6 / figures["seconds"],
                         "claims_per_s": target_n / figures["seconds"], "peak_mb": figures["peak_mb"],
                         "traced_peak_mb": figures.get("traced_peak_mb")})
    return rows


def judge(rows: list[dict]) -> dict:
    """Each target, with the figures it was judged on (the largest N)."""
    largest = max(r["claims_in_file"] for r in rows)
    smallest = min(r["claims_in_file"] for r in rows)
    at = {r["reader"]: r for r in rows if r["claims_in_file"] == largest}
    ours = at["read_835"]
    targets = {}
    if at["oxedi"]["installed"]:
        ratio = ours["mb_per_s"] / at["oxedi"]["mb_per_s"]
        targets["of_oxedi_mb_per_s"] = {"ratio": ratio, "target": TARGET_OF_OXEDI, "met": ratio >= TARGET_OF_OXEDI}
    else:
        targets["of_oxedi_mb_per_s"] = {"ratio": None, "target": TARGET_OF_OXEDI, "met": None}
    ratio = ours["claims_per_s"] / at["pyx12 loop-aware"]["claims_per_s"]
    targets["over_pyx12_loop_aware_claims_per_s"] = {"ratio": ratio, "target": TARGET_OVER_PYX12_LOOPS,
                                                     "met": ratio >= TARGET_OVER_PYX12_LOOPS}
    ratio = ours["mb_per_s"] / at["pyx12 bare segments"]["mb_per_s"]
    targets["over_pyx12_bare_mb_per_s"] = {"ratio": ratio, "target": TARGET_OVER_PYX12_SEGMENTS,
                                           "met": ratio >= TARGET_OVER_PYX12_SEGMENTS}
    peaks = {r["claims_in_file"]: r["traced_peak_mb"] for r in rows if r["reader"] == "read_835"}
    growth = peaks[largest] - peaks[smallest]
    targets["flat_memory"] = {"growth_mb": growth, "from_claims": smallest, "to_claims": largest,
                              "slack_mb": FLAT_SLACK_MB, "met": growth <= FLAT_SLACK_MB}
    return targets


def print_table(rows: list[dict], targets: dict, pyx12_loop_claims: int) -> None:
    print(f"{'claims':>8}  {'reader':<22}  {'MB/s':>8}  {'claims/s':>10}  {'peak MB':>8}  {'traced MB':>9}")
    for r in rows:
        if not r["installed"]:
            print(f"{r['claims_in_file']:>8,}  {r['reader']:<22}  {'not installed':>30}")
            continue
        note = f"  (on {r['claims_read']:,} claims)" if r["claims_read"] != r["claims_in_file"] else ""
        traced = f"{r['traced_peak_mb']:>9.1f}" if r["traced_peak_mb"] is not None else f"{'':>9}"
        print(f"{r['claims_in_file']:>8,}  {r['reader']:<22}  {r['mb_per_s']:>8.1f}  {r['claims_per_s']:>10,.0f}"
              f"  {r['peak_mb']:>8.1f}  {traced}{note}")
    print(f"\npyx12 loop-aware reads at most {pyx12_loop_claims:,} claims; its rates are per claim and per "
          f"byte of that file. 'post' is all of `bhhub intake FILE` on a fresh SQLite hub (store raw, read,\n"
          f"post each claim payment: unmatched here, as the hub holds no claims); its peak includes the file's bytes.")
    verdict = {True: "met", False: "NOT met", None: "not measured (oxedi not installed)"}
    t = targets["of_oxedi_mb_per_s"]
    ratio = f"{t['ratio']:.2f}x" if t["ratio"] is not None else "-"
    print(f"read_835 / oxedi MB/s              = {ratio} (target >= {TARGET_OF_OXEDI:.2f}x): {verdict[t['met']]}")
    t = targets["over_pyx12_loop_aware_claims_per_s"]
    print(f"read_835 / pyx12 loop-aware claims/s = {t['ratio']:.1f}x (target >= {t['target']:.0f}x): "
          f"{verdict[t['met']]}")
    t = targets["over_pyx12_bare_mb_per_s"]
    print(f"read_835 / pyx12 bare MB/s         = {t['ratio']:.2f}x (target >= {t['target']:.0f}x): "
          f"{verdict[t['met']]}")
    t = targets["flat_memory"]
    print(f"read_835 traced peak {t['from_claims']:,} -> {t['to_claims']:,} claims grows {t['growth_mb']:+.1f} MB "
          f"(target: at most {t['slack_mb']:.0f} MB): {verdict[t['met']]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", default="5000,50000", help="claims per file, comma separated (default 5000,50000)")
    parser.add_argument("--pyx12-loop-claims", type=int, default=2000,
                        help="at most this many claims for pyx12's loop-aware reader (default 2000)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(PHASES[args.phase](args.file)))
        return 0
    try:
        claims = sorted({int(n) for n in args.claims.split(",") if n.strip()})
    except ValueError:
        parser.error("--claims takes whole numbers separated by commas, e.g. 5000,50000")
    if not claims or min(claims) < 1:
        parser.error("--claims needs at least one number of claims, each 1 or more")
    with tempfile.TemporaryDirectory(prefix="bhhub-835-bench-") as tmp:
        rows = measure(claims, args.pyx12_loop_claims, Path(tmp))
    targets = judge(rows)
    if args.json:
        print(json.dumps({"claims": claims, "pyx12_loop_claims": args.pyx12_loop_claims, "rows": rows,
                          "targets": targets}, indent=2))
    else:
        print_table(rows, targets, args.pyx12_loop_claims)
    return 0


if __name__ == "__main__":
    sys.exit(main())
