"""The inbox: every payload stored raw (with its sha256) before it is parsed.

``receive`` commits the raw bytes first, then ``process`` parses, codes, scrubs and stores the
payload's encounters and claims in one transaction together with the item's new state: a payload
is imported whole or not at all. Unusable input is quarantined with a reason a biller can act on;
``retry`` runs a quarantined item again after a fix.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hub.claims import ClaimOutcome, store_encounter
from hub.errors import HubError, InputError, UnrecognizedInput
from hub.store import schema
from hub.store.repo import Upserter
from hub.types import IntakeContext, IntakeFormat

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

    @property
    def failed(self) -> bool:
        return self.outcome == QUARANTINED


def receive(hub, content: bytes, source_name: str) -> IntakeResult:
    """Store ``content`` raw, then process it; the same bytes again change nothing."""
    digest = hashlib.sha256(content).hexdigest()
    with hub.store.session() as session:
        known = session.scalar(select(schema.InboxItem).where(schema.InboxItem.sha256 == digest))
        if known is None:
            item = schema.InboxItem(sha256=digest, source_name=source_name, size=len(content), content=content,
                                    state=RECEIVED)
            session.add(item)
            try:
                session.commit()
            except IntegrityError:  # the same bytes arrived through another door just now
                session.rollback()
                known = session.scalar(select(schema.InboxItem).where(schema.InboxItem.sha256 == digest))
            else:
                log.info("inbox item %s received (%d bytes)", item.id, len(content))
                return process(hub, item.id)
    assert known is not None
    return IntakeResult(known.id, source_name, "duplicate", known.format,
                        f"same content as inbox item {known.id} ({known.source_name}, {known.state})")


def retry(hub, item_id: int) -> IntakeResult:
    """Process a quarantined item again (after its mapping or configuration was fixed)."""
    with hub.store.session() as session:
        item = session.get(schema.InboxItem, item_id)
        if item is None:
            raise InputError(f"no inbox item {item_id}", fix="run `bhhub inbox` to see the items")
        if item.state != QUARANTINED:
            raise InputError(f"inbox item {item_id} is {item.state}, not quarantined; nothing to retry")
    return process(hub, item_id)


def process(hub, item_id: int) -> IntakeResult:
    with hub.store.session() as session:
        item = session.get(schema.InboxItem, item_id)
        assert item is not None
        item.attempts += 1
        fmt_name = None
        try:
            fmt = _format_for(hub.intake_formats, item.content)
            fmt_name = fmt.name
            encounters = _parse(fmt, item, IntakeContext(item.source_name, hub.mappings))
            upserts = Upserter(session)
            outcomes = tuple(store_encounter(hub, session, upserts, e, item.id) for e in encounters)
        except HubError as exc:
            session.rollback()
            return _quarantine(hub, item_id, fmt_name, str(exc))
        item.format = fmt_name
        item.state = PROCESSED
        item.reason = None
        item.processed_at = datetime.now(timezone.utc)
        hub.audit(session, "intake", "claim", [o.claim_id for o in outcomes if o.claim_id],
                  f"inbox item {item.id}")
        session.commit()
        log.info("inbox item %s imported: %d encounters", item.id, len(encounters))
    hub.plugins.hooks.encounters_received(encounters, item.source_name)
    return IntakeResult(item_id, item.source_name, "imported", item.format, None, outcomes)


def _parse(fmt: IntakeFormat, item: schema.InboxItem, context: IntakeContext) -> list:
    try:
        encounters = list(fmt.parse(item.content, context))
    except HubError:
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin bug quarantines this item only
        log.error("intake format %s crashed on inbox item %s: %s", fmt.name, item.id, type(exc).__name__)
        raise InputError(
            f"the {fmt.name} reader failed ({type(exc).__name__}); the file was kept",
            fix="report this to the plugin's author, then `bhhub inbox retry` after an upgrade",
        ) from exc
    if not encounters:
        raise InputError("nothing to bill: no encounters or claims found")
    return encounters


def _format_for(formats: list[IntakeFormat], content: bytes) -> IntakeFormat:
    for fmt in formats:
        try:
            if fmt.recognizes(content):
                return fmt
        except Exception:  # noqa: BLE001 - a plugin's sniffer must not stop the others
            log.error("intake format %s failed to sniff a payload", fmt.name)
    names = ", ".join(f.name for f in formats) or "none installed"
    raise UnrecognizedInput(
        f"not a format any installed plugin reads (formats: {names})",
        fix="check that this is an export from your EHR, or install the plugin for its format",
    )


def _quarantine(hub, item_id: int, fmt: str | None, reason: str) -> IntakeResult:
    with hub.store.session() as session:
        item = session.get(schema.InboxItem, item_id)
        item.state = QUARANTINED
        item.format = fmt
        item.reason = reason
        item.attempts += 1
        session.commit()
        log.info("inbox item %s quarantined", item_id)
        return IntakeResult(item_id, item.source_name, QUARANTINED, fmt, reason)
