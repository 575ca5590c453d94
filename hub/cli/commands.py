"""The built-in ``bhhub`` sub-commands.

Each imports the heavy parts it needs (SQLAlchemy, the store, the readers) when it runs, so that
parsing the command line stays cheap (``hub.cli.main``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from hub.cli.output import print_json, print_table, progress
from hub.errors import InputError, UsageError

if TYPE_CHECKING:
    from hub import intake
    from hub.app import Hub
    from hub.store import schema


def open_hub(args: argparse.Namespace, *, create: bool = False) -> Hub:
    """The hub ``--home`` names; one that does not exist is a usage error unless ``create``."""
    from hub.app import Hub, existing_home

    if not create:
        existing_home(args.home)
    return Hub.open(args.home, plugins=getattr(args, "plugin_host", None))


def cmd_init(args: argparse.Namespace) -> int:
    from hub.config import CONFIG_NAME, DEFAULT_CONFIG
    from hub.store.db import _safe

    with open_hub(args, create=True) as hub:
        config = hub.settings.home / CONFIG_NAME
        if not config.exists():
            config.write_text(DEFAULT_CONFIG, encoding="utf-8")
        print(f"hub home: {hub.settings.home}")
        print(f"config:   {config}")
        print(f"store:    {_safe(hub.settings.database_url)} (schema current)")
    return 0


# --- intake -------------------------------------------------------------------------------


def _files(paths: list[str], home: Path) -> Iterator[Path]:
    """The files named, and those inside folders named, except hidden ones and the hub's own."""
    for name in paths:
        path = Path(name)
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*")
                if p.is_file() and not p.name.startswith(".") and not p.resolve().is_relative_to(home)
            )
        else:
            yield path


PARALLEL_FROM = 500  # files; below this a worker's start-up costs more than it saves


def cmd_intake(args: argparse.Namespace) -> int:
    from hub import intake_many

    failed = 0
    results = []

    def report(entry: dict, line: str) -> None:
        results.append(entry)
        if not args.json:
            print(line)

    with open_hub(args) as hub:
        files = list(_files(args.paths, hub.settings.home))
        if not files:
            raise UsageError(f"no files to read in {', '.join(args.paths)} (hidden files and files inside the "
                             f"hub home {hub.settings.home} are skipped)")

        def payloads() -> Iterator[tuple[str, bytes]]:
            nonlocal failed
            for path in progress(files, "intake"):
                try:
                    yield str(path), path.read_bytes()
                except OSError as exc:
                    failed += 1
                    report({"source": str(path), "outcome": "unreadable", "reason": exc.strerror},
                           f"unreadable   {path}: {exc.strerror}")

        # Many files: parse in a second process while this one stores (when there are two cores).
        parallel = len(files) >= PARALLEL_FROM and (os.cpu_count() or 1) > 1
        for result in intake_many.receive_many(hub, payloads(), parse_in_worker=parallel):
            failed += result.failed
            report(_intake_json(result), _intake_line(result))
    if args.json:
        print_json(results)
    elif len(results) > 1:
        imported = sum(r["outcome"] == "imported" for r in results)
        # A file of several HL7 messages is one item per message (file.hl7#2).
        noun = "files" if all("#" not in str(r["source"]) for r in results) else "items"
        print(f"{len(results)} {noun}: {imported} imported, "
              f"{sum(r['outcome'] == 'duplicate' for r in results)} duplicate, {failed} failed")
    return 1 if failed else 0


def _intake_line(result: intake.IntakeResult) -> str:
    return "\n".join([_intake_outcome(result)] + [f"             note: {note}" for note in result.notes])


