"""``bhhub demo``: the whole slice on the embedded default, start to finish, repeatable.

It builds a fresh hub under ``<home>/demo`` (its own SQLite store), writes sample EHR exports
(synthetic FHIR R4 bundles, and one deliberately truncated file), reads them, prints the claims,
writes the 837P and checks it with pyx12's implementation-guide validator when installed.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from hub import intake
from hub.app import Hub
from hub.batches import export_837p
from hub.cli.commands import _intake_line, cmd_claims
from hub.config import resolve_home
from hub.demo.synthetic import encounter_bundle

SEEDS = (3, 5, 8, 11, 19, 23, 29, 31)


def cmd_demo(args: argparse.Namespace) -> int:
    home = resolve_home(args.home) / "demo"
    if home.exists():
        shutil.rmtree(home)
    inbound = home / "inbound"
    inbound.mkdir(parents=True)
    for seed in SEEDS:
        (inbound / f"encounter-{seed:03d}.json").write_text(json.dumps(encounter_bundle(seed), indent=1))
    # One visit coded with a diagnosis category (F41) instead of a billable code: the checks
    # keep it out of the batch and say how to fix it.
    vague = encounter_bundle(37)
    for entry in vague["entry"]:
        if entry["resource"]["resourceType"] == "Condition":
            entry["resource"]["code"]["coding"][0]["code"] = "F41"
    (inbound / "encounter-037-vague-diagnosis.json").write_text(json.dumps(vague, indent=1))
    good = (inbound / f"encounter-{SEEDS[0]:03d}.json").read_text()
    (inbound / "zz-truncated-export.json").write_text(good[: len(good) // 2])

    print(f"bhhub demo: a fresh hub in {home}\n")
    print(f"1. intake: {len(SEEDS) + 1} FHIR R4 bundles (one with a diagnosis category, not a billable "
          "code) and one truncated file (it should be quarantined)")
    with Hub.open(home, plugins=getattr(args, "plugin_host", None)) as hub:
        for path in sorted(inbound.iterdir()):
            print("   " + _intake_line(intake.receive(hub, path.read_bytes(), path.name)).replace("\n", "\n   "))
        print("\n2. the claims built (needs_attention: a check found an error, the fix is shown)")
        cmd_claims(argparse.Namespace(home=home, status=None, json=False, plugin_host=args.plugin_host))
        out = home / "out" / "demo-837p.x12"
        print("\n3. export the claims ready to bill")
        result = export_837p(hub, out)
    if result is None:
        print("   no claim was ready to bill")
        return 1
    print(f"   {result.claim_count} claims, ISA13 {result.interchange_control_number}")
    print(f"\n837P written to: {out}")
    return _validate(out)


def _validate(path: Path) -> int:
    try:
        from hub.x12.validate import validate_x12

        errors = validate_x12(path.read_bytes())
    except ImportError:
        print("(pyx12 is not installed; `pip install pyx12` and run x12valid on the file to check it)")
        return 0
    if errors:
        print(f"pyx12 found {len(errors)} errors:")
        for error in errors[:10]:
            print(f"  {error}")
        return 1
    print("pyx12 validator (005010X222A1): no errors")
    return 0
