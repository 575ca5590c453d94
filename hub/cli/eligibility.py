"""``bhhub eligibility`` and ``bhhub status``: asking payers about coverage and about sent claims."""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation

from bhhub.cli.commands import open_hub
from bhhub.eligibility.answers import AMOUNTS, COUNTS, amounts as _amounts, check_json as _check_json  # noqa: F401
from bhhub.cli.output import clip, count, date_option, print_json, print_table
from bhhub.errors import UsageError

PATIENT_HELP = ("the patient: the hub's patient id (`patient_id` in `bhhub claims --json`, the PATIENT "
                "column of `bhhub eligibility list`), the EHR's patient key as the hub stores it (e.g. "
                "fhir:MR|urn:example:ehr:mrn|MRN0000005), or just the chart number at its end when no other "
                "patient has it")


def add_commands(sub) -> None:
    p = sub.add_parser(
        "eligibility", help="ask payers whether patients are covered, and what they will owe",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Eligibility and benefits for outpatient mental health. A payer-portal plugin that serves "
                    "the payer answers at once; otherwise a 270 is queued for the clearinghouse mailbox and sent "
                    "with the next `bhhub exchange`, and its 271 is applied when it comes back. Every answer is "
                    "kept as history; an answer that ends coverage, requires an authorization, uses up the visits "
                    "or names another payer raises an alert and checks the member's unsent claims again.",
        epilog="patients: " + PATIENT_HELP)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list, patient=None)
    elig_sub = p.add_subparsers(dest="eligibility_command", metavar="ACTION")
    check = elig_sub.add_parser("check", help="ask the payer about one patient now",
                                description="Ask the patient's payer (the primary coverage, or --payer) about "
                                            "coverage on --date (default today). Patient: " + PATIENT_HELP)
    check.add_argument("--patient", required=True, metavar="ID", help=PATIENT_HELP)
    check.add_argument("--payer", metavar="PAYER_ID", help="the clearinghouse payer id (default: the primary coverage)")
    check.add_argument("--date", metavar="YYYY-MM-DD", help="date of service asked about (default: today)")
    check.add_argument("--mailbox", metavar="NAME", help="the clearinghouse mailbox the 270 goes through (default: the one [routing] in bhhub.toml gives the payer)")
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=cmd_check)
    listing = elig_sub.add_parser("list", help="answers and questions, newest first (the default)")
    listing.add_argument("--patient", metavar="ID", help="only this patient: " + PATIENT_HELP)
    listing.add_argument("--latest", action="store_true",
                         help="only the last answer per patient and coverage (payer and member id): what the payer "
                              "says now")
    listing.add_argument("--json", action="store_true", help="one object per check, with its benefits per service type")
    listing.set_defaults(func=cmd_list)
    sweep = elig_sub.add_parser("sweep", help="ask about the coming days' appointments and stale unsent claims",
                                description="What `bhhub run` does daily: every booked appointment in the next N "
                                            "days and every unsent claim whose member's latest check is older than "
                                            "the table's age (mappings/rules/eligibility.toml), one question per "
                                            "member, skipping those asked recently.")
    sweep.add_argument("--days", type=int, metavar="N", help="appointments in the next N days (default: the table's)")
    sweep.add_argument("--mailbox", metavar="NAME", help="the clearinghouse mailbox the 270s go through (default: the one [routing] in bhhub.toml gives the payer)")
    sweep.add_argument("--json", action="store_true")
    sweep.set_defaults(func=cmd_sweep)

    p = sub.add_parser("status", help="ask payers where sent claims stand (276/277)",
                       description="Claim status inquiries: a 276 is queued for the clearinghouse mailbox and "
                                   "sent with the next `bhhub exchange`; the 277 that comes back updates the "
                                   "check and, where it may, the claim (accepted, rejected). Paid or denied "
                                   "answers are recorded and alerted; only an 835 posts money.")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status_list)
    status_sub = p.add_subparsers(dest="status_command", metavar="ACTION")
    check = status_sub.add_parser("check", help="ask the payer about one sent claim")
    check.add_argument("claim", metavar="CLAIM", help="the claim's patient control number (CLAIM in `bhhub claims`)")
    check.add_argument("--mailbox", metavar="NAME", help="the clearinghouse mailbox the 276 goes through (default: the one [routing] in bhhub.toml gives the payer)")
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=cmd_status_check)
    listing = status_sub.add_parser("list", help="status questions and answers, newest first (the default)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_status_list)


def _named_mailbox(hub, name: str | None) -> None:
    """A ``--mailbox`` that bhhub.toml does not configure: a usage error before anything is asked."""
    if name is not None:
        from bhhub.exchange.routing import known_mailbox

        known_mailbox(hub, name)


# --- eligibility ------------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    from bhhub.eligibility import service

    day = date_option(args.date, "--date")
    with open_hub(args) as hub:
        _named_mailbox(hub, args.mailbox)
        with hub.store.session() as session:
            patient_id = service.find_patient(session, args.patient)
        outcome = service.check(hub, patient_id, args.payer, day, via=args.mailbox)
        with hub.store.session() as session:
            data = _check_json(session.get(_checks(), outcome.check_id)) if outcome.check_id else outcome.as_dict()
    data["effects"] = outcome.effects
    if args.json:
        print_json(data)
        return 0 if outcome.state != "failed" else 1
    where = {"answered": f"answered by {outcome.source}", "failed": f"failed ({outcome.source})",
             "requested": f"270 queued in batch {outcome.batch_id}; it goes out with the next `bhhub exchange`"}
    print(f"eligibility check {outcome.check_id} (trace {outcome.trace_number}): patient {outcome.patient_id}, "
          f"payer {outcome.payer_id}: {where.get(outcome.state, outcome.state)}")
    if outcome.state == "failed":
        print(f"  {outcome.error}")
        for change in (outcome.effects.get("rescrubbed") or {}).get("changed", []):
            print(f"  {change['patient_control_number']}: {change['from']} -> {change['to']}")
        return 1
    if outcome.state == "answered":
        _print_answer(data)
    return 0


def _print_answer(data: dict) -> None:
    mh = data.get("mental_health") or {}
    print(f"  coverage {_coverage_word(data, upper=True)} on {data['service_date']}")
    if mh:
        parts = [f"{name.replace('_', ' ')} {_shown(mh[name])}" for name in
                 ("copay", "coinsurance", "deductible_remaining", "visits_allowed", "visits_remaining") if mh.get(name)]
        parts += _limits(mh)
        print("  mental health: " + ("; ".join(parts) or "no details"))
    for flag in (data.get("effects") or {}).get("raised", []):
        print(f"  changed: {flag.replace('_', ' ')} (alert raised)")
    for change in ((data.get("effects") or {}).get("rescrubbed") or {}).get("changed", []):
        print(f"  {change['patient_control_number']}: {change['from']} -> {change['to']}")


def _coverage_word(data: dict, *, upper: bool = False) -> str:
    """The plan's state, and mental health's when the plan is active but mental health is not:
    a plan active on 30 that says EB01 I on MH is not "active" for a mental-health practice."""
    if data.get("state") == "failed":
        return "refused" if data.get("rejections") else "-"
    mh = data.get("mental_health") or {}
    if data["active"] is True and mh.get("active") is False:
        return "plan active, mental health NOT COVERED" if upper else "MH NOT COVERED"
    if data["active"] is True and mh.get("not_covered") and mh.get("active") is None:
        return "plan active, mental health coverage unclear" if upper else "MH unclear"
    words = {True: "active", False: "INACTIVE", None: "coverage not stated"} if upper else \
        {True: "yes", False: "NO", None: "-"}
    return words[data["active"]]


def _limits(mh: dict) -> list[str]:
    """What the payer said limits mental health: not covered, authorizations, carve-out."""
    parts = []
    not_covered = [n.get("describe") or n.get("service_type") for n in mh.get("not_covered") or ()]
    if not_covered:
        parts.append("not covered: " + ", ".join(not_covered))
    if mh.get("auth_required"):
        parts.append("authorization required")
    for rule in mh.get("auth_conditions") or ():
        parts.append(f"authorization required {rule.get('describe')}")
    if mh.get("carve_out"):
        carve = mh["carve_out"]
        parts.append(f"carved out to {carve.get('payer_name') or '?'} ({carve.get('payer_id') or '?'})")
    return parts


def _checks():
    from bhhub.store import schema

    return schema.EligibilityCheck


def _shown(value) -> str:
    """An amount for people: ``30`` and ``0.2`` as the payer wrote them, not ``30.0``."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    return str(value)


def cmd_list(args: argparse.Namespace) -> int:
    from bhhub.eligibility import service
    from bhhub.eligibility.answers import eligibility_history, latest_answers

    with open_hub(args) as hub, hub.store.session() as session:
        patient_id = service.find_patient(session, args.patient) if args.patient else None
        if getattr(args, "latest", False):  # `bhhub eligibility` alone lists every check
            data = latest_answers(hub, session, patient_id=patient_id)
        else:
            data = eligibility_history(hub, session, patient_id=patient_id)
        session.commit()
    if args.json:
        print_json(data)
    elif not data:
        print("no eligibility checks yet (ask with `bhhub eligibility check --patient ID`)")
    else:
        print_table(["ID", "PATIENT", "PAYER", "MEMBER", "DOS", "SOURCE", "STATE", "ACTIVE", "CHECKED", "MENTAL HEALTH"],
                    [(d["id"], d["patient_id"], d["payer_id"], d["member_id"], d["service_date"], d["source"],
                      d["state"], _coverage_word(d), d["checked_at"], _mental_health_cell(d)) for d in data])
    return 0


def _mental_health_cell(d: dict) -> str:
    if d["state"] == "failed":
        return clip(d["error"] or "", 60)
    mh = d.get("mental_health") or {}
    parts = []
    not_covered = sorted({n.get("service_type", "") for n in mh.get("not_covered") or ()})
    if not_covered:
        parts.append("NOT COVERED " + "/".join(not_covered))
    if mh.get("copay"):
        parts.append(f"copay {_shown(mh['copay'])}")
    if mh.get("visits_remaining") is not None:
        parts.append(f"{_shown(mh['visits_remaining'])} visits left")
    if mh.get("auth_required"):
        parts.append("auth required")
    elif mh.get("auth_conditions"):
        parts.append("auth required " + clip("; ".join(r.get("describe", "") for r in mh["auth_conditions"]), 60))
    if mh.get("carve_out"):
        parts.append(f"carve-out {mh['carve_out'].get('payer_id') or ''}".strip())
    return ", ".join(parts) or "-"


def cmd_sweep(args: argparse.Namespace) -> int:
    from bhhub.eligibility.sweep import sweep

    if args.days is not None and args.days < 0:
        raise UsageError("--days must be 0 or more")
    with open_hub(args) as hub:
        _named_mailbox(hub, args.mailbox)  # checked even when nobody is due a question
        report = sweep(hub, args.days, via=args.mailbox)
    if args.json:
        print_json(report.as_dict())
    else:
        print(report.summary())
        problems: dict[str, list[int]] = {}  # one line per reason, not per member
        for o in report.outcomes:
            if o.state in ("not_asked", "unwritable"):
                problems.setdefault(o.error or o.state, []).append(o.patient_id)
        for reason, patients in problems.items():
            print(f"  {len(patients)} not asked (patient {', '.join(map(str, patients[:10]))}"
                  f"{', ...' if len(patients) > 10 else ''}): {reason}")
    return 0


# --- claim status -----------------------------------------------------------------------------------


def cmd_status_check(args: argparse.Namespace) -> int:
    from bhhub.claimstatus.service import status_check

    with open_hub(args) as hub:
        _named_mailbox(hub, args.mailbox)
        outcome = status_check(hub, args.claim, mailbox=args.mailbox)
    if args.json:
        print_json(outcome.as_dict())
    else:
        print(f"claim status check {outcome.check_id} (trace {outcome.trace_number}) for claim {outcome.claim} "
              f"({outcome.claim_status}): 276 queued in batch {outcome.batch_id}; it goes out with the next "
              "`bhhub exchange`")
    return 0


def cmd_status_list(args: argparse.Namespace) -> int:
    from bhhub.claimstatus import store
    from bhhub.store import schema

    with open_hub(args) as hub, hub.store.session() as session:
        rows = store.history(session)
        claims = {c.id: c for c in session.query(schema.Claim).filter(schema.Claim.id.in_({r.claim_id for r in rows}))}
        data = [{"id": r.id, "trace_number": r.trace_number,
                 "patient_control_number": claims[r.claim_id].patient_control_number,
                 "claim_status": claims[r.claim_id].status, "source": r.source, "state": r.state, "status": r.status,
                 "description": (r.response or {}).get("description"), "error": r.error, "batch_id": r.batch_id,
                 "requested_at": r.requested_at, "checked_at": r.answered_at} for r in rows]
        hub.audit(session, "list_claim_status", "claim", sorted({r.claim_id for r in rows}), None)
        session.commit()
    if args.json:
        print_json(data)
    elif not data:
        print("no claim status checks yet (ask with `bhhub status check CLAIM`)")
    else:
        print_table(["ID", "CLAIM", "CLAIM STATUS", "STATE", "ANSWER", "CHECKED", "DETAIL"],
                    [(d["id"], d["patient_control_number"], d["claim_status"], d["state"], d["status"], d["checked_at"],
                      clip(d["error"] or d["description"] or "", 80)) for d in data])
    return 0
