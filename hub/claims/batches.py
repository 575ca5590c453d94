"""Writing the claims ready to bill into one 837P batch, recorded before it leaves the hub.

Control numbers come from persisted counters and are never reused. The batch's bytes, its
control numbers and the claims' move to ``batched`` are committed in one transaction, and the
file only takes its name after that commit, so a crash can never leave a file on disk whose
numbers the store forgot. An export never loses a batch:

- what can fail about the file is found before any claim changes state: ``--out`` naming
  anything but a regular file (a folder, a symbolic link, a device, a FIFO, a socket: even with
  ``force``) or a file already there (without ``force``) is refused first, and the bytes are
  written and fsynced to a hidden temporary file beside ``--out`` inside the transaction (a full
  disk or a folder it may not write rolls the batch back);
- after the commit the temporary file is renamed to ``--out`` (never over an existing file
  unless ``force``, and never over anything but a regular file); a kill between the two leaves a committed batch whose file the next export
  writes (``_write_unwritten``), and ``write_batch`` (`bhhub batch write ID --out FILE`) writes
  any stored batch's exact bytes again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from glob import escape as glob_escape
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import false, func, select, update
from sqlalchemy.orm.attributes import set_committed_value

from bhhub.claims.build import set_status
from bhhub.runtime.crashpoints import crash_point
from bhhub.errors import InputError, StoreError, UsageError
from bhhub.common.filekinds import not_a_file
from bhhub.model import ClaimStatus, Finding, Provider, Severity
from bhhub.store import schema
from bhhub.store.repo import claim_record, next_counter, provider_record
from bhhub.store.schema import utcnow
from bhhub.claims.claim837p import RenderedClaim, assemble_837p, render_claim
from bhhub.x12.envelope import ControlNumbers, Envelope

log = logging.getLogger(__name__)

# The 837 TR3 recommends at most 5000 claims (CLM) per transaction set.
MAX_CLAIMS_PER_BATCH = 5000


@dataclass(frozen=True)
class BatchResult:
    batch_id: int
    path: Path
    claim_count: int
    interchange_control_number: str
    patient_control_numbers: tuple[str, ...]
    remaining_ready: int
    set_aside: tuple[tuple[str, str], ...] = ()  # (patient control number, finding code) held back


def export_837p(hub, out: Path, *, max_claims: int = MAX_CLAIMS_PER_BATCH, set_aside: list | None = None,
                wait: float = 600.0, waiting=None, force: bool = False,
                recovered: list | None = None, mailbox: str | None = None) -> BatchResult | None:
    """Batch every ``ready`` claim (up to ``max_claims``) into ``out``; None when none is ready.

    ``mailbox``: only the claims routed to that mailbox (``bhhub.exchange.routing``), written
    with its envelope and its profile's line breaks, for a file uploaded to it by hand. With
    several mailboxes configured one must be named: a file never mixes them.

    ``out`` must name a file, not a folder; a file already there is refused unless ``force``
    (both before any claim changes state). ``set_aside``, when given, collects (patient control
    number, finding code) of claims held back; ``recovered`` collects (batch id, path) of
    earlier batches whose file an interruption had cut off and that this call wrote."""
    from bhhub.exchange.locks import EXCHANGE, hub_lock

    set_aside = [] if set_aside is None else set_aside
    out = _file_to_write(out, hub)
    target = _target(hub, mailbox)
    # The same lock as the exchange's: batching here never interleaves with a scheduled exchange
    # (nor with another export checking, staging and naming its file).
    with hub_lock(hub, EXCHANGE, wait=wait, waiting=waiting):
        written = _write_unwritten(hub)
        if recovered is not None:
            recovered.extend(written)
        if (out.exists() or out.is_symlink()) and not force:
            if not _any_ready(hub):
                return None  # nothing would be written, so nothing is in the way
            mine = [batch_id for batch_id, path in written if Path(path) == out.resolve()]
            held = (f"it now holds batch {mine[0]}, whose file an interrupted export had not written"
                    if mine else "it may be an earlier batch")
            raise UsageError(f"{out} already exists ({held}); give another --out, or --force to replace it")
        return _export(hub, out, max_claims, set_aside, force, target)


def _target(hub, mailbox: str | None):
    """(envelope, line breaks, payers filter) of the file: the hub's own for all ready claims,
    or a mailbox's for the claims routed to it. Checked before anything changes."""
    configured = sorted(hub.settings.file.mailboxes)
    if mailbox is None:
        if len(configured) > 1:
            raise UsageError(f"{len(configured)} mailboxes are configured ({', '.join(configured)}): say which one "
                             "this file is for with --mailbox NAME (its claims and envelope), so no file mixes them")
        return hub.settings.envelope, True, None
    from bhhub.exchange.mailboxes import outbound_envelope
    from bhhub.exchange.routing import known_mailbox, routes

    known_mailbox(hub, mailbox)
    envelope, profile = outbound_envelope(hub, mailbox)
    return envelope, profile.line_breaks if profile is not None else True, routes(hub).payers_of(mailbox)


