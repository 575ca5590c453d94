"""Eligibility (270) and claim status (276) inquiries queued for a clearinghouse mailbox.

    batch_ids = queue_270(hub, session, requests)     # in the caller's transaction: one id per request
    batch_ids = queue_276(hub, session, inquiries)

An inquiry file is recorded as an 837P batch is (``hub.batches``): its bytes, sha256 and control
numbers are stored as a ``Batch`` (kind 270 or 276, no claims, no charge) before it goes
anywhere, in the caller's transaction, so the answer's trace numbers and the batch commit
together or not at all. ISA13, GS06 and ST02 come from the same persisted counters as the
837P's (one sequence per sender), so a 999 or TA1 names exactly one batch of any kind.

The file is written with the envelope of the mailbox that will carry it (its ISA08 must be the
clearinghouse's): the named one, else the one its payer is routed to (``[routing]``,
``hub.exchange.routing``; one file per mailbox when the inquiries' payers go to several); with
none configured, the hub's own envelope; a payer no mailbox serves is a ``ConfigError``.
``hub.exchange.outbound.submit`` then gives it a transmission and uploads it, crash-safe, with
the same bytes on a resend, through the mailbox whose sender and receiver ids it carries.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from decimal import Decimal

from hub.claimstatus.records import StatusInquiry
from hub.claimstatus.x276 import write_276
from hub.eligibility.inquiry import EligibilityRequest
from hub.eligibility.x270 import write_270
from hub.exchange.mailboxes import outbound_envelope
from hub.store import schema
from hub.store.repo import next_counter
from hub.x12.envelope import ControlNumbers, Envelope

log = logging.getLogger(__name__)

ELIGIBILITY, CLAIM_STATUS = "270", "276"
INQUIRY_KINDS = (ELIGIBILITY, CLAIM_STATUS)


def queue_270(hub, session, requests: Sequence[EligibilityRequest], *, mailbox: str | None = None) -> list[int]:
    """Store a 270 asking about ``requests`` as a batch (kind 270) per mailbox their payers are
    routed to (``hub.exchange.routing``; all to ``mailbox`` when named); each request's batch id,
    in order. The caller commits.

    ``InputError`` (naming the inquiry's trace number) when an inquiry cannot be written;
    ``ConfigError`` when the envelope or the named mailbox is wrong, or no mailbox serves a payer.
    """
    return _queue(hub, session, ELIGIBILITY, requests, write_270, mailbox)


def queue_276(hub, session, inquiries: Sequence[StatusInquiry], *, mailbox: str | None = None) -> list[int]:
    """Store a 276 asking about ``inquiries`` (kind 276) per mailbox, as ``queue_270``; each one's batch id."""
    return _queue(hub, session, CLAIM_STATUS, inquiries, write_276, mailbox)


def _queue(hub, session, kind: str, items: Sequence, writer: Callable[..., bytes], mailbox: str | None) -> list[int]:
    from hub.exchange.routing import mailbox_for_payer

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
        content = content.replace(b"~\n", b"~")  # as hub.batches does for such a clearinghouse
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
    """ISA13, GS06 and ST02 from the counters ``hub.batches.create_batch`` uses (same names)."""
    # One sequence per sender: ISA13 must be unique per sender (duplicates get TA1 note 025).
    scope = f"{envelope.sender_qualifier}:{envelope.sender_id}"
    return ControlNumbers(
        interchange=next_counter(session, f"isa13:{scope}"),
        group=next_counter(session, f"gs06:{scope}"),
        transaction=next_counter(session, f"st02:{scope}"),
    )