def _intake_outcome(result: intake.IntakeResult) -> str:
    if result.outcome == "quarantined":
        return f"quarantined  {result.source_name}: {result.reason}  [inbox item {result.item_id}]"
    if result.outcome == "duplicate":
        return f"duplicate    {result.source_name}: {result.reason}"
    if result.summary is not None:
        return f"applied      {result.source_name}: {result.summary}"
    if result.records and not result.claims:
        return f"imported     {result.source_name}: {_records_summary(result.records)}"
    states: dict[str, int] = {}
    for claim in result.claims:
        states[claim.status] = states.get(claim.status, 0) + 1
    summary = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(states.items()))
    noun = "claim" if len(result.claims) == 1 else "claims"
    lines = [f"imported     {result.source_name}: {len(result.claims)} {noun} ({summary})"]
    lines += [f"             note: {c.note}" for c in result.claims if c.note]
    if result.records:
        lines.append(f"             also: {_records_summary(result.records)}")
    return "\n".join(lines)


def _records_summary(records) -> str:
    """``1 registration (patient 7, 1 coverage)``: ids and counts only, never PHI."""
    parts = []
    for kind in ("registration", "appointment"):
        mine = [r for r in records if r.kind == kind]
        if mine:
            noun = kind if len(mine) == 1 else f"{kind}s"
            parts.append(f"{len(mine)} {noun} ({'; '.join(r.detail for r in mine)})")
    return ", ".join(parts)


def _intake_json(result: intake.IntakeResult) -> dict:
    return {
        "source": result.source_name,
        "inbox_item": result.item_id,
        "outcome": result.outcome,
        "format": result.format,
        "reason": result.reason,
        "summary": result.summary,
        "updated": result.updated,
        "claims": [
            {"patient_control_number": c.patient_control_number, "status": c.status, "action": c.action, "note": c.note}
            for c in result.claims
        ],
        "records": [{"kind": r.kind, "id": r.row_id, "action": r.action} for r in result.records],
        "notes": list(result.notes),
    }


# --- claims -------------------------------------------------------------------------------


def claim_json(session, row: schema.Claim, rules=None) -> dict:
    """``rules`` (the denial table) adds ``remittance``: what the 835s said (hub.remit.claim_view)."""
    from sqlalchemy import select

    from hub.acks.standing import acknowledgment_json
    from hub.store import schema

    coverage = session.get(schema.Coverage, row.coverage_id)
    waived = {(o.code, o.line_number): o.reason for o in session.scalars(
        select(schema.FindingOverride).where(schema.FindingOverride.claim_id == row.id))}
    return {
        "id": row.id,
        "patient_control_number": row.patient_control_number,
        "patient_id": row.patient_id,  # what `bhhub eligibility check --patient` takes
        "revision": row.revision,
        "frequency_code": row.frequency_code,
        "status": row.status,
        "payer_id": coverage.payer.payer_id,
        "member_id": coverage.member_id,
        "service_date": row.service_date,
        "total_charge": row.total_charge,
        "place_of_service": row.place_of_service,
        "prior_authorization": row.prior_authorization,
        "diagnoses": row.diagnoses,
        "lines": [
            {
                "line": line.line_number,
                "procedure_code": line.procedure_code,
                "modifiers": line.modifiers,
                "units": line.units,
                "charge": line.charge,
                "diagnosis_pointers": line.diagnosis_pointers,
                "service_date": line.service_date,
            }
            for line in row.lines
        ],
        "batch_id": row.batch_id,
        "payer_claim_control_number": row.payer_claim_control_number,
        "acknowledgment": acknowledgment_json(session, row),
        "status_reason": session.scalar(
            select(schema.ClaimStatusEvent.reason).where(schema.ClaimStatusEvent.claim_id == row.id)
            .order_by(schema.ClaimStatusEvent.id.desc()).limit(1)),
        "findings": [
            {"code": f.code, "severity": f.severity, "line": f.line_number, "message": f.message, "fix": f.fix,
             "overridden": waived.get((f.code, f.line_number))}
            for f in row.findings
        ],
        "remittance": _remittance(session, row, rules),
    }


def _remittance(session, row: schema.Claim, rules) -> dict | None:
    if rules is None or row.batch_id is None:
        return None
    from hub.remit.claim_view import remittance_of

    return remittance_of(session, rules, row)


