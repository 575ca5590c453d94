"""``bhhub claims show CLAIM``: one claim's page (``bhhub.claims.detail.claim_detail``)."""

from __future__ import annotations

import argparse

from bhhub.cli.commands import open_hub
from bhhub.cli.output import print_json, print_table
from bhhub.errors import UsageError


def add_commands(claims_parser: argparse.ArgumentParser) -> None:
    actions = claims_parser.add_subparsers(dest="claims_command", metavar="ACTION")
    p = actions.add_parser("show", help="one claim: its lines, findings and fixes, whole history and 837P segments",
                           description="Show claim CLAIM at its latest revision: status, payer, providers, dates, "
                                       "totals, lines, findings with their fixes, every revision, its history in "
                                       "time order (status changes, batches and their sending, TA1/999/277CA, 835 "
                                       "postings with adjustments, denials, overrides, status checks) and the 837P "
                                       "segments of its CLM loop as they went out. The view is audited.")
    p.add_argument("claim", metavar="CLAIM", help="patient control number (CLM01)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object (bhhub.claims.detail.claim_detail); the patient's name, birth date and "
                        "member id only under \"patient_phi\"")
    p.set_defaults(func=cmd_claim_show)


def cmd_claim_show(args: argparse.Namespace) -> int:
    from bhhub.claims.detail import claim_detail

    with open_hub(args) as hub, hub.store.session() as session:
        detail = claim_detail(hub, session, args.claim)
    if detail is None:
        raise UsageError(f"no claim {args.claim} (see `bhhub claims`)")
    if args.json:
        print_json(detail)
        return 0
    _print(detail)
    return 0


def _print(d: dict) -> None:
    patient = d["patient_phi"]
    rendering = d["rendering_provider"] or {}
    out = [f"claim {d['patient_control_number']} revision {d['revision']} (frequency {d['frequency_code']}): "
           f"{d['status']}" + (f": {d['status_reason']}" if d["status_reason"] else ""),
           f"  payer {d['payer_id']}  member {patient['member_id']}  patient {patient['id']} "
           f"({', '.join(filter(None, [patient['family_name'], patient['given_name']]))})",
           f"  rendering {rendering.get('npi', '-')}  billing {(d['billing_provider'] or {}).get('npi', '-')}  "
           f"service {d['service_date']}  POS {d['place_of_service']}  charge {d['total_charge']}",
           f"  diagnoses {' '.join(d['diagnoses'])}"]
    if d["payer_claim_control_number"]:
        out.append(f"  payer claim number {d['payer_claim_control_number']}")
    print("\n".join(out) + "\n")
    print_table(["LINE", "CODE", "UNITS", "CHARGE", "DOS"],
                [(l["line"], ":".join([l["procedure_code"], *l["modifiers"]]), l["units"], l["charge"],
                  l["service_date"]) for l in d["lines"]])
    out = []
    for f in d["findings"]:
        where = f" line {f['line']}" if f["line"] else ""
        waived = f" [overridden: {f['overridden']}]" if f.get("overridden") else ""
        out.append(f"  {f['severity']} {f['code']}{where}: {f['message']}. Fix: {f['fix']}{waived}")
    out.append("")
    out.append("history:")
    for e in d["history"]:
        out.append(f"  {e['at']:%Y-%m-%d %H:%M}  {_event(e)}")
    if d["x12"]:
        out.append("")
        out.append(f"837P as sent (batch {d['x12']['batch_id']}, ISA13 {d['x12']['interchange_control_number']}):")
        out.extend(f"  {segment}" for segment in d["x12"]["segments"])
    print("\n".join(out))


def _event(e: dict) -> str:
    kind = e["kind"]
    if kind == "status":
        return f"status {e['status']}" + (f": {e['reason']}" if e["reason"] else "")
    if kind == "batch":
        return f"in batch {e['batch_id']} (ISA13 {e['interchange_control_number']}, {e['claims']} claims)"
    if kind == "transmission":
        return (f"transmission {e['transmission_id']} to {e['mailbox']} {e['state']} ({e['remote_name']})"
                + (f": {e['detail']}" if e["detail"] else ""))
    if kind == "acknowledgment":
        said = e["outcome"] or ("accepted" if e["accepted"] else "rejected")
        return (f"{e['acknowledgment']} {said}" + (" (whole file)" if e["whole_file"] else "")
                + (f" {e['code']}" if e["code"] else "") + (f": {e['detail']}" if e["detail"] else ""))
    if kind == "remittance":
        return (f"835 {e['state']} (CLP02 {e['status_code']}): charged {e['charge']} paid {e['paid']} patient "
                f"{e['patient_responsibility']}; trace {e['trace_number']}"
                + "".join(f"; {a.get('group')}-{a.get('reason')} {a.get('amount')}" for a in e["adjustments"]))
    if kind == "denial":
        return f"denial {e['group_code']}-{e['reason_code']} {e['amount']} ({e['status']}): {e['action_text']}"
    if kind == "override":
        return f"override {e['code']} by {e['actor']}: {e['reason']}"
    return (f"status check {e['trace_number']} ({e['source']}) {e['state']}"
            + (f": {e['status']}" if e["status"] else "") + (f": {e['error']}" if e["error"] else ""))
