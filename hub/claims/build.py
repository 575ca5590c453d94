"""From an encounter to a stored claim: code it, scrub it, store it with its status history.

A claim's patient control number (CLM01) is handed out once and kept for the life of the
claim, across re-sends of the same encounter and later replacements.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from sqlalchemy import bindparam, delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from bhhub import model
from bhhub.coding.engine import code_encounter
from bhhub.coding.rules import claim_filing_indicator
from bhhub.errors import InputError
from bhhub.model import ClaimStatus, Encounter, Finding, Severity
from bhhub.remittance.corrections import on_resend
from bhhub.scrub.engine import ConnectionContext, blocking, scrub
from bhhub.store import schema
from bhhub.store.repo import Upserter
from bhhub.store.schema import utcnow
from bhhub.claims.claim837p import render_claim

PCN_PREFIX = "BH"
# Statuses in which a re-sent encounter may still change its claim: nothing has left the hub.
UNSENT = (ClaimStatus.NEEDS_ATTENTION.value, ClaimStatus.READY.value)
# An override changes what is sent only while the claim waits to be sent: a correction waiting
# for `followup replace` is checked again then. On a claim sent or adjudicated it would rewrite
# history (the clean-claim rate) and change nothing the payer sees.
OVERRIDABLE = (*UNSENT, ClaimStatus.PENDING_CORRECTION.value)


# Statements built once: intake runs them for every encounter.
_ENCOUNTERS, _CLAIMS = schema.Encounter.__table__, schema.Claim.__table__
_LINES, _FINDINGS = schema.ServiceLine.__table__, schema.Finding.__table__
_FIND_ENCOUNTER = (
    select(_ENCOUNTERS.c.id, _CLAIMS.c.id, _CLAIMS.c.patient_control_number, _CLAIMS.c.status)
    .select_from(_ENCOUNTERS.outerjoin(_CLAIMS, _CLAIMS.c.encounter_id == _ENCOUNTERS.c.id))
    .where(_ENCOUNTERS.c.key == bindparam("encounter_key"))
    .order_by(_CLAIMS.c.revision.desc())
)
_FIND_ENCOUNTERS = (
    select(_ENCOUNTERS.c.key, _ENCOUNTERS.c.id, _CLAIMS.c.id, _CLAIMS.c.patient_control_number, _CLAIMS.c.status)
    .select_from(_ENCOUNTERS.outerjoin(_CLAIMS, _CLAIMS.c.encounter_id == _ENCOUNTERS.c.id))
    .where(_ENCOUNTERS.c.key.in_(bindparam("encounter_keys", expanding=True)))
    .order_by(_CLAIMS.c.revision.desc())
)
_INSERT_ENCOUNTER = insert(_ENCOUNTERS).returning(_ENCOUNTERS.c.id)
_UPDATE_ENCOUNTER = update(_ENCOUNTERS).where(_ENCOUNTERS.c.id == bindparam("row_id"))
_INSERT_CLAIM = insert(_CLAIMS).returning(_CLAIMS.c.id)
_UPDATE_CLAIM = update(_CLAIMS).where(_CLAIMS.c.id == bindparam("row_id"))
_INSERT_LINES = insert(_LINES)
_INSERT_FINDINGS = insert(_FINDINGS)
_INSERT_STATUS = insert(schema.ClaimStatusEvent.__table__)
_USES = schema.AuthorizationUse.__table__
_FREQUENCY = select(_CLAIMS.c.frequency_code, _CLAIMS.c.payer_claim_control_number).where(
    _CLAIMS.c.id == bindparam("row_id"))


@dataclass(frozen=True)
class ClaimOutcome:
    claim_id: int | None
    patient_control_number: str | None
    status: str
    action: str  # created, updated, pending_correction, unchanged_sent
    note: str | None = None


def store_encounter(hub, session: Session, upserts: Upserter, encounter: Encounter, inbox_item_id: int) -> ClaimOutcome:
    """Store ``encounter`` and its claim in ``session``; the caller flushes ``upserts`` and commits.

    Core statements on the session's connection rather than ORM units of work: intake is the
    hot path (see benchmarks/). An encounter whose claim has left the hub is decided by
    ``bhhub.remittance.corrections.on_resend`` before anything is written: unchanged, it changes
    nothing; changed, it becomes a pending correction (or, rejected at the front end, a
    corrected original).
    """
    conn = upserts.connection
    encounter_id, prior_id, prior_pcn, prior_status = known_encounter(upserts, encounter.key)
    # SBR09 as the payer table says (it wins over what the EHR sent), on every coverage.
    coverages = [
        replace(c, payer=replace(c.payer, claim_filing_indicator=claim_filing_indicator(hub.mappings, c.payer)))
        for c in sorted(encounter.coverages, key=lambda c: c.order)
    ]
    primary = coverages[0]
    # A plugin may take over coding entirely (its encounter comes back as billed).
    coded_encounter = hub.plugins.hooks.code_encounter(encounter) or encounter
    coded = code_encounter(coded_encounter, primary.payer, hub.mappings)
    pcn = prior_pcn or f"{PCN_PREFIX}{upserts.next_number('patient_control_number'):08d}"
    lines = tuple(
        replace(line, control_number=line.control_number or f"{pcn}-{number}")
        for number, line in enumerate(coded.lines, start=1)
    )
    claim = model.Claim(
        patient_control_number=pcn,
        patient=coded_encounter.patient,
        coverage=primary,
        billing_provider=coded_encounter.billing_provider,
        rendering_provider=coded_encounter.rendering_provider,
        diagnoses=coded_encounter.diagnoses,
        lines=lines,
        place_of_service=coded.place_of_service,
        other_coverages=tuple(coverages[1:]),
        prior_authorization=coded_encounter.prior_authorization,
    )
    target_id, kept_status, note, reason = prior_id, None, None, "encounter re-sent"
    if prior_id is not None and prior_status in UNSENT:  # a replacement held for its findings stays one
        frequency, payer_number = conn.execute(_FREQUENCY, {"row_id": prior_id}).one()
        claim = replace(claim, frequency_code=frequency, payer_claim_control_number=payer_number)
    elif prior_id is not None:
        resend = on_resend(session, session.get(schema.Claim, prior_id), claim, encounter.source_ref)
        # on_resend read rows through the ORM that this transaction now rewrites through Core:
        # forget them, so a later read in this transaction sees the new values.
        session.expire_all()
        if resend.action == "unchanged":
            if encounter.authorizations:  # the claim stays as sent; the ledger still learns
                record_authorizations(hub, session, encounter.authorizations, None)
            return ClaimOutcome(prior_id, prior_pcn, prior_status, "unchanged_sent", resend.note)
        claim, kept_status, note = resend.claim, resend.status, resend.note
        target_id = resend.row_id
        reason = ("pending correction of the billed claim" if kept_status else
                  "corrected after a front-end rejection: a new original")

    patient_id = upserts.patient(encounter.patient)
    coverage_ids = [upserts.coverage(patient_id, c) for c in coverages]
    # The payer's authorizations that came with the visit go in the ledger before the claim is
    # checked, and the check reads them in this transaction (rare: a plain visit costs nothing).
    if encounter.authorizations:
        record_authorizations(hub, session, encounter.authorizations, patient_id)
        session.flush()  # the checks read this transaction through ``conn``
    billing_id = upserts.provider(encounter.billing_provider)
    rendering = encounter.rendering_provider
    # A sole proprietor renders and bills under one NPI: one row, as the billing provider (the
    # 837P leaves out 2310B then), never overwritten by the clinician's sparser record.
    rendering_id = (None if rendering is None else billing_id if rendering.npi == encounter.billing_provider.npi
                    else upserts.provider(rendering))
    encounter_values = {
        "source_ref": encounter.source_ref, "inbox_item_id": inbox_item_id, "patient_id": patient_id,
        "service_date": encounter.service_date, "minutes": encounter.minutes,
        "virtual": encounter.virtual, "audio_only": encounter.audio_only,
    }
    if encounter_id is None:
        encounter_id = conn.execute(
            _INSERT_ENCOUNTER, {"key": encounter.key, "received_at": utcnow(), **encounter_values},
        ).scalar_one()
    else:
        conn.execute(_UPDATE_ENCOUNTER, {"row_id": encounter_id, **encounter_values})

    context = getattr(upserts, "check_context", None)
    if context is None or context.connection is not conn:  # one per intake transaction
        context = upserts.check_context = ConnectionContext(hub, conn)
    findings = [*coded.findings, *scrub(claim, hub.claim_checks, context)]
    rendered = None
    # A re-sent encounter keeps the overrides a biller gave its claim (``bhhub override``).
    waived = overridden(session, target_id) if target_id is not None else set()
    # A pending correction is only checked now (the biller sees its findings); it is rendered
    # when it is sent, with the payer's claim number it replaces.
    if kept_status is None and not blocking([f for f in findings if (f.code, f.line) not in waived]):
        # Rendered now, once: what the checks passed is what a batch will carry, and a claim
        # the 837P cannot express is caught here rather than failing a whole batch.
        try:
            rendered = render_claim(claim).to_json()
        except InputError as exc:
            findings.append(Finding("x12.unwritable", Severity.ERROR, f"the 837P cannot carry this claim: {exc}",
                                    "correct the claim data named in the message in the EHR and send it again"))
    status = (ClaimStatus(kept_status) if kept_status else
              ClaimStatus.READY if rendered is not None else ClaimStatus.NEEDS_ATTENTION)

    now = utcnow()
    claim_values = {
        "status": status.value,
        "encounter_id": encounter_id,
        "patient_id": patient_id,
        "coverage_id": coverage_ids[0],
        "other_coverage_ids": coverage_ids[1:],
        "billing_provider_id": billing_id,
        "rendering_provider_id": rendering_id,
        "place_of_service": claim.place_of_service,
        "prior_authorization": claim.prior_authorization,
        "service_date": min((line.service_date for line in lines), default=encounter.service_date),
        "total_charge": claim.total_charge,
        "diagnoses": list(claim.diagnoses),
        "rendered_x12": rendered,
        "updated_at": now,
    }
    if target_id is None:
        revision = 0 if prior_id is None else _next_revision(conn, pcn)
        claim_id = conn.execute(
            _INSERT_CLAIM,
            {"patient_control_number": pcn, "revision": revision, "frequency_code": claim.frequency_code,
             "payer_claim_control_number": claim.payer_claim_control_number, "created_at": now, **claim_values},
        ).scalar_one()
    else:
        claim_id = target_id
        upserts.flush()  # this claim's queued lines (same encounter earlier in the batch) go first
        if prior_status not in UNSENT and kept_status is None:
            # A rejected original corrected: out of its batch, back in the queue; the payer never
            # had it, so what it took from an authorization is taken again when it goes out.
            claim_values["batch_id"] = None
            conn.execute(delete(_USES).where(_USES.c.claim_id == claim_id))
        elif kept_status is not None:
            claim_values["payer_claim_control_number"] = claim.payer_claim_control_number
        conn.execute(_UPDATE_CLAIM, {"row_id": claim_id, **claim_values})
        conn.execute(delete(_LINES).where(_LINES.c.claim_id == claim_id))
        conn.execute(delete(_FINDINGS).where(_FINDINGS.c.claim_id == claim_id))
    upserts.defer(_INSERT_LINES, [
        {
            "claim_id": claim_id,
            "line_number": number,
            "procedure_code": line.procedure_code,
            "modifiers": list(line.modifiers),
            "charge": line.charge if line.charge is not None else Decimal(0),
            "units": line.units,
            "diagnosis_pointers": list(line.diagnosis_pointers),
            "service_date": line.service_date,
            "place_of_service": line.place_of_service if line.place_of_service != claim.place_of_service else None,
            "minutes": line.minutes,
            "prior_authorization": line.prior_authorization,
            "control_number": line.control_number,
        }
        for number, line in enumerate(lines, start=1)
    ])
    upserts.defer(_INSERT_FINDINGS, [
        {"claim_id": claim_id, "line_number": f.line, "code": f.code, "severity": f.severity.value,
         "message": f.message, "fix": f.fix, "check_name": f.code.split(".", 1)[0]}
        for f in findings
    ])
    if prior_status != status.value or target_id != prior_id:
        upserts.defer(_INSERT_STATUS, [{
            "claim_id": claim_id, "status": status.value, "at": now,
            "reason": "intake" if prior_id is None else reason,
        }])
    upserts.encounters[encounter.key] = (encounter_id, claim_id, pcn, status.value)
    if prior_id is None:
        action = "created"
    elif kept_status is not None:
        action = "pending_correction"
    else:
        action = "updated"
    return ClaimOutcome(claim_id, pcn, status.value, action, note)


def _next_revision(conn, pcn: str) -> int:
    return (conn.execute(select(func.max(_CLAIMS.c.revision)).where(_CLAIMS.c.patient_control_number == pcn))
            .scalar() or 0) + 1


def record_authorizations(hub, session: Session, grants, patient_id: int | None) -> None:
    """Put the grants an encounter carried in the ledger (same payer, member and number: once)."""
    from bhhub.ledger.authorization_imports import record_grant

    for grant in grants:
        row, what = record_grant(session, grant, patient_id)
        if what in ("added", "updated"):
            hub.audit(session, f"authorization_{what}", "authorization", [row.id], f"from {grant.source_ref}")


def known_encounter(upserts: Upserter, key: str) -> tuple:
    """(encounter id, latest claim id, its control number, its status), Nones when new."""
    if key not in upserts.encounters:
        lock_encounters(upserts, [key])
        row = upserts.connection.execute(_FIND_ENCOUNTER, {"encounter_key": key}).first()
        upserts.encounters[key] = tuple(row) if row else (None, None, None, None)
    return upserts.encounters[key]


_LOCK_ENCOUNTER = text("select pg_advisory_xact_lock(hashtextextended(current_schema() || ':encounter:' || :key, 0))")


def lock_encounters(upserts: Upserter, keys: list[str]) -> None:
    """Hold each encounter key for this transaction before looking it up, so two intakes of the
    same visit at once do not both find it new (one waits, then finds the other's row and updates
    its claim). PostgreSQL: transaction-scoped advisory locks, taken in key order so two chunks
    never wait on each other in a circle; SQLite: the session holds the write lock already."""
    if upserts.connection.dialect.name != "postgresql":
        return
    for key in sorted(set(keys)):
        upserts.connection.execute(_LOCK_ENCOUNTER, {"key": key})


def prefetch_encounters(upserts: Upserter, keys: list[str]) -> None:
    """Look up many encounters in one query (intake of a chunk of files)."""
    missing = [k for k in set(keys) if k not in upserts.encounters]
    lock_encounters(upserts, missing)
    for k in missing:
        upserts.encounters[k] = (None, None, None, None)
    for start in range(0, len(missing), 500):
        rows = upserts.connection.execute(
            _FIND_ENCOUNTERS, {"encounter_keys": missing[start:start + 500]}
        ).all()
        for row in reversed(rows):  # the newest revision last, so it wins
            upserts.encounters[row.key] = (row[1], row[2], row[3], row[4])


def set_status(session: Session, row: schema.Claim, status: ClaimStatus, reason: str) -> None:
    """Move a claim to ``status`` and append it to the claim's history."""
    row.status = status.value
    session.add(schema.ClaimStatusEvent(claim_id=row.id, status=status.value, reason=reason))


