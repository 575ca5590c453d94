"""The inbox: every payload stored raw (with its sha256) before it is parsed.

``receive`` commits the raw bytes first, then ``process`` parses, codes, scrubs and stores the
payload's encounters and claims in one transaction together with the item's new state: a payload
is imported whole or not at all. ``bhhub.intake.many`` does the same for many payloads. Unusable input is quarantined with a reason a biller can act on;
``retry`` runs a quarantined item again after a fix.

A payload may hold records that are not billable (``bhhub.intake.records``: an HL7 ADT registration, an
SIU appointment); they are stored by ``bhhub.intake.registrations`` in the same transaction, and a
payload with such records and no encounter is imported, not "nothing to bill".
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import lru_cache

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from bhhub.claims.build import ClaimOutcome, store_encounter
from bhhub.runtime.crashpoints import crash_point
from bhhub.errors import HubError, InputError, StoreError, UnrecognizedInput
from bhhub.model import Encounter
from bhhub.intake.registrations import RecordOutcome, store_record
from bhhub.store import schema
from bhhub.store.repo import Upserter
from bhhub.types import IntakeContext, IntakeFormat
from bhhub.x12.recognize import recognize

log = logging.getLogger(__name__)

RECEIVED, PROCESSED, QUARANTINED = "received", "processed", "quarantined"


@dataclass(frozen=True)
class IntakeResult:
    """What happened to one payload."""

    item_id: int
    source_name: str
    outcome: str  # imported, duplicate, quarantined
    format: str | None = None
    reason: str | None = None
    claims: tuple[ClaimOutcome, ...] = field(default=())
    summary: str | None = None  # what a response file (TA1, 999, 277CA, 835) did
    updated: dict = field(default_factory=dict)  # patient control number -> status it set
    records: tuple[RecordOutcome, ...] = field(default=())  # registrations, appointments stored
    notes: tuple[str, ...] = field(default=())  # e.g. two formats recognized it (``choose_format``)

    @property
    def failed(self) -> bool:
        return self.outcome == QUARANTINED

    def to_json(self) -> dict:
        """The object ``bhhub intake --json`` and ``bhhub inbox retry --json`` print for it."""
        return {
            "source": self.source_name,
            "inbox_item_id": self.item_id,
            "outcome": self.outcome,
            "format": self.format,
            "reason": self.reason,
            "summary": self.summary,
            "updated": self.updated,
            "claims": [{"patient_control_number": c.patient_control_number, "status": c.status, "action": c.action,
                        "note": c.note} for c in self.claims],
            "records": [{"kind": r.kind, "id": r.row_id, "action": r.action} for r in self.records],
            "notes": list(self.notes),
        }


def receive(hub, content: bytes, source_name: str) -> IntakeResult:
    """Store ``content`` raw, then process it; the same bytes again change nothing.

    The same bytes as an item a crash left ``received`` (stored, never applied) are not a
    duplicate: that item is processed now.
    """
    with hub.store.writer() as session:
        item_id, duplicate = store_raw(session, hub.store.dialect, source_name, content)
        session.commit()  # stored raw before anything reads it
    crash_point("intake:after_store_raw")
    if duplicate is not None:
        return duplicate
    log.info("inbox item %s received (%d bytes)", item_id, len(content))
    return process(hub, item_id, content, source_name)


def store_raw(session, dialect: str, source_name: str, content: bytes) -> tuple[int | None, IntakeResult | None]:
    """Add ``content`` to the inbox (the caller commits): (item id, None) when it is to be
    processed (new, or the same bytes stored earlier and left ``received`` by an interrupted
    run), or (None, the duplicate's result) when the same bytes were processed or quarantined."""
    digest = hashlib.sha256(content).hexdigest()
    conn = session.connection()
    item_id = conn.execute(_insert_new(dialect), {
        "sha256": digest, "source_name": source_name, "size": len(content), "content": content,
        "state": RECEIVED, "attempts": 0, "received_at": datetime.now(timezone.utc),
    }).scalar()
    if item_id is not None:
        return item_id, None
    items = schema.InboxItem
    known = conn.execute(select(items.id, items.source_name, items.state, items.format)
                         .where(items.sha256 == digest)).one()
    if known.state == RECEIVED:  # stored before, never applied: finish it now (nothing is lost)
        log.info("inbox item %s was stored but not applied; processing it now", known.id)
        return known.id, None
    return None, IntakeResult(known.id, source_name, "duplicate", known.format,
                              f"same content as inbox item {known.id} ({known.source_name}, {known.state})")


def take_items(session, item_ids: list[int], states: tuple[str, ...] = (RECEIVED,)) -> set[int]:
    """Of ``item_ids``, those still in ``states``, locked for this transaction: the one process
    that applies each. Another process applying the same item at the same time waits here
    (PostgreSQL: the row lock; SQLite: the write lock the session took when it began) and then
    finds it applied."""
    items = schema.InboxItem
    taken: set[int] = set()
    for start in range(0, len(item_ids), 500):
        taken.update(session.connection().execute(
            select(items.id).where(items.id.in_(item_ids[start:start + 500]), items.state.in_(states))
            .with_for_update()).scalars())
    return taken


def applied_elsewhere(item_id: int, source_name: str) -> IntakeResult:
    return IntakeResult(item_id, source_name, "duplicate", None,
                        f"inbox item {item_id} was applied by another run at the same time")


# An item whose processing keeps failing (a bug, the store failing) stays ``received`` and is
# tried again by the next exchange or runner start; after this many attempts a person is told.
ALERT_AFTER_ATTEMPTS = 3
# A race with another writer (deadlock, serialization failure, a row inserted meanwhile) is
# resolved by reading again: the transaction is redone this many times.
_RACE_RETRIES = 3


def finish_received(hub) -> list[IntakeResult]:
    """Process every item left ``received`` (stored raw, never applied: a process was killed in
    between). Called when the runner starts and at every exchange; an item that fails is left
    for the next time (and alerted after ``ALERT_AFTER_ATTEMPTS``), the others go on."""
    items = schema.InboxItem
    with hub.store.session() as session:
        waiting = session.execute(select(items.id, items.source_name).where(items.state == RECEIVED)
                                  .order_by(items.id)).all()
    results = []
    for item_id, source_name in waiting:
        with hub.store.session() as session:
            content = session.scalar(select(items.content).where(items.id == item_id))
        try:
            results.append(process(hub, item_id, content, source_name))
        except Exception:  # noqa: BLE001 - recorded and alerted by process; the others go on
            log.error("inbox item %s could not be applied; left for the next run", item_id)
    if results:
        log.info("finished %d inbox item(s) an interrupted run had left unapplied", len(results))
    return results


@lru_cache(maxsize=4)
def _insert_new(dialect: str):
    """INSERT that does nothing when the sha256 is already stored (one statement, no race)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    table = schema.InboxItem.__table__
    return dialect_insert(table).on_conflict_do_nothing(index_elements=["sha256"]).returning(table.c.id)


def retry(hub, item_id: int) -> IntakeResult:
    """Process a quarantined item again (after its mapping or configuration was fixed), or one
    an interrupted intake left ``received``."""
    items = schema.InboxItem
    with hub.store.session() as session:
        item = session.execute(select(items.state, items.content, items.source_name).where(items.id == item_id)).first()
    if item is None:
        raise InputError(f"no inbox item {item_id}", fix="run `bhhub inbox` to see the items")
    if item.state == PROCESSED:
        raise InputError(f"inbox item {item_id} was imported already; nothing to retry")
    return process(hub, item_id, item.content, item.source_name, states=(RECEIVED, QUARANTINED))


def process(hub, item_id: int, content: bytes, source_name: str, *,
            states: tuple[str, ...] = (RECEIVED,)) -> IntakeResult:
    """Parse, code, scrub and store one stored item: all of it in one transaction, or quarantine.

    Only an item still in ``states`` is applied (``take_items``): the same item processed by two
    processes at once is applied once. A race with another writer is redone; any other failure
    leaves the item ``received`` for the next run, counted, and alerted when it keeps failing.
    """
    for attempt in range(1, _RACE_RETRIES + 1):
        try:
            return _process_once(hub, item_id, content, source_name, states)
        except (OperationalError, IntegrityError) as exc:
            if attempt == _RACE_RETRIES:
                _note_failure(hub, item_id, exc)
                raise StoreError(f"inbox item {item_id} could not be stored: {type(exc).__name__} "
                                 f"({_store_problem(exc)}); it is kept and will be tried again") from exc
            log.info("inbox item %s: a concurrent writer got in the way (%s); trying again", item_id,
                     type(exc.orig).__name__ if getattr(exc, "orig", None) is not None else type(exc).__name__)
            time.sleep(0.05 * attempt)
        except HubError:
            raise
        except Exception as exc:
            _note_failure(hub, item_id, exc)
            raise
    raise AssertionError("unreachable")


def _process_once(hub, item_id: int, content: bytes, source_name: str, states: tuple[str, ...]) -> IntakeResult:
    try:
        recognized = recognize(content, hub.x12_transactions)
    except HubError as exc:
        return _quarantine(hub, item_id, source_name, "x12", str(exc), states)
    if recognized is not None:
        return _process_x12(hub, item_id, content, source_name, recognized, states)
    with hub.store.writer() as session:
        if not take_items(session, [item_id], states):
            return applied_elsewhere(item_id, source_name)
        fmt_name, notes = None, ()
        try:
            fmt, notes = choose_format(hub.intake_formats, content, item_id)
            fmt_name = fmt.name
            parsed = parse_payload(fmt, item_id, content, IntakeContext(source_name, hub.mappings))
            encounters, others = split_records(parsed)
            upserts = Upserter(session, hub.known_rows)
            outcomes = tuple(store_encounter(hub, session, upserts, e, item_id) for e in encounters)
            records = store_records(hub, session, upserts, others, item_id)
        except HubError as exc:
            session.rollback()
            return replace(_quarantine(hub, item_id, source_name, fmt_name, str(exc), states), notes=notes)
        set_state(session, item_id, PROCESSED, fmt_name, None)
        if outcomes or not records:
            hub.audit(session, "intake", "claim", [o.claim_id for o in outcomes if o.claim_id], f"inbox item {item_id}")
        upserts.flush()
        crash_point("intake:before_commit")
        session.commit()
        upserts.remember()
    log.info("inbox item %s imported: %d encounters, %d other records", item_id, len(encounters), len(records))
    if encounters:
        hub.plugins.hooks.encounters_received(encounters, source_name)
    return IntakeResult(item_id, source_name, "imported", fmt_name, None, outcomes, records=records, notes=notes)


def split_records(parsed: list) -> tuple[list[Encounter], list]:
    """(encounters, the other records): encounters become claims, the rest go to bhhub.intake.registrations."""
    if all(isinstance(r, Encounter) for r in parsed):
        return parsed, []
    return [r for r in parsed if isinstance(r, Encounter)], [r for r in parsed if not isinstance(r, Encounter)]


def store_records(hub, session, upserts: Upserter, records: list, item_id: int) -> tuple[RecordOutcome, ...]:
    """Store registrations and appointments in the item's transaction, audited (they change PHI)."""
    if not records:
        return ()
    outcomes = tuple(store_record(hub, upserts, record, item_id) for record in records)
    for kind, object_type in (("registration", "patient"), ("appointment", "appointment")):
        ids = [o.row_id for o in outcomes if o.kind == kind]
        if ids:
            hub.audit(session, "intake", object_type, ids, f"inbox item {item_id}")
    return outcomes


def _process_x12(hub, item_id: int, content: bytes, source_name: str, recognized,
                 states: tuple[str, ...]) -> IntakeResult:
    """A response from a clearinghouse or payer: applied in the transaction that marks it read."""
    from bhhub import responses

    fmt_name = f"x12-{recognized.kind.lower()}"
    with hub.store.writer() as session:
        if not take_items(session, [item_id], states):
            return applied_elsewhere(item_id, source_name)
        try:
            applied = responses.apply(hub, session, item_id, recognized, content)
        except HubError as exc:
            session.rollback()
            return _quarantine(hub, item_id, source_name, fmt_name, str(exc), states)
        set_state(session, item_id, PROCESSED, fmt_name, None)
        crash_point("apply:before_commit")
        session.commit()
    log.info("inbox item %s applied as %s", item_id, recognized.kind)
    for call in applied.notify:
        hub.plugins.hooks.acknowledgment_received(*call)
    for payer_id, trace_number, pcns in applied.remittances:
        hub.plugins.hooks.remittance_posted(payer_id, trace_number, pcns)
    return IntakeResult(item_id, source_name, "imported", fmt_name, None, (), applied.summary, dict(applied.claims))


def is_x12(content: bytes) -> bool:
    return content[:200].lstrip(b" \t\r\n\xef\xbb\xbf").startswith(b"ISA")


_ITEMS = schema.InboxItem.__table__
_SET_STATE = (
    update(_ITEMS).where(_ITEMS.c.id == bindparam("item_id"))
    .values(attempts=_ITEMS.c.attempts + 1)
)


def set_state(session, item_id: int, state: str, fmt: str | None, reason: str | None) -> None:
    session.connection().execute(_SET_STATE, {
        "item_id": item_id, "state": state, "format": fmt, "reason": reason,
        "processed_at": datetime.now(timezone.utc) if state == PROCESSED else None,
    })


def parse_payload(fmt: IntakeFormat, item_id: int, content: bytes, context: IntakeContext) -> list:
    try:
        encounters = list(fmt.parse(content, context))
    except HubError:
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin bug quarantines this item only
        log.error("intake format %s crashed on inbox item %s: %s", fmt.name, item_id, type(exc).__name__)
        raise InputError(
            f"the {fmt.name} reader failed ({type(exc).__name__}); the file was kept",
            fix="report this to the plugin's author, then `bhhub inbox retry` after an upgrade",
        ) from exc
    if not encounters:
        raise InputError("nothing to bill: no encounters or claims found")
    return encounters


def expand(formats: list[IntakeFormat], source_name: str, content: bytes) -> list[tuple[str, bytes]]:
    """A file cut into its payloads by the format that reads it (``IntakeFormat.split``):
    ``name#1``, ``name#2``, ... each its own inbox item; a one-payload file stays as it is."""
    for fmt in formats:
        if fmt.split is None:
            continue
        try:
            if not fmt.recognizes(content):
                continue
            parts = fmt.split(content)
        except Exception:  # noqa: BLE001 - a plugin's splitter must not stop the intake
            log.error("intake format %s failed to split a file", fmt.name)
            return [(source_name, content)]
        if len(parts) == 1 and parts[0] is content:
            return [(source_name, content)]
        return [(f"{source_name}#{number}", part) for number, part in enumerate(parts, start=1)]
    return [(source_name, content)]


def format_for(formats: list[IntakeFormat], content: bytes) -> IntakeFormat:
    """The format that reads ``content`` (``choose_format``), or UnrecognizedInput."""
    return choose_format(formats, content)[0]


def choose_format(formats: list[IntakeFormat], content: bytes,
                  item_id: int | None = None) -> tuple[IntakeFormat, tuple[str, ...]]:
    """The format that reads ``content``, and the notes to show with the result.

    The rule (docs/plugins.md): every format's ``recognizes`` is asked, in registration order
    (bhhub's built-ins first, then other plugins by entry-point name, each plugin's formats in
    the order it returns them); the first that says yes reads the payload. When another says
    yes too, the first still reads it, and the overlap is logged and noted: one of the two
    recognizers is too broad. When none does, the first whose ``fallback`` claims it (to refuse
    it precisely); else ``UnrecognizedInput``.
    """
    recognizing = [fmt for fmt in formats if _sniff(fmt, "recognizes", content)]
    if recognizing:
        chosen, others = recognizing[0], [fmt.name for fmt in recognizing[1:]]
        if not others:
            return chosen, ()
        log.warning("inbox item %s is recognized by intake formats %s and %s; read as %s", item_id, chosen.name,
                    ", ".join(others), chosen.name)
        return chosen, (f"also recognized by {', '.join(others)}; read as {chosen.name}, the first registered "
                        "(a recognizer is too broad: tell the plugin's author)",)
    for fmt in formats:
        if _sniff(fmt, "fallback", content):
            return fmt, ()
    names = ", ".join(f.name for f in formats) or "none installed"
    raise UnrecognizedInput(
        f"not a format any installed plugin reads (formats: {names})",
        fix="check that this is an export from your EHR, or install the plugin for its format",
    )


def _sniff(fmt: IntakeFormat, sniff: str, content: bytes) -> bool:
    test = getattr(fmt, sniff)
    if test is None:
        return False
    try:
        return bool(test(content))
    except Exception:  # noqa: BLE001 - a plugin's sniffer must not stop the others
        log.error("intake format %s failed to sniff a payload", fmt.name)
        return False


def _quarantine(hub, item_id: int, source_name: str, fmt: str | None, reason: str,
                states: tuple[str, ...] = (RECEIVED,)) -> IntakeResult:
    with hub.store.writer() as session:
        if not take_items(session, [item_id], states):
            return applied_elsewhere(item_id, source_name)
        set_state(session, item_id, QUARANTINED, fmt, reason)
        session.commit()
    log.info("inbox item %s quarantined", item_id)
    return IntakeResult(item_id, source_name, QUARANTINED, fmt, reason)


def _note_failure(hub, item_id: int, exc: BaseException) -> None:
    """Count a failed attempt on an item that stays ``received``; alert once when it keeps failing.
    The reason names the error's kind only (its text may quote the payload)."""
    from bhhub.exchange.alerts import raise_alert

    items = schema.InboxItem
    try:
        with hub.store.writer() as session:
            attempts = session.execute(
                update(items).where(items.id == item_id, items.state == RECEIVED)
                .values(attempts=items.attempts + 1, reason=f"not applied yet: {type(exc).__name__} on attempt")
                .returning(items.attempts)).scalar()
            if attempts is not None and attempts >= ALERT_AFTER_ATTEMPTS:
                raise_alert(session, f"inbox_item_failing:{item_id}", "inbox_item_failing",
                            f"inbox item {item_id} failed to apply {attempts} times ({type(exc).__name__}); it is "
                            "kept and tried again at every exchange; `bhhub inbox` shows it")
            session.commit()
    except Exception:  # noqa: BLE001 - the store itself may be what fails; the item stays received
        log.error("inbox item %s: could not record the failed attempt", item_id)


def _store_problem(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return type(orig).__name__ if orig is not None else "database error"
