"""``bhhub exchange``, ``bhhub run``, ``bhhub mailbox``, ``bhhub transmissions``, ``bhhub alerts``."""

from __future__ import annotations

import argparse
import sys

from bhhub.cli.commands import open_hub, unknown_claims
from bhhub.cli.output import print_json, print_table
from bhhub.errors import UsageError


def add_commands(sub) -> None:
    p = sub.add_parser("exchange", help="exchange files with the clearinghouse mailboxes now (upload and poll)",
                       description="Run one exchange cycle: finish interrupted uploads, send every claim "
                                   "ready to bill, pick up TA1/999/277CA/835 files and apply them.")
    p.add_argument("--mailbox", metavar="NAME", help="only this mailbox (default: all)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_exchange)

    p = sub.add_parser("run", help="run the scheduled exchanges until stopped (Ctrl-C)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="The embedded runner: each mailbox's schedule, and a dispatcher that "
                                   "raises alerts for late acknowledgments\nand sends alerts to people "
                                   "([notify] in bhhub.toml: email, webhook; or a plugin). One runner per hub home.\n\n"
                                   "It logs one line per exchange cycle and per file sent or received (ids and file\n"
                                   "names, never PHI); -v adds the hub's progress lines. --metrics-port serves\n"
                                   "Prometheus metrics on /metrics and a health check on /healthz (200 or 503).")
    p.add_argument("--log-file", metavar="FILE", help="log to FILE, rotated by size, instead of standard error")
    p.add_argument("--log-max-bytes", type=int, default=10 * 1024 * 1024, metavar="N",
                   help="rotate the log file at N bytes (default 10 MB)")
    p.add_argument("--log-backups", type=int, default=5, metavar="N", help="rotated files to keep (default 5)")
    p.add_argument("--log-format", choices=("text", "json"), default="text",
                   help="text (default) or json: one object per line with time (UTC, with its offset), level, "
                        "logger, message and fields")
    p.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve /metrics and /healthz on this port (default: off; 0 picks a free one)")
    p.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST",
                   help="address for --metrics-port (default 127.0.0.1: loopback only)")
    p.set_defaults(func=cmd_run, watched=True)

    p = sub.add_parser("mailbox", help="list mailboxes, show how they stand, or test one's connection")
    mailbox_sub = p.add_subparsers(dest="mailbox_command", metavar="ACTION")
    p.set_defaults(func=cmd_mailbox_list, json=False)
    listing = mailbox_sub.add_parser("list", help="the configured mailboxes")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_mailbox_list)
    status = mailbox_sub.add_parser(
        "status", help="each mailbox's last exchange, files in flight and overdue responses",
        description="For each configured mailbox: its last exchange (when, ok or failed and why), the files "
                    "sent and not yet answered by a TA1/999, and the uploads whose 999 is overdue (the profile's "
                    "expect_999_within_hours; the ack_missing alerts). Reads the store only: no connection.")
    status.add_argument("--json", action="store_true",
                        help="JSON array, one object per mailbox (bhhub.exchange.mailbox_status.mailbox_status)")
    status.set_defaults(func=cmd_mailbox_status)
    test = mailbox_sub.add_parser("test", help="connect, check the host key, log in and list the folders")
    test.add_argument("name", metavar="NAME")
    test.add_argument("--json", action="store_true")
    test.set_defaults(func=cmd_mailbox_test)
    from bhhub.cli.mailbox_reroute import add_reroute

    add_reroute(mailbox_sub)

    p = sub.add_parser("transmissions", help="837P files sent to mailboxes, with their state")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_transmissions)

    p = sub.add_parser("resubmit", help="send rejected claims again with the next exchange",
                       description="Put claims a TA1, 999 or 277CA rejected back in the queue: the next "
                                   "exchange sends them in a new file. Fix the cause first (the reason is in "
                                   "`bhhub claims --status rejected`). Claims in flight or adjudicated are refused.")
    p.add_argument("claims", nargs="*", metavar="CLAIM", help="patient control numbers (CLM01)")
    p.add_argument("--all-rejected", action="store_true", help="every rejected claim")
    p.add_argument("--reason", default="rejection resolved", help="recorded in the claim's history")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_resubmit)

    p = sub.add_parser("scrub", help="run every check again on the claims not yet sent",
                       description="Re-run every claim check (after a table, registry or plugin changed) on "
                                   "each claim that is ready or needs attention. Claims with errors stay out of "
                                   "batches; `bhhub claims --status needs_attention` shows their findings.")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_scrub)

    p = sub.add_parser("override", help="bill a claim despite a finding, with the reason (recorded, audited)",
                       description="Record that a person decided a finding does not apply to this claim (for "
                                   "example a payer exception confirmed by phone). The reason and who gave it are "
                                   "kept; the claim is checked again and goes out if nothing else blocks it.")
    p.add_argument("claim", metavar="CLAIM", help="patient control number (CLM01)")
    p.add_argument("code", metavar="CODE", help="the finding's code, e.g. coding.time_mismatch")
    p.add_argument("--line", type=int, metavar="N", help="the finding's line (when it is about a line)")
    p.add_argument("--reason", required=True, help="why it does not apply; recorded with your user name")
    p.add_argument("--json", action="store_true", help="the override recorded and the claim's status, as an object")
    p.set_defaults(func=cmd_override)

    p = sub.add_parser("alerts", help="open alerts (missing acknowledgments, unreachable mailboxes, missed runs)")
    p.add_argument("--all", action="store_true", help="cleared ones too")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_alerts)


