"""``bhhub remit``, ``bhhub denials``, ``bhhub ar``: what payers paid, what they denied, what is owed."""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import date

from bhhub.cli.commands import open_hub, refused_as_usage, unknown_claims
from bhhub.runtime.clock import today
from bhhub.cli.output import date_option, print_json, print_table
from bhhub.errors import InputError, UsageError
from bhhub.model import ClaimStatus


def add_commands(sub) -> None:
    p = sub.add_parser("remit", help="835 payments posted, and claim payments waiting to be matched",
                       description="Every 835 payment the hub posted (one per ST/SE), with its claim payments "
                                   "posted, unmatched or quarantined. An 835 arrives through `bhhub exchange` or "
                                   "`bhhub intake FILE`.")
    p.add_argument("--json", action="store_true", help="one object per payment")
    p.set_defaults(func=cmd_remit_list)
    remit_sub = p.add_subparsers(dest="remit_command", metavar="ACTION")
    listing = remit_sub.add_parser("list", help="the payments (the default)")
    listing.add_argument("--json", action="store_true", help="one object per payment")
    listing.set_defaults(func=cmd_remit_list)
    waiting = remit_sub.add_parser("unmatched", help="claim payments that matched no claim, and quarantined ones")
    waiting.add_argument("--json", action="store_true")
    waiting.set_defaults(func=cmd_remit_unmatched)
    match = remit_sub.add_parser("match", help="post an unmatched claim payment to a claim")
    match.add_argument("remit_claim_id", type=int, metavar="ID", help="the claim payment (from `remit unmatched`)")
    match.add_argument("claim", metavar="CLAIM", help="the claim's patient control number (CLM01)")
    match.add_argument("--json", action="store_true", help="the claim payment posted, as an object")
    match.set_defaults(func=cmd_remit_match)

    p = sub.add_parser("denials", help="the denial worklist, oldest deadline first, with the next action",
                       description="Every denied or partly denied amount from posted 835s, classified by "
                                   "mappings/remittance/denials.toml (category, next action) with the last day of "
                                   "the next step's window (mappings/rules/filing_windows.toml): a corrected claim, "
                                   "appeal, resubmission or claim to the next payer.")
    p.add_argument("--all", action="store_true", help="worked and undone ones too")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_denials)
    denial_sub = p.add_subparsers(dest="denial_command", metavar="ACTION")
    resolve = denial_sub.add_parser("resolve", help="mark a denial worked (corrected, appealed, written off)")
    resolve.add_argument("denial_id", type=int, metavar="ID")
    resolve.add_argument("--how", required=True, help="what was done, recorded and audited (not empty)")
    resolve.add_argument("--json", action="store_true", help="the denial resolved, as an object")
    resolve.set_defaults(func=cmd_denial_resolve)
    from bhhub.remittance.denial_actions import ACTIONS  # no imports of its own

    act = denial_sub.add_parser("act", help="take the worklist's action on a denial and mark it worked",
                                description="corrected_claim, void and bill_secondary build the follow-up claim "
                                            "(as `bhhub followup replace|void|secondary` does); appeal_done and "
                                            "write_off record that resolution. A denial someone else has just "
                                            "worked is refused (exit code 2) and nothing is done twice.")
    act.add_argument("denial_id", type=int, metavar="ID")
    act.add_argument("action", choices=ACTIONS)
    act.add_argument("--note", help="added to the recorded resolution")
    act.add_argument("--as-billed", action="store_true",
                     help="corrected_claim: resend the claim exactly as billed (no pending correction)")
    act.add_argument("--json", action="store_true", help="the denial resolved and the follow-up built, as an object")
    act.set_defaults(func=cmd_denial_act)

    p = sub.add_parser("followup", help="a corrected (7) or void (8) claim, or the claim to the secondary payer",
                       description="Build the follow-up claim a remittance calls for, as a new revision of the "
                                   "claim that goes out with the next exchange: `replace` (frequency 7 with REF*F8, "
                                   "built from the claim's pending correction: the visit corrected in the EHR and "
                                   "sent again), `void` (frequency 8), `secondary` (to the next payer with the "
                                   "primary's 835 adjudication in 2320/2430). `corrections` lists the pending "
                                   "corrections.")
    p.add_argument("kind", choices=["replace", "void", "secondary", "corrections"])
    p.add_argument("claims", nargs="*", metavar="CLAIM", help="patient control numbers (CLM01)")
    p.add_argument("--as-billed", action="store_true",
                   help="replace: resend the claim exactly as billed (no pending correction)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_followup)

    p = sub.add_parser("ar", help="accounts receivable: aging by payer and provider, and revenue-cycle figures",
                       description="A/R aging buckets (0-30, 31-60, 61-90, 91-120, 120+) by payer and by provider, "
                                   "insurance vs patient, days in A/R, clean-claim, first-pass resolution, denial "
                                   "and net collection rates, each with its formula; and the claims with no response "
                                   "at all for 30 days.")
    p.add_argument("--as-of", metavar="YYYY-MM-DD", help="report as of this date (default today, or BHHUB_TODAY)")
    p.add_argument("--trend", action="store_true",
                   help="the figures at each of the last months' ends (as the store knew them then), oldest first")
    p.add_argument("--months", type=int, default=12, metavar="N", help="with --trend: how many month ends (default 12)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true")
    out.add_argument("--csv", action="store_true", help="the aging table as CSV")
    p.set_defaults(func=cmd_ar)


def cmd_remit_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from bhhub.store import schema

    with open_hub(args) as hub, hub.store.session() as session:
        rows = session.scalars(select(schema.RemitPayment).order_by(schema.RemitPayment.id)).all()
        payers = _claim_payers(session, [p.id for p in rows])
        data = [{"id": p.id, "payer_id": payers.get(p.id), "payer_id_835": p.payer_id, "payer_name": p.payer_name,
                 "trace_number": p.trace_number,
                 "payment_amount": p.amount, "payment_date": p.payment_date, "method": p.method,
                 "claims": p.claims, "claims_posted": p.claims_posted, "claims_unmatched": p.claims_unmatched,
                 "claims_quarantined": p.claims_quarantined, "claims_repeated": p.claims_repeated,
                 "paid_total": p.paid_total,
                 "provider_adjustment_total": p.provider_adjustment_total, "problems": p.problems,
                 "inbox_item_id": p.inbox_item_id} for p in rows]
        _provider_adjustment_lines(hub, session, data)
    if args.json:
        print_json(data)
    elif not data:
        print("no 835 payments posted yet")
    else:
        print_table(["ID", "PAYER", "TRACE", "DATE", "AMOUNT", "CLAIMS", "POSTED", "UNMATCHED", "QUARANTINED",
                     "REPEATS", "PAID"],
                    [(d["id"], d["payer_id"] or d["payer_id_835"], d["trace_number"], d["payment_date"],
                      d["payment_amount"], d["claims"],
                      d["claims_posted"], d["claims_unmatched"], d["claims_quarantined"], d["claims_repeated"],
                      d["paid_total"])
                     for d in data])
        for d in data:
            for problem in d["problems"]:
                print(f"  payment {d['id']}: {problem}")
            for line in d["provider_adjustment_lines"]:
                about = f" for claim {line['patient_control_number']}" if line["patient_control_number"] else ""
                print(f"  payment {d['id']}: PLB {line['reason']} {line['amount']} ref {line['reference']}{about}: "
                      f"{line['meaning']}")
    return 0


def _claim_payers(session, payment_ids: list[int]) -> dict[int, str]:
    """payment id -> the payer id of the claims it posted to, when they agree.

    ``payer_id`` in every ``--json`` is the claim's payer id (what `bhhub claims` shows); an 835
    may name its payer otherwise (REF*2U, N1*PR N104, or only the trace's originator, TRN03),
    which ``payer_id_835`` keeps. A payment that posted to no claim, or to several payers', has none."""
    from sqlalchemy import select

    from bhhub.store import schema

    r, c, cov, payer = schema.RemitClaim, schema.Claim, schema.Coverage, schema.Payer
    found: dict[int, set[str]] = {}
    rows = session.execute(select(r.payment_id, payer.payer_id).distinct()
                           .join(c, c.id == r.claim_id).join(cov, cov.id == c.coverage_id)
                           .join(payer, payer.id == cov.payer_id).where(r.payment_id.in_(payment_ids)))
    for payment_id, payer_id in rows:
        found.setdefault(payment_id, set()).add(payer_id)
    return {payment_id: next(iter(ids)) for payment_id, ids in found.items() if len(ids) == 1}


def _provider_adjustment_lines(hub, session, data: list[dict]) -> None:
    """Each payment's PLB lines, named, with the claim their reference names (bhhub.remittance.plb)."""
    from sqlalchemy import select

    from bhhub.store import schema

    from bhhub.remittance import plb

    a = schema.ProviderAdjustment
    rows = session.scalars(select(a).where(a.payment_id.in_([d["id"] for d in data])).order_by(a.id)).all()
    claims = plb.claims_referenced(session, (row.reference for row in rows))
    mappings = hub.mappings
    by_payment: dict[int, list] = {}
    for row in rows:  # grouped once: looking through every PLB row for each payment was quadratic
        by_payment.setdefault(row.payment_id, []).append(row)
    for d in data:
        d["provider_adjustment_lines"] = [
            {"reason": row.reason, "meaning": plb.meaning(mappings, row.reason), "reference": row.reference,
             "amount": row.amount, "patient_control_number": claims.get(row.reference.strip())}
            for row in by_payment.get(d["id"], ())]


def cmd_remit_unmatched(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from bhhub.store import schema

    r = schema.RemitClaim
    with open_hub(args) as hub, hub.store.session() as session:
        rows = session.execute(select(r, schema.RemitPayment).join(schema.RemitPayment, schema.RemitPayment.id == r.payment_id)
                               .where(r.state.in_(("unmatched", "quarantined"))).order_by(r.id)).all()
        data = [{"id": c.id, "state": c.state, "payer_id_835": p.payer_id, "trace_number": p.trace_number,
                 "patient_control_number": c.patient_control_number, "payer_claim_control_number": c.payer_claim_control_number,
                 "status_code": c.status_code, "charge": c.charge, "paid": c.paid, "reason": c.reason,
                 "segment": c.segment_number} for c, p in rows]
    if args.json:
        print_json(data)
    elif not data:
        print("every claim payment is posted")
    else:
        print_table(["ID", "STATE", "PAYER", "TRACE", "CLP01", "PAYER CLAIM", "CHARGE", "PAID"],
                    [(d["id"], d["state"], d["payer_id_835"], d["trace_number"], d["patient_control_number"],
                      d["payer_claim_control_number"], d["charge"], d["paid"]) for d in data])
        for d in data:
            print(f"  {d['id']}: {d['reason']}")
    return 0


def cmd_remit_match(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from bhhub.store import schema

    from bhhub.remittance.hand_matching import match_by_hand

    with open_hub(args) as hub, hub.store.session() as session:
        # the latest revision the payer may have (a pending correction has not gone out)
        claim = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == args.claim,
                                                           schema.Claim.status != ClaimStatus.PENDING_CORRECTION.value)
                                .order_by(schema.Claim.revision.desc())).first()
        if claim is None:
            raise UsageError(f"no claim {args.claim}")
        if session.get(schema.RemitClaim, args.remit_claim_id) is None:  # an unknown id: exit code 2
            raise UsageError(f"no claim payment {args.remit_claim_id} (`bhhub remit unmatched` lists them)")
        with refused_as_usage():  # already posted, a claim never sent, a repeat: exit code 2
            row = match_by_hand(hub, session, args.remit_claim_id, claim, "bhhub remit match")
        hub.audit(session, "remit_match", "claim", [claim.id], f"claim payment {row.id}")
        session.commit()
        payment = session.get(schema.RemitPayment, row.payment_id)
        data = {"id": row.id, "state": row.state, "patient_control_number": claim.patient_control_number,
                "revision": claim.revision, "status": claim.status, "charge": row.charge, "paid": row.paid,
                "payment_id": row.payment_id, "trace_number": payment.trace_number,
                "inbox_item_id": payment.inbox_item_id}
    if args.json:
        print_json(data)
    else:
        print(f"claim payment {args.remit_claim_id} posted to {args.claim}: now {data['status']}")
    return 0


def cmd_denials(args: argparse.Namespace) -> int:
    from bhhub.remittance.worklist import denial_worklist

    with open_hub(args) as hub, hub.store.session() as session:
        data = denial_worklist(hub, session, include_resolved=args.all)
        session.commit()
    if args.json:
        print_json(data)
    elif not data:
        print("no open denials")
    else:
        print_table(["ID", "DEADLINE", "CLAIM", "LINE", "CODE", "ADJ", "AMOUNT", "CATEGORY", "ACTION"],
                    [(x["id"], x["deadline"] or "-", x["patient_control_number"], x["line"] or "claim", x["procedure_code"] or "",
                      x["adjustment"], x["amount"], x["category"], x["action"]) for x in data])
        for x in data:
            print(f"  {x['id']}: {x['next_step']}")
    return 0


def cmd_denial_resolve(args: argparse.Namespace) -> int:
    from bhhub.remittance.worklist import resolve_denial

    with open_hub(args) as hub:
        data = resolve_denial(hub, args.denial_id, args.how)
    if args.json:
        print_json(data)
    else:
        print(f"denial {args.denial_id} resolved: {data['resolution']}")
    return 0


def cmd_denial_act(args: argparse.Namespace) -> int:
    from bhhub.remittance.worklist import act_on_denial

    if args.as_billed and args.action != "corrected_claim":
        raise UsageError("--as-billed is for `bhhub denials act ID corrected_claim`")
    with open_hub(args) as hub, refused_as_usage():  # a follow-up that cannot be built: exit code 2
        data = act_on_denial(hub, args.denial_id, args.action, args.note, as_billed=args.as_billed)
    if args.json:
        print_json(data)
    else:
        print(f"denial {args.denial_id} resolved: {data['resolution']}")
        made = data["followup"]
        if made is not None:
            print(f"  {made['patient_control_number']} revision {made['revision']} (frequency "
                  f"{made['frequency_code']}) is {made['status']}"
                  + (f": {', '.join(made['errors'])}" if made["errors"] else ""))
    return 0


def cmd_followup(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from bhhub.store import schema

    from bhhub.remittance.followups import create_replacement, create_secondary, create_void
    from bhhub.remittance.worklist import followup_summary

    if args.kind == "corrections":
        return _list_corrections(args)
    if not args.claims:
        raise UsageError(f"`bhhub followup {args.kind}` needs at least one CLAIM (patient control number)")
    if args.as_billed and args.kind != "replace":
        raise UsageError("--as-billed is for `bhhub followup replace`")
    make = {"replace": create_replacement, "void": create_void, "secondary": create_secondary}[args.kind]
    done, refused = [], []
    with open_hub(args) as hub:
        with hub.store.session() as session:  # an unknown claim is a usage error, before any is built
            found = set(session.scalars(select(schema.Claim.patient_control_number)
                                        .where(schema.Claim.patient_control_number.in_(args.claims))))
            unknown_claims(found, args.claims)
        for pcn in args.claims:
            with hub.store.session() as session:
                row = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == pcn)
                                      .order_by(schema.Claim.revision.desc())).first()
                try:
                    if row is None:
                        raise InputError(f"no claim {pcn}")
                    new = make(session, row, hub=hub, as_billed=args.as_billed)
                    hub.audit(session, f"followup_{args.kind}", "claim", [row.id, new.id], None)
                    session.commit()
                    done.append(followup_summary(pcn, new))
                except InputError as exc:
                    session.rollback()
                    refused.append({"patient_control_number": pcn, "reason": str(exc)})
    if args.json:
        print_json({"created": done, "refused": refused})
    else:
        for d in done:
            if d["status"] == "ready":
                print(f"ready      {d['patient_control_number']} revision {d['revision']} "
                      f"(frequency {d['frequency_code']}): "
                      f"goes out with the next exchange")
            else:
                print(f"held       {d['patient_control_number']} revision {d['revision']} "
                      f"(frequency {d['frequency_code']}) is "
                      f"{d['status']}: {', '.join(d['errors'])} (see `bhhub claims --status {d['status']}`)")
        for r in refused:
            print(f"refused    {r['patient_control_number']}: {r['reason']}")
    return 1 if refused or any(d["status"] != "ready" for d in done) else 0


