"""What the 835s said about one claim, for ``bhhub claims``: each posting with the remark codes
the payer applied (MOA/MIA for the claim, LQ for a line), a crossover still waiting for the next
payer, and the PLB amounts that name the claim (``bhhub.remittance.plb``)."""

from __future__ import annotations

from collections import namedtuple

from sqlalchemy import select

from bhhub.listings.json_columns import decode_json, json_text
from bhhub.remittance import crossovers, plb
from bhhub.remittance.denials import DenialRules
from bhhub.store import schema
from bhhub.store.one_of import one_of


def remittance_of(session, rules: DenialRules, claim: schema.Claim) -> dict:
    return remittances_of(session, rules, [claim])[claim.id]


def remittances_of(session, rules: DenialRules, claims) -> dict[int, dict]:
    """claim id -> ``remittance_of`` for many claims in a few queries (a listing's page).

    ``claims`` need only ``id`` and ``patient_control_number``. What the 835s said is kept by
    patient control number: every revision of a claim shows the same postings."""
    if not claims:
        return {}
    conn = session.connection()
    pcns = sorted({claim.patient_control_number for claim in claims})
    # every revision of these claims; what a PLB03-2 may carry for each (bhhub.remittance.plb.references_of)
    pcn_of, refs = {}, {pcn: {pcn} for pcn in pcns}
    for claim_id, pcn, number in conn.execute(_REVISIONS, {"pcns": pcns}).all():
        pcn_of[claim_id] = pcn
        refs[pcn].add(number)
    posted: dict[str, list] = {pcn: [] for pcn in pcns}
    # By claim id (its index), every state, the posted ones kept here: asked for "posted" in SQL,
    # SQLite read every posted claim payment of the hub for each page. One row holds what
    # ``_posting`` and ``crossovers.pending_among`` read of the claim payment and of its payment.
    for row in _payment_rows(conn.execute(_CLAIM_PAYMENTS, {"ids": list(pcn_of)}).all()):
        pcn = pcn_of[row.claim_id]
        refs[pcn].add(row.payer_claim_control_number)
        if row.state == "posted":
            posted[pcn].append((row, row))
    adjustments = plb.for_references(session, rules.mappings, refs)
    views = {}
    for pcn in pcns:
        pending = crossovers.pending_among((row, payment.payer_id, payment.trace_number, row.claim_payer_id)
                                           for row, payment in posted[pcn]) if posted[pcn] else None
        views[pcn] = {
            "postings": [_posting(rules, row, payment) for row, payment in posted[pcn]],
            "crossover": None if pending is None else {
                "forwarded_by": pending.payer_id, "forwarded_by_835": pending.payer_id_835,
                "to": pending.to or None, "trace_number": pending.trace_number,
                "waiting_for_835": True, "note": pending.sentence(pcn)},
            "provider_adjustments": adjustments[pcn],
        }
    return {claim.id: views[claim.patient_control_number] for claim in claims}


def _payment_rows(rows) -> list:
    """The claim payments as named tuples (``_posting`` reads a dozen fields of each by name, which
    SQLAlchemy's Row is slow at), their JSON columns (remarks, services) decoded in one call."""
    rows = list(map(_PaymentRow._make, rows))
    decoded = iter(decode_json([text for row in rows for text in (row.remarks, row.services)]))
    return [row._replace(remarks=remarks, services=services) for row, remarks, services in zip(rows, decoded, decoded)]


_c, _r, _p = schema.Claim, schema.RemitClaim, schema.RemitPayment
_cov, _payer = schema.Coverage, schema.Payer
_REVISIONS = (select(_c.id, _c.patient_control_number, _c.payer_claim_control_number)
              .where(one_of(_c.patient_control_number, "pcns")))
# The payer of a posting is the payer of the claim revision it posted to, by the claim's payer
# id: an 835 may name its payer only by the trace's originator (TRN03), kept as payer_id_835.
_CLAIM_PAYMENTS = (select(_r.claim_id, _r.state, _r.status_code, _r.charge, _r.paid, _r.patient_responsibility,
                          _r.payer_claim_control_number, json_text(_r.remarks), json_text(_r.services),
                          _r.crossed_over, _r.crossover_payer, _r.reversed_by_id, _p.payer_id, _p.trace_number,
                          _p.payment_date, _payer.payer_id.label("claim_payer_id"))
                   .join(_p, _p.id == _r.payment_id).join(_c, _c.id == _r.claim_id)
                   .join(_cov, _cov.id == _c.coverage_id).join(_payer, _payer.id == _cov.payer_id)
                   .where(one_of(_r.claim_id, "ids"))
                   .order_by(_r.id))
_PaymentRow = namedtuple("_PaymentRow", [column.key for column in _CLAIM_PAYMENTS.selected_columns])


def _posting(rules: DenialRules, row: schema.RemitClaim, payment: schema.RemitPayment) -> dict:
    return {
        "payer_id": row.claim_payer_id, "payer_id_835": payment.payer_id, "trace_number": payment.trace_number,
        "payment_date": payment.payment_date,
        "status_code": row.status_code, "charge": row.charge, "paid": row.paid,
        "patient_responsibility": row.patient_responsibility,
        "payer_claim_control_number": row.payer_claim_control_number or None,
        "remarks": [{"code": code, "meaning": rules.remark_description(code)} for code in row.remarks],
        "line_remarks": [{"line": number, "code": code, "meaning": rules.remark_description(code)}
                         for number, service in enumerate(row.services, start=1) for code in service.get("remarks", ())],
        "crossover": {"to": row.crossover_payer or None} if row.crossed_over else None,
        "reversed": row.reversed_by_id is not None,
    }


def lines_of(view: dict) -> list[str]:
    """The view as a biller reads it under the claims table."""
    out = []
    for posting in view["postings"]:
        for remark in posting["remarks"]:
            out.append(f"remark {remark['code']} (835 trace {posting['trace_number']}): {remark['meaning']}")
    if view["crossover"] is not None:
        out.append(f"crossover: {view['crossover']['note']}")
    for line in view["provider_adjustments"]:
        out.append(f"PLB {line['reason']} {line['amount']} (trace {line['trace_number']}, {line['effect']}): "
                   f"{line['meaning']}")
    return out
