"""Moving canonical records in and out of the store.

Upserts keyed by natural keys (payer id, NPI, patient key, coverage member id) so the same
person or provider arriving in many files is one row, updated to the latest data.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bhhub import model
from bhhub.store import schema


class Upserter:
    """Finds or creates rows for canonical records within one transaction.

    Each record is one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING id`` (SQLite 3.35+ and
    PostgreSQL), so the same person or provider arriving in many files is one row, updated to
    the latest data. ``known`` remembers rows already written with exactly these values by a
    committed transaction of this process, so a provider named in every file costs nothing
    after the first; ``remember()`` adds this transaction's rows once it has committed.
    """

    def __init__(self, session: Session, known: dict[tuple, int] | None = None, *, reserve: int = 1):
        self.session = session
        self.connection = session.connection()
        self._upsert = _upserts(session.get_bind().dialect.name)
        self._known = known if known is not None else {}
        self._written: dict[tuple, int] = {}
        self._reserved: dict[str, list[int]] = {}
        self._reserve = max(1, reserve)
        self._deferred: dict[Any, list[dict[str, Any]]] = {}
        # Encounter key -> (encounter id, claim id, control number, status) in this transaction.
        self.encounters: dict[str, tuple] = {}

    def defer(self, statement: Any, rows: list[dict[str, Any]]) -> None:
        """Queue rows for ``statement`` (an INSERT) to be sent in one executemany by ``flush``."""
        if rows:
            self._deferred.setdefault(statement, []).extend(rows)

    def flush(self) -> None:
        """Send the queued inserts; call before committing."""
        for statement, rows in self._deferred.items():
            self.connection.execute(statement, rows)
        self._deferred.clear()

    def next_number(self, counter: str) -> int:
        """The next value of ``counter``, reserving ``reserve`` at a time (one UPDATE each).

        Numbers reserved but not used when the transaction ends are skipped, never reused.
        """
        pool = self._reserved.setdefault(counter, [])
        if not pool:
            last = next_counter(self.session, counter, self.connection, self._reserve)
            pool.extend(range(last, last - self._reserve, -1))
        return pool.pop()

    def remember(self) -> None:
        """Call after the transaction committed: its rows are now safe to skip."""
        self._known.update(self._written)

    def _row(self, table: str, values: dict[str, Any]) -> int:
        key = (table, json.dumps(values, sort_keys=True, default=str))
        found = self._known.get(key) or self._written.get(key)
        if found is None:
            found = self._written[key] = self.connection.execute(self._upsert[table], values).scalar_one()
        return found

    def payer(self, payer: model.Payer) -> int:
        return self._row("payers", {
            "payer_id": payer.payer_id, "name": payer.name,
            "claim_filing_indicator": payer.claim_filing_indicator,
        })

    def provider(self, provider: model.Provider) -> int:
        return self._row("providers", {
            "npi": provider.npi,
            "organization_name": provider.organization_name,
            "family_name": provider.name.family if provider.name else None,
            "given_name": provider.name.given if provider.name else None,
            "tin": provider.tin,
            "taxonomy": provider.taxonomy,
            "address": _address(provider.address),
        })

    def patient(self, patient: model.Patient) -> int:
        return self._row("patients", {
            "key": patient.key,
            "family_name": patient.name.family,
            "given_name": patient.name.given,
            "middle_name": patient.name.middle,
            "birth_date": patient.birth_date,
            "gender": patient.gender,
            "address": _address(patient.address),
        })

    def coverage(self, patient_id: int, coverage: model.Coverage) -> int:
        return self._row("coverages", {
            "patient_id": patient_id,
            "payer_id": self.payer(coverage.payer),
            "member_id": coverage.member_id,
            "coverage_order": coverage.order,
            "relationship_code": coverage.relationship,
            "group_number": coverage.group_number,
            "plan_name": coverage.plan_name,
            "subscriber": _person(coverage.subscriber) if coverage.subscriber else None,
        })


# Natural key of each upserted table, and the columns an update keeps when the new value is
# missing (a feed that does not mention a provider's tax id does not erase it). A provider is
# one row per NPI whichever role names it: a sole proprietor is the billing and the rendering
# provider, and the rendering role (a clinician, with no address) must not erase what the
# billing role said (the 2010AA address and tax id every claim of theirs needs).
_UPSERT_KEYS = {
    "payers": (("payer_id",), ("claim_filing_indicator",)),
    "providers": (("npi",), ("organization_name", "family_name", "given_name", "tin", "taxonomy", "address")),
    "patients": (("key",), ()),
    "coverages": (("patient_id", "payer_id", "member_id"), ()),
}


@lru_cache(maxsize=4)
def _upserts(dialect: str) -> dict[str, Any]:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:  # pragma: no cover - the hub supports SQLite and PostgreSQL
        raise NotImplementedError(f"no upsert for {dialect}")
    made = {}
    for name, (keys, keep) in _UPSERT_KEYS.items():
        table = schema.Base.metadata.tables[name]
        stmt = dialect_insert(table)
        columns = [c.name for c in table.columns if c.name != "id" and c.name not in keys]
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys),
            set_={c: func.coalesce(stmt.excluded[c], table.c[c]) if c in keep else stmt.excluded[c] for c in columns},
        ).returning(table.c.id)
        made[name] = stmt
    return made


_COUNTERS = schema.ControlCounter.__table__
_NEXT_VALUE = (
    update(_COUNTERS).where(_COUNTERS.c.name == bindparam("counter"))
    .values(value=_COUNTERS.c.value + bindparam("step")).returning(_COUNTERS.c.value)
)


def next_counter(session: Session, name: str, connection: Connection | None = None, step: int = 1) -> int:
    """The next value of a monotonic counter (advanced by ``step``); never handed out twice.

    The UPDATE takes the row lock on PostgreSQL (and the write lock on SQLite), so concurrent
    writers serialize; the first use inserts the row.
    """
    value = (connection or session.connection()).execute(_NEXT_VALUE, {"counter": name, "step": step}).scalar()
    if value is not None:
        return value
    try:
        with session.begin_nested():
            session.connection().execute(insert(_COUNTERS).values(name=name, value=step))
        return step
    except IntegrityError:  # another writer created it first
        return next_counter(session, name, connection, step)


# --- rows back to canonical records -------------------------------------------------------


def claim_record(session: Session, row: schema.Claim) -> model.Claim:
    """The canonical claim for a stored claim row, as the 837P writer needs it."""
    patient = patient_record(session.get(schema.Patient, row.patient_id))
    coverage = coverage_record(session.get(schema.Coverage, row.coverage_id))
    others = tuple(coverage_record(session.get(schema.Coverage, cid)) for cid in row.other_coverage_ids)
    rendering = session.get(schema.Provider, row.rendering_provider_id) if row.rendering_provider_id else None
    return model.Claim(
        patient_control_number=row.patient_control_number,
        patient=patient,
        coverage=coverage,
        billing_provider=provider_record(session.get(schema.Provider, row.billing_provider_id)),
        rendering_provider=provider_record(rendering) if rendering else None,
        diagnoses=tuple(row.diagnoses),
        lines=tuple(
            model.ServiceLine(
                procedure_code=line.procedure_code,
                service_date=line.service_date,
                modifiers=tuple(line.modifiers),
                charge=Decimal(line.charge),
                units=Decimal(line.units).normalize(),
                diagnosis_pointers=tuple(line.diagnosis_pointers),
                place_of_service=line.place_of_service,
                minutes=line.minutes,
                prior_authorization=line.prior_authorization,
                control_number=line.control_number,
            )
            for line in row.lines
        ),
        place_of_service=row.place_of_service,
        frequency_code=row.frequency_code,
        other_coverages=others,
        prior_authorization=row.prior_authorization,
        payer_claim_control_number=row.payer_claim_control_number,
    )


def patient_record(row: schema.Patient) -> model.Patient:
    return model.Patient(
        name=model.PersonName(row.family_name, row.given_name, row.middle_name),
        birth_date=row.birth_date,
        gender=row.gender,
        address=_address_record(row.address),
        key=row.key,
    )


def provider_record(row: schema.Provider) -> model.Provider:
    return model.Provider(
        npi=row.npi,
        organization_name=row.organization_name,
        name=None if row.organization_name else model.PersonName(row.family_name or "", row.given_name),
        tin=row.tin,
        taxonomy=row.taxonomy,
        address=_address_record(row.address),
    )


def coverage_record(row: schema.Coverage) -> model.Coverage:
    return model.Coverage(
        order=row.coverage_order,
        payer=model.Payer(row.payer.payer_id, row.payer.name, row.payer.claim_filing_indicator),
        member_id=row.member_id,
        relationship=row.relationship_code,
        subscriber=_person_record(row.subscriber) if row.subscriber else None,
        group_number=row.group_number,
        plan_name=row.plan_name,
    )


def _address(address: model.Address | None) -> dict[str, Any] | None:
    return asdict(address) if address else None


def _address_record(data: dict[str, Any] | None) -> model.Address | None:
    return model.Address(**data) if data else None


def _person(person: model.Person) -> dict[str, Any]:
    return {
        "name": asdict(person.name),
        "birth_date": person.birth_date.isoformat() if person.birth_date else None,
        "gender": person.gender,
        "address": _address(person.address),
    }


def _person_record(data: dict[str, Any]) -> model.Person:
    return model.Person(
        name=model.PersonName(**data["name"]),
        birth_date=date.fromisoformat(data["birth_date"]) if data.get("birth_date") else None,
        gender=data.get("gender", "U"),
        address=_address_record(data.get("address")),
    )
