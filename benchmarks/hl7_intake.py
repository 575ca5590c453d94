"""HL7 v2 intake throughput beside hl7apy's full-message parse, measured in the same run.

    python benchmarks/hl7_intake.py [--messages 2000] [--json]

Input: N synthetic HL7 v2.5.1 messages of the shapes a behavioral-health EHR sends (60% DFT^P03
charges with one or two FT1s, DG1s, an IN1/IN2 and a GT1; 25% ADT^A04/A08 registrations; 15%
SIU^S12/S15 appointments), in one folder-drop file, as `bhhub intake day.hl7` takes it.

Intake: the file through ``receive_many`` into a fresh SQLite hub in one process: split into
messages, each stored raw with its sha256, parsed, mapped; DFTs coded, checked, rendered and
stored as claims; registrations and appointments stored. Baseline: hl7apy parsing the same
messages (``parse_message``, with and without ``find_groups``), which builds every field of
every segment. Target: intake at least 5x the faster hl7apy rate.

Each phase runs in its own process so its peak memory is its own. Timings are wall clock on
this machine; the ratio is what the target is about.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import _timing  # beside this file
from _timing import print_phase

TARGET_RATIO = 5.0

PRACTICE = """
[practices.SUNRISE_BH]
npi = "1234567893"
organization_name = "Sunrise Behavioral Health"
tin = "123456789"
taxonomy = "261QM0801X"

