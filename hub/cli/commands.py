"""The built-in ``bhhub`` sub-commands.

Each imports the heavy parts it needs (SQLAlchemy, the store, the readers) when it runs, so that
parsing the command line stays cheap (``bhhub.cli.main``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from bhhub.cli.output import print_json, print_json_array, print_table, progress
from bhhub.common.filekinds import input_file
from bhhub.errors import InputError, UsageError

if TYPE_CHECKING:
    from bhhub.intake import inbox as intake
    from bhhub.runtime.app import Hub


def open_hub(args: argparse.Namespace, *, create: bool = False) -> Hub:
    """The hub ``--home`` names; a folder that is not a hub is a usage error unless ``create``."""
    from bhhub.runtime.app import Hub

    return Hub.open(args.home, plugins=getattr(args, "plugin_host", None), create=create)


def unknown_claims(found: set[str], named: list[str]) -> None:
    """A usage error naming the claims asked for that the hub does not have, before any is
    touched: an unknown id is exit code 2 from every command (README), never a half-done run."""
    missing = [pcn for pcn in dict.fromkeys(named) if pcn not in found]
    if missing:
        raise UsageError(f"no claim {', '.join(missing)} (see `bhhub claims`); nothing was changed")


@contextmanager
def refused_as_usage() -> Iterator[None]:
    """A request the hub refuses as it stands, whatever the store holds besides: a claim payment
    already posted, a denial already worked, an authorization that ends before it starts. The
    checks raise ``InputError`` (an importer skips such a row and goes on); for one request typed
    on the command line it is a usage error, exit code 2, nothing changed (README's table). A
    mapping table the hub cannot read (``MappingError``) is the hub's problem and stays exit 1."""
    from bhhub.errors import MappingError

    try:
        yield
    except MappingError:
        raise
    except InputError as exc:
        raise UsageError(str(exc)) from exc


def cmd_init(args: argparse.Namespace) -> int:
    from bhhub.store.db import _safe

    with open_hub(args, create=True) as hub:
        print(f"hub home: {hub.settings.home}")
        print(f"config:   {hub.settings.config_path}")
        print(f"store:    {_safe(hub.settings.database_url)} (schema current)")
    return 0


# --- intake -------------------------------------------------------------------------------


def _files(paths: list[str], home: Path) -> Iterator[Path]:
    """The files named, and those inside folders named, except hidden ones and the hub's own."""
    for name in paths:
        path = Path(name)
        input_file(path, folder_ok=True)  # a FIFO or a device: refused before anything is read
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*")
                if p.is_file() and not p.name.startswith(".") and not p.resolve().is_relative_to(home)
            )
        else:
            yield path


PARALLEL_FROM = 500  # files; below this a worker's start-up costs more than it saves


def cmd_intake(args: argparse.Namespace) -> int:
    from bhhub.intake import many as intake_many

    failed = 0
    results = []

    def report(entry: dict, line: str) -> None:
        results.append(entry)
        if not args.json:
            print(line)

    for name in args.paths:
        input_file(name, folder_ok=True)
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
    return result.to_json()  # the web workspace's intake and retry answer with the same object


# --- claims -------------------------------------------------------------------------------


def _claims_by_status(args: argparse.Namespace) -> int:
    from bhhub.claims.pipeline import status_counts

    narrowing = [name for name in ("status", "payer", "provider", "patient", "since", "until", "limit", "after")
                 if getattr(args, name, None) is not None]
    if narrowing:
        raise UsageError(f"--by-status counts every claim: drop --{narrowing[0]}")
    with open_hub(args) as hub, hub.store.session() as session:
        data = status_counts(session)
    if args.json:
        print_json(data)
    else:
        print_table(["STATUS", "CLAIMS", "CHARGES"], [(x["status"], x["claims"], f"{x['charges']:.2f}") for x in data])
    return 0


