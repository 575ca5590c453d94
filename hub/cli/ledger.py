"""``bhhub auth`` and ``bhhub credentialing``: the authorization ledger and the enrollment registry."""

from __future__ import annotations

import argparse
from decimal import Decimal

from bhhub.cli.commands import open_hub, refused_as_usage
from bhhub.common.filekinds import input_file
from bhhub.cli.output import date_option, print_json, print_table
from bhhub.errors import UsageError


def add_commands(sub) -> None:
    from bhhub.ledger import vocabulary

    p = sub.add_parser("auth", help="prior authorizations: what payers authorized, used and remaining",
                       description="The authorization ledger the scrubber checks claims against. A visit is "
                                   "counted when its claim goes out, and given back when the payer denies it "
                                   "for the authorization (CO-197, 198, 15). Adding, importing or voiding an "
                                   "authorization checks the member's claims not yet sent again.")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_auth_list)
    auth_sub = p.add_subparsers(dest="auth_command", metavar="ACTION")
    add = auth_sub.add_parser("add", help="enter an authorization")
    add.add_argument("--payer", required=True, metavar="PAYER_ID", help="the clearinghouse payer id")
    add.add_argument("--member", required=True, metavar="MEMBER_ID", help="the member id on the insurance card")
    add.add_argument("--number", required=True, help="the authorization number (sent as REF*G1)")
    count = add.add_mutually_exclusive_group(required=True)
    count.add_argument("--visits", metavar="K", help="visits authorized (one per date of service)")
    count.add_argument("--units", metavar="K", help="units authorized (H-codes, testing hours)")
    add.add_argument("--cpt", default="", metavar="CODES", help="authorized codes, e.g. 90834,90837 (default: any)")
    add.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD")
    add.add_argument("--to", dest="end", required=True, metavar="YYYY-MM-DD")
    add.add_argument("--npi", help="only for this rendering provider")
    add.add_argument("--source", default="typed", choices=vocabulary.SOURCES)
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=cmd_auth_add)
    imp = auth_sub.add_parser(
        "import", help="read authorizations from a CSV file (all rows or none)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read authorizations from a CSV file, one per row. A file with any bad row imports "
                    "nothing and names every bad row by its line. A row whose payer, member and number are "
                    "already on file is left as it is, so importing a file twice adds nothing.",
        epilog="header (" + ", ".join(vocabulary.AUTHORIZATION_REQUIRED) + " are needed):\n  "
               + ",".join(vocabulary.AUTHORIZATION_COLUMNS) +
               "\n\nexample row:\n  87726,MEM1008,PA-2026-0042,12,visits,90834 90837,2026-10-01,2026-12-31,,portal"
               "\n\ndates are YYYY-MM-DD; unit_type is visits (default) or units; procedure_codes are separated "
               "by spaces or\nsemicolons (empty: any code); rendering_npi limits it to one clinician; source is "
               "typed (default),\nportal or eligibility.")
    imp.add_argument("file", metavar="FILE.csv")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(func=cmd_auth_import)
    listing = auth_sub.add_parser("list", help="authorizations with used and remaining (the default)")
    listing.add_argument("--all", action="store_true", help="void ones too")
    listing.add_argument("--as-of", metavar="YYYY-MM-DD",
                         help="count days to expiry and the booked appointments ahead from this day (default today)")
    listing.add_argument("--json", action="store_true",
                         help="one object per authorization, with days_to_expiry, burn_down and whether it runs "
                              "out before the booked appointments")
    listing.set_defaults(func=cmd_auth_list)
    void = auth_sub.add_parser("void", help="void an authorization entered in error")
    void.add_argument("authorization_id", type=int, metavar="ID")
    void.add_argument("--json", action="store_true")
    void.set_defaults(func=cmd_auth_void)

    p = sub.add_parser("credentialing", help="which provider is enrolled with which payer, and when",
                       description="The enrollment registry the scrubber checks rendering providers against. "
                                   "Recording an enrollment checks the provider's claims with that payer not "
                                   "yet sent again. CSV header: " + ",".join(vocabulary.ENROLLMENT_COLUMNS))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_credentialing_list)
    cred_sub = p.add_subparsers(dest="credentialing_command", metavar="ACTION")
    imp = cred_sub.add_parser("import", help="read enrollments from a CSV file (all rows or none)")
    imp.add_argument("file", metavar="FILE.csv")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(func=cmd_credentialing_import)
    add = cred_sub.add_parser("add", help="record one enrollment (same NPI, payer and effective date: updated)")
    add.add_argument("--npi", required=True)
    add.add_argument("--payer", required=True, metavar="PAYER_ID")
    add.add_argument("--status", required=True, choices=vocabulary.ENROLLMENT_STATUSES)
    add.add_argument("--effective", metavar="YYYY-MM-DD")
    add.add_argument("--end", metavar="YYYY-MM-DD")
    add.add_argument("--out-of-network", action="store_true")
    add.add_argument("--era", action="store_true", help="enrolled for ERA (835)")
    add.add_argument("--eft", action="store_true", help="enrolled for EFT")
    add.add_argument("--reattestation-due", metavar="YYYY-MM-DD", help="next CAQH re-attestation date")
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=cmd_credentialing_add)
    listing = cred_sub.add_parser("list", help="the registry (the default)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_credentialing_list)


def _count(text: str, unit_type: str) -> Decimal:
    """``--visits``/``--units`` read as ``auth import`` reads a quantity: finite, positive, visits whole."""
    from bhhub.ledger.authorizations import parse_quantity

    try:
        return parse_quantity(text, unit_type, name=f"--{unit_type}")
    except ValueError as exc:
        raise UsageError(str(exc)) from None


# --- auth ---------------------------------------------------------------------------------------


def cmd_auth_add(args: argparse.Namespace) -> int:
    from bhhub.ledger import authorizations as ledger
    from bhhub.ledger import rescrub
    from bhhub.ledger.payers import check_known_payer

    unit_type, text = ("visits", args.visits) if args.visits is not None else ("units", args.units)
    quantity = _count(text, unit_type)
    start, end = date_option(args.start, "--from"), date_option(args.end, "--to")
    with open_hub(args) as hub, hub.store.session() as session:
        check_known_payer(session, hub.mappings, args.payer)
        with refused_as_usage():  # the request's own facts (dates, count, codes) or one on file: exit code 2
            row = ledger.add(session, payer_id=args.payer, member_id=args.member, number=args.number,
                             quantity=quantity, unit_type=unit_type, start=start, end=end,
                             procedure_codes=args.cpt.split(","), rendering_npi=args.npi, source=args.source)
        hub.audit(session, "add_authorization", "authorization", [row.id], None)
        checked = rescrub.for_members(hub, session, [(row.payer_id, row.member_id)],
                                      f"authorization {row.id} added")
        session.commit()
        data = _auth_data(row, Decimal(0))
    if args.json:
        print_json({**data, "rescrubbed": checked.as_dict()})
    else:
        print(f"authorization {data['id']} ({data['number']}): {ledger.count_text(data['authorized'])} {data['unit_type']} "
              f"from {data['start']} to {data['end']}")
        _print_rescrubbed(checked)
    return 0


def cmd_auth_import(args: argparse.Namespace) -> int:
    from bhhub.ledger import authorization_imports, rescrub
    from bhhub.ledger.payers import known_payer_ids

    input_file(args.file)
    with open_hub(args) as hub, hub.store.session() as session:
        result = authorization_imports.import_csv(session, args.file, known_payer_ids(session, hub.mappings))
        ids = [row.id for row in result.added]
        if ids:
            hub.audit(session, "import_authorizations", "authorization", ids, None)
        checked = rescrub.for_members(hub, session, [(r.payer_id, r.member_id) for r in result.added],
                                      f"{len(ids)} authorization(s) imported")
        session.commit()
    if args.json:
        print_json({**result.counts(), "ids": ids, "rescrubbed": checked.as_dict()})
        return 0
    print(f"{args.file}: {len(ids)} authorization(s) added, {result.on_file} already on file")
    if result.differing_lines:
        lines = ", ".join(str(n) for n in result.differing_lines)
        print(f"  line(s) {lines}: on file with other terms, left as they are "
              "(void the one on file with `bhhub auth void ID` and import again to replace it)")
    _print_rescrubbed(checked)
    return 0


def _print_rescrubbed(checked: rescrub.Rescrubbed) -> None:
    print(checked.summary())
    for c in checked.changed:
        print(f"  {c['patient_control_number']}: {c['from']} -> {c['to']}")


def _auth_data(row, used: Decimal) -> dict:
    from bhhub.ledger.authorization_status import authorization_data

    return authorization_data(row, used)


def cmd_auth_list(args: argparse.Namespace) -> int:
    from bhhub.ledger import authorizations as ledger
    from bhhub.ledger.authorization_status import authorization_status

    as_of = date_option(getattr(args, "as_of", None), "--as-of")
    with open_hub(args) as hub, hub.store.session() as session:
        data = authorization_status(hub, session, as_of=as_of, include_void=getattr(args, "all", False))
        session.commit()
    if args.json:
        print_json(data)
    elif not data:
        print("no authorizations on file (add one with `bhhub auth add`)")
    else:
        print_table(["ID", "PAYER", "MEMBER", "NUMBER", "CODES", "FROM", "TO", "NPI", "AUTHORIZED", "USED", "LEFT", "STATUS"],
                    [(d["id"], d["payer_id"], d["member_id"], d["number"], ",".join(d["procedure_codes"]) or "any",
                      d["start"], d["end"], d["rendering_npi"] or "any", f"{ledger.count_text(d['authorized'])} {d['unit_type']}",
                      ledger.count_text(d["used"]), ledger.count_text(d["remaining"]), d["status"]) for d in data])
        for d in data:
            if d["runs_out_before_appointments"]:
                print(f"  {d['id']}: runs out before the booked appointments: {d['appointments_ahead']} ahead need "
                      f"{ledger.count_text(d['needed_ahead'])}, {ledger.count_text(d['remaining'])} left; the first "
                      f"not covered is on {d['first_uncovered_appointment']}")
            elif d["status"] == "active" and 0 <= d["days_to_expiry"] <= 30:
                print(f"  {d['id']}: ends in {d['days_to_expiry']} day(s)")
    return 0


def cmd_auth_void(args: argparse.Namespace) -> int:
    from bhhub.ledger import authorizations as ledger
    from bhhub.ledger import rescrub

    with open_hub(args) as hub, hub.store.session() as session:
        with refused_as_usage():  # void already: exit code 2
            row = ledger.void(session, args.authorization_id)
        hub.audit(session, "void_authorization", "authorization", [row.id], None)
        checked = rescrub.for_members(hub, session, [(row.payer_id, row.member_id)],
                                      f"authorization {row.id} void")
        session.commit()
    if args.json:
        print_json({"id": args.authorization_id, "status": "void", "rescrubbed": checked.as_dict()})
    else:
        print(f"authorization {args.authorization_id} void")
        _print_rescrubbed(checked)
    return 0


# --- credentialing ------------------------------------------------------------------------------


def cmd_credentialing_import(args: argparse.Namespace) -> int:
    from bhhub.ledger import credentialing, rescrub
    from bhhub.ledger.payers import known_payer_ids

    input_file(args.file)
    with open_hub(args) as hub, hub.store.session() as session:
        pairs: set[tuple[str, str]] = set()
        counts = credentialing.import_csv(session, args.file, pairs, known_payer_ids(session, hub.mappings))
        checked = rescrub.for_providers(hub, session, pairs, "enrollments imported")
        session.commit()
    if args.json:
        print_json({**counts, "rescrubbed": checked.as_dict()})
    else:
        print(f"{args.file}: {counts['added']} enrollment(s) added, {counts['updated']} updated")
        _print_rescrubbed(checked)
    return 0


def cmd_credentialing_add(args: argparse.Namespace) -> int:
    from bhhub.ledger import credentialing, rescrub
    from bhhub.ledger.payers import check_known_payer

    facts = credentialing.EnrollmentFacts(
        npi=args.npi, payer_id=args.payer, status=args.status, effective=date_option(args.effective, "--effective"),
        end=date_option(args.end, "--end"), in_network=not args.out_of_network, era=args.era, eft=args.eft,
        reattestation_due=date_option(args.reattestation_due, "--reattestation-due"))
    with open_hub(args) as hub, hub.store.session() as session:
        check_known_payer(session, hub.mappings, args.payer)
        with refused_as_usage():  # an NPI failing its check digit, an end before the start: exit code 2
            row, created = credentialing.add(session, facts)
        checked = rescrub.for_providers(hub, session, [(row.payer_id, row.npi)], f"enrollment {row.id} recorded")
        session.commit()
    if args.json:
        print_json({"id": row.id, "action": "added" if created else "updated", "rescrubbed": checked.as_dict()})
    else:
        print(f"enrollment {row.id} {'added' if created else 'updated'}: provider {row.npi} {row.status} "
              f"with payer {row.payer_id}")
        _print_rescrubbed(checked)
    return 0


def cmd_credentialing_list(args: argparse.Namespace) -> int:
    from bhhub.ledger import credentialing

    with open_hub(args) as hub, hub.store.session() as session:
        data = [{"id": r.id, "npi": r.npi, "payer_id": r.payer_id, "status": r.status, "effective": r.effective_date,
                 "end": r.end_date, "in_network": r.in_network, "era": r.era_enrolled, "eft": r.eft_enrolled,
                 "reattestation_due": r.reattestation_due, "source": r.source}
                for r in credentialing.list_enrollments(session)]
    if args.json:
        print_json(data)
    elif not data:
        print("no enrollments recorded (claims get a credentialing.unknown warning)")
    else:
        print_table(["ID", "NPI", "PAYER", "STATUS", "EFFECTIVE", "END", "NETWORK", "ERA", "EFT", "RE-ATTEST"],
                    [(d["id"], d["npi"], d["payer_id"], d["status"], d["effective"], d["end"],
                      "in" if d["in_network"] else "out", "yes" if d["era"] else "no", "yes" if d["eft"] else "no",
                      d["reattestation_due"]) for d in data])
    return 0
