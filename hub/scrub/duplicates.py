"""Duplicate services: a claim that repeats a service already billed is blocked, unless it replaces.

A line duplicates an earlier claim's line when the patient, payer, date of service, procedure
code (with the same modifiers) and rendering provider all agree, and the earlier claim is still
standing (not rejected, voided or held back). Payers deny such lines as CARC 18; the fix is a
replacement claim (frequency 7) of the first one, or nothing at all if it was a re-export.

Reads committed claims through a short session of its own: two copies of one visit inside the
same intake chunk are not seen by each other (the encounter key already catches a re-sent
visit; this catches the same service recorded twice under two visits).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import bindparam, select

from bhhub import hookimpl
from bhhub.model import Claim, Finding, Severity
from bhhub.store import schema
from bhhub.types import ClaimCheck

# A pending correction is not a claim at the payer: the revision it corrects stands for it.
_NOT_STANDING = ("needs_attention", "rejected", "void", "pending_correction")


_c, _line, _p, _cov, _payer, _prov = (schema.Claim, schema.ServiceLine, schema.Patient, schema.Coverage,
                                      schema.Payer, schema.Provider)
# One statement, built once: the patient's other standing claims' lines (indexed by patient).
_EARLIER_LINES = (
    select(_c.patient_control_number, _line.procedure_code, _line.modifiers, _line.service_date, _payer.payer_id,
           _prov.npi)
    .select_from(_p)
    .join(_c, _c.patient_id == _p.id)
    .join(_line, _line.claim_id == _c.id)
    .join(_cov, _cov.id == _c.coverage_id)
    .join(_payer, _payer.id == _cov.payer_id)
    .join(_prov, _prov.id == _c.rendering_provider_id, isouter=True)
    .where(_p.key == bindparam("key"), _c.patient_control_number != bindparam("pcn"),
           _c.status.not_in(_NOT_STANDING), _c.frequency_code != "8")
)


def _earlier_lines(claim: Claim, context: Any) -> list | dict:
    cache = getattr(context, "cache", None)
    if cache is None:
        parameters = {"key": claim.patient.key, "pcn": claim.patient_control_number}
        shared = getattr(context, "connection", None)  # intake's own transaction
        if shared is not None:
            return shared.execute(_EARLIER_LINES, parameters).all()
        with context.store.engine.connect() as connection:
            return connection.execute(_EARLIER_LINES, parameters).all()
    index = cache.get("duplicates")
    if index is None:
        index = cache["duplicates"] = {}
        statement = (select(_p.key, *_EARLIER_LINES.selected_columns).select_from(_p)
                     .join(_c, _c.patient_id == _p.id).join(_line, _line.claim_id == _c.id)
                     .join(_cov, _cov.id == _c.coverage_id).join(_payer, _payer.id == _cov.payer_id)
                     .join(_prov, _prov.id == _c.rendering_provider_id, isouter=True)
                     .where(_c.status.not_in(_NOT_STANDING), _c.frequency_code != "8"))
        with context.store.engine.connect() as connection:
            for key, *row in connection.execute(statement):
                index.setdefault(key, {}).setdefault((row[1], row[3]), []).append(tuple(row))
    return index.get(claim.patient.key, {})  # (code, date) -> lines, the claim's own included


def check_duplicates(claim: Claim, context: Any = None) -> Iterator[Finding]:
    if context is None or getattr(context, "store", None) is None or claim.frequency_code != "1":
        return
    rows = _earlier_lines(claim, context)
    if not rows:
        return
    if isinstance(rows, dict):  # a bulk check's index: (code, date) -> lines
        by_service = rows
    else:
        by_service = {}
        for row in rows:
            by_service.setdefault((row[1], row[3]), []).append(row)
    rendering = claim.rendering_provider.npi if claim.rendering_provider else None
    for number, billed in enumerate(claim.lines, start=1):
        for pcn, code, modifiers, day, payer_id, npi in by_service.get((billed.procedure_code, billed.service_date), ()):
            if pcn == claim.patient_control_number:
                continue  # the claim itself (a bulk index holds every standing claim)
            if (code == billed.procedure_code and day == billed.service_date
                    and tuple(modifiers or ()) == tuple(billed.modifiers)
                    and payer_id == claim.coverage.payer.payer_id and (npi is None or npi == rendering)):
                yield Finding(
                    "claim.duplicate_service", Severity.ERROR,
                    f"{billed.procedure_code} on {billed.service_date} for this patient and payer was already "
                    f"billed on claim {pcn}",
                    f"if this visit is the same one, do not bill it again; if {pcn} was wrong, send a "
                    f"replacement of it (`bhhub followup replace {pcn}`) instead of a new claim",
                    number,
                )
                break


@hookimpl
def bhhub_register_claim_checks() -> list[ClaimCheck]:
    return [ClaimCheck("duplicates", "a service already billed for the same patient, payer, date and provider",
                       check_duplicates)]


# --- again when a batch is built ------------------------------------------------------------------

_SENT_OR_TAKEN = (
    select(_c.id, _c.patient_control_number, _c.patient_id, _payer.payer_id, _line.line_number,
           _line.procedure_code, _line.modifiers, _line.service_date, _prov.npi)
    .select_from(_c)
    .join(_line, _line.claim_id == _c.id)
    .join(_cov, _cov.id == _c.coverage_id)
    .join(_payer, _payer.id == _cov.payer_id)
    .join(_prov, _prov.id == _c.rendering_provider_id, isouter=True)
)


def duplicates_at_batch_time(session, rows: list) -> Iterator[tuple[int, Finding]]:
    """(claim id, finding) for each claim about to be batched that repeats a service already sent,
    or one an earlier claim of the same batch carries.

    The check at intake sees committed claims only, so the same service twice in one intake
    (two visits recorded for one session) passes it twice; here every claim of the batch is
    compared with what has left the hub and with the claims before it in the batch. The first
    claim keeps its place. A line whose duplicate finding a biller overrode still goes.
    """
    originals = [row for row in rows if row.frequency_code == "1"]
    if not originals:
        return
    ids = [row.id for row in originals]
    patients = sorted({row.patient_id for row in originals})
    waived = {(claim_id, line) for claim_id, line in session.execute(
        select(schema.FindingOverride.claim_id, schema.FindingOverride.line_number)
        .where(schema.FindingOverride.code == "claim.duplicate_service",
               schema.FindingOverride.claim_id.in_(ids)))}
    seen: dict[tuple, str] = {}
    for start in range(0, len(patients), 500):
        sent = session.execute(_SENT_OR_TAKEN.where(
            _c.patient_id.in_(patients[start:start + 500]), _c.batch_id.is_not(None),
            _c.status.not_in(_NOT_STANDING), _c.frequency_code != "8")).all()
        for row in sent:
            seen.setdefault(_service_key(row), row.patient_control_number)
    lines: dict[int, list] = {}
    for start in range(0, len(ids), 500):
        for row in session.execute(_SENT_OR_TAKEN.where(_c.id.in_(ids[start:start + 500]))
                                   .order_by(_c.id, _line.line_number)):
            lines.setdefault(row.id, []).append(row)
    for claim in sorted(originals, key=lambda r: r.id):
        found = None
        for line in lines.get(claim.id, ()):
            if (claim.id, line.line_number) in waived:
                continue
            earlier = next((seen[k] for k in _lookup_keys(line) if k in seen
                            and seen[k] != claim.patient_control_number), None)
            if earlier is not None:
                found = Finding(
                    "claim.duplicate_service", Severity.ERROR,
                    f"{line.procedure_code} on {line.service_date} for this patient and payer is already billed "
                    f"on claim {earlier} (found when batching)",
                    f"if this visit is the same one, do not bill it again; if {earlier} was wrong, send a "
                    f"replacement of it (`bhhub followup replace {earlier}`) instead of a new claim",
                    line.line_number)
                break
        if found is not None:
            yield claim.id, found
            continue
        for line in lines.get(claim.id, ()):
            seen.setdefault(_service_key(line), claim.patient_control_number)


def _service_key(row) -> tuple:
    """Patient, payer, date, code, modifiers and rendering provider ("*": none named)."""
    return (row.patient_id, row.payer_id, row.service_date, row.procedure_code, tuple(row.modifiers or ()),
            row.npi or "*")


def _lookup_keys(row) -> tuple[tuple, ...]:
    """What a line duplicates: the same service by the same provider, or one billed with no
    rendering provider (as ``check_duplicates`` reads it at intake)."""
    key = _service_key(row)
    return (key, key[:-1] + ("*",)) if row.npi else (key,)
