"""Posting 835 payments to claims: every claim payment posted, unmatched or quarantined, once.

Called by the 835's registered transaction (``bhhub.remittance.transactions``), inside the inbox
transaction that marks the 835 read, so a file's postings and its state are committed together.

- **Once.** A payment is the same payment when payer, trace number (TRN02), amount (BPR02),
  date (BPR16) and credit/debit all agree (payers reuse trace numbers); that is the natural key
  of ``remit_payments``, and the same 835 twice posts nothing the second time. Each claim
  payment is also posted once whatever envelope it comes in (a new trace number, BPR amount or
  payer id): a file's claim payments that replay the latest postings of the claim are
  ``repeat``, kept with the posting each repeats, not posted (``bhhub.remittance.repeats``: a payment
  reversed and paid again the same posts; that file sent again does not).
- **Matching** (``bhhub.remittance.matching``): CLP01 = the CLM01 the hub sent to this payer; else the
  payer's claim number (CLP07); else the lines. A match by CLP07 or lines must be this payer's,
  this patient's and the only one. A claim payment that matches nothing is kept ``unmatched``
  with the reason, for ``bhhub remit match``.
- **Balancing.** A claim payment that does not balance (charge = paid + adjustments, per claim
  and per line; CLP05 = patient share) is ``quarantined`` with the reason, not posted; so is a
  malformed one, with its segment number and loop. The rest of the file still posts.
- **Reversals.** CLP02 = 22 posts its negative amounts and is linked to the posting it undoes;
  that posting's denials are marked undone. The corrected CLP that usually follows posts
  normally. A reversal listed before the payment it reverses, with no payment of its amount
  standing, applies right after that payment; one whose payment the file does not carry
  applies at the end of the file, reversing nothing the hub has.

A posted claim payment's denials are recorded by ``bhhub.remittance.denial_records``; a claim
payment kept unmatched is posted by hand (``bhhub remit match``) by
``bhhub.remittance.hand_matching``, through ``apply_posting`` here.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select

from bhhub.claims.build import set_status
from bhhub.remittance import paid_twice
from bhhub.errors import InputError
from bhhub.model import ClaimStatus
from bhhub.remittance.crossovers import crossover_of
from bhhub.remittance.denial_records import record_denials
from bhhub.remittance.identity import fingerprint
from bhhub.remittance.matching import ClaimMatcher
from bhhub.remittance.repeats import Offer, PostedClaimPayments, lock
from bhhub.store import schema

log = logging.getLogger(__name__)

POSTED, UNMATCHED, QUARANTINED, REPEAT = "posted", "unmatched", "quarantined", "repeat"
REVERSAL = "22"
ZERO = Decimal(0)

_ADJUDICABLE = {ClaimStatus.BATCHED.value, ClaimStatus.SUBMITTED.value, ClaimStatus.ACCEPTED.value,
                ClaimStatus.REJECTED.value, ClaimStatus.PAID.value, ClaimStatus.PARTIALLY_PAID.value,
                ClaimStatus.DENIED.value, ClaimStatus.REVERSED.value}


@dataclass
class PostingReport:
    payments: int = 0
    already_posted: int = 0
    claims: int = 0
    posted: int = 0
    unmatched: int = 0
    quarantined: int = 0
    repeated: int = 0
    statuses: dict[str, str] = field(default_factory=dict)  # patient control number -> status set
    claim_ids: set[int] = field(default_factory=set)  # every claim a claim payment posted to
    problems: list[str] = field(default_factory=list)
    posted_payments: list[tuple[str, str, list[str]]] = field(default_factory=list)  # payer, trace, pcns

    def summary(self) -> str:
        parts = [f"835: {self.payments} payment(s)"]
        if self.already_posted:
            parts.append(f"{self.already_posted} already posted (nothing posted twice)")
        parts.append(f"{self.claims} claim payment(s): {self.posted} posted, {self.unmatched} unmatched, "
                     f"{self.quarantined} quarantined" + (f", {self.repeated} already posted (not posted twice)"
                                                          if self.repeated else ""))
        if self.problems:
            parts.append("; ".join(self.problems[:3]))
        return ", ".join(parts)


def post_835(hub, session, item_id: int, content: bytes) -> PostingReport:
    """Post every payment in ``content`` (the caller commits)."""
    from bhhub.remittance.denials import DenialRules
    from bhhub.remittance.x835 import read_835
    from bhhub.remittance.x835_events import BadClaim, ClaimPayment, PaymentHeader, PaymentTrailer

    rules = DenialRules.load(hub.mappings)
    lock(session)  # before anything is read: a twin posting at once waits, then sees this one's rows
    matcher = ClaimMatcher(session, hub.mappings)
    posted = PostedClaimPayments(session)
    report = PostingReport()
    payment: schema.RemitPayment | None = None
    skipping = False
    sequence = 0
    pcns: list[str] = []
    unposted = _Unposted(session)  # unmatched and quarantined claim payments: inserted in bulk
    counts = _Counts()
    try:
        with session.no_autoflush:  # rows are written in bulk at the end, not before each lookup
            for event in read_835(content):
                if isinstance(event, PaymentHeader):
                    report.payments += 1
                    sequence, pcns = 0, []
                    known = _same_payment(session, event)
                    if known is not None:
                        report.already_posted += 1
                        skipping, payment = True, None
                        continue
                    skipping = False
                    payment, counts = _new_payment(session, item_id, event), _Counts()
                    matcher.begin_payment(event)
                elif skipping:
                    continue
                elif payment is None:
                    raise InputError("claim payments before any payment header (BPR/TRN)")
                elif isinstance(event, ClaimPayment):
                    sequence += 1
                    report.claims += 1
                    pcns.append(event.patient_control_number)
                    _post_claim(hub, session, rules, matcher, posted, payment, event, sequence, report, unposted,
                                counts)
                elif isinstance(event, BadClaim):
                    sequence += 1
                    report.claims += 1
                    report.quarantined += 1
                    counts.quarantined += 1
                    counts.claims += 1
                    unposted.add(_remit_values(
                        payment, sequence, None, QUARANTINED,
                        f"{event.reason} (loop {event.loop}, segment {event.segment_number})",
                        pcn=event.patient_control_number or "", segment=event.segment_number))
                elif isinstance(event, PaymentTrailer):
                    counts.settle(payment)
                    _finish_payment(session, payment, event, report)
                    report.posted_payments.append((payment.payer_id, payment.trace_number, pcns))
                    payment = None
    except InputError as exc:
        if report.payments == 0:
            raise  # nothing readable at all: the file is quarantined with the reason
        # What was read before the damage is posted; the rest of the file could not be read.
        report.problems.append(f"the rest of the file could not be read: {exc}")
        if payment is not None:
            payment.problems = [*payment.problems, str(exc)]
    if payment is not None:
        counts.settle(payment)
    # Families whose decision waited for the rest of the file, and reversals whose payment never came.
    _take(hub, session, rules, posted, posted.finish(), report)
    session.flush()
    unposted.flush()
    paid_twice.watch(session, report.claim_ids)  # after every reversal in the file is applied
    return report


_REMIT_CLAIMS = schema.RemitClaim.__table__


@dataclass
class _Counts:
    """A payment's claim counts as plain numbers while its claims are read, added to its row
    once (an ORM attribute set per claim payment was a tenth of posting an unmatched one)."""

    claims: int = 0
    unmatched: int = 0
    quarantined: int = 0

    def settle(self, payment: schema.RemitPayment) -> None:
        payment.claims += self.claims
        payment.claims_unmatched += self.unmatched
        payment.claims_quarantined += self.quarantined
        self.claims = self.unmatched = self.quarantined = 0


class _Unposted:
    """Claim payments nothing reads back while the file is posted (unmatched, quarantined),
    inserted a thousand rows at a time: one executemany instead of an ORM object and an INSERT
    each, and memory bounded however many the file holds."""

    CHUNK = 1000

    def __init__(self, session):
        self.session = session
        self.rows: list[dict] = []

    def add(self, values: dict) -> None:
        self.rows.append(values)
        if len(self.rows) >= self.CHUNK:
            self.flush()

    def flush(self) -> None:
        # Core's executemany on the table, not the ORM's bulk insert: these rows are never
        # loaded as objects in this session, and the ORM's per-row bookkeeping cost a fifth of
        # the time of posting an unmatched claim payment.
        if self.rows:
            self.session.connection().execute(_REMIT_CLAIMS.insert(), self.rows)
            self.rows = []


# --- payments ----------------------------------------------------------------------------------


def _same_payment(session, header) -> schema.RemitPayment | None:
    p = schema.RemitPayment
    query = select(p).where(p.payer_id == header.payer_id, p.trace_number == header.trace_number,
                            p.amount == header.amount, p.credit_debit == (header.credit_debit or "C"))
    query = query.where(p.payment_date.is_(None) if header.payment_date is None else p.payment_date == header.payment_date)
    return session.scalars(query).first()


def _new_payment(session, item_id: int, header) -> schema.RemitPayment:
    payment = schema.RemitPayment(
        inbox_item_id=item_id, payer_id=header.payer_id, payer_name=header.payer_name[:200],
        trace_number=header.trace_number, amount=header.amount, credit_debit=header.credit_debit or "C",
        payment_date=header.payment_date, method=header.method or "", handling=header.handling or "",
        payee_id=header.payee_id or "", transaction_control_number=header.control_number,
        claims=0, claims_posted=0, claims_unmatched=0, claims_quarantined=0, claims_repeated=0, paid_total=ZERO,
        provider_adjustment_total=ZERO, problems=[],
    )
    session.add(payment)
    session.flush()
    return payment


def _finish_payment(session, payment: schema.RemitPayment, trailer, report: PostingReport) -> None:
    payment.paid_total = trailer.paid_total
    total = ZERO
    for adjustment in trailer.provider_adjustments:
        total += adjustment.amount
        session.add(schema.ProviderAdjustment(
            payment_id=payment.id, provider_id=adjustment.provider_id, fiscal_period_end=adjustment.fiscal_period_end,
            reason=adjustment.reason, reference=adjustment.reference[:80], amount=adjustment.amount))
    payment.provider_adjustment_total = total
    if trailer.problems:
        payment.problems = [*payment.problems, *trailer.problems]
        report.problems.extend(trailer.problems)


# --- claims ------------------------------------------------------------------------------------


def _post_claim(hub, session, rules, matcher, posted, payment, paid, sequence: int, report: PostingReport,
                unposted: _Unposted, counts: _Counts) -> None:
    counts.claims += 1
    match = matcher(paid)
    claim = match.claim
    if not paid.balanced:
        reason = "does not balance: " + "; ".join(paid.problems)
        unposted.add(_remit_values(payment, sequence, claim, QUARANTINED, reason, paid))
        counts.quarantined += 1
        report.quarantined += 1
        return
    if claim is None:
        unposted.add(_remit_values(payment, sequence, None, UNMATCHED,
                                   f"{match.reason}; match it by hand with `bhhub remit match`", paid))
        counts.unmatched += 1
        report.unmatched += 1
        return
    row = _remit_claim(payment, sequence, claim, POSTED, None, paid)
    _take(hub, session, rules, posted, posted.offer(Offer(claim, row, paid, payment)), report)


def _take(hub, session, rules, posted: PostedClaimPayments, steps, report: PostingReport) -> None:
    """Post or keep as a repeat each claim payment ``steps`` name, in order; a payment posted
    may let a reversal that waited for it apply right after it (``bhhub.remittance.repeats``)."""
    queue = deque(steps)
    while queue:
        step = queue.popleft()
        row, payment = step.offer.row, step.offer.payment
        if not step.post:
            row.state, row.generation = REPEAT, None
            row.reason = (f"the same claim payment (payer, claim, payer claim number, amounts and dates) is posted "
                          f"already as claim payment {step.repeated_id}: not posted again")
            session.add(row)
            payment.claims_repeated += 1
            report.repeated += 1
            continue
        row.generation = step.generation
        session.add(row)
        session.flush()
        apply_posting(hub, session, rules, payment, row, step.offer.claim, step.offer.paid, report)
        queue.extendleft(reversed(posted.applied(step)))


def apply_posting(hub, session, rules, payment, row: schema.RemitClaim, claim: schema.Claim, paid,
                  report: PostingReport | None) -> None:
    """Post ``row`` (a RemitClaim matched to ``claim``): status, payer claim number, denials."""
    payment.claims_posted += 1
    if report is not None:
        report.claim_ids.add(claim.id)
        report.posted += 1
    if paid.payer_claim_control_number and not claim.payer_claim_control_number:
        claim.payer_claim_control_number = paid.payer_claim_control_number
    if paid.status_code == REVERSAL:
        original = _original_of(session, row, claim)
        if original is not None:
            original.reversed_by_id, row.reverses_id = row.id, original.id
            for denial in session.scalars(select(schema.Denial).where(schema.Denial.remit_claim_id == original.id,
                                                                      schema.Denial.status == "open")):
                denial.status, denial.resolution = "undone", f"payment reversed (remittance {payment.trace_number})"
        else:
            row.reason = "reverses a payment the hub has no record of; posted as received"
        status = ClaimStatus.REVERSED
        # A payer that re-adjudicates sends the new claim payment and the reversal of the old one
        # in either order (in one 835 or two): the claim stands where its latest adjudication that
        # is not reversed puts it, and is ``reversed`` only when none stands.
        session.flush()  # the link just made, seen by the query below (posting runs without autoflush)
        standing = _standing_adjudication(session, claim, row)
        if standing is not None:
            status = _status_of_stored(session, standing)
            row.reason = (row.reason + "; " if row.reason else "") + (
                f"the payer's adjudication {standing.payer_claim_control_number or '(no number)'} "
                f"(remittance claim {standing.id}) stands")
    else:
        row.crossed_over, row.crossover_payer = crossover_of(paid, rules.responsibility)
        denials = record_denials(session, rules, payment, row, claim, paid)
        status = _status_of(paid, denials)
    if claim.status in _ADJUDICABLE:
        set_status(session, claim, status, f"835 trace {payment.trace_number}: paid {paid.paid} of {paid.charge}, "
                                           f"patient {paid.patient_responsibility}"
                   + _reasons(paid, row))
        if report is not None:
            report.statuses[claim.patient_control_number] = status.value


def _status_of(paid, denials: list[schema.Denial]) -> ClaimStatus:
    return _status_from(paid.status_code, paid.paid, paid.patient_responsibility, bool(denials))


def _status_from(status_code: str, paid: Decimal, patient_responsibility: Decimal, denied: bool) -> ClaimStatus:
    if status_code == "4":
        return ClaimStatus.DENIED
    if paid == ZERO:
        # Nothing paid: denied when the payer refused anything (PR-96, PR-27 ...), even if all of it
        # went to the patient; "paid" when the whole allowed amount was ordinary cost share (a $0
        # payment to the deductible is not a denial, domain reference 6.2).
        if denied or patient_responsibility == ZERO:
            return ClaimStatus.DENIED
        return ClaimStatus.PAID
    if denied:
        return ClaimStatus.PARTIALLY_PAID
    return ClaimStatus.PAID


def _reasons(paid, row=None) -> str:
    codes = [f"{a.group}-{a.reason}" for a in paid.all_adjustments
             if not (a.group == "CO" and a.reason in ("45", "253")) and a.group != "PR"]
    text = f", {' '.join(dict.fromkeys(codes))}" if codes else ""
    if paid.remarks:  # MOA/MIA: what the payer applied to the whole claim
        text += f", remarks {' '.join(dict.fromkeys(paid.remarks))}"
    if row is not None and row.crossed_over:
        to = row.crossover_payer or "the next payer"
        text += (f"; forwarded to {to} by this payer (crossover): not billed again, the patient's share is owed by "
                 f"{to} until its 835 arrives")
    return text


def _lines_adjustments(paid):
    """(line number or None, adjustment): the claim's own, then each line's, in order."""
    for adjustment in paid.adjustments:
        yield None, adjustment
    for number, service in enumerate(paid.services, start=1):
        for adjustment in service.adjustments:
            yield number, adjustment


def _standing_adjudication(session, claim, reversal) -> schema.RemitClaim | None:
    """The claim's latest posted adjudication that no reversal has taken back, if any."""
    r = schema.RemitClaim
    return session.scalars(select(r).where(
        r.claim_id == claim.id, r.state == POSTED, r.status_code != REVERSAL, r.reversed_by_id.is_(None),
        r.id != reversal.id).order_by(r.id.desc()).limit(1)).first()