def _mailboxes(hub, only: str | None) -> list:
    from bhhub.exchange.mailboxes import load_mailboxes

    mailboxes = load_mailboxes(hub)
    if only is not None:
        from bhhub.exchange.routing import known_mailbox

        return [mailboxes[known_mailbox(hub, only)]]
    if not mailboxes:
        raise UsageError(f"no mailboxes are configured; add a [mailboxes.NAME] table to "
                         f"{hub.settings.home / 'bhhub.toml'} (see README: Exchanging with a clearinghouse)")
    return list(mailboxes.values())


def cmd_exchange(args: argparse.Namespace) -> int:
    from bhhub.exchange.cycle import exchange

    def waiting(message: str) -> None:
        print(f"bhhub: {message}", file=sys.stderr, flush=True)

    with open_hub(args) as hub:
        reports = [exchange(hub, mailbox, waiting=waiting) for mailbox in _mailboxes(hub, args.mailbox)]
    if args.json:
        print_json([
            {"mailbox": r.mailbox, "ok": r.ok, "error": r.error,
             "sent": [s.__dict__ for s in r.sent], "picked_up": [p.__dict__ for p in r.picked_up]}
            for r in reports
        ])
    else:
        for r in reports:
            print(f"mailbox {r.mailbox}: {'ok' if r.ok else 'FAILED: ' + str(r.error)}")
            for s in r.sent:
                print(f"  sent      {s.remote_name}: {s.claims} claims ({s.how.replace('_', ' ')})")
            for p in r.picked_up:
                detail = f" [inbox item {p.inbox_item_id}]" if p.inbox_item_id else ""
                reason = f": {p.reason}" if p.reason else ""
                print(f"  received  {p.name}: {p.outcome}{reason}{detail}")
    return 0 if all(r.ok for r in reports) else 1


def cmd_run(args: argparse.Namespace) -> int:
    from bhhub.exchange.runner import run

    metrics = None
    if args.metrics_port is not None:
        if not 0 <= args.metrics_port <= 65535:
            raise UsageError(f"--metrics-port must be 0-65535, not {args.metrics_port}")
        metrics = (args.metrics_host, args.metrics_port)
    with open_hub(args) as hub:
        return run(hub, metrics=metrics)


def cmd_mailbox_list(args: argparse.Namespace) -> int:
    from bhhub.exchange.mailboxes import load_mailboxes

    with open_hub(args) as hub:
        mailboxes = load_mailboxes(hub)
    rows = [{"name": m.name, "profile": m.profile.key, "clearinghouse": m.profile.name,
             "transport": m.transport.name, "schedule": m.schedule,
             "outbound": m.profile.outbound_dir, "inbound": m.profile.inbound_dir} for m in mailboxes.values()]
    if args.json:
        print_json(rows)
    elif not rows:
        print("no mailboxes configured")
    else:
        print_table(["MAILBOX", "CLEARINGHOUSE", "SCHEDULE", "OUTBOUND", "INBOUND"],
                    [(r["name"], r["clearinghouse"], r["schedule"], r["outbound"], r["inbound"]) for r in rows])
    return 0