def resubmit(session: Session, row: schema.Claim, actor_reason: str) -> None:
    """Put a rejected claim back in the queue for the next batch (same CLM01, same revision).

    Only a claim known rejected (TA1, 999 or 277CA) may go into a new transmission, or one the
    payer says it cannot find (277CA A4, after a person looked into it): one that is in flight
    or adjudicated never is, so nothing is sent twice.
    """
    from bhhub.acknowledgments.standing import not_found

    if row.status != ClaimStatus.REJECTED.value and not not_found(session, row):
        raise InputError(f"claim {row.patient_control_number} is {row.status}, not rejected; only a rejected "
                         f"claim is sent again")
    if any(f.severity == "error" for f in row.findings):
        raise InputError(f"claim {row.patient_control_number} has error findings; fix them first")
    row.batch_id = None
    set_status(session, row, ClaimStatus.READY, f"resubmitted: {actor_reason}")


# Findings the coding stage makes from the encounter itself; a re-scrub of the stored claim
# cannot redo them, so it keeps them.
CODING_STAGE = frozenset({"coding.no_table", "coding.no_service", "psychotherapy.under_minimum", "fee.missing"})


def overridden(session: Session, claim_id: int) -> set[tuple[str, int | None]]:
    """(finding code, line) pairs a biller has overridden on this claim (``bhhub claims override``).

    Never one of the findings that make the 837P invalid (bhhub.scrub.never_overridden), even
    when an override of it was recorded before that table listed it."""
    from bhhub.scrub.never_overridden import never_overridden

    table = schema.FindingOverride
    never = never_overridden()
    return {(code, line) for code, line in session.execute(
        select(table.code, table.line_number).where(table.claim_id == claim_id)) if code not in never}