def _file_to_write(out: Path, hub=None) -> Path:
    """``out`` as a file the export may create, or a UsageError saying why not (nothing changed yet)."""
    out = Path(out)
    if hub is not None:
        mine = _hub_own_file(hub, out)
        if mine is not None:  # --force would replace the store, the config or a raw file with an 837P
            raise UsageError(f"--out {out} is {mine}; it is never written over, even with --force: "
                             f"name a file outside the hub home (or in {hub.settings.batches_dir})")
    kind = _not_a_file(out)
    if kind == "a folder":
        raise UsageError(f"--out {out} is a folder; name the file to write in it, e.g. {out / 'batch-0001.x12'}")
    if kind is not None:  # --force replaces a file; a rename over a device or a link would replace it
        raise UsageError(f"--out {out} is {kind}, not a regular file; it is never written over, even with --force: "
                         "name a file")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"--out {out}: {parent} is a file, not a folder")
            break
    return out


def _not_a_file(path: Path) -> str | None:
    """What is at ``path`` when it is there and not a regular file, else None. A symbolic link is
    named as one, not followed: writing "through" it by rename would replace the link itself, and
    a link may point anywhere (/dev/sda)."""
    return not_a_file(path, follow_links=False)


def _hub_own_file(hub, out: Path) -> str | None:
    """What of the hub's own ``out`` is or lies in ("inside the hub home ..."), else None.

    The whole home is the hub's (store, bhhub.toml, locks, spool/, raw files, mappings/, a demo
    hub) except ``<home>/batches/``, kept for 837Ps; so are a SQLite store kept elsewhere with its
    -wal/-journal/-shm and lock files beside it, and the secret files bhhub.toml names."""
    target = _resolved(out)
    home = _resolved(hub.settings.home)
    if target.is_relative_to(home) and not target.is_relative_to(_resolved(hub.settings.batches_dir)):
        return f"inside the hub home {home}"
    database = _sqlite_file(hub.settings.database_url)
    if database is not None:
        database = _resolved(database)
        if target.parent == database.parent and (
                target.name == database.name or target.name.startswith((f"{database.name}-", f"{database.name}."))):
            return "the hub's store (or its journal or lock file)"
    for key, named in _named_files(hub.settings.raw):
        if _same_file(out, Path(named).expanduser()):
            return f"the file bhhub.toml names as {key}"
    return None


def _resolved(path: Path) -> Path:
    try:
        return Path(path).expanduser().resolve()
    except (OSError, RuntimeError):  # a link loop: compared as written
        return Path(os.path.abspath(Path(path).expanduser()))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them is not there (yet): compare where they would be
        return _resolved(a) == _resolved(b)