def cmd_mailbox_status(args: argparse.Namespace) -> int:
    from bhhub.exchange.mailbox_status import mailbox_status

    with open_hub(args) as hub, hub.store.session() as session:
        data = mailbox_status(hub, session)
    if args.json:
        print_json(data)
        return 0
    if not data:
        print("no mailboxes configured")
        return 0
    for m in data:
        last = m["last_exchange"]
        said = "no exchange yet" if last is None else f"last exchange {last['at']:%Y-%m-%d %H:%M} " + (
            "ok" if last["outcome"] == "ok" else f"FAILED: {last['error']}")
        print(f"mailbox {m['mailbox']} ({m['clearinghouse']}): {said}; {len(m['in_flight'])} file(s) in flight, "
              f"{len(m['missing'])} response(s) overdue")
        for f in m["in_flight"]:
            print(f"  in flight  {f['remote_name']} (transmission {f['transmission_id']}, {f['kind']}): {f['state']}")
        for f in m["missing"]:
            print(f"  MISSING    {f['expected']} for {f['remote_name']} (transmission {f['transmission_id']}, "
                  f"uploaded {f['uploaded_at']:%Y-%m-%d %H:%M}, due within {f['due_within_hours']:g} h)")
    return 0


def cmd_mailbox_test(args: argparse.Namespace) -> int:
    with open_hub(args) as hub:
        [mailbox] = _mailboxes(hub, args.name)
    profile = mailbox.profile
    report = mailbox.transport.test(mailbox.connection, [profile.outbound_dir, profile.inbound_dir])
    if args.json:
        print_json({"mailbox": mailbox.name, "ok": report.ok,
                    "steps": [{"step": s, "passed": ok, "message": m} for s, ok, m in report.steps]})
    else:
        for step, passed, message in report.steps:
            print(f"{'ok  ' if passed else 'FAIL'}  {step}: {message}")
        print(f"mailbox {mailbox.name}: {'ready' if report.ok else 'NOT ready'}")
    return 0 if report.ok else 1