def _list_corrections(args: argparse.Namespace) -> int:
    from bhhub.remittance.corrections import list_pending

    if args.claims or args.as_billed:
        raise UsageError("`bhhub followup corrections` lists every pending correction; it takes no CLAIM")
    with open_hub(args) as hub, hub.store.session() as session:
        data = list_pending(session)
        hub.audit(session, "list_corrections", "claim", [d["id"] for d in data], None)
        session.commit()
    if args.json:
        print_json(data)
    elif not data:
        print("no pending corrections")
    else:
        print_table(["CLAIM", "REVISION", "REPLACES", "PAYER", "DOS", "CHARGE", "REF*F8", "ERRORS"],
                    [(d["patient_control_number"], d["revision"], f"{d['replaces_revision']} ({d['billed_status']})",
                      d["payer_id"],
                      d["service_date"], d["total_charge"], d["payer_claim_control_number"] or "not yet",
                      ", ".join(d["errors"]) or "")
                     for d in data])
        for d in data:
            pcn = d["patient_control_number"]
            print(f"  {pcn}: {'; '.join(d['changes'])}. Send it: bhhub followup replace {pcn}")
    return 0


def cmd_ar(args: argparse.Namespace) -> int:
    from bhhub.remittance.ar import BUCKETS, FORMULAS, ar_report, percent, report_json

    as_of = date_option(args.as_of, "--as-of") or today()
    if args.trend:
        return _ar_trend(args, as_of)
    if args.months != 12:
        raise UsageError("--months is for `bhhub ar --trend`")
    with open_hub(args) as hub, hub.store.session() as session:
        report = ar_report(session, as_of)
        hub.audit(session, "ar_report", "claim", [b.claim_id for b in report.claims], str(as_of))
        session.commit()
    if args.json:
        print_json(report_json(report))
        return 0
    if args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["group", "key", "bucket", "claims", "insurance", "patient"])
        for group in ("by_payer", "by_provider"):
            for key, buckets in sorted(report.aging[group].items()):
                for name in BUCKETS:
                    cell = buckets[name]
                    writer.writerow([group.removeprefix("by_"), key, name, cell["claims"], cell["insurance"], cell["patient"]])
        return 0
    print(f"accounts receivable as of {report.as_of} (age from the date first billed)\n")
    for title, group in (("by payer", "by_payer"), ("by provider (rendering NPI, else billing)", "by_provider")):
        print(title)
        rows = []
        for key, buckets in sorted(report.aging[group].items()):
            rows.append((key, *(f"{buckets[b]['insurance'] + buckets[b]['patient']:.2f}" for b in BUCKETS),
                         f"{sum(buckets[b]['insurance'] for b in BUCKETS):.2f}",
                         f"{sum(buckets[b]['patient'] for b in BUCKETS):.2f}"))
        if rows:
            print_table(["", *BUCKETS, "INSURANCE", "PATIENT"], rows)
        else:
            print("  nothing owed")
        print()
    f = report.figures
    print("figures (formula)")
    days = f["days_in_ar"]
    print(f"  {'days in ar':28} {'n/a' if days is None else f'{days} days':>12}   = {FORMULAS['days_in_ar']}")
    for name in ("clean_claim_rate", "first_pass_resolution_rate", "denial_rate_count", "denial_rate_dollars",
                 "net_collection_rate"):  # fractions in --json, percentages here
        print(f"  {name.replace('_', ' '):28} {percent(f[name]):>12}   = {FORMULAS[name]}")
    print(f"  {'total A/R':28} {f['total_ar']:>12}   (insurance {f['insurance_ar']}, patient {f['patient_ar']})")
    print(f"\nno response at all for 30 days ({FORMULAS['no_response_30_days']}): {len(report.no_response)}")
    for b in report.no_response:
        print(f"  {b.patient_control_number}  payer {b.payer_id}  billed {b.billed_on}  charge {b.charge}")
    return 0