def cmd_claims(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from hub.store import schema

    with open_hub(args) as hub, hub.store.session() as session:
        query = select(schema.Claim).order_by(schema.Claim.id)
        if args.status:
            query = query.where(schema.Claim.status == args.status)
        rows = session.scalars(query).all()
        from hub.remit.denials import DenialRules

        rules = DenialRules.load(hub.mappings)
        data = [claim_json(session, row, rules) for row in rows]
        hub.audit(session, "list_claims", "claim", [r.id for r in rows], args.status)
        session.commit()
    if args.json:
        print_json(data)
        return 0
    if not data:
        print("no claims" + (f" with status {args.status}" if args.status else ""))
        return 0
    print_table(
        ["CLAIM", "STATUS", "PAYER", "DOS", "CHARGE", "POS", "CODES", "FINDINGS"],
        [
            (c["patient_control_number"], c["status"], c["payer_id"], c["service_date"], c["total_charge"],
             c["place_of_service"],
             " ".join(":".join([l["procedure_code"], *l["modifiers"]]) for l in c["lines"]) or "-",
             len(c["findings"]) or "")
            for c in data
        ],
    )
    for c in data:
        if c["status"] in ("rejected", "denied", "partially_paid") and c["status_reason"]:
            print(f"  {c['patient_control_number']} {c['status']}: {c['status_reason']}")
        ack = c["acknowledgment"]
        if ack and ack["outcome"] == "not_found" and c["status"] in ("batched", "submitted"):
            print(f"  {c['patient_control_number']} {c['status']}, NOT FOUND by the {ack['source']} "
                  f"({ack['kind']} {ack['code']}, {ack['effective_on']}): investigate (`bhhub status check "
                  f"{c['patient_control_number']}`); `bhhub resubmit` sends it again if the payer never got it")
        if c["remittance"]:
            from hub.remit.claim_view import lines_of

            for text in lines_of(c["remittance"]):
                print(f"  {c['patient_control_number']} {text}")
        if c["status"] == "pending_correction":
            print(f"  {c['patient_control_number']} revision {c['revision']} is a correction of the billed claim; "
                  f"send it with `bhhub followup replace {c['patient_control_number']}` (`bhhub followup corrections`)")
        for f in c["findings"]:
            where = f" line {f['line']}" if f["line"] else ""
            waived = f" [overridden: {f['overridden']}]" if f.get("overridden") else ""
            print(f"  {c['patient_control_number']}{where} {f['severity']} {f['code']}: {f['message']}. Fix: {f['fix']}"
                  f"{waived}")
    return 0


# --- export -------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from hub.batches import export_837p

    if args.max_claims < 1:
        raise UsageError("--max-claims must be at least 1")
    if args.out.endswith(("/", os.sep)):
        raise UsageError(f"--out {args.out} is a folder; name the file to write in it, e.g. {args.out}batch-0001.x12")
    set_aside: list[tuple[str, str]] = []
    recovered: list[tuple[int, str]] = []
    with open_hub(args) as hub:
        result = export_837p(hub, Path(args.out), max_claims=args.max_claims, set_aside=set_aside,
                             force=args.force, recovered=recovered,
                             waiting=lambda message: print(f"bhhub: {message}", file=sys.stderr, flush=True))
    if not args.json:
        for batch_id, path in recovered:
            print(f"wrote {path}: batch {batch_id}, whose file an interrupted export had not written")
        for pcn, code in set_aside:
            print(f"set aside {pcn}: {code} (see `bhhub claims --status needs_attention`)")
    if result is None:
        if args.json:
            print_json(None)
        else:
            print("no claims are ready to bill; nothing written (see `bhhub claims --status needs_attention`)")
        return 0
    if args.json:
        print_json({
            "batch_id": result.batch_id, "path": str(result.path), "claims": result.claim_count,
            "interchange_control_number": result.interchange_control_number,
            "patient_control_numbers": list(result.patient_control_numbers),
            "remaining_ready": result.remaining_ready,
            "set_aside": [{"claim": pcn, "code": code} for pcn, code in result.set_aside],
            "recovered": [{"batch_id": batch_id, "path": path} for batch_id, path in recovered],
        })
    else:
        print(f"wrote {result.path}: {result.claim_count} claims, ISA13 {result.interchange_control_number} "
              f"(batch {result.batch_id})")
        if result.remaining_ready:
            print(f"{result.remaining_ready} more claims are ready; run export-837 again for the next batch")
    return 0


def cmd_batch_write(args: argparse.Namespace) -> int:
    """`bhhub batch write ID --out FILE`: a stored batch's exact bytes, written again."""
    from hub.batches import write_batch

    if args.out.endswith(("/", os.sep)):
        raise UsageError(f"--out {args.out} is a folder; name the file to write in it")
    with open_hub(args) as hub:
        batch = write_batch(hub, args.batch_id, Path(args.out), force=args.force,
                            waiting=lambda message: print(f"bhhub: {message}", file=sys.stderr, flush=True))
    if args.json:
        print_json({"batch_id": batch.id, "path": str(Path(args.out)), "bytes": len(batch.content),
                    "sha256": batch.sha256, "interchange_control_number": batch.interchange_control_number})
    else:
        print(f"wrote {args.out}: batch {batch.id} ({batch.kind}, ISA13 {batch.interchange_control_number}, "
              f"{len(batch.content):,} bytes, sha256 {batch.sha256[:12]}...)")
    return 0


# --- inbox --------------------------------------------------------------------------------


def cmd_inbox(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from hub.store import schema

    with open_hub(args) as hub, hub.store.session() as session:
        query = select(schema.InboxItem).order_by(schema.InboxItem.id)
        if args.state:
            query = query.where(schema.InboxItem.state == args.state)
        items = session.scalars(query).all()
        data = [
            {"id": i.id, "source": i.source_name, "state": i.state, "format": i.format, "size": i.size,
             "sha256": i.sha256, "received_at": i.received_at, "attempts": i.attempts, "reason": i.reason}
            for i in items
        ]
    if args.json:
        print_json(data)
        return 0
    if not data:
        print("the inbox is empty")
        return 0
    print_table(["ID", "STATE", "FORMAT", "RECEIVED", "SOURCE"],
                [(d["id"], d["state"], d["format"], d["received_at"], d["source"]) for d in data])
    for d in data:
        if d["state"] == "quarantined":
            print(f"  item {d['id']}: {d['reason']}")
    return 0


def cmd_inbox_retry(args: argparse.Namespace) -> int:
    from hub import intake

    with open_hub(args) as hub:
        try:
            result = intake.retry(hub, args.item_id)
        except InputError as exc:
                raise UsageError(str(exc)) from exc
    if args.json:
        print_json(_intake_json(result))
    else:
        print(_intake_line(result))
    return 1 if result.failed else 0


# --- plugins ------------------------------------------------------------------------------


def cmd_plugins(args: argparse.Namespace) -> int:
    host = args.plugin_host
    host.hooks.intake_formats(), host.hooks.claim_checks()  # surface registration problems
    infos = host.plugin_infos()
    if args.json:
        print_json({
            "plugins": [
                {"name": i.name, "distribution": i.distribution, "version": i.version, "hooks": list(i.hooks),
                 "loaded": i.loaded, "error": i.error}
                for i in infos
            ],
            "problems": host.problems,
        })
        return 0
    print_table(["PLUGIN", "DISTRIBUTION", "VERSION", "HOOKS"],
                [(i.name, i.distribution, i.version, ", ".join(i.hooks) if i.loaded else "NOT LOADED")
                 for i in infos])
    for i in infos:
        if not i.loaded:
            print(f"  {i.name} ({i.distribution or 'unknown distribution'}) failed to load: {i.error}")
    for problem in host.problems:
        print(f"  problem: {problem}")
    return 0