def cmd_transmissions(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from bhhub.store import schema

    with open_hub(args) as hub, hub.store.session() as session:
        t, b = schema.Transmission, schema.Batch
        # the columns shown, not the batches: a Batch row carries its whole interchange's bytes
        rows = session.execute(
            select(t.id, t.mailbox, t.remote_name, t.state, t.attempts, t.batch_id, b.interchange_control_number,
                   b.claim_count, t.uploaded_at, t.acknowledged_at, t.last_error)
            .join(b, b.id == t.batch_id).order_by(t.id)
        ).all()
        data = [{"id": r.id, "mailbox": r.mailbox, "remote_name": r.remote_name, "state": r.state,
                 "attempts": r.attempts, "batch_id": r.batch_id, "interchange_control_number": r.interchange_control_number,
                 "claims": r.claim_count, "uploaded_at": r.uploaded_at, "acknowledged_at": r.acknowledged_at,
                 "last_error": r.last_error} for r in rows]
    if args.json:
        print_json(data)
    elif not data:
        print("no transmissions yet")
    else:
        print_table(["ID", "MAILBOX", "STATE", "ISA13", "CLAIMS", "UPLOADED", "FILE"],
                    [(d["id"], d["mailbox"], d["state"], d["interchange_control_number"], d["claims"],
                      d["uploaded_at"], d["remote_name"]) for d in data])
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    from bhhub.exchange.alert_list import alerts

    with open_hub(args) as hub, hub.store.session() as session:
        data = alerts(session, open_only=not args.all)
    if args.json:
        print_json(data)
    elif not data:
        print("no open alerts")
    else:
        for a in data:
            state = f"cleared {a['cleared_at']:%Y-%m-%d %H:%M}" if a["cleared_at"] else "OPEN"
            print(f"{a['raised_at']:%Y-%m-%d %H:%M}  {state}  {a['kind']} (x{a['occurrences']}): {a['message']}")
    return 0


def cmd_resubmit(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from bhhub.store import schema

    from bhhub.claims.build import resubmit
    from bhhub.errors import InputError
    from bhhub.model import ClaimStatus

    if not args.claims and not args.all_rejected:
        raise UsageError("name the claims to send again (CLM01), or --all-rejected")
    if not args.reason.strip():  # kept in the claim's history: an empty one says nothing
        raise UsageError("--reason must say what was fixed (default: \"rejection resolved\")")
    args.reason = args.reason.strip()
    done, refused = [], []
    with open_hub(args) as hub, hub.store.session() as session:
        query = select(schema.Claim).order_by(schema.Claim.id)
        if args.all_rejected:
            query = query.where(schema.Claim.status == ClaimStatus.REJECTED.value)
        else:
            query = query.where(schema.Claim.patient_control_number.in_(args.claims))
        rows = session.scalars(query).all()
        unknown_claims({r.patient_control_number for r in rows}, [] if args.all_rejected else args.claims)
        for row in rows:
            try:
                resubmit(session, row, args.reason)
                done.append(row.patient_control_number)
            except InputError as exc:
                refused.append({"patient_control_number": row.patient_control_number, "reason": str(exc)})
        hub.audit(session, "resubmit", "claim", [r.id for r in rows if r.patient_control_number in done], args.reason)
        session.commit()
    if args.json:
        print_json({"resubmitted": done, "refused": refused})
    else:
        for pcn in done:
            print(f"queued     {pcn}: goes out with the next exchange")
        for r in refused:
            print(f"refused    {r['patient_control_number']}: {r['reason']}")
    return 1 if refused else 0


def cmd_scrub(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from bhhub.store import schema

    from bhhub.claims.build import UNSENT, rescrub
    from bhhub.scrub.engine import BulkContext

    changes, counts = [], {"ready": 0, "needs_attention": 0}
    with open_hub(args) as hub, hub.store.session() as session:
        rows = session.scalars(select(schema.Claim).where(schema.Claim.status.in_(UNSENT))
                               .order_by(schema.Claim.id)).all()
        context = BulkContext(hub)
        for row in rows:
            before = row.status
            after = rescrub(hub, session, row, context)
            counts[after] += 1
            if after != before:
                changes.append({"patient_control_number": row.patient_control_number, "from": before, "to": after})
        hub.audit(session, "scrub", "claim", [r.id for r in rows], None)
        session.commit()
    if args.json:
        print_json({"checked": len(rows), **counts, "changed": changes})
    else:
        print(f"{len(rows)} claims not yet sent checked: {counts['ready']} ready, {counts['needs_attention']} "
              f"need attention")
        for c in changes:
            print(f"  {c['patient_control_number']}: {c['from']} -> {c['to']}")
        if counts["needs_attention"]:
            print("see `bhhub claims --status needs_attention` for the findings and their fixes")
    return 0


def _check_overridable(row, args: argparse.Namespace) -> None:
    """A usage error (exit code 2) for an override the hub refuses: a claim already sent, a
    finding that would make the 837P invalid, or one the claim does not have."""
    from bhhub.claims.build import OVERRIDABLE
    from bhhub.scrub.never_overridden import why_not_overridable

    if row.status not in OVERRIDABLE:
        raise UsageError(f"claim {args.claim} is {row.status}: an override changes only a claim not yet sent "
                         f"({', '.join(OVERRIDABLE)}); nothing was changed")
    why = why_not_overridable(args.code)
    if why is not None:
        raise UsageError(f"{args.code} cannot be overridden: {why}; the 837P would be invalid, so fix the "
                         "claim's data (in the EHR, then send the encounter again)")
    found = [f for f in row.findings if f.code == args.code and f.line_number == args.line]
    if not found:
        shown = ", ".join(f"{f.code}" + (f" --line {f.line_number}" if f.line_number else "") for f in row.findings)
        raise UsageError(f"claim {args.claim} has no finding {args.code}"
                         + (f" on line {args.line}" if args.line else "") + f" (its findings: {shown or 'none'})")


def cmd_override(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from bhhub.claims.build import rescrub
    from bhhub.store import schema

    if not args.reason.strip():
        raise UsageError("--reason must say why the finding does not apply")
    with open_hub(args) as hub, hub.store.session() as session:
        row = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == args.claim)
                              .order_by(schema.Claim.revision.desc())).first()
        if row is None:
            raise UsageError(f"no claim {args.claim}")
        table = schema.FindingOverride
        override = session.scalars(select(table).where(table.claim_id == row.id, table.code == args.code,
                                                       table.line_number.is_(None) if args.line is None
                                                       else table.line_number == args.line)
                                   .order_by(table.id)).first()
        # the same command twice records one override, as `notice add` does; run again once the
        # claim has gone out, it still reports the one on file
        repeat = override is not None
        if not repeat:
            _check_overridable(row, args)
            override = table(claim_id=row.id, code=args.code, line_number=args.line,
                             reason=args.reason.strip(), actor=hub.actor)
            session.add(override)
            hub.audit(session, "override_finding", "claim", [row.id], f"{args.code}: {args.reason.strip()}")
            session.flush()
        status = (None if repeat else rescrub(hub, session, row)) or row.status
        session.commit()
        data = {"id": override.id, "patient_control_number": row.patient_control_number, "revision": row.revision,
                "code": override.code, "line": override.line_number, "reason": override.reason,
                "actor": override.actor, "created_at": override.created_at, "status": status}
    if args.json:
        print_json(data)
        return 0
    if repeat:
        print(f"{args.claim}: {args.code} already overridden (override {override.id}, {override.reason}); "
              f"nothing changed, the claim is {status}")
        return 0
    print(f"{args.claim}: {args.code} overridden ({args.reason.strip()}); the claim is now {status}")
    return 0
