"""Authorizations that arrive in bulk: a payer's answer carried by an EHR feed, or a CSV file.

Both are keyed like the ledger itself, by payer, member and authorization number, so a repeat
adds nothing: the same FHIR bundle sent twice, two bundles carrying one ClaimResponse, or one
CSV file imported twice leave one row.

CSV import (``bhhub auth import FILE``), one authorization per row, header required::

    payer_id,member_id,number,quantity,unit_type,procedure_codes,start,end,rendering_npi,source
    87726,MEM1008,PA-2026-0042,12,visits,90834 90837,2026-10-01,2026-12-31,,portal

``payer_id``, ``member_id``, ``number``, ``quantity``, ``start`` and ``end`` are needed; dates
are YYYY-MM-DD; ``unit_type`` is visits (the default) or units; ``procedure_codes`` are
separated by spaces or semicolons (empty: any code); ``rendering_npi`` restricts the
authorization to one clinician; ``source`` is typed (the default), portal or eligibility. A row
whose payer, member and number are already on file (active) is left as it is. A file with any
bad row imports nothing, and every bad row is named by its line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from bhhub.runtime.clock import DATE_RULE, iso_date
from bhhub.ledger.csvfile import read_rows
from bhhub.errors import InputError
from bhhub.ledger import authorizations as ledger
from bhhub.model import AuthorizationGrant
from bhhub.store import schema

log = logging.getLogger(__name__)

from bhhub.ledger.vocabulary import AUTHORIZATION_COLUMNS as COLUMNS  # noqa: E402 - kept under their old names
from bhhub.ledger.vocabulary import AUTHORIZATION_REQUIRED as REQUIRED  # noqa: E402
from bhhub.ledger.vocabulary import CSV_SOURCES  # noqa: E402


# --- from an EHR feed ------------------------------------------------------------------------------


def record_grant(session: Session, grant: AuthorizationGrant, patient_id: int | None
                 ) -> tuple[schema.Authorization | None, str]:
    """Put a payer's grant in the ledger (the caller commits and audits): (row, what happened).

    What happened: ``added``; ``updated`` (a grant issued later than the one on file changed
    its dates, count or codes); ``on_file`` (the same, or not issued later: kept as it is);
    ``left_void`` (a biller voided it, and this grant was not issued after that: not re-added).
    """
    codes = ledger.clean_codes(grant.procedure_codes)
    found = ledger.problems(payer_id=grant.payer_id, member_id=grant.member_id, number=grant.number,
                            quantity=grant.quantity, start=grant.start, end=grant.end, procedure_codes=codes,
                            unit_type=grant.unit_type, rendering_npi=grant.rendering_npi, source=grant.source)
    if found:
        raise InputError("the prior authorization cannot go in the ledger: " + "; ".join(found),
                         where=grant.source_ref or None,
                         fix="correct the payer's authorization in the EHR, or enter it with `bhhub auth add`")
    issued = _utc(grant.issued)
    row = ledger.on_file(session, grant.payer_id, grant.member_id, grant.number)
    if row is None:
        voided = _latest_void(session, grant)
        if voided is not None and (issued is None or issued <= _issued(voided)):
            return voided, "left_void"
        row = ledger.insert(session, payer_id=grant.payer_id, member_id=grant.member_id, number=grant.number,
                            quantity=grant.quantity, start=grant.start, end=grant.end, procedure_codes=codes,
                            unit_type=grant.unit_type, rendering_npi=grant.rendering_npi, source=grant.source,
                            patient_id=patient_id if patient_id is not None else
                            ledger.patient_of(session, grant.payer_id, grant.member_id), issued_at=issued)
        return row, "added"
    if _same_terms(row, grant, codes):
        return row, "on_file"
    if issued is None or issued <= _issued(row):
        log.info("authorization %s kept: %s was not issued after it", row.id, grant.source_ref or "the grant")
        return row, "on_file"
    # A later answer from the payer (an extension, a corrected count) replaces the terms.
    row.quantity, row.start_date, row.end_date = grant.quantity, grant.start, grant.end
    row.procedure_codes, row.unit_type, row.rendering_npi = codes, grant.unit_type, grant.rendering_npi
    row.issued_at = issued
    session.flush()
    log.info("authorization %s updated from %s", row.id, grant.source_ref or "a later grant")
    return row, "updated"


def _same_terms(row: schema.Authorization, grant: AuthorizationGrant, codes: list[str]) -> bool:
    return (Decimal(row.quantity) == grant.quantity and row.start_date == grant.start and row.end_date == grant.end
            and sorted(row.procedure_codes or ()) == sorted(codes) and row.unit_type == grant.unit_type
            and row.rendering_npi == grant.rendering_npi)


def _latest_void(session: Session, grant: AuthorizationGrant) -> schema.Authorization | None:
    a = schema.Authorization
    return session.scalar(select(a).where(a.payer_id == grant.payer_id, a.member_id == grant.member_id,
                                          a.number == grant.number, a.status == "void")
                          .order_by(a.id.desc()).limit(1))


def _issued(row: schema.Authorization) -> datetime:
    """When the terms on file were issued: a typed row's are as of its entry."""
    return _utc(row.issued_at or row.created_at)


