"""Eligibility (270) and claim status (276) inquiries queued for a clearinghouse mailbox.

    batch_ids = queue_270(hub, session, requests)     # in the caller's transaction: one id per request
    batch_ids = queue_276(hub, session, inquiries)

An inquiry file is recorded as an 837P batch is (``bhhub.claims.batches``): its bytes, sha256 and control
numbers are stored as a ``Batch`` (kind 270 or 276, no claims, no charge) before it goes
anywhere, in the caller's transaction, so the answer's trace numbers and the batch commit
together or not at all. ISA13, GS06 and ST02 come from the same persisted counters as the
837P's (one sequence per sender), so a 999 or TA1 names exactly one batch of any kind.

The file is written with the envelope of the mailbox that will carry it (its ISA08 must be the
clearinghouse's): the named one, else the one its payer is routed to (``[routing]``,
``bhhub.exchange.routing``; one file per mailbox when the inquiries' payers go to several); with
none configured, the hub's own envelope; a payer no mailbox serves is a ``ConfigError``.
``bhhub.exchange.outbound.submit`` then gives it a transmission and uploads it, crash-safe, with
the same bytes on a resend, through the mailbox whose sender and receiver ids it carries.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import select

from bhhub.claimstatus.records import StatusInquiry
from bhhub.claimstatus.x276 import write_276
from bhhub.eligibility.inquiry import EligibilityRequest
from bhhub.eligibility.x270 import write_270
from bhhub.errors import ConfigError, InputError, UsageError
from bhhub.exchange.mailboxes import outbound_envelope
from bhhub.store import schema
from bhhub.store.repo import next_counter
from bhhub.x12.envelope import ControlNumbers, Envelope

log = logging.getLogger(__name__)

ELIGIBILITY, CLAIM_STATUS = "270", "276"
INQUIRY_KINDS = (ELIGIBILITY, CLAIM_STATUS)


def queue_270(hub, session, requests: Sequence[EligibilityRequest], *, mailbox: str | None = None) -> list[int]:
    """Store a 270 asking about ``requests`` as a batch (kind 270) per mailbox their payers are
    routed to (``bhhub.exchange.routing``; all to ``mailbox`` when named); each request's batch id,
    in order. The caller commits.

    ``InputError`` (naming the inquiry's trace number) when an inquiry cannot be written;
    ``ConfigError`` when the envelope or the named mailbox is wrong, or no mailbox serves a payer.
    """
    return _queue(hub, session, ELIGIBILITY, requests, write_270, mailbox)


def queue_276(hub, session, inquiries: Sequence[StatusInquiry], *, mailbox: str | None = None) -> list[int]:
    """Store a 276 asking about ``inquiries`` (kind 276) per mailbox, as ``queue_270``; each one's batch id."""
    return _queue(hub, session, CLAIM_STATUS, inquiries, write_276, mailbox)


def _queue(hub, session, kind: str, items: Sequence, writer: Callable[..., bytes], mailbox: str | None) -> list[int]:
    from bhhub.exchange.routing import mailbox_for_payer

    groups: dict[str | None, list[int]] = {}
    for position, item in enumerate(items):
        groups.setdefault(mailbox_for_payer(hub, item.payer.payer_id, mailbox), []).append(position)
    batch_ids = [0] * len(items)
    for name, positions in groups.items():  # one file per mailbox: a batch never mixes them
        batch_id = _write(hub, session, kind, [items[p] for p in positions], writer, name)
        for position in positions:
            batch_ids[position] = batch_id
    return batch_ids


def _write(hub, session, kind: str, items: Sequence, writer: Callable[..., bytes], mailbox: str | None) -> int:
    envelope, profile = outbound_envelope(hub, mailbox)
    controls = allocate_control_numbers(session, envelope)
    content = writer(items, envelope, controls, datetime.now(timezone.utc))
    if profile is not None and not profile.line_breaks:
        content = content.replace(b"~\n", b"~")  # as bhhub.claims.batches does for such a clearinghouse
    batch = schema.Batch(
        kind=kind,
        sender_id=envelope.sender_id,
        interchange_control_number=controls.interchange_text,
        group_control_number=controls.group_text,
        transaction_control_number=controls.transaction_text,
        usage_indicator=envelope.usage_indicator,
        claim_count=0,
        total_charge=Decimal(0),
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        mailbox=mailbox if profile is not None else None,
    )
    session.add(batch)
    session.flush()
    log.info("%s batch %s queued: %d inquiries, ISA13 %s", kind, batch.id, len(items), batch.interchange_control_number)
    return batch.id


def allocate_control_numbers(session, envelope: Envelope) -> ControlNumbers:
    """ISA13, GS06 and ST02 from the counters ``bhhub.claims.batches.create_batch`` uses (same names)."""
    # One sequence per sender: ISA13 must be unique per sender (duplicates get TA1 note 025).
    scope = f"{envelope.sender_qualifier}:{envelope.sender_id}"
    return ControlNumbers(
        interchange=next_counter(session, f"isa13:{scope}"),
        group=next_counter(session, f"gs06:{scope}"),
        transaction=next_counter(session, f"st02:{scope}"),
    )


# --- asking again the questions of an inquiry released unsent (``bhhub.exchange.reroute``) ----------


@dataclass(frozen=True)
class AskedAgain:
    """What became of one question whose inquiry file was released unsent (ids only, no PHI)."""

    kind: str  # 270 or 276
    check_id: int  # the question released: now failed, its error saying why and what followed
    state: str  # asked_again (queued now), asked_since (a person asked it again first), not_asked
    new_check_id: int | None = None  # the question that goes instead (asked_again, asked_since)
    batch_id: int | None = None  # the new inquiry batch (asked_again)
    mailbox: str | None = None  # the mailbox it was written for (asked_again)
    error: str | None = None  # why the hub could not ask it again (not_asked)
    command: str = ""  # how a person asks it by hand

    def as_dict(self) -> dict:
        return {"kind": self.kind, "check_id": self.check_id, "state": self.state,
                "new_check_id": self.new_check_id, "batch_id": self.batch_id, "mailbox": self.mailbox,
                "error": self.error, "command": self.command}


ASKED_AGAIN, ASKED_SINCE, NOT_ASKED = "asked_again", "asked_since", "not_asked"


def ask_again(hub, session, batch: schema.Batch, why: str) -> list[AskedAgain]:
    """The questions still waiting in ``batch`` (a 270 or 276 released: it will never be sent),
    each asked again in the caller's transaction, in a new file for the mailbox ``[routing]``
    gives its payer now (sent by that mailbox's next exchange); the released question is marked
    failed, naming the one that replaces it. A question a person asked again since (a newer
    check of the same patient, payer, member and date, or of the same claim, not failed) is not
    asked a third time. One that cannot be asked now (no route, no coverage or provider on file)
    is failed with the reason and the command to ask it by hand. Exactly once: the caller holds
    the exchange lock and commits the release and these questions together."""
    if batch.kind == ELIGIBILITY:
        return _eligibility_again(hub, session, batch, why)
    if batch.kind == CLAIM_STATUS:
        return _status_again(hub, session, batch, why)
    return []


def _eligibility_again(hub, session, batch: schema.Batch, why: str) -> list[AskedAgain]:
    from bhhub.eligibility import service, store

    check = schema.EligibilityCheck
    rows = session.scalars(select(check).where(check.batch_id == batch.id, check.state == store.REQUESTED)
                           .order_by(check.id).with_for_update()).all()
    practice_npi = service.practice_npi(hub)
    done: list[AskedAgain] = []
    pending = []
    for row in rows:
        command = (f"bhhub eligibility check --patient {row.patient_id} --payer {row.payer_id}"
                   + (f" --date {row.service_date.isoformat()}" if row.service_date else ""))
        newer = session.scalar(select(check.id).where(
            check.id > row.id, check.patient_id == row.patient_id, check.payer_id == row.payer_id,
            check.member_id == row.member_id, check.service_date == row.service_date,
            check.state != store.FAILED).order_by(check.id).limit(1))
        if newer is not None:
            store.fail(session, row, f"not sent: {why}; asked again since as check {newer}")
            done.append(AskedAgain(ELIGIBILITY, row.id, ASKED_SINCE, new_check_id=newer, command=command))
            continue
        try:
            if row.patient_id is None:
                raise UsageError("no patient of the hub is known for this question")
            subject = service.subject(session, row.patient_id, row.payer_id, row.service_date, row.reason,
                                      practice_npi=practice_npi)
            _route(hub, row.payer_id)
            request = service.request_for(subject, store.new_trace_number(session))
        except (UsageError, InputError, ConfigError) as exc:
            done.append(_not_asked(session, store, row, ELIGIBILITY, why, exc, command))
            continue
        pending.append((row, request, command))

    def queue(items) -> list[AskedAgain]:
        news = [store.ask(session, patient_id=row.patient_id, payer_id=row.payer_id, member_id=request.member_id,
                          service_date=row.service_date, service_types=tuple(row.service_types or ()),
                          source=store.SOURCE_X12, reason=row.reason, trace_number=request.trace_number)
                for row, request, _ in items]
        batch_ids = queue_270(hub, session, [request for _, request, _ in items])
        return [_asked(session, store, row, new, batch_id, ELIGIBILITY, why, command)
                for (row, _, command), new, batch_id in zip(items, news, batch_ids)]

    return done + _in_savepoints(session, store, pending, queue, ELIGIBILITY, why)


def _status_again(hub, session, batch: schema.Batch, why: str) -> list[AskedAgain]:
    from bhhub.claimstatus import store
    from bhhub.claimstatus.records import inquiry_for_claim
    from bhhub.claimstatus.service import find_sent_claim
    from bhhub.store.repo import claim_record

    check = schema.ClaimStatusCheck
    rows = session.scalars(select(check).where(check.batch_id == batch.id, check.state == store.REQUESTED)
                           .order_by(check.id).with_for_update()).all()
    done: list[AskedAgain] = []
    pending = []
    for row in rows:
        claim = session.get(schema.Claim, row.claim_id)
        command = f"bhhub status check {claim.patient_control_number}"
        try:
            # The payer reports on the revision it has: the latest one sent, as `bhhub status check` asks.
            target = find_sent_claim(session, claim.patient_control_number)
        except (UsageError, InputError, ConfigError) as exc:
            done.append(_not_asked(session, store, row, CLAIM_STATUS, why, exc, command))
            continue
        newer = session.scalar(select(check.id).where(
            check.id > row.id, check.claim_id.in_(sorted({row.claim_id, target.id})), check.state != store.FAILED)
            .order_by(check.id).limit(1))
        if newer is not None:
            store.fail(session, row, f"not sent: {why}; asked again since as check {newer}")
            done.append(AskedAgain(CLAIM_STATUS, row.id, ASKED_SINCE, new_check_id=newer, command=command))
            continue
        try:
            record = claim_record(session, target)
            _route(hub, record.coverage.payer.payer_id)
        except (UsageError, InputError, ConfigError) as exc:
            done.append(_not_asked(session, store, row, CLAIM_STATUS, why, exc, command))
            continue
        pending.append((row, target, command))

    def queue(items) -> list[AskedAgain]:
        news = [store.ask(session, target.id, source=store.SOURCE_X12) for _, target, _ in items]
        inquiries = [inquiry_for_claim(claim_record(session, target), new.trace_number)
                     for (_, target, _), new in zip(items, news)]
        batch_ids = queue_276(hub, session, inquiries)
        return [_asked(session, store, row, new, batch_id, CLAIM_STATUS, why, command)
                for (row, _, command), new, batch_id in zip(items, news, batch_ids)]

    return done + _in_savepoints(session, store, pending, queue, CLAIM_STATUS, why)


def _route(hub, payer_id: str) -> None:
    """``ConfigError`` unless a configured mailbox serves ``payer_id`` now (the file is never
    written in the hub's own envelope for no mailbox: nothing would carry it)."""
    from bhhub.exchange.routing import mailbox_for_payer

    if mailbox_for_payer(hub, payer_id) is None:
        raise ConfigError("no clearinghouse mailbox is configured")


def _in_savepoints(session, store, pending: list, queue: Callable[[list], list[AskedAgain]], kind: str,
                   why: str) -> list[AskedAgain]:
    """All of ``pending`` in one file; when the writer refuses one, each on its own, so one
    question it cannot write holds back none of the others."""
    if not pending:
        return []
    asked, refused = _try(session, queue, pending)
    if refused is None:
        return asked
    results: list[AskedAgain] = []
    for item in pending:
        asked, refused = _try(session, queue, [item]) if len(pending) > 1 else ([], refused)
        if refused is None:
            results += asked
        else:
            row, _, command = item
            results.append(_not_asked(session, store, row, kind, why, refused, command))
    return results


def _try(session, queue, items: list) -> tuple[list[AskedAgain], InputError | ConfigError | None]:
    savepoint = session.begin_nested()
    try:
        asked = queue(items)
    except (InputError, ConfigError) as exc:  # the writer refused one, or the mailbox's envelope is wrong
        savepoint.rollback()
        return [], exc
    savepoint.commit()
    return asked, None


def _asked(session, store, row, new, batch_id: int, kind: str, why: str, command: str) -> AskedAgain:
    new.batch_id = batch_id
    store.fail(session, row, f"not sent: {why}; asked again as check {new.id}")
    mailbox = session.get(schema.Batch, batch_id).mailbox
    return AskedAgain(kind, row.id, ASKED_AGAIN, new_check_id=new.id, batch_id=batch_id, mailbox=mailbox,
                      command=command)


def _not_asked(session, store, row, kind: str, why: str, exc: Exception, command: str) -> AskedAgain:
    reason = str(exc)
    store.fail(session, row, f"not sent: {why}; not asked again ({reason}): ask with `{command}`")
    return AskedAgain(kind, row.id, NOT_ASKED, error=reason, command=command)