[practices.SUNRISE_BH.address]
line1 = "100 Main Street"
city = "Springfield"
state = "IL"
postal_code = "627011234"
"""

CODES = [("90832", "110.00"), ("90834", "150.00"), ("90837", "200.00"), ("90791", "250.00")]
DIAGNOSES = ["F32.1", "F33.1", "F41.1", "F43.10", "F90.2", "F31.81"]
PAYERS = [("87726", "UnitedHealthcare", "PPO"), ("60054", "Aetna", "HMO"), ("62308", "Cigna", "PPO"),
          ("BCBSIL", "Blue Cross Blue Shield of Illinois", "PPO")]
CLINICIANS = ["1245319599^Carter^Dana", "1987654328^Lopez^Sam", "1567890128^Nguyen^Lee"]


def _seg(name: str, fields: dict[int, str]) -> str:
    return "|".join([name] + [fields.get(i, "") for i in range(1, max(fields) + 1)])


def message(seed: int, start) -> str:
    """One synthetic message (CR-separated segments), varied by ``seed``; invented people."""
    kind = seed % 20
    when = (start + timedelta(days=seed % 28)).strftime("%Y%m%d")
    mrn = f"MRN{seed % 5000:06d}"
    msh = lambda t: f"MSH|^~\\&|TheraNotes|SUNRISE_BH|BHHUB|BILLING|{when}1700{seed % 60:02d}||{t}|MSG{seed:08d}|P|2.5.1"
    pid = _seg("PID", {1: "1", 3: f"{mrn}^^^SUNRISE_BH^MR", 5: f"Person{seed % 5000}^Test^Q", 7: "19800101",
                       8: "FM"[seed % 2], 11: f"{seed % 900 + 1} Elm Street^^Springfield^IL^627011234"})
    payer_id, payer_name, plan = PAYERS[seed % len(PAYERS)]
    in1 = _seg("IN1", {1: "1", 2: f"{payer_id}-{plan}", 3: f"{payer_id}^^^^NIIP", 4: payer_name, 8: "GRP100",
                       12: "20260101", 15: plan, 16: f"Person{seed % 5000}^Test^Q", 17: "SEL", 18: "19800101",
                       22: "1", 36: f"M{seed:09d}"})
    in2 = _seg("IN2", {72: "01^Patient is insured"})
    clinician = CLINICIANS[seed % len(CLINICIANS)]
    if kind < 12:
        code, amount = CODES[seed % len(CODES)]
        dx1, dx2 = DIAGNOSES[seed % len(DIAGNOSES)], DIAGNOSES[(seed + 1) % len(DIAGNOSES)]
        segments = [msh("DFT^P03^DFT_P03"), f"EVN|P03|{when}1700", pid,
                    _seg("PV1", {1: "1", 2: "O", 3: "OFFICE", 7: clinician, 19: f"V{seed}"}),
                    _seg("FT1", {1: "1", 2: f"T{seed}", 4: f"{when}^{when}", 5: when, 6: "CG",
                                 7: f"{code}^Psychotherapy^C4", 10: "1", 11: f"{amount}&USD",
                                 19: f"{dx1}^Diagnosis^I10", 20: clinician, 25: f"{code}^Psychotherapy^C4"})]
        if seed % 3 == 0:
            segments.append(_seg("FT1", {1: "2", 2: f"T{seed}b", 4: f"{when}^{when}", 5: when, 6: "CG",
                                         7: "90785^Interactive complexity^C4", 10: "1", 11: "25.00&USD",
                                         19: f"{dx1}^Diagnosis^I10", 20: clinician,
                                         25: "90785^Interactive complexity^C4"}))
        segments += [_seg("DG1", {1: "1", 3: f"{dx1}^Diagnosis^I10", 6: "F", 15: "1"}),
                     _seg("DG1", {1: "2", 3: f"{dx2}^Diagnosis^I10", 6: "F", 15: "2"}),
                     _seg("GT1", {1: "1", 3: f"Person{seed % 5000}^Test^Q", 11: "SEL"}), in1, in2]
    elif kind < 17:
        event = "A04" if seed % 2 else "A08"
        segments = [msh(f"ADT^{event}^ADT_A01"), f"EVN|{event}|{when}0900", pid,
                    _seg("NK1", {1: "1", 2: "Kin^Next", 3: "SPO^Spouse"}),
                    _seg("PV1", {1: "1", 2: "O", 3: "OFFICE", 7: clinician}), in1, in2]
    else:
        event = "S15" if kind == 19 else "S12"
        slot = f"{when}{9 + seed % 8:02d}00"
        segments = [msh(f"SIU^{event}^SIU_S12"),
                    _seg("SCH", {1: f"PL{seed // 3}", 2: f"FL{seed // 3}", 8: "ROUTINE", 9: "60", 10: "min",
                                 25: "Cancelled" if event == "S15" else "Booked"}),
                    pid, "RGS|1|A", _seg("AIS", {1: "1", 2: "A", 3: "90837^Psychotherapy^C4", 4: slot, 7: "60", 8: "min"}),
                    _seg("AIP", {1: "1", 2: "A", 3: clinician, 6: slot, 8: "60", 9: "min"})]
    return "\r".join(segments) + "\r"


def messages(n: int) -> list[str]:
    from bhhub.runtime.clock import today

    start = today() - timedelta(days=45)  # within every filing window, whenever it runs
    return [message(seed, start) for seed in range(n)]


def phase_hl7apy(n: int, _work: Path, find_groups: bool) -> dict:
    from hl7apy.parser import parse_message

    texts = messages(n)
    start = time.perf_counter()
    for text in texts:
        parse_message(text, find_groups=find_groups)
    return {"seconds": time.perf_counter() - start}


def phase_intake(n: int, work: Path) -> dict:
    from bhhub.intake import many as intake_many
    from bhhub.runtime.app import Hub

    home = work / "hub"
    Hub.open(home, create=True).close()
    (home / "mappings" / "ehr").mkdir(parents=True)
    (home / "mappings" / "ehr" / "practices.toml").write_text(PRACTICE, encoding="utf-8")
    drop = "".join(messages(n)).encode()  # one folder-drop file: every message in it
    with Hub.open(home) as hub:
        hub.intake_formats, hub.claim_checks  # plugin loading is start-up, not intake
        start = time.perf_counter()
        results = list(intake_many.receive_many(hub, [("day.hl7", drop)]))
        seconds = time.perf_counter() - start
    outcomes = [r.outcome for r in results]
    if outcomes.count("imported") != n:
        reasons = {r.reason for r in results if r.reason}
        raise SystemExit(f"only {outcomes.count('imported')} of {n} messages imported: {sorted(reasons)[:3]}")
    claims = sum(len(r.claims) for r in results)
    ready = sum(c.status == "ready" for r in results for c in r.claims)
    return {"seconds": seconds, "claims": claims, "ready": ready,
            "records": sum(len(r.records) for r in results), "bytes": len(drop)}


PHASES = {
    "hl7apy": lambda n, work: phase_hl7apy(n, work, find_groups=False),
    "hl7apy-groups": lambda n, work: phase_hl7apy(n, work, find_groups=True),
    "intake": phase_intake,
}


def run_phase(name: str, n: int, work: Path) -> dict:
    return _timing.run_phase(__file__, name, "--messages", str(n), "--work", str(work))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000, help="number of messages (default 2000)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    n = args.messages
    if args.phase:
        print_phase(PHASES[args.phase](n, args.work))
        return 0

    with tempfile.TemporaryDirectory(prefix="bhhub-hl7-bench-") as tmp:
        work = Path(tmp)
        print(f"{n} synthetic HL7 v2.5.1 messages; each phase in its own process ...", file=sys.stderr)
        flat = run_phase("hl7apy", n, work)
        grouped = run_phase("hl7apy-groups", n, work)
        intake = run_phase("intake", n, work)
    intake_rate = n / intake["seconds"]
    baseline_rate = max(n / flat["seconds"], n / grouped["seconds"])  # the faster hl7apy parse
    ratio = intake_rate / baseline_rate
    figures = {
        "messages": n, "intake_seconds": intake["seconds"], "intake_messages_per_s": intake_rate,
        "intake_claims": intake["claims"], "intake_ready_claims": intake["ready"], "intake_records": intake["records"],
        "intake_peak_mb": intake["peak_mb"], "input_bytes": intake["bytes"],
        "hl7apy_seconds": flat["seconds"], "hl7apy_messages_per_s": n / flat["seconds"],
        "hl7apy_groups_seconds": grouped["seconds"], "hl7apy_groups_messages_per_s": n / grouped["seconds"],
        "hl7apy_peak_mb": flat["peak_mb"], "ratio": ratio, "target_ratio": TARGET_RATIO, "target_met": ratio >= TARGET_RATIO,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    rows = [
        ("intake (split, store raw, parse, map, code, scrub, render, store)", f"{intake['seconds']:.2f} s",
         f"{intake_rate:,.0f} messages/s", f"{intake['peak_mb']:.0f} MB"),
        ("  baseline: hl7apy parse_message(find_groups=False)", f"{flat['seconds']:.2f} s",
         f"{n / flat['seconds']:,.0f} messages/s", f"{flat['peak_mb']:.0f} MB"),
        ("  baseline: hl7apy parse_message(find_groups=True)", f"{grouped['seconds']:.2f} s",
         f"{n / grouped['seconds']:,.0f} messages/s", f"{grouped['peak_mb']:.0f} MB"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'phase'.ljust(width)}  {'time':>8}  {'throughput':>20}  {'peak RSS':>8}")
    for label, t, rate, mem in rows:
        print(f"{label.ljust(width)}  {t:>8}  {rate:>20}  {mem:>8}")
    print(f"\n{intake['claims']} claims ({intake['ready']} ready), {intake['records']} registrations and appointments")
    print(f"intake / faster hl7apy parse = {ratio:.1f}x the rate (target >= {TARGET_RATIO}x): "
          f"{'met' if ratio >= TARGET_RATIO else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