def _ar_trend(args: argparse.Namespace, as_of: date) -> int:
    from bhhub.remittance.ar import FORMULAS, percent
    from bhhub.remittance.trends import trend_report

    if args.csv:
        raise UsageError("--csv is the aging table; `bhhub ar --trend` prints a table or --json")
    if not 1 <= args.months <= 120:
        raise UsageError(f"--months must be 1 to 120, not {args.months}")
    with open_hub(args) as hub, hub.store.session() as session:
        data = trend_report(hub, session, months=args.months, as_of=as_of)
        session.commit()
    if args.json:
        print_json(data)
        return 0
    names = ("clean_claim_rate", "denial_rate_count", "denial_rate_dollars", "net_collection_rate")
    print(f"revenue-cycle figures at each month's end, as known then (to {data['as_of']})\n")
    print_table(["MONTH", "AS OF", "DAYS IN A/R", "CLEAN", "DENIED (CLAIMS)", "DENIED ($)", "NET COLLECTION",
                 "TOTAL A/R"],
                [(m["month"], m["as_of"], "n/a" if m["figures"]["days_in_ar"] is None else m["figures"]["days_in_ar"],
                  *(percent(m["figures"][name]) for name in names), m["figures"]["total_ar"])
                 for m in data["months"]])
    print()
    for name in ("days_in_ar", *names):
        print(f"  {name.replace('_', ' '):22} = {FORMULAS[name]}")
    return 0
