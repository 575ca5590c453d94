"""``bhhub notice``: advance notices (ABN, waivers) the patient signed, recorded by a biller.

A PR-50/96/204 is the patient's to pay only with one on file (``bhhub.remittance.responsibility``).
"""

from __future__ import annotations

import argparse

from bhhub.cli.commands import open_hub, refused_as_usage
from bhhub.cli.output import date_option, print_json, print_table
from bhhub.errors import UsageError


def add_commands(sub) -> None:
    p = sub.add_parser("notice", help="advance notices (ABN, waivers) the patient signed before the service",
                       description="Record that the patient signed an advance notice (a Medicare ABN or a plan's "
                                   "waiver) before the service: a payer's PR-50/96/204 is then the patient's to pay "
                                   "(mappings/remittance/responsibility.toml lists the codes). Open denials that "
                                   "waited on it become the patient's.")
    p.set_defaults(func=cmd_notice_list, claim=None, json=False)
    notice_sub = p.add_subparsers(dest="notice_command", metavar="ACTION")
    add = notice_sub.add_parser("add", help="record a signed notice for a claim (audited)")
    add.add_argument("claim", metavar="CLAIM", help="the claim's patient control number (CLM01)")
    add.add_argument("--signed-on", required=True, metavar="YYYY-MM-DD", help="the day the patient signed it")
    add.add_argument("--procedure", metavar="CODE", help="the service it covers (default: every service on the claim)")
    add.add_argument("--note", help="where the signed copy is kept")
    add.add_argument("--json", action="store_true", help="the notice recorded, as an object")
    add.set_defaults(func=cmd_notice_add)
    listing = notice_sub.add_parser("list", help="the notices recorded (the default)")
    listing.add_argument("claim", nargs="?", metavar="CLAIM")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_notice_list)


def _claim(session, pcn: str) -> schema.Claim:
    from sqlalchemy import select

    from bhhub.store import schema

    claim = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == pcn)
                            .order_by(schema.Claim.revision.desc())).first()
    if claim is None:
        raise UsageError(f"no claim {pcn}")
    return claim


def cmd_notice_add(args: argparse.Namespace) -> int:
    from bhhub.remittance import notices
    from bhhub.remittance.denials import DenialRules

    signed_on = date_option(args.signed_on, "--signed-on")
    if args.note is not None and not args.note.strip():
        raise UsageError("--note is empty: say where the signed copy is kept, or leave --note out")
    with open_hub(args) as hub, hub.store.session() as session:
        claim = _claim(session, args.claim)
        with refused_as_usage():  # signed after the service, a service the claim lacks: exit code 2
            notice = notices.add(session, claim, signed_on, args.procedure, args.note, hub.actor)
        rules = DenialRules.load(hub.mappings)
        changed = notices.reconsider(session, rules, rules.responsibility, claim)
        hub.audit(session, "record_advance_notice", "claim", [claim.id], f"notice {notice.id}")
        session.commit()
        data = {**_notice_json(notice), "denials_now_patients": [d.id for d in changed]}
    if args.json:
        print_json(data)
        return 0
    print(f"advance notice recorded for {args.claim}" + (f" ({args.procedure})" if args.procedure else "")
          + (f"; {len(changed)} denial(s) are now the patient's to pay" if changed else ""))
    return 0


def _notice_json(x) -> dict:
    return {"id": x.id, "patient_control_number": x.patient_control_number, "procedure_code": x.procedure_code,
            "signed_on": x.signed_on, "note": x.note, "recorded_by": x.recorded_by, "recorded_at": x.recorded_at}


def cmd_notice_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from bhhub.store import schema

    n = schema.AdvanceNotice
    with open_hub(args) as hub, hub.store.session() as session:
        query = select(n).order_by(n.id)
        if args.claim:
            _claim(session, args.claim)  # an unknown claim is a usage error, not an empty list
            query = query.where(n.patient_control_number == args.claim)
        data = [_notice_json(x) for x in session.scalars(query)]
        hub.audit(session, "list_advance_notices", "advance_notice", [x["id"] for x in data], args.claim)
        session.commit()
    if args.json:
        print_json(data)
    elif not data:
        print("no advance notices recorded")
    else:
        print_table(["ID", "CLAIM", "SERVICE", "SIGNED", "NOTE"],
                    [(x["id"], x["patient_control_number"], x["procedure_code"] or "all", x["signed_on"], x["note"] or "")
                     for x in data])
    return 0