def rescrub(hub, session: Session, row: schema.Claim, context=None) -> str | None:
    """Run every check again on a claim not yet sent; its new status, or None when it has left.

    Findings a biller overrode (with a recorded reason) do not block; everything else is as at
    intake. A claim that becomes clean is rendered now, as at intake.
    """
    if row.status not in UNSENT:
        return None
    status = check_and_render(hub, session, row, context)
    if row.status != status.value:
        set_status(session, row, status, "re-scrubbed")
    return status.value


def check_and_render(hub, session: Session, row: schema.Claim, context=None) -> ClaimStatus:
    """Check the stored claim again and render it when nothing blocks: the status it should have
    (ready or needs attention); the caller records it. Its findings are replaced."""
    from bhhub.store.repo import claim_record

    claim = claim_record(session, row)
    kept = [Finding(f.code, Severity(f.severity), f.message, f.fix, f.line_number)
            for f in row.findings if f.code in CODING_STAGE]
    findings = [*kept, *scrub(claim, hub.claim_checks, context or hub)]
    waived = overridden(session, row.id)
    blocking_findings = [f for f in findings if (f.code, f.line) not in waived]
    rendered = None
    if not blocking(blocking_findings):
        try:
            rendered = render_claim(claim).to_json()
        except InputError as exc:
            findings.append(Finding("x12.unwritable", Severity.ERROR, f"the 837P cannot carry this claim: {exc}",
                                    "correct the claim data named in the message in the EHR and send it again"))
    row.findings.clear()
    for f in findings:
        row.findings.append(schema.Finding(line_number=f.line, code=f.code, severity=f.severity.value,
                                           message=f.message, fix=f.fix, check_name=f.code.split(".", 1)[0]))
    row.rendered_x12 = rendered
    return ClaimStatus.READY if rendered is not None else ClaimStatus.NEEDS_ATTENTION
