"""Writing the claims ready to bill into one 837P batch, recorded before it leaves the hub.

Control numbers come from persisted counters and are never reused. The batch's bytes, its
control numbers and the claims' move to ``batched`` are committed in one transaction before the
file is written, so a crash can never leave a file on disk whose numbers the store forgot.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from hub.claims import set_status
from hub.model import ClaimStatus
from hub.store import schema
from hub.model import Provider
from hub.store.repo import claim_record, next_counter, provider_record
from hub.x12.claim837p import RenderedClaim, assemble_837p, render_claim
from hub.x12.envelope import ControlNumbers, Envelope

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


def export_837p(hub, out: Path, *, max_claims: int = MAX_CLAIMS_PER_BATCH) -> BatchResult | None:
    """Batch every ``ready`` claim (up to ``max_claims``) into ``out``; None when none is ready."""
    with hub.store.session() as session:
        batch = create_batch(hub, session, hub.settings.envelope, max_claims, out)
        if batch is None:
            return None
        remaining = session.query(schema.Claim).filter(schema.Claim.status == ClaimStatus.READY.value).count()
        pcns = tuple(session.scalars(select(schema.Claim.patient_control_number)
                                     .where(schema.Claim.batch_id == batch.id).order_by(schema.Claim.id)))
        session.commit()
    _write_atomically(out, batch.content)
    log.info("batch %s written: %d claims, ISA13 %s", batch.id, batch.claim_count, batch.interchange_control_number)
    hub.plugins.hooks.batch_written(batch.id, str(out), batch.claim_count)
    return BatchResult(batch.id, out, batch.claim_count, batch.interchange_control_number, pcns, remaining)


def create_batch(hub, session, envelope: Envelope, max_claims: int, path: Path | None = None, *,
                 line_breaks: bool = True) -> schema.Batch | None:
    """In ``session`` (the caller commits): the next 837P batch of ready claims, recorded with its
    control numbers and bytes, its claims moved to ``batched``; None when no claim is ready.

    ``line_breaks=False`` writes the interchange on one line, for clearinghouses that refuse a
    line break after the segment terminator (a profile's ``claims.line_breaks``).
    """
    rows = session.scalars(
        select(schema.Claim).where(schema.Claim.status == ClaimStatus.READY.value)
        .order_by(schema.Claim.billing_provider_id, schema.Claim.id).limit(max_claims)
    ).all()
    if not rows:
        return None
    groups = _by_billing_provider(session, rows)
    # One sequence per sender: ISA13 must be unique per sender (duplicates get TA1 note 025).
    scope = f"{envelope.sender_qualifier}:{envelope.sender_id}"
    controls = ControlNumbers(
        interchange=next_counter(session, f"isa13:{scope}"),
        group=next_counter(session, f"gs06:{scope}"),
        transaction=next_counter(session, f"st02:{scope}"),
    )
    content = assemble_837p(groups, envelope, controls, datetime.now(timezone.utc))
    if not line_breaks:  # "~" never occurs inside an element (hub.x12.segments), so this is exact
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
    from hub.ledger.authorizations import consume

    for row in rows:
        row.batch_id = batch.id
        set_status(session, row, ClaimStatus.BATCHED, f"batch {batch.id} (ISA13 {batch.interchange_control_number})")
        consume(session, row)  # its visits count against its authorization from now on
    hub.audit(session, "export_837p", "claim", [r.id for r in rows], f"batch {batch.id}")
    return batch


def _by_billing_provider(session, rows) -> list[tuple[Provider, list[RenderedClaim]]]:
    """Rendered claims grouped under their billing provider (one 2000A loop each).

    A ready claim always carries its rendering (made when it became ready); one stored before
    that existed is rendered now from the store.
    """
    groups: dict[int, list[RenderedClaim]] = {}
    for row in rows:
        rendered = (RenderedClaim.from_json(row.rendered_x12) if row.rendered_x12
                    else render_claim(claim_record(session, row)))
        groups.setdefault(row.billing_provider_id, []).append(rendered)
    return [(provider_record(session.get(schema.Provider, pid)), claims) for pid, claims in groups.items()]


def _write_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