def cmd_claims(args: argparse.Namespace) -> int:
    if getattr(args, "by_status", False):
        return _claims_by_status(args)
    from bhhub.cli.output import date_option, date_range
    from bhhub.listings import Page
    from bhhub.listings.claims import audit_claims_shown, claim_filter, claim_listing
    from bhhub.remittance.denials import DenialRules

    option = lambda name: getattr(args, name, None)  # noqa: E731 - callers in code (the demo) pass only some
    since, until = date_option(option("since"), "--since"), date_option(option("until"), "--until")
    date_range(since, until)
    page = Page.from_options(option("limit"), option("after"))
    table, notes = [], []
    with open_hub(args) as hub, hub.store.session() as session:
        # a typo (an unknown payer, a malformed NPI) is not "no claims": exit code 2
        wanted = claim_filter(hub, session, status=args.status, payer=option("payer"), provider=option("provider"),
                              patient=option("patient"), since=since, until=until)
        rules = DenialRules.load(hub.mappings)
        claims = claim_listing(session, wanted, page, rules)
        try:
            if args.json:
                print_json_array(claims)
            else:
                for c in claims:  # the table is aligned over every row: cells are kept, claims are not
                    table.append(_claim_cells(c))
                    notes.extend(_claim_notes(c))
        finally:
            claims.close()  # the streaming SELECT ends, and the read with it, before the audit writes
            session.rollback()
            audit_claims_shown(hub, session, wanted, page)
            session.commit()
    if not args.json and not table:
        print("no claims" + (f" with status {args.status}" if args.status else "")
              + (f" ({wanted.describe()})" if wanted.describe() else "")
              + (f" after {page.after}" if page.after is not None else ""))
    elif not args.json:
        print_table(["CLAIM", "STATUS", "PAYER", "DOS", "CHARGE", "POS", "CODES", "FINDINGS"], table)
        for line in notes:
            print(line)
    _next_page(page, "claims")
    return 0


def _next_page(page, noun: str) -> None:
    """Where the next page starts, on stderr so stdout stays the listing (and valid JSON)."""
    if page.next_cursor is not None:
        sys.stdout.flush()  # after the page, on a terminal too
        print(f"bhhub: more {noun} follow; next page: --limit {page.limit} --after {page.next_cursor}",
              file=sys.stderr)


def _claim_cells(c: dict) -> tuple:
    return (c["patient_control_number"], c["status"], c["payer_id"], c["service_date"], c["total_charge"],
            c["place_of_service"],
            " ".join(":".join([l["procedure_code"], *l["modifiers"]]) for l in c["lines"]) or "-",
            len(c["findings"]) or "")


def _claim_notes(c: dict) -> Iterator[str]:
    """The lines under the table about one claim: why it stands where it does, what to do."""
    if c["status"] in ("rejected", "denied", "partially_paid") and c["status_reason"]:
        yield f"  {c['patient_control_number']} {c['status']}: {c['status_reason']}"
    ack = c["acknowledgment"]
    if ack and ack["outcome"] == "not_found" and c["status"] in ("batched", "submitted"):
        yield (f"  {c['patient_control_number']} {c['status']}, NOT FOUND by the {ack['source']} "
               f"({ack['kind']} {ack['code']}, {ack['effective_on']}): investigate (`bhhub status check "
               f"{c['patient_control_number']}`); `bhhub resubmit` sends it again if the payer never got it")
    if c["remittance"]:
        from bhhub.remittance.claim_view import lines_of

        for text in lines_of(c["remittance"]):
            yield f"  {c['patient_control_number']} {text}"
    if c["status"] == "pending_correction":
        yield (f"  {c['patient_control_number']} revision {c['revision']} is a correction of the billed claim; "
               f"send it with `bhhub followup replace {c['patient_control_number']}` (`bhhub followup corrections`)")
    for f in c["findings"]:
        where = f" line {f['line']}" if f["line"] else ""
        waived = f" [overridden: {f['overridden']}]" if f.get("overridden") else ""
        yield (f"  {c['patient_control_number']}{where} {f['severity']} {f['code']}: {f['message']}. Fix: {f['fix']}"
               f"{waived}")


