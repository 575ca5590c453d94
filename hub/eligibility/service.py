"""Asking a payer about a patient's coverage: through a payer portal at once, or a 270 in the mailbox.

    check(hub, patient_id, payer_id=None, service_date=None, reason="asked") -> CheckOutcome
    check_many(hub, wanted, reason) -> [CheckOutcome]        (the sweep: one 270 for all that need one)

The question is built from the stored patient and coverage (the primary one, or the payer's),
as a claim would be: a patient who is the subscriber (relationship 18) is asked about as the
subscriber; otherwise the subscriber on the coverage is named with the patient as the dependent
(a 2000D loop, ``bhhub.eligibility.inquiry``). Then, in order:

1. **Payer portals.** ``bhhub_check_eligibility`` (``Hooks.check_eligibility``): the first plugin
   serving the payer answers now; the answer, or the plugin's failure with its reason, is stored
   at once (source ``portal:NAME``) and its effects applied (``bhhub.eligibility.effects``).
2. **The clearinghouse mailbox.** With no portal for the payer and a mailbox configured, the
   questions are stored (state requested, each with its own trace number) and one 270 is queued
   for the next ``bhhub exchange`` (``bhhub.exchange.inquiries.queue_270``), in one transaction;
   the 271 comes back through the mailbox (or ``bhhub intake``) and answers them by trace number.
3. Neither: ``ConfigError`` saying how to set one up.

Portals are called with no transaction open (a slow API must not hold the store's write lock).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from bhhub.runtime.clock import today
from bhhub.eligibility import codes, effects, store
from bhhub.eligibility.inquiry import EligibilityRequest
from bhhub.errors import ConfigError, InputError, UsageError
from bhhub.model import Coverage, Patient, Provider
from bhhub.store import schema
from bhhub.store.repo import coverage_record, patient_record, provider_record
from bhhub.store.schema import utcnow

log = logging.getLogger(__name__)

NOT_ASKED, UNWRITABLE = "not_asked", "unwritable"
NO_ROUTE = ("no way to ask payer {payer} about eligibility: no payer-portal plugin serves it and no "
            "clearinghouse mailbox is configured (fix: add a [mailboxes.NAME] section to bhhub.toml, see "
            "`bhhub mailbox test`, so a 270 goes out with the next `bhhub exchange`; or install a payer-portal "
            "plugin for this payer, see `bhhub plugins`)")


@dataclass(frozen=True)
class Subject:
    """Who is asked about: the stored patient, the coverage asked about, and the provider asking."""

    patient_id: int
    patient: Patient
    coverage: Coverage
    provider: Provider | None
    service_date: date
    reason: str = "asked"  # asked, sweep, before_batch


@dataclass
class CheckOutcome:
    """What happened to one question, for the CLI and the sweep (ids only)."""

    patient_id: int
    payer_id: str
    member_id: str
    service_date: date
    state: str  # answered, failed, requested (a 270 queued), not_asked (no route), unwritable (no 270 possible)
    source: str = ""
    check_id: int | None = None
    trace_number: str | None = None
    active: bool | None = None
    error: str | None = None
    batch_id: int | None = None
    effects: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"check_id": self.check_id, "trace_number": self.trace_number, "patient_id": self.patient_id,
                "payer_id": self.payer_id, "member_id": self.member_id, "service_date": self.service_date,
                "state": self.state, "source": self.source, "active": self.active, "error": self.error,
                "batch_id": self.batch_id, "effects": self.effects}


def check(hub, patient_id: int, payer_id: str | None = None, service_date: date | None = None,
          reason: str = "asked", *, via: str | None = None) -> CheckOutcome:
    """Ask about one patient's coverage; ``ConfigError`` when there is no way to ask. ``via``
    names the mailbox a 270 goes through (default: the payer's route, ``bhhub.exchange.routing``)."""
    outcome = check_many(hub, [(patient_id, payer_id, service_date)], reason, via=via)[0]
    if outcome.state == NOT_ASKED:
        raise ConfigError(outcome.error or NO_ROUTE.format(payer=outcome.payer_id))
    if outcome.state == UNWRITABLE:
        raise InputError(outcome.error or "the 270 could not be written")
    return outcome


def check_many(hub, wanted: Sequence[tuple[int, str | None, date | None]], reason: str | Sequence[str],
               *, mailbox: bool = True, via: str | None = None) -> list[CheckOutcome]:
    """Ask about each (patient id, payer id or None, date of service or None); one 270 for all
    the questions no portal answers (with ``mailbox=False`` those are left unasked: an answer
    that comes back hours later is of no use to the caller). ``reason`` is one for all, or one
    per question. A patient or coverage that cannot be found raises ``UsageError`` (the sweep
    only passes ones it found)."""
    if via is not None:
        from bhhub.exchange.routing import known_mailbox

        known_mailbox(hub, via)  # before a portal is asked or anything is recorded
    reasons = [reason] * len(wanted) if isinstance(reason, str) else list(reason)
    service_types = codes.default_service_types()
    npi = practice_npi(hub)
    with hub.store.session() as session:
        subjects = [subject(session, p, payer, day, why, practice_npi=npi)
                    for (p, payer, day), why in zip(wanted, reasons)]
    asked_at = utcnow()
    answers = [hub.plugins.hooks.check_eligibility(s.patient, s.coverage, s.service_date, service_types)
               for s in subjects]
    outcomes: list[CheckOutcome] = []
    by_mailbox: list[tuple[Subject, CheckOutcome]] = []
    with hub.store.session() as session:
        for s, portal in zip(subjects, answers):
            outcome = CheckOutcome(s.patient_id, s.coverage.payer.payer_id, s.coverage.member_id, s.service_date,
                                   state=NOT_ASKED)
            outcomes.append(outcome)
            if portal is None:
                by_mailbox.append((s, outcome))
                continue
            row = store.ask(session, patient_id=s.patient_id, payer_id=outcome.payer_id, member_id=outcome.member_id,
                            service_date=s.service_date, service_types=service_types,
                            source=f"portal:{portal.plugin}", reason=s.reason, requested_at=asked_at)
            if portal.failed:
                store.fail(session, row, portal.error or "the payer portal gave no answer")
            else:
                store.answer(session, row, portal.response)
                outcome.effects = effects.apply_answer(hub, session, row).as_dict()
            _fill(outcome, row)
        _audit(hub, session, outcomes)
        session.commit()  # the portals' answers stand whatever becomes of the 270
        if by_mailbox and mailbox:
            _queue_270(hub, session, by_mailbox, service_types, via)
            _audit(hub, session, [o for _, o in by_mailbox])
            session.commit()
    for o in outcomes:
        log.info("eligibility check %s: patient %s, payer %s: %s", o.check_id, o.patient_id, o.payer_id, o.state)
    return outcomes


def _audit(hub, session: Session, outcomes: list[CheckOutcome]) -> None:
    ids = [o.check_id for o in outcomes if o.check_id is not None]
    if ids:
        hub.audit(session, "check_eligibility", "eligibility_check", ids, None)


def _queue_270(hub, session: Session, pending: list[tuple[Subject, CheckOutcome]], service_types,
               via: str | None = None) -> None:
    from bhhub.exchange.mailboxes import load_mailboxes

    if not load_mailboxes(hub):
        for _, outcome in pending:
            outcome.error = NO_ROUTE.format(payer=outcome.payer_id)
        return
    from functools import partial

    from bhhub.exchange.inquiries import queue_270 as queue_any  # the mailbox side; imported only when used
    from bhhub.exchange.routing import mailbox_for_payer

    queue_270 = partial(queue_any, mailbox=via)
    routed = []
    for s, outcome in pending:  # a payer no mailbox serves is not asked (and said so); the others are
        try:
            mailbox_for_payer(hub, outcome.payer_id, via)
        except ConfigError as exc:
            outcome.error = str(exc)
            continue
        routed.append((s, outcome))
    pending = routed

    writable: list[tuple[Subject, CheckOutcome, EligibilityRequest]] = []
    for s, outcome in pending:
        try:
            writable.append((s, outcome, request_for(s, store.new_trace_number(session))))
        except InputError as exc:  # this one cannot be asked by 270; the others still are
            outcome.state, outcome.error = UNWRITABLE, str(exc)
    if not _queue(hub, session, writable, service_types, queue_270) and len(writable) > 1:
        # One inquiry the 270 writer refused would hold back all the others: find it, send the rest.
        good = [item for item in writable if _queue(hub, session, [item], service_types, queue_270, keep=False)]
        _queue(hub, session, good, service_types, queue_270)
    session.flush()


def _queue(hub, session: Session, items, service_types, queue_270, keep: bool = True) -> bool:
    """Record the questions and queue their 270 in a savepoint; False (rolled back, each outcome
    saying why) when the writer refused it. ``keep=False`` only tries."""
    if not items:
        return True
    savepoint = session.begin_nested()
    try:
        rows = [store.ask(session, patient_id=s.patient_id, payer_id=o.payer_id, member_id=o.member_id,
                          service_date=s.service_date, service_types=service_types, source=store.SOURCE_X12,
                          reason=s.reason, trace_number=request.trace_number) for s, o, request in items]
        batch_ids = queue_270(hub, session, [request for _, _, request in items])
    except InputError as exc:
        savepoint.rollback()
        for _, outcome, _ in items:
            outcome.state, outcome.error = UNWRITABLE, str(exc)
        return False
    if not keep:
        savepoint.rollback()
        return True
    savepoint.commit()
    for row, batch_id, (_, outcome, _) in zip(rows, batch_ids, items):
        row.batch_id = batch_id
        _fill(outcome, row)
    return True


def _fill(outcome: CheckOutcome, row: schema.EligibilityCheck) -> None:
    outcome.check_id, outcome.trace_number, outcome.state = row.id, row.trace_number, row.state
    outcome.source, outcome.active, outcome.error, outcome.batch_id = row.source, row.active, row.error, row.batch_id


# --- who is asked about ------------------------------------------------------------------------------


def practice_npi(hub) -> str | None:
    """``[eligibility] provider_npi`` of bhhub.toml, as its model checked it: who asks when a
    claim names no provider. The one place the setting is read."""
    from bhhub.configuration.hub_file import Eligibility

    return hub.settings.section(Eligibility).provider_npi


def subject(session: Session, patient_id: int, payer_id: str | None = None, service_date: date | None = None,
            reason: str = "asked", *, practice_npi: str | None = None) -> Subject:
    """The stored patient, their coverage (with ``payer_id``, else the primary one) and the provider
    who bills for them; ``UsageError`` naming what is missing."""
    patient = session.get(schema.Patient, patient_id)
    if patient is None:
        raise UsageError(f"no patient {patient_id} in the hub (see `bhhub eligibility list`)")
    cov, payer = schema.Coverage, schema.Payer
    query = select(cov).join(payer, payer.id == cov.payer_id).where(cov.patient_id == patient_id)
    if payer_id is not None:
        query = query.where(payer.payer_id == payer_id)
    coverage = session.scalars(query.order_by(cov.coverage_order, cov.id.desc()).limit(1)).first()
    if coverage is None:
        raise UsageError(f"patient {patient_id} has no coverage" + (f" with payer {payer_id}" if payer_id else "")
                         + " on file; the EHR's registration or visit brings it in")
    return Subject(patient_id, patient_record(patient), coverage_record(coverage),
                   _provider(session, patient_id, coverage.id, practice_npi), service_date or today(), reason)


def _provider(session: Session, patient_id: int, coverage_id: int, practice_npi: str | None) -> Provider | None:
    """Who asks (2100B): the billing provider of the patient's latest claim (with this coverage
    first); else the practice's ``[eligibility] provider_npi`` from bhhub.toml (a provider the hub
    knows from its claims: a new patient booked from the schedule has none of their own); else
    the clinician of their latest appointment, when the hub knows that NPI."""
    c = schema.Claim
    claim = session.scalars(select(c).where(c.patient_id == patient_id)
                            .order_by((c.coverage_id == coverage_id).desc(), c.id.desc()).limit(1)).first()
    if claim is not None:
        return provider_record(session.get(schema.Provider, claim.billing_provider_id))
    if practice_npi:
        practice = session.scalar(select(schema.Provider).where(schema.Provider.npi == str(practice_npi)))
        if practice is not None:
            return provider_record(practice)
    a, p = schema.Appointment, schema.Provider
    row = session.scalars(select(p).join(a, a.provider_npi == p.npi).where(a.patient_id == patient_id)
                          .order_by(a.service_date.desc()).limit(1)).first()
    return provider_record(row) if row is not None else None


def request_for(s: Subject, trace_number: str) -> EligibilityRequest:
    """The 270 inquiry about ``s`` (subscriber, or dependent under the subscriber)."""
    if s.provider is None:
        raise InputError("no billing provider is known for this patient (no claim or appointment with a known NPI)",
                         where=f"patient {s.patient_id}",
                         fix="set provider_npi under [eligibility] in bhhub.toml to the practice's billing NPI (one "
                             "the hub knows from a claim), so the 270 can name the practice asking")
    coverage = s.coverage
    if coverage.patient_is_subscriber:
        return EligibilityRequest(trace_number=trace_number, payer=coverage.payer, provider=s.provider,
                                  member_id=coverage.member_id, subscriber=s.patient, service_date=s.service_date)
    if coverage.subscriber is None:
        raise InputError("the patient is a dependent but the subscriber is unknown (the 270 names the subscriber)",
                         where=f"patient {s.patient_id}", fix="record the subscriber on the patient's coverage in the EHR")
    return EligibilityRequest(trace_number=trace_number, payer=coverage.payer, provider=s.provider,
                              member_id=coverage.member_id, subscriber=coverage.subscriber, dependent=s.patient,
                              service_date=s.service_date)


def find_patient(session: Session, text: str) -> int:
    """A patient by the hub's id (digits), the EHR's patient key as stored, or the chart number
    at the end of that key when only one patient has it; ``UsageError`` otherwise."""
    p = schema.Patient
    if text.isdigit() and session.get(p, int(text)) is not None:
        return int(text)
    found = session.scalar(select(p.id).where(p.key == text))
    if found is not None:
        return found
    ids = session.scalars(select(p.id).where(p.key.like(f"%|{_like(text)}", escape="\\"))).all()
    if len(ids) == 1:
        return ids[0]
    if len(ids) > 1:
        raise UsageError(f"{len(ids)} patients have a key ending in that chart number; give the full patient key "
                         "(see `bhhub eligibility list`)")
    raise UsageError("no patient with that id, key or chart number (see `bhhub eligibility list`, or take in the "
                     "patient's visit first)")


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
