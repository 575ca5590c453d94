"""Where each authorization stands: used, left, days to its end, how it burned down, and whether
it runs out before the patient's booked appointments (``bhhub auth list --json``, the
workspace's authorizations page).

Used is what ``bhhub.ledger.authorization_uses`` holds (uses not released); the burn-down is the
same uses by date of service. An appointment (HL7 SIU, ``schema.Appointment``) needs the
authorization when it is booked, for the same patient, after ``as_of`` and within the
authorization's dates, and with its clinician when the authorization names one (appointments carry
no procedure code: the codes cannot be checked). A visits authorization takes one per day with
an appointment; a units one, the units it took per day of service so far (unknown before its
first use, so no run-out is predicted).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select

from bhhub.common.jsontext import count  # how every --json gives a count: 12 visits, 3.5 units
from bhhub.ledger import authorization_uses
from bhhub.ledger import authorizations as ledger
from bhhub.runtime.clock import today
from bhhub.store import schema

BOOKED = "booked"  # as the eligibility sweep reads SIU appointments (bhhub.eligibility.sweep)


def authorization_data(row: schema.Authorization, used: Decimal) -> dict:
    """One authorization as ``bhhub auth list --json`` has always given it."""
    return {"id": row.id, "payer_id": row.payer_id, "member_id": row.member_id, "patient_id": row.patient_id,
            "number": row.number, "procedure_codes": row.procedure_codes, "unit_type": row.unit_type,
            "authorized": count(row.quantity), "used": count(used), "remaining": count(row.quantity - used),
            "start": row.start_date, "end": row.end_date, "rendering_npi": row.rendering_npi,
            "source": row.source, "status": row.status}


def authorization_status(hub, session, *, as_of: date | None = None, include_void: bool = False) -> list[dict]:
    """Each authorization (``authorization_data``) with, as of ``as_of`` (the hub's today):

    - ``days_to_expiry``: days from ``as_of`` to its last day (negative once ended);
    - ``burn_down``: ``[{date, used, remaining}]`` by date of service, oldest first;
    - ``appointments_ahead``: booked appointments it covers the scope of, after ``as_of``;
    - ``needed_ahead``: what they will take (None: a units authorization not used yet);
    - ``runs_out_before_appointments`` and ``first_uncovered_appointment`` (its date, or None).

    Audited as a read of the authorizations."""
    as_of = as_of or today()
    rows = ledger.list_authorizations(session, include_void=include_void)
    ids = [r.id for r in rows]
    used = authorization_uses.used(session, ids)
    series = _uses_by_date(session, ids)
    ahead = _appointments(session, rows, as_of)
    data = []
    for row in rows:
        taken = used.get(row.id, Decimal(0))
        item = authorization_data(row, taken)
        left = row.quantity - taken
        remaining, burn = row.quantity, []
        for day, units in series.get(row.id, []):
            remaining -= units
            burn.append({"date": day, "used": count(units), "remaining": count(remaining)})
        per_day = _per_day(row, series.get(row.id, []))
        days = ahead.get(row.id, [])
        needed = None if per_day is None else per_day * len(days)
        first_uncovered = None
        if per_day is not None and per_day > 0:
            covered = int(max(left, Decimal(0)) // per_day)  # whole appointments the rest pays for
            first_uncovered = days[covered] if covered < len(days) else None
        item.update({
            "days_to_expiry": (row.end_date - as_of).days,
            "burn_down": burn,
            "appointments_ahead": len(days),
            "needed_ahead": None if needed is None else count(needed),
            "runs_out_before_appointments": None if needed is None else needed > left,
            "first_uncovered_appointment": first_uncovered,
        })
        data.append(item)
    hub.audit(session, "list_authorizations", "authorization", ids, None)
    return data


def _per_day(row: schema.Authorization, uses: list[tuple[date, Decimal]]) -> Decimal | None:
    if row.unit_type == "visits":
        return Decimal(1)
    if not uses:
        return None
    total = sum((units for _, units in uses), Decimal(0))
    return (total / len(uses)).quantize(Decimal("0.001"), ROUND_HALF_UP)


def _uses_by_date(session, ids: list[int]) -> dict[int, list[tuple[date, Decimal]]]:
    """Authorization id -> [(date of service, units held that day)], oldest first."""
    if not ids:
        return {}
    u, line = schema.AuthorizationUse, schema.ServiceLine
    totals: dict[int, dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for authorization_id, day, units in session.execute(
            select(u.authorization_id, line.service_date, u.units)
            .join(line, (line.claim_id == u.claim_id) & (line.line_number == u.line_number))
            .where(u.authorization_id.in_(ids), u.released_at.is_(None))):
        totals[authorization_id][day] += Decimal(units)
    return {aid: sorted((day, units) for day, units in by_day.items() if units) for aid, by_day in totals.items()}


def _appointments(session, rows: list[schema.Authorization], as_of: date) -> dict[int, list[date]]:
    """Authorization id -> the days after ``as_of`` with a booked appointment it would pay for."""
    patients = {r.patient_id for r in rows if r.patient_id is not None and r.status == "active"}
    if not patients:
        return {}
    a = schema.Appointment
    booked = session.execute(select(a.patient_id, a.service_date, a.provider_npi)
                             .where(a.patient_id.in_(patients), a.status == BOOKED, a.service_date > as_of)
                             .order_by(a.service_date)).all()
    out: dict[int, list[date]] = {}
    for row in rows:
        if row.patient_id is None or row.status != "active":
            continue
        days = sorted({day for patient_id, day, npi in booked
                       if patient_id == row.patient_id and row.start_date <= day <= row.end_date
                       and (not row.rendering_npi or npi == row.rendering_npi)})
        out[row.id] = days
    return out