# --- export -------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from bhhub.claims.export import export_837p

    if args.max_claims < 1:
        raise UsageError("--max-claims must be at least 1")
    if args.out.endswith(("/", os.sep)):
        raise UsageError(f"--out {args.out} is a folder; name the file to write in it, e.g. {args.out}batch-0001.x12")
    set_aside: list[tuple[str, str]] = []
    recovered: list[tuple[int, str]] = []
    with open_hub(args) as hub:
        result = export_837p(hub, Path(args.out), max_claims=args.max_claims, set_aside=set_aside,
                             force=args.force, recovered=recovered, mailbox=getattr(args, "mailbox", None),
                             waiting=lambda message: print(f"bhhub: {message}", file=sys.stderr, flush=True))
    if not args.json:
        for batch_id, path in recovered:
            print(f"wrote {path}: batch {batch_id}, whose file an interrupted export had not written")
        for pcn, code in set_aside:
            print(f"set aside {pcn}: {code} (see `bhhub claims --status needs_attention`)")
    if args.json:
        print_json(_export_json(result, set_aside, recovered))
        return 0
    if result is None:
        print("no claims are ready to bill; nothing written (see `bhhub claims --status needs_attention`)")
        return 0
    print(f"wrote {result.path}: {result.claim_count} claims, ISA13 {result.interchange_control_number} "
          f"(batch {result.batch_id})")
    if result.remaining_ready:
        print(f"{result.remaining_ready} more claims are ready; run export-837 again for the next batch")
    return 0


def _export_json(result, set_aside: list[tuple[str, str]], recovered: list[tuple[int, str]]) -> dict:
    """What ``export-837 --json`` prints: the same object whether or not a batch was written.

    With no claim ready, ``written`` is false and ``claims`` 0, and the keys about a batch
    (``batch_id``, ``path``, ``interchange_control_number``) are absent: there is no batch."""
    out: dict = {"written": result is not None, "claims": result.claim_count if result else 0}
    if result is not None:
        out.update(batch_id=result.batch_id, path=str(result.path),
                   interchange_control_number=result.interchange_control_number)
        set_aside = result.set_aside
    out.update(
        patient_control_numbers=list(result.patient_control_numbers) if result else [],
        remaining_ready=result.remaining_ready if result else 0,
        set_aside=[{"patient_control_number": pcn, "code": code} for pcn, code in set_aside],
        recovered=[{"batch_id": batch_id, "path": str(path)} for batch_id, path in recovered],
    )
    return out


def cmd_batch_write(args: argparse.Namespace) -> int:
    """`bhhub batch write ID --out FILE`: a stored batch's exact bytes, written again."""
    from bhhub.claims.export import write_batch

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
    from bhhub.listings import Page
    from bhhub.listings.inbox import inbox_listing

    page = Page.from_options(getattr(args, "limit", None), getattr(args, "after", None))
    table, notes = [], []
    with open_hub(args) as hub, hub.store.session() as session:
        items = inbox_listing(session, args.state, page)
        try:
            if args.json:
                print_json_array(items)
            else:
                for d in items:
                    table.append((d["id"], d["state"], d["format"], d["received_at"], d["source"]))
                    if d["state"] == "quarantined":
                        notes.append(f"  item {d['id']}: {d['reason']}")
        finally:
            items.close()
    if not args.json and not table:
        print(f"no inbox items after {page.after}" if page.after is not None else "the inbox is empty")
    elif not args.json:
        print_table(["ID", "STATE", "FORMAT", "RECEIVED", "SOURCE"], table)
        for line in notes:
            print(line)
    _next_page(page, "items")
    return 0


def cmd_inbox_retry(args: argparse.Namespace) -> int:
    from bhhub.intake import inbox as intake

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
    from bhhub.runtime.app import named_home

    # The plugins installed are the same for every hub, so none is needed; but a home the user
    # names must be one (README: a mistyped --home is told, wherever it is given).
    named_home(getattr(args, "home", None))
    host = args.plugin_host
    host.hooks.intake_formats(), host.hooks.claim_checks(), host.hooks.x12_transactions()  # surface registration problems
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