def _status_of_stored(session, row: schema.RemitClaim) -> ClaimStatus:
    """What ``_status_of`` decided when ``row`` was posted, from what is stored of it."""
    denied = session.scalar(select(schema.Denial.id).where(schema.Denial.remit_claim_id == row.id,
                                                           schema.Denial.status != "undone").limit(1)) is not None
    return _status_from(row.status_code, row.paid, row.patient_responsibility, denied)


def _original_of(session, row, claim) -> schema.RemitClaim | None:
    r = schema.RemitClaim
    candidates = session.scalars(select(r).where(
        r.claim_id == claim.id, r.state == POSTED, r.status_code != REVERSAL, r.reversed_by_id.is_(None),
        r.id != row.id).order_by(r.id.desc())).all()
    exact = [c for c in candidates if c.paid == -row.paid and c.charge == -row.charge]
    same_number = [c for c in exact if not row.payer_claim_control_number
                   or c.payer_claim_control_number == row.payer_claim_control_number]
    chosen = same_number or exact
    return chosen[0] if chosen else None


def _remit_claim(payment, sequence: int, claim, state: str, reason: str | None, paid=None, *, pcn: str = "",
                 segment: int = 0) -> schema.RemitClaim:
    return schema.RemitClaim(**_remit_values(payment, sequence, claim, state, reason, paid, pcn=pcn, segment=segment))


