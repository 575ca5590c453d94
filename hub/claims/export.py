"""The 837P export (``bhhub export-837``) and writing a stored batch again (``bhhub batch write``).

Control numbers come from persisted counters and are never reused. The batch's bytes, its
control numbers and the claims' move to ``batched`` are committed in one transaction
(``bhhub.claims.batches.create_batch``), and the file only takes its name after that commit, so
a crash can never leave a file on disk whose numbers the store forgot. An export never loses a
batch:

- what can fail about the file is found before any claim changes state: ``--out`` naming
  anything but a regular file (a folder, a symbolic link, a device, a FIFO, a socket: even with
  ``force``) or a file already there (without ``force``) is refused first, and the bytes are
  written and fsynced to a hidden temporary file beside ``--out`` inside the transaction (a full
  disk or a folder it may not write rolls the batch back); ``bhhub.claims.export_file`` holds
  those checks and the staging;
- after the commit the temporary file is renamed to ``--out`` (never over an existing file
  unless ``force``, and never over anything but a regular file); a kill between the two leaves a
  committed batch whose file the next export writes (``_write_unwritten``), and ``write_batch``
  (`bhhub batch write ID --out FILE`) writes any stored batch's exact bytes again.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, update

from bhhub.claims.batches import MAX_CLAIMS_PER_BATCH, create_batch, of_payers
from bhhub.claims.export_file import file_to_write, forget_staged, place, stage
from bhhub.errors import InputError, StoreError, UsageError
from bhhub.model import ClaimStatus
from bhhub.runtime.crashpoints import crash_point
from bhhub.store import schema
from bhhub.store.schema import utcnow

log = logging.getLogger(__name__)


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
    out = file_to_write(out, hub)
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


def _any_ready(hub) -> bool:
    c = schema.Claim
    with hub.store.session() as session:
        return session.scalar(select(c.id).where(c.status == ClaimStatus.READY.value).limit(1)) is not None


def _export(hub, out: Path, max_claims: int, set_aside: list, force: bool, target=None) -> BatchResult | None:
    envelope, line_breaks, payers = target or (hub.settings.envelope, True, None)
    forget_staged(out)  # what a kill left of an earlier attempt at this name
    with hub.store.writer() as session:
        batch = create_batch(hub, session, envelope, max_claims, out, set_aside=set_aside, line_breaks=line_breaks,
                             payers=payers)
        if batch is None:
            session.commit()  # the claims set aside keep their findings
            return None
        remaining = session.scalar(of_payers(select(func.count()).select_from(schema.Claim)
                                             .where(schema.Claim.status == ClaimStatus.READY.value), payers))
        pcns = tuple(session.scalars(select(schema.Claim.patient_control_number)
                                     .where(schema.Claim.batch_id == batch.id).order_by(schema.Claim.id)))
        # The bytes are on disk, fsynced, before the claims are committed as batched: a file
        # that cannot be written rolls the batch back instead of stranding its claims.
        staged = stage(out, batch.content)
        crash_point("export:staged")
        try:
            session.commit()
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
    crash_point("export:before_file")
    try:
        place(staged, out, force=force)
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

    out = file_to_write(out, hub)
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
        forget_staged(out)
        try:
            place(stage(out, batch.content), out, force=force)
        except FileExistsError:
            raise UsageError(f"{out} appeared meanwhile and was left as it is; give another --out") from None
        if pending:
            _mark_written(hub, batch_id, out)
    log.info("batch %s written again to a file", batch_id)
    return batch


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
                forget_staged(target)
                _mark_written(hub, batch_id)
                continue
            if target.exists() or target.is_symlink():
                raise FileExistsError(path)
            forget_staged(target)
            place(stage(target, content), target, force=False)
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