def _utc(moment: datetime | None) -> datetime | None:
    """Aware UTC (SQLite hands back naive datetimes, which the store writes as UTC)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


# --- from a CSV file --------------------------------------------------------------------------------


@dataclass
class CsvImport:
    """What an import did: rows added, rows already on file (and which of those differ)."""

    added: list[schema.Authorization] = field(default_factory=list)
    on_file: int = 0
    differing_lines: list[int] = field(default_factory=list)  # on file with other terms: left as they are

    def counts(self) -> dict:
        return {"added": len(self.added), "on_file": self.on_file, "differing_lines": self.differing_lines}


@dataclass(frozen=True)
class _Row:
    line: int
    payer_id: str
    member_id: str
    number: str
    quantity: Decimal
    unit_type: str
    procedure_codes: tuple[str, ...]
    start: date
    end: date
    rendering_npi: str | None
    source: str

    @property
    def key(self) -> tuple[str, str, str]:
        return self.payer_id, self.member_id, self.number

    def terms(self) -> tuple:
        return self.quantity, self.unit_type, tuple(sorted(self.procedure_codes)), self.start, self.end, \
            self.rendering_npi

    def same_as(self, row: schema.Authorization) -> bool:
        return self.terms() == (Decimal(row.quantity), row.unit_type, tuple(sorted(row.procedure_codes or ())),
                                row.start_date, row.end_date, row.rendering_npi)


def import_csv(session: Session, path: str | Path, known_payers: set[str] | None = None) -> CsvImport:
    """Read the authorization CSV at ``path`` into the ledger (the caller commits).

    Raises ``InputError`` naming every bad row by its line number; then nothing is imported.
    ``known_payers``, when given, are the payer ids a row may name (``bhhub.ledger.payers``).
    """
    path = Path(path)
    rows, problems = _read(path)
    if known_payers is not None:
        problems += [f"line {row.line}: payer {row.payer_id!r} is no payer the hub knows" for row in rows
                     if row.payer_id not in known_payers]
    first_line: dict[tuple, _Row] = {}
    for row in rows:
        earlier = first_line.setdefault(row.key, row)
        if earlier is not row and earlier.terms() != row.terms():
            problems.append(f"line {row.line}: authorization {row.number} repeats line {earlier.line} with "
                            "other terms")
    if problems:
        raise InputError(f"{len(problems)} bad row(s), nothing imported:\n  " + "\n  ".join(problems),
                         where=str(path), fix="correct the rows named and import the file again")
    result = CsvImport()
    for row in first_line.values():
        known = ledger.on_file(session, *row.key)
        if known is not None:
            result.on_file += 1
            if not row.same_as(known):
                result.differing_lines.append(row.line)
            continue
        result.added.append(ledger.insert(
            session, payer_id=row.payer_id, member_id=row.member_id, number=row.number, quantity=row.quantity,
            start=row.start, end=row.end, procedure_codes=list(row.procedure_codes), unit_type=row.unit_type,
            rendering_npi=row.rendering_npi, source=row.source,
            patient_id=ledger.patient_of(session, row.payer_id, row.member_id)))
    result.on_file += len(rows) - len(first_line)  # a row repeated in the file, same terms
    return result


def _read(path: Path) -> tuple[list[_Row], list[str]]:
    return read_rows(path, columns=COLUMNS, required=REQUIRED, what="the authorization file", parse=_parse_row)


def _parse_row(line: int, values: dict[str, str]) -> tuple[_Row | None, list[str]]:
    problems: list[str] = []

    def day(name: str) -> date | None:
        text = values.get(name, "")
        try:
            return iso_date(text)
        except ValueError:
            problems.append(f"{name} {text!r} is not a date written {DATE_RULE}")
            return None

    unit_type = values.get("unit_type", "").lower() or "visits"
    try:
        quantity = ledger.parse_quantity(values.get("quantity", ""), unit_type)
    except ValueError as exc:
        problems.append(str(exc))
        quantity = None
    start, end = day("start"), day("end")
    source = values.get("source", "").lower() or "typed"
    if source not in CSV_SOURCES:
        problems.append(f"source {source!r} is not one of {', '.join(CSV_SOURCES)}")
    codes = ledger.clean_codes(values.get("procedure_codes", "").replace(";", " ").replace(",", " ").split())
    npi = values.get("rendering_npi") or None
    # The other checks run even when a number or date did not parse, so every problem is named.
    problems += ledger.problems(payer_id=values.get("payer_id", ""), member_id=values.get("member_id", ""),
                                number=values.get("number", ""), quantity=Decimal(1) if quantity is None else quantity,
                                start=start or date.min, end=end or date.max, procedure_codes=codes,
                                unit_type=unit_type, rendering_npi=npi,
                                source=source if source in CSV_SOURCES else "typed")
    if problems:
        return None, problems
    return _Row(line, values["payer_id"], values["member_id"], values["number"], quantity, unit_type, tuple(codes),
                start, end, npi, source), []
