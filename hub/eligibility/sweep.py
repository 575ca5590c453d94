"""The eligibility sweep: ask about everyone who will be seen soon or billed soon, once each.

    sweep(hub, days=None) -> SweepReport

Two lists, from ``mappings/rules/eligibility.toml`` ``[sweep]``:

- every **booked appointment** (HL7 SIU feeds) from today through ``appointment_days`` ahead
  (``days`` overrides it), unless the patient's payer and member were asked about within
  ``recent_days`` (answered, or a 270 still waiting for its 271);
- every **claim not yet sent** whose member's newest check is older than
  ``claim_check_max_age_days`` (or who has none).

One question per payer, member and patient (dependents may share the subscriber's member id,
and each is asked about), with the appointment's date, else the claim's date of service; all
asked in one go (``bhhub.eligibility.service.check_many``: portals now, one 270 for the rest).
The runner runs it daily; ``bhhub eligibility sweep`` runs it by hand. Running it twice in a
day asks nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import select

from bhhub.claims.build import UNSENT
from bhhub.runtime.clock import today
from bhhub.eligibility import service, store
from bhhub.model import ClaimStatus
from bhhub.store import schema

TABLE = "rules/eligibility.toml"
BOOKED = "booked"


@dataclass
class SweepReport:
    appointments: int = 0  # booked appointments in the window
    claims: int = 0  # unsent claims looked at
    skipped_recent: int = 0  # members asked about recently enough
    no_coverage: int = 0  # appointments of patients with no coverage on file
    outcomes: list[service.CheckOutcome] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        states: dict[str, int] = {}
        for o in self.outcomes:
            states[o.state] = states.get(o.state, 0) + 1
        return states

    def as_dict(self) -> dict:
        return {"appointments": self.appointments, "claims": self.claims, "asked": len(self.outcomes),
                "skipped_recent": self.skipped_recent, "no_coverage": self.no_coverage, "states": self.counts(),
                "checks": [o.as_dict() for o in self.outcomes]}

    def summary(self) -> str:
        states = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(self.counts().items()))
        return (f"eligibility sweep: {self.appointments} appointment(s), {self.claims} unsent claim(s); "
                f"{len(self.outcomes)} question(s)" + (f" ({states})" if states else "")
                + f", {self.skipped_recent} asked recently")


def settings(hub) -> dict[str, int]:
    table = hub.mappings.load(TABLE).get("sweep", {})
    return {"appointment_days": int(table.get("appointment_days", 7)),
            "claim_check_max_age_days": int(table.get("claim_check_max_age_days", 30)),
            "recent_days": int(table.get("recent_days", 7))}


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def sweep(hub, days: int | None = None, *, via: str | None = None) -> SweepReport:
    """Ask about the coming ``days``' appointments and the stale unsent claims; each 270 goes
    through ``via`` when named, else through the mailbox its payer is routed to."""
    if via is not None:
        from bhhub.exchange.routing import known_mailbox

        known_mailbox(hub, via)  # a mistyped --mailbox stops the sweep before anyone is asked
    rules = settings(hub)
    days = rules["appointment_days"] if days is None else days
    now = today()
    report = SweepReport()
    wanted: dict[tuple[str, str, int], tuple[int, str, date, str]] = {}
    with hub.store.session() as session:
        recent = store.asked_since(session, _start_of(now - timedelta(days=rules["recent_days"])))
        fresh = store.asked_since(session, _start_of(now - timedelta(days=rules["claim_check_max_age_days"])))
        a = schema.Appointment
        appointments = session.execute(
            select(a.patient_id, a.service_date).where(
                a.status == BOOKED, a.patient_id.is_not(None), a.service_date >= now,
                a.service_date <= now + timedelta(days=days)).order_by(a.service_date, a.id)).all()
        report.appointments = len(appointments)
        primary = _primary_coverages(session, {p for p, _ in appointments})
        for patient_id, day in appointments:
            coverage = primary.get(patient_id)
            if coverage is None:
                report.no_coverage += 1
                continue
            key = (*coverage, patient_id)
            if key in wanted:
                continue
            if key in recent:
                report.skipped_recent += 1
                continue
            wanted[key] = (patient_id, coverage[0], day, "sweep")
        _stale_claims(session, UNSENT, fresh, wanted, report)
    return _ask(hub, wanted, report, via=via)


def before_batch(hub) -> SweepReport:
    """The claims about to go into a batch (``ready``) whose member's newest check is older than
    ``claim_check_max_age_days``, asked about now through the payer portals: ``bhhub exchange``
    runs this before it batches (``[sweep] check_before_batch``), so a portal's answer that
    coverage ended holds the claim before it leaves. Members no portal serves are left to the
    daily sweep's 270: a 271 arrives after the batch has gone."""
    rules = settings(hub)
    report = SweepReport()
    wanted: dict[tuple[str, str, int], tuple[int, str, date, str]] = {}
    with hub.store.session() as session:
        fresh = store.asked_since(session, _start_of(today() - timedelta(days=rules["claim_check_max_age_days"])))
        _stale_claims(session, (ClaimStatus.READY.value,), fresh, wanted, report)
    return _ask(hub, wanted, report, mailbox=False)


def _stale_claims(session, statuses, fresh, wanted: dict, report: SweepReport) -> None:
    """Add the members of claims in ``statuses`` not asked about since ``fresh`` to ``wanted``."""
    c, cov, payer = schema.Claim, schema.Coverage, schema.Payer
    claims = session.execute(
        select(c.patient_id, c.service_date, payer.payer_id, cov.member_id)
        .join(cov, cov.id == c.coverage_id).join(payer, payer.id == cov.payer_id)
        .where(c.status.in_(statuses)).order_by(c.service_date, c.id)).all()
    report.claims = len(claims)
    for patient_id, day, payer_id, member_id in claims:
        key = (payer_id, member_id, patient_id)
        if key in wanted:
            continue
        if key in fresh:
            report.skipped_recent += 1
            continue
        wanted[key] = (patient_id, payer_id, day, "before_batch")


def _ask(hub, wanted: dict, report: SweepReport, *, mailbox: bool = True, via: str | None = None) -> SweepReport:
    if wanted:
        items = list(wanted.values())
        report.outcomes = service.check_many(hub, [(p, payer_id, day) for p, payer_id, day, _ in items],
                                             [why for *_, why in items], mailbox=mailbox, via=via)
    return report


def checks_before_batch(hub) -> bool:
    return bool(hub.mappings.load(TABLE).get("sweep", {}).get("check_before_batch", True))


def _primary_coverages(session, patient_ids: set[int]) -> dict[int, tuple[str, str]]:
    """Each patient's primary coverage as (payer id, member id)."""
    if not patient_ids:
        return {}
    cov, payer = schema.Coverage, schema.Payer
    rows = session.execute(
        select(cov.patient_id, payer.payer_id, cov.member_id).join(payer, payer.id == cov.payer_id)
        .where(cov.patient_id.in_(patient_ids)).order_by(cov.patient_id, cov.coverage_order, cov.id.desc())).all()
    found: dict[int, tuple[str, str]] = {}
    for patient_id, payer_id, member_id in rows:
        found.setdefault(patient_id, (payer_id, member_id))
    return found
