"""The authorization ledger: what each payer authorized (the grants on file).

Recording one (``add``, checked with ``problems``; ``insert`` for importers that check in
bulk), finding one (``on_file``, ``list_authorizations``), voiding one, and reading an
authorized count (``parse_quantity``, ``quantity_problems``). What the claims that went out
took from them is ``bhhub.ledger.authorization_uses``; which authorization a claim's line takes
is ``bhhub.ledger.authorization_matching``.

Counting "visits" takes one per date of service on a claim (an E/M with its psychotherapy
add-on is one visit); counting "units" takes the lines' units (H-codes, testing hours).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.orm import Session

from bhhub.errors import InputError, UsageError
from bhhub.common.identifiers import npi_is_valid
from bhhub.store import schema

log = logging.getLogger(__name__)

from bhhub.ledger.vocabulary import SOURCES, UNIT_TYPES  # noqa: E402 - re-exported: the CLI reads them there


def count_text(value: Decimal) -> str:
    """6, 1.5: a count without the store's trailing zeros."""
    return f"{Decimal(value).normalize():f}"


# --- the ledger -----------------------------------------------------------------------------------


# The store keeps a count as NUMERIC(9, 3): below a million, to a thousandth. A larger one is
# no payer's grant (SQLite would keep it as inf, PostgreSQL refuse the row).
QUANTITY_LIMIT = Decimal(1_000_000)
QUANTITY_STEP = Decimal("0.001")


def quantity_problems(quantity: Decimal, unit_type: str = "visits") -> list[str]:
    """What is wrong with an authorized count: not a finite number, not positive, too large, a
    part visit (a visit is one date of service), or finer than the store keeps."""
    if not quantity.is_finite():
        return [f"the authorized count must be a finite number, not {quantity}"]
    if quantity <= 0:
        return [f"the authorized count must be positive, not {count_text(quantity)}"]
    if quantity >= QUANTITY_LIMIT:
        # shown as Decimal writes it (1E+400), not in 401 digits
        return [f"the authorized count must be below {QUANTITY_LIMIT:,}, not {quantity}"]
    if unit_type == "visits" and quantity != quantity.to_integral_value():
        return [f"visits are counted whole (one per date of service), not {count_text(quantity)}"]
    if quantity != quantity.quantize(QUANTITY_STEP):
        return [f"the authorized count is kept to a thousandth, not {count_text(quantity)}"]
    return []


def parse_quantity(text: str, unit_type: str = "visits", name: str = "quantity") -> Decimal:
    """The one reading of an authorized count, typed (``auth add``) or imported (``auth import``):
    a ValueError naming the rule for anything ``quantity_problems`` refuses."""
    try:
        quantity = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{name} {text!r} is not a number") from None
    found = quantity_problems(quantity, unit_type)
    if found:
        raise ValueError("; ".join(found))
    return quantity


def problems(*, payer_id: str, member_id: str, number: str, quantity: Decimal, start: date, end: date,
             procedure_codes: Sequence[str] = (), unit_type: str = "visits", rendering_npi: str | None = None,
             source: str = "typed") -> list[str]:
    """Everything wrong with an authorization's facts, in words a biller can act on."""
    found = []
    if not payer_id.strip() or not member_id.strip() or not number.strip():
        found.append("payer, member id and authorization number are all needed")
    found += quantity_problems(Decimal(quantity), unit_type)  # a grant from a plugin, too: never inf or NaN
    if end < start:
        found.append(f"the authorization ends ({end}) before it starts ({start})")
    if unit_type not in UNIT_TYPES:
        found.append(f"unit type {unit_type!r} is not one of {', '.join(UNIT_TYPES)}")
    if source not in SOURCES:
        found.append(f"source {source!r} is not one of {', '.join(SOURCES)}")
    if rendering_npi is not None and not npi_is_valid(rendering_npi):
        found.append(f"rendering NPI {rendering_npi!r} fails the NPI check digit")
    if any(len(c) != 5 for c in procedure_codes):
        found.append("procedure codes are 5-character CPT/HCPCS codes, separated by commas")
    return found


def clean_codes(procedure_codes: Iterable[str]) -> list[str]:
    return [c.strip().upper() for c in procedure_codes if c.strip()]


def on_file(session: Session, payer_id: str, member_id: str, number: str) -> schema.Authorization | None:
    """The active authorization with this payer, member and number: the ledger's natural key."""
    a = schema.Authorization
    return session.scalar(select(a).where(a.payer_id == payer_id, a.member_id == member_id,
                                          a.number == number, a.status == "active").order_by(a.id))


def add(session: Session, *, payer_id: str, member_id: str, number: str, quantity: Decimal | int,
        start: date, end: date, procedure_codes: Sequence[str] = (), unit_type: str = "visits",
        rendering_npi: str | None = None, source: str = "typed") -> schema.Authorization:
    """Record an authorization (the caller commits). Every problem is reported at once."""
    quantity = Decimal(quantity)
    codes = clean_codes(procedure_codes)
    found = problems(payer_id=payer_id, member_id=member_id, number=number, quantity=quantity, start=start,
                     end=end, procedure_codes=codes, unit_type=unit_type, rendering_npi=rendering_npi, source=source)
    if found:
        raise InputError("; ".join(found))
    same = on_file(session, payer_id, member_id, number)
    if same is not None:
        raise InputError(f"authorization {number} for this member and payer is already on file as {same.id}",
                         fix=f"void {same.id} first to enter it again")
    return insert(session, payer_id=payer_id, member_id=member_id, number=number, quantity=quantity, start=start,
                  end=end, procedure_codes=codes, unit_type=unit_type, rendering_npi=rendering_npi, source=source,
                  patient_id=patient_of(session, payer_id, member_id))


def insert(session: Session, *, payer_id: str, member_id: str, number: str, quantity: Decimal, start: date,
           end: date, procedure_codes: list[str], unit_type: str, rendering_npi: str | None, source: str,
           patient_id: int | None, issued_at=None) -> schema.Authorization:
    """Add a checked authorization row (``add`` checks; the importers check in bulk)."""
    row = schema.Authorization(payer_id=payer_id, member_id=member_id, patient_id=patient_id, number=number,
                               procedure_codes=procedure_codes, unit_type=unit_type, quantity=quantity,
                               start_date=start, end_date=end, rendering_npi=rendering_npi, source=source,
                               status="active", issued_at=issued_at)
    session.add(row)
    session.flush()
    log.info("authorization %s added (source %s)", row.id, source)
    return row


def patient_of(session: Session, payer_id: str, member_id: str) -> int | None:
    """The patient whose coverage carries this member id with this payer, when exactly one."""
    c = schema.Coverage
    ids = set(session.scalars(select(c.patient_id).join(schema.Payer, schema.Payer.id == c.payer_id)
                              .where(schema.Payer.payer_id == payer_id, c.member_id == member_id)))
    return ids.pop() if len(ids) == 1 else None


def void(session: Session, authorization_id: int) -> schema.Authorization:
    row = session.get(schema.Authorization, authorization_id)
    if row is None:
        raise UsageError(f"no authorization {authorization_id}")
    if row.status == "void":
        raise InputError(f"authorization {authorization_id} is void already")
    row.status = "void"
    return row


def list_authorizations(session: Session, *, include_void: bool = False) -> list[schema.Authorization]:
    a = schema.Authorization
    query = select(a).order_by(a.payer_id, a.member_id, a.start_date, a.id)
    if not include_void:
        query = query.where(a.status == "active")
    return list(session.scalars(query))