def _remit_values(payment, sequence: int, claim, state: str, reason: str | None, paid=None, *, pcn: str = "",
                  segment: int = 0) -> dict[str, Any]:
    """A ``remit_claims`` row's columns: for an ORM object, or for one bulk insert of the rows
    nothing reads back while the file is posted (unmatched and quarantined claim payments)."""
    if paid is None:
        return dict(
            payment_id=payment.id, sequence=sequence, claim_id=claim.id if claim else None, state=state,
            reason=reason, patient_control_number=pcn[:38], status_code="", charge=ZERO, paid=ZERO,
            patient_responsibility=ZERO, contractual=ZERO, other_adjustments=ZERO, payer_claim_control_number="",
            adjustments=[], services=[], remarks=[], segment_number=segment, fingerprint=None)
    # One pass over the adjustments (claim level, then each line's): the stored list and the sums.
    adjustments, contractual, other = [], ZERO, ZERO
    for line, a in _lines_adjustments(paid):
        adjustments.append({"line": line, "group": a.group, "reason": a.reason, "amount": str(a.amount)})
        if a.group == "CO":
            contractual += a.amount
        elif a.group in ("OA", "PI"):
            other += a.amount
    services = [{"code": s.procedure_code, "modifiers": list(s.modifiers), "charge": str(s.charge), "paid": str(s.paid),
                 "date": s.service_date.isoformat() if s.service_date else None,
                 "original_code": s.original_procedure_code, "remarks": list(s.remarks)} for s in paid.services]
    values = dict(
        payment_id=payment.id, sequence=sequence, claim_id=claim.id if claim else None, state=state, reason=reason,
        patient_control_number=paid.patient_control_number[:38], status_code=paid.status_code, charge=paid.charge,
        paid=paid.paid, patient_responsibility=paid.patient_responsibility, contractual=contractual,
        other_adjustments=other, payer_claim_control_number=paid.payer_claim_control_number[:50],
        adjustments=adjustments, services=services, remarks=list(paid.remarks), segment_number=paid.segment_number)
    # Unmatched ones too: matched by hand later, they are checked the same way.
    values["fingerprint"] = fingerprint(SimpleNamespace(**values))
    return values
