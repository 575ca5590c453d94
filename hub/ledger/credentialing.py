"""The enrollment registry: which rendering provider may bill which payer on which dates.

Claims for a date before the effective date, after a termination, or for a rendering NPI the
payer has not linked deny (CARC B7, 170, 185, 242; domain reference 11.3), so the scrubber
checks the registry. A practice that keeps no registry still bills: an unknown pair only warns.

CSV import (``bhhub credentialing import FILE``), one enrollment per row, header required::

    npi,payer_id,status,effective,end,in_network,era,eft,reattestation_due
    1234567893,87726,enrolled,2025-01-01,,yes,yes,no,2026-12-15

``npi``, ``payer_id`` and ``status`` (enrolled, pending, terminated, not_enrolled) are needed;
dates are YYYY-MM-DD or empty (no bound); yes/no columns accept yes/no, true/false, 1/0 and
default to in network, no ERA, no EFT. A row with the same NPI, payer and effective date
updates the one on file. A file with any bad row imports nothing, and every bad row is named.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from bhhub.runtime.clock import DATE_RULE, iso_date
from bhhub.ledger.csvfile import read_rows
from bhhub.errors import InputError
from bhhub.exchange.alerts import clear_alert, raise_alert
from bhhub.common.identifiers import npi_is_valid
from bhhub.store import schema

log = logging.getLogger(__name__)

from bhhub.ledger.vocabulary import ENROLLMENT_COLUMNS as COLUMNS  # noqa: E402 - kept under their old names
from bhhub.ledger.vocabulary import ENROLLMENT_REQUIRED as REQUIRED  # noqa: E402
from bhhub.ledger.vocabulary import ENROLLMENT_STATUSES as STATUSES  # noqa: E402
_YES, _NO = {"yes", "y", "true", "1"}, {"no", "n", "false", "0"}


@dataclass(frozen=True)
class EnrollmentFacts:
    npi: str
    payer_id: str
    status: str
    effective: date | None = None
    end: date | None = None
    in_network: bool = True
    era: bool = False
    eft: bool = False
    reattestation_due: date | None = None

    def problems(self) -> list[str]:
        found = []
        if not npi_is_valid(self.npi):
            found.append(f"NPI {self.npi!r} fails the NPI check digit")
        if not self.payer_id:
            found.append("no payer id")
        if self.status not in STATUSES:
            found.append(f"status {self.status!r} is not one of {', '.join(STATUSES)}")
        if self.effective and self.end and self.end < self.effective:
            found.append(f"ends ({self.end}) before it is effective ({self.effective})")
        return found


def add(session: Session, facts: EnrollmentFacts, *, source: str = "typed") -> tuple[schema.Enrollment, bool]:
    """Record (or update, same NPI, payer and effective date) an enrollment; (row, created)."""
    problems = facts.problems()
    if problems:
        raise InputError("; ".join(problems))
    e = schema.Enrollment
    effective = e.effective_date.is_(None) if facts.effective is None else e.effective_date == facts.effective
    row = session.scalar(select(e).where(e.npi == facts.npi, e.payer_id == facts.payer_id, effective))
    created = row is None
    if created:
        row = schema.Enrollment(npi=facts.npi, payer_id=facts.payer_id, effective_date=facts.effective)
        session.add(row)
    row.status, row.end_date, row.in_network = facts.status, facts.end, facts.in_network
    row.era_enrolled, row.eft_enrolled, row.reattestation_due = facts.era, facts.eft, facts.reattestation_due
    row.source = source
    session.flush()
    return row, created


def list_enrollments(session: Session) -> list[schema.Enrollment]:
    e = schema.Enrollment
    return list(session.scalars(select(e).order_by(e.npi, e.payer_id, e.effective_date, e.id)))


def import_csv(session: Session, path: str | Path, touched: set[tuple[str, str]] | None = None,
               known_payers: set[str] | None = None) -> dict[str, int]:
    """Read the enrollment CSV at ``path`` (the caller commits): {"added": n, "updated": n}.

    Raises ``InputError`` naming every bad row by its line number; then nothing is imported.
    ``touched``, when given, receives the (payer id, NPI) of every row recorded; ``known_payers``,
    when given, are the payer ids a row may name (``bhhub.ledger.payers``).
    """
    path = Path(path)

    def parse(_line: int, values: dict[str, str]):
        facts, problems = _parse_row(values)
        payer_id = values.get("payer_id", "")
        if known_payers is not None and payer_id and payer_id not in known_payers:
            return None, [*problems, f"payer {payer_id!r} is no payer the hub knows"]
        return facts, problems

    rows, problems = read_rows(path, columns=COLUMNS, required=REQUIRED, what="the enrollment file", parse=parse)
    if problems:
        raise InputError(f"{len(problems)} bad row(s), nothing imported:\n  " + "\n  ".join(problems), where=str(path))
    counts = {"added": 0, "updated": 0}
    for facts in rows:
        _, created = add(session, facts, source="csv")
        counts["added" if created else "updated"] += 1
        if touched is not None:
            touched.add((facts.payer_id, facts.npi))
    return counts


def _parse_row(values: dict[str, str]) -> tuple[EnrollmentFacts | None, list[str]]:
    problems: list[str] = []

    def day(name: str) -> date | None:
        text = values.get(name, "")
        if not text:
            return None
        try:
            return iso_date(text)
        except ValueError:
            problems.append(f"{name} {text!r} is not a date written {DATE_RULE}")
            return None

    def flag(name: str, default: bool) -> bool:
        text = values.get(name, "").lower()
        if not text:
            return default
        if text not in _YES | _NO:
            problems.append(f"{name} {text!r} is not yes or no")
        return text in _YES

    facts = EnrollmentFacts(
        npi=values.get("npi", ""), payer_id=values.get("payer_id", ""), status=values.get("status", "").lower(),
        effective=day("effective"), end=day("end"), in_network=flag("in_network", True),
        era=flag("era", False), eft=flag("eft", False), reattestation_due=day("reattestation_due"),
    )
    problems += facts.problems()
    return (None if problems else facts), problems


# --- reading the registry ------------------------------------------------------------------------


def enrollments_for(session: Session, npi: str, payer_id: str) -> list[schema.Enrollment]:
    e = schema.Enrollment
    return list(session.scalars(select(e).where(e.npi == npi, e.payer_id == payer_id)))


def has_any(session: Session) -> bool:
    """Whether the practice keeps a registry at all."""
    return session.scalar(select(schema.Enrollment.id).limit(1)) is not None


def on_date(enrollments: list[schema.Enrollment], day: date) -> schema.Enrollment | None:
    """The record in force on ``day`` (the latest effective one when several are)."""
    live = [r for r in enrollments
            if (r.effective_date is None or r.effective_date <= day) and (r.end_date is None or day <= r.end_date)]
    return max(live, key=lambda r: (r.effective_date or date.min, r.id), default=None)


# --- expirations -----------------------------------------------------------------------------------


def check_expirations(session: Session, today: date, days: int = 30) -> list[str]:
    """Raise an alert for each enrollment ending, and each CAQH re-attestation due, within
    ``days`` of ``today`` (the caller commits); clear those no longer due. The keys raised new.

    Keys: ``enrollment_expiring:{npi}:{payer}`` and ``reattestation_due:{npi}``. A profile not
    re-attested is "Expired" the day after its due date, which stalls re-credentialing (11.3).
    """
    horizon = today + timedelta(days=days)
    expiring: dict[str, str] = {}
    attest: dict[str, date] = {}
    watched_enrollments, watched_attest = set(), set()
    for row in list_enrollments(session):
        key = f"enrollment_expiring:{row.npi}:{row.payer_id}"
        watched_enrollments.add(key)
        if row.status == "enrolled" and row.end_date is not None and today <= row.end_date <= horizon:
            expiring[key] = (f"provider {row.npi}'s enrollment with payer {row.payer_id} ends {row.end_date} "
                             f"({(row.end_date - today).days} days); renew it or record the new end date")
        if row.reattestation_due is not None:
            watched_attest.add(row.npi)
            if row.reattestation_due <= horizon:
                attest[row.npi] = min(row.reattestation_due, attest.get(row.npi, date.max))
    new = []
    for key, message in sorted(expiring.items()):
        if raise_alert(session, key, "enrollment_expiring", message):
            new.append(key)
    for key in sorted(watched_enrollments - expiring.keys()):
        clear_alert(session, key)
    for npi, due in sorted(attest.items()):
        state = "was due" if due < today else "is due"
        if raise_alert(session, f"reattestation_due:{npi}", "reattestation_due",
                       f"provider {npi}'s CAQH re-attestation {state} {due}; re-attest in ProView"):
            new.append(f"reattestation_due:{npi}")
    for npi in sorted(watched_attest - attest.keys()):
        clear_alert(session, f"reattestation_due:{npi}")
    return new