def _sqlite_file(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - a URL the store itself will refuse, with its own message
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _named_files(table, where: str = ""):
    """(dotted key, path) of every ``*_file`` / ``*_path`` value in bhhub.toml (secrets, CA files)."""
    if isinstance(table, dict):
        for key, value in table.items():
            dotted = f"{where}.{key}" if where else str(key)
            if isinstance(value, str) and str(key).endswith(("_file", "_path")):
                yield dotted, value
            else:
                yield from _named_files(value, dotted)
    elif isinstance(table, list):
        for item in table:
            yield from _named_files(item, where)


class NotAFile(FileExistsError):
    """A name taken, between the check and the rename, by something that is not a regular file."""


def _any_ready(hub) -> bool:
    c = schema.Claim
    with hub.store.session() as session:
        return session.scalar(select(c.id).where(c.status == ClaimStatus.READY.value).limit(1)) is not None


def _export(hub, out: Path, max_claims: int, set_aside: list, force: bool, target=None) -> BatchResult | None:
    envelope, line_breaks, payers = target or (hub.settings.envelope, True, None)
    _forget_staged(out)  # what a kill left of an earlier attempt at this name
    with hub.store.writer() as session:
        batch = create_batch(hub, session, envelope, max_claims, out, set_aside=set_aside, line_breaks=line_breaks,
                             payers=payers)
        if batch is None:
            session.commit()  # the claims set aside keep their findings
            return None
        remaining = session.scalar(_of_payers(select(func.count()).select_from(schema.Claim)
                                              .where(schema.Claim.status == ClaimStatus.READY.value), payers))
        pcns = tuple(session.scalars(select(schema.Claim.patient_control_number)
                                     .where(schema.Claim.batch_id == batch.id).order_by(schema.Claim.id)))
        # The bytes are on disk, fsynced, before the claims are committed as batched: a file
        # that cannot be written rolls the batch back instead of stranding its claims.
        staged = _stage(out, batch.content)
        crash_point("export:staged")
        try:
            session.commit()
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
    crash_point("export:before_file")
    try:
        _place(staged, out, force=force)
    except OSError as exc:
        taken = isinstance(exc, FileExistsError)
        message = (f"{out} appeared while batch {batch.id} was being written, and was left as it is" if taken
                   else f"the file of batch {batch.id} could not be named {out} ({exc.strerror or exc})")
        raise (UsageError if taken else InputError)(
            f"{message}; the batch is stored: write it with `bhhub batch write {batch.id} --out FILE`") from exc
    crash_point("export:placed")
    _mark_written(hub, batch.id)
    log.info("batch %s written: %d claims, ISA13 %s", batch.id, batch.claim_count, batch.interchange_control_number)
    hub.plugins.hooks.batch_written(batch.id, str(out), batch.claim_count)
    return BatchResult(batch.id, out, batch.claim_count, batch.interchange_control_number, pcns, remaining,
                       tuple(set_aside))


def write_batch(hub, batch_id: int, out: Path, *, force: bool = False, wait: float = 600.0,
                waiting=None) -> schema.Batch:
    """Write a stored batch's exact bytes to ``out`` again (`bhhub batch write`); the batch.

    Its claims do not change. A batch whose export was cut off before its file was written is
    then known written (at ``out``), so the next export does not write it a second time."""
    from bhhub.exchange.locks import EXCHANGE, hub_lock

    out = _file_to_write(out, hub)
    with hub_lock(hub, EXCHANGE, wait=wait, waiting=waiting):
        with hub.store.session() as session:
            batch = session.get(schema.Batch, batch_id)
            if batch is None:
                raise UsageError(f"no batch {batch_id} (`bhhub transmissions` lists those sent; "
                                 "`bhhub export-837` prints each batch it writes)")
            if hashlib.sha256(batch.content).hexdigest() != batch.sha256:
                raise StoreError(f"batch {batch_id}'s stored bytes do not match their sha256; not written")
            pending = batch.path is not None and batch.file_written_at is None
        if (out.exists() or out.is_symlink()) and not force:
            raise UsageError(f"{out} already exists; give another --out, or --force to replace it")
        _forget_staged(out)
        try:
            _place(_stage(out, batch.content), out, force=force)
        except FileExistsError:
            raise UsageError(f"{out} appeared meanwhile and was left as it is; give another --out") from None
        if pending:
            _mark_written(hub, batch_id, out)
    log.info("batch %s written again to a file", batch_id)
    return batch


def create_batch(hub, session, envelope: Envelope, max_claims: int, path: Path | None = None, *,
                 line_breaks: bool = True, set_aside: list | None = None,
                 payers: tuple[frozenset[str] | None, frozenset[str]] | None = None) -> schema.Batch | None:
    """In ``session`` (the caller commits): the next 837P batch of ready claims, recorded with its
    control numbers and bytes, its claims moved to ``batched``; None when no claim is ready.

    Taking a claim is atomic: the ready rows are locked as they are read (PostgreSQL: FOR UPDATE
    SKIP LOCKED; SQLite: the session's transaction holds the write lock from its start), and
    each moves to ``batched`` only while still ``ready``. Two batching commands at once take
    disjoint claims, never the same one. A claim that cannot go (a duplicate of a service in
    this batch or already sent, a claim or billing provider the 837P cannot carry) is set aside
    as ``needs_attention`` with the reason, and the rest of the batch is written.

    ``line_breaks=False`` writes the interchange on one line, for clearinghouses that refuse a
    line break after the segment terminator (a profile's ``claims.line_breaks``). ``set_aside``,
    when given, collects (patient control number, finding code) of the claims held back.
    ``payers`` (from ``bhhub.exchange.routing.Routes.payers_of``): only claims whose payer id is
    in the first set (None: any), and not in the second: the claims one mailbox carries.
    """
    while True:
        rows = _take_ready(session, max_claims, payers)
        crash_point("batch:after_take")
        if not rows:
            return None
        rows, groups = _billable(hub, session, envelope, rows, set_aside if set_aside is not None else [])
        if rows:
            break
        # every claim taken was set aside: look at the next ones
    # One sequence per sender: ISA13 must be unique per sender (duplicates get TA1 note 025).
    scope = f"{envelope.sender_qualifier}:{envelope.sender_id}"
    controls = ControlNumbers(
        interchange=next_counter(session, f"isa13:{scope}"),
        group=next_counter(session, f"gs06:{scope}"),
        transaction=next_counter(session, f"st02:{scope}"),
    )
    content = assemble_837p(groups, envelope, controls, datetime.now(timezone.utc))
    if not line_breaks:  # "~" never occurs inside an element (bhhub.x12.segments), so this is exact
        content = content.replace(b"~\n", b"~")
    batch = schema.Batch(
        sender_id=envelope.sender_id,
        interchange_control_number=controls.interchange_text,
        group_control_number=controls.group_text,
        transaction_control_number=controls.transaction_text,
        usage_indicator=envelope.usage_indicator,
        claim_count=len(rows),
        total_charge=sum((row.total_charge for row in rows), Decimal(0)),
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        path=str(path.resolve()) if path else None,
    )
    session.add(batch)
    session.flush()
    from bhhub.ledger.authorization_uses import consume_many

    _claim_for_batch(session, [row.id for row in rows], batch.id)
    for row in rows:
        set_committed_value(row, "status", ClaimStatus.BATCHED.value)
        set_committed_value(row, "batch_id", batch.id)
        session.add(schema.ClaimStatusEvent(claim_id=row.id, status=ClaimStatus.BATCHED.value,
                                            reason=f"batch {batch.id} (ISA13 {batch.interchange_control_number})"))
    consume_many(session, rows)  # their visits count against their authorizations from now on
    hub.audit(session, "export_837p", "claim", [r.id for r in rows], f"batch {batch.id}")
    crash_point("batch:before_commit")
    return batch


def _take_ready(session, max_claims: int, payers=None) -> list[schema.Claim]:
    """Up to ``max_claims`` ready claims (of these ``payers``), locked for this transaction
    (skipping claims another batching transaction holds on PostgreSQL)."""
    claim = schema.Claim
    query = _of_payers(select(claim).where(claim.status == ClaimStatus.READY.value), payers)
    return list(session.scalars(
        query.order_by(claim.billing_provider_id, claim.id).limit(max_claims)
        .with_for_update(skip_locked=True, of=claim)
    ).all())


def _of_payers(query, payers):
    """``query`` on claims narrowed to ``payers`` (only, except; see ``create_batch``)."""
    if payers is None:
        return query
    claim = schema.Claim
    only, excluded = payers
    payer_id = (select(schema.Payer.payer_id).join(schema.Coverage, schema.Coverage.payer_id == schema.Payer.id)
                .where(schema.Coverage.id == claim.coverage_id).scalar_subquery())
    if only is not None:
        query = query.where(payer_id.in_(sorted(only)) if only else false())
    if excluded:
        query = query.where(payer_id.not_in(sorted(excluded)))
    return query


def _claim_for_batch(session, claim_ids: list[int], batch_id: int) -> None:
    """Move the claims to ``batched`` in ``batch_id``, each only while still ``ready``: a claim
    another process batched first is never batched twice (its count would not add up)."""
    claim = schema.Claim
    moved = 0
    for start in range(0, len(claim_ids), 500):
        chunk = claim_ids[start:start + 500]
        moved += session.execute(
            update(claim).where(claim.id.in_(chunk), claim.status == ClaimStatus.READY.value)
            .values(status=ClaimStatus.BATCHED.value, batch_id=batch_id, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
    if moved != len(claim_ids):  # cannot happen while the rows are locked; never write a batch then
        raise StoreError(f"{len(claim_ids) - moved} of the claims taken for batch {batch_id} were taken by "
                         "another process meanwhile; nothing was batched, run the command again")


def _billable(hub, session, envelope: Envelope, rows: list[schema.Claim], held: list):
    """(claims that can go, their rendered claims grouped by billing provider); the others are set
    aside as ``needs_attention`` with the reason (in this transaction)."""
    from bhhub.scrub.duplicates import duplicates_at_batch_time

    set_aside: dict[int, Finding] = dict(duplicates_at_batch_time(session, rows))
    rendered: dict[int, RenderedClaim] = {}
    for row in rows:
        if row.id in set_aside:
            continue
        try:
            rendered[row.id] = (RenderedClaim.from_json(row.rendered_x12) if row.rendered_x12
                                else render_claim(claim_record(session, row)))
        except InputError as exc:
            set_aside[row.id] = Finding("x12.unwritable", Severity.ERROR, f"the 837P cannot carry this claim: {exc}",
                                        "correct the claim data named in the message in the EHR and send it again")
    groups: dict[Provider, list[RenderedClaim]] = {}
    problems: dict[Provider, Finding | None] = {}
    stored: dict[int, Provider] = {}
    for row in rows:
        if row.id in set_aside:
            continue
        provider = _billed_under(session, row, rendered[row.id], stored)
        if provider not in problems:
            # every claim of this billing provider is set aside when the 837P cannot carry it
            problems[provider] = _billing_provider_problem(provider, rendered[row.id], envelope)
        if problems[provider] is not None:
            set_aside[row.id] = problems[provider]
            continue
        groups.setdefault(provider, []).append(rendered[row.id])
    for row in rows:
        if row.id in set_aside:
            _set_aside(session, row, set_aside[row.id])
            held.append((row.patient_control_number, set_aside[row.id].code))
    kept = [row for row in rows if row.id not in set_aside]
    return kept, list(groups.items())


def _billed_under(session, row: schema.Claim, rendered: RenderedClaim, stored: dict[int, Provider]) -> Provider:
    """The billing provider the claim was rendered with (its 2000A: NPI, taxonomy, name, address,
    tax id); the stored provider row for a claim rendered before that was kept."""
    if rendered.billing_provider is not None:
        return rendered.billing_provider
    if row.billing_provider_id not in stored:
        stored[row.billing_provider_id] = provider_record(session.get(schema.Provider, row.billing_provider_id))
    return stored[row.billing_provider_id]


def rendered_by_billing_provider(session, rows: list[schema.Claim]) -> list[tuple[Provider, list[RenderedClaim]]]:
    """The claims' renderings grouped under their billing provider (one 2000A loop each), as a
    batch places them (for the benchmark; ``create_batch`` also sets aside what cannot go)."""
    groups: dict[Provider, list[RenderedClaim]] = {}
    stored: dict[int, Provider] = {}
    for row in rows:
        rendered = (RenderedClaim.from_json(row.rendered_x12) if row.rendered_x12
                    else render_claim(claim_record(session, row)))
        groups.setdefault(_billed_under(session, row, rendered, stored), []).append(rendered)
    return list(groups.items())


def _billing_provider_problem(provider: Provider, sample: RenderedClaim, envelope: Envelope) -> Finding | None:
    """A finding when the 837P cannot carry this billing provider (2000A/2010AA), else None: one
    claim of its group is assembled alone, so a missing address or tax id sets aside that
    provider's claims instead of failing the whole batch."""
    try:
        assemble_837p([(provider, [sample])], envelope, ControlNumbers(1, 1, 1), datetime.now(timezone.utc))
    except InputError as exc:
        return Finding("billing_provider.unwritable", Severity.ERROR,
                       f"the 837P cannot carry this claim's billing provider: {exc}",
                       "complete the billing provider (name, street address, 9-digit tax id) in the EHR or "
                       "the practice profile, send the visit again, then `bhhub scrub`")
    return None


def _set_aside(session, row: schema.Claim, finding: Finding) -> None:
    session.add(schema.Finding(claim_id=row.id, line_number=finding.line, code=finding.code,
                               severity=finding.severity.value, message=finding.message, fix=finding.fix,
                               check_name=finding.code.split(".", 1)[0]))
    set_status(session, row, ClaimStatus.NEEDS_ATTENTION, f"set aside when batching: {finding.code}")
    log.info("claim %s set aside when batching: %s", row.id, finding.code)


def _write_unwritten(hub) -> list[tuple[int, str]]:
    """Write the files of exported batches whose writing a crash cut off (committed, file not
    known written): the same bytes, to the same path; (batch id, path) of those written. Their
    claims are ``batched`` already, so without this they would never reach a file.

    A file already at that path with the batch's bytes (the crash came after the rename) is
    simply known written now; anything else there is never replaced, and the batch is named in
    a warning with the command that writes it elsewhere."""
    b = schema.Batch
    with hub.store.session() as session:
        unwritten = session.execute(select(b.id, b.path, b.content, b.sha256).where(
            b.path.is_not(None), b.file_written_at.is_(None),
            ~select(schema.Transmission.id).where(schema.Transmission.batch_id == b.id).exists())
            .order_by(b.id)).all()
    written = []
    for batch_id, path, content, sha256 in unwritten:
        target = Path(path)
        try:
            if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == sha256:
                _forget_staged(target)
                _mark_written(hub, batch_id)
                continue
            if target.exists() or target.is_symlink():
                raise FileExistsError(path)
            _forget_staged(target)
            _place(_stage(target, content), target, force=False)
        except (OSError, InputError) as exc:
            why = ("another file is there" if isinstance(exc, FileExistsError)
                   else getattr(exc, "strerror", None) or str(exc))
            log.warning("batch %s: its file was not written before an interruption, and cannot be written to %s now "
                        "(%s); write it with `bhhub batch write %s --out FILE`", batch_id, path, why, batch_id)
            continue
        _mark_written(hub, batch_id)
        written.append((batch_id, path))
        log.warning("batch %s: its file was not written before an interruption; written now to %s", batch_id, path)
    return written


def _mark_written(hub, batch_id: int, path: Path | None = None) -> None:
    values = {"file_written_at": utcnow()}
    if path is not None:
        values["path"] = str(path.resolve())
    with hub.store.session() as session:
        session.execute(update(schema.Batch).where(schema.Batch.id == batch_id).values(**values))
        session.commit()


_STAGED = ".partial"


def _stage(path: Path, content: bytes) -> Path:
    """``content`` in a hidden temporary file beside ``path`` (same folder, so the rename to
    ``path`` is atomic), flushed and fsynced; its path. A write that fails is a HubError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_STAGED)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}; nothing was batched") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise InputError(f"cannot write {path}: {exc.strerror or exc}; nothing was batched") from exc
        raise
    return Path(tmp)


def _place(staged: Path, path: Path, *, force: bool) -> None:
    """Give the staged file its name: atomically, and over an existing regular file only when
    ``force`` (a hard link fails when the name is taken; FileExistsError then, the staged file
    removed). Never over a folder, a link, a device, a FIFO or a socket, even with ``force``."""
    try:
        if force:
            if _not_a_file(path) is not None:  # appeared since ``_file_to_write`` looked
                raise NotAFile(str(path))
            os.replace(staged, path)
        else:
            try:
                os.link(staged, path)
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links: check, then rename
                if path.exists() or path.is_symlink():
                    raise FileExistsError(str(path)) from None
                os.replace(staged, path)
            else:
                staged.unlink()
        _fsync_folder(path.parent)
    finally:
        staged.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    """Make the new name durable (a rename lives in the folder's entry)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _forget_staged(path: Path) -> None:
    """Remove temporary files a killed export left beside ``path`` (they hold PHI, and a name
    nobody sends: the store either forgot their batch or holds its bytes)."""
    try:
        for stale in path.parent.glob(f".{glob_escape(path.name)}.*{_STAGED}"):
            stale.unlink(missing_ok=True)
    except OSError:
        pass


def _write_atomically(path: Path, content: bytes) -> None:
    """``content`` at ``path``, replacing a regular file there (nothing else), all or nothing."""
    _place(_stage(path, content), path, force=True)
