"""Making one 837P batch in the store: the ready claims taken, those that cannot go set aside, the
rest written with fresh control numbers and moved to ``batched``.

``create_batch`` runs inside the caller's transaction: the export to a file
(``bhhub.claims.export``) and the exchange's sending (``bhhub.exchange.outbound``) both call it,
and commit. Control numbers come from persisted counters and are never reused.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import false, select, update
from sqlalchemy.orm.attributes import set_committed_value

from bhhub.claims.build import set_status
from bhhub.runtime.crashpoints import crash_point
from bhhub.errors import InputError, StoreError
from bhhub.model import ClaimStatus, Finding, Provider, Severity
from bhhub.store import schema
from bhhub.store.repo import claim_record, next_counter, provider_record
from bhhub.store.schema import utcnow
from bhhub.claims.claim837p import RenderedClaim, assemble_837p, render_claim
from bhhub.x12.envelope import ControlNumbers, Envelope

log = logging.getLogger(__name__)

# The 837 TR3 recommends at most 5000 claims (CLM) per transaction set.
MAX_CLAIMS_PER_BATCH = 5000


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
    query = of_payers(select(claim).where(claim.status == ClaimStatus.READY.value), payers)
    return list(session.scalars(
        query.order_by(claim.billing_provider_id, claim.id).limit(max_claims)
        .with_for_update(skip_locked=True, of=claim)
    ).all())


def of_payers(query, payers):
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
