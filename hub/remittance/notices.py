"""Advance notices: the patient agreed in writing, before the service, to pay if the payer won't.

A Medicare ABN (CMS-R-131) or a plan's waiver makes a PR-50/96/204 the patient's to pay (see
``bhhub.remittance.responsibility``). The hub learns of one in two ways:

- the claim line carries a notice modifier (``notice_modifiers`` in
  ``mappings/remittance/responsibility.toml``: GA, GX), sent with the claim;
- a biller records it: ``bhhub notice add CLAIM --signed-on DATE [--procedure CODE]`` (an
  ``advance_notices`` row, for every revision of the claim, audited).

Recording one after the 835 arrived turns the claim's open PR denials that waited on it into
the patient's (``reconsider``), with the next action the denial table gives.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from bhhub.errors import InputError
from bhhub.store import schema


def notices_for(session, pcn: str) -> list[schema.AdvanceNotice]:
    n = schema.AdvanceNotice
    return list(session.scalars(select(n).where(n.patient_control_number == pcn).order_by(n.id)))


def on_file(claim: schema.Claim, procedure_code: str | None, notices, modifiers) -> bool:
    """A notice covers this service (``procedure_code``; None: a claim-level adjustment, which
    needs a notice for every service on the claim)."""
    if any(n.procedure_code is None for n in notices):
        return True
    lines = [line for line in claim.lines if procedure_code is None or line.procedure_code == procedure_code]
    if not lines:
        return False
    recorded = {n.procedure_code for n in notices}
    return all(line.procedure_code in recorded or set(line.modifiers) & set(modifiers) for line in lines)


def add(session, claim: schema.Claim, signed_on: date, procedure_code: str | None, note: str | None,
        who: str) -> schema.AdvanceNotice:
    if signed_on > claim.service_date:
        raise InputError(f"a notice signed on {signed_on} is after the date of service {claim.service_date}: "
                         f"an advance notice must be signed before the service")
    if procedure_code is not None and not procedure_code.strip():
        # a blank code would be a second notice for every service, not one for a service
        raise InputError("the notice's procedure code is empty: name the service it covers, or give none for "
                         "every service on the claim")
    if procedure_code and procedure_code not in {line.procedure_code for line in claim.lines}:
        raise InputError(f"claim {claim.patient_control_number} has no service {procedure_code}")
    for known in notices_for(session, claim.patient_control_number):
        if (known.procedure_code, known.signed_on) == (procedure_code, signed_on):
            return known  # recorded already: the same command twice records one notice
    notice = schema.AdvanceNotice(patient_control_number=claim.patient_control_number, procedure_code=procedure_code,
                                  signed_on=signed_on, note=note, recorded_by=who[:80])
    session.add(notice)
    session.flush()
    return notice


def reconsider(session, rules, table, claim: schema.Claim) -> list[schema.Denial]:
    """Open PR denials of this claim that were not the patient's for want of a notice and now
    have one: made the patient's, with the denial table's next action. Returns them."""
    d, c, cov, payer = schema.Denial, schema.Claim, schema.Coverage, schema.Payer
    # the payer tables are keyed by the claim's payer id, not by how its 835 named the payer
    rows = session.execute(
        select(d, payer.payer_id).join(c, c.id == d.claim_id)
        .join(cov, cov.id == c.coverage_id).join(payer, payer.id == cov.payer_id)
        .where(c.patient_control_number == claim.patient_control_number, d.status == "open",
               d.group_code == "PR", d.patient_owes.is_(False))).all()
    notices = notices_for(session, claim.patient_control_number)
    changed = []
    for denial, payer_id in rows:
        if not table.needs_notice(payer_id, denial.reason_code):
            continue  # a wrong-payer PR: a notice does not make it the patient's
        owner = session.get(schema.Claim, denial.claim_id)
        if not on_file(owner, denial.procedure_code, notices, table.codes(payer_id, "notice_modifiers")):
            continue
        found = rules.classify("PR", denial.reason_code, denial.remark_codes, payer_id=payer_id,
                               has_secondary=bool(owner.other_coverage_ids))
        denial.patient_owes, denial.action = True, found.action
        denial.action_text = f"An advance notice is on file: {found.action_text}"
        denial.deadline = None  # nothing to appeal: the patient owes it
        changed.append(denial)
    return changed
