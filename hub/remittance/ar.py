"""Accounts receivable and the revenue-cycle figures, computed from the store itself.

Every figure is computed from claims, their status history, the acknowledgments and the posted
835s; the formulas are in ``FORMULAS`` and printed with the report. Balances:

- insurance balance, per payer in turn = what it was billed − paid − patient share − (its own
  CO/OA/PI adjustments − open denials): an open denial stays in insurance A/R until it is worked
  (appealed and paid, corrected, or written off). A later payer is billed the earlier one's
  patient share; what its 835 restates of the earlier payers' part is not its adjustment;
- patient share = the PR amounts the patient owes: not a PR the payer put on the patient for a
  wrong-payer reason or without an advance notice on file (``bhhub.remittance.responsibility``), which
  stays with insurance until worked;
- patient balance = the last payer's patient share, once no payer is left: while a crossover's
  next payer has the claim, or another coverage on file is still to be billed, it is insurance
  A/R (patient payments are not tracked yet).

Age is counted from the date a claim was first billed (first put in a batch), as of a date.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select

from bhhub.runtime.clock import today
from bhhub.store import schema

ZERO = Decimal(0)
REVERSAL = "22"
# CLP02: the payer's place in the order of payers (primary 1/19, secondary 2/20, tertiary 3/21).
_ORDER = {"1": 1, "19": 1, "2": 2, "20": 2, "3": 3, "21": 3}
BUCKETS = ("0-30", "31-60", "61-90", "91-120", "120+")
PERIOD_DAYS = 90

FORMULAS = {
    "aging": "balance by age, counted in days from the date the claim was first billed (put in a batch)",
    "days_in_ar": "total A/R (insurance + patient) / (gross charges billed in the last 90 days / 90)",
    "clean_claim_rate": "claims sent without a check error, an overridden finding, a rejection or a resubmission "
                        "/ claims sent",
    "first_pass_resolution_rate": "claims whose first 835 paid them with no denial, never rejected or resubmitted / "
                                  "claims with an 835",
    "denial_rate_count": "claims with at least one denial on an 835 / claims with an 835",
    "denial_rate_dollars": "denied amounts on 835s / charges of claims with an 835",
    "net_collection_rate": "payments / (charges − contractual write-downs), claims with an 835; payments are "
                           "every payer's claim payments (CLP04: primary, secondary and tertiary, reversals "
                           "netted), not PLB money (interest, recoupments) and not patient payments (not recorded "
                           "yet, so patient shares count as uncollected); each write-down is counted once: what a "
                           "later payer's 835 restates of an earlier payer's (OA-23, a repeated CO-45) is left out",
    "no_response_30_days": "claims sent 30 or more days ago with no 277CA and no 835 (chase them with a 276)",
}


@dataclass
class _Stage:
    """One payer's part of a claim: what its 835s posted, from one or more revisions to it.

    A payer is a stage per coverage; within one claim revision a second payer (a crossover, or
    one payer adjudicating as primary then as supplemental, CLP02 1 then 2) is a stage of its own.
    """

    coverage_id: int
    payer_id: str | None = None  # the 835's payer; None until one posts
    order: int | None = None  # CLP02: 1 primary (1, 19), 2 secondary (2, 20), 3 tertiary (3, 21)
    postings: list = field(default_factory=list)
    paid: Decimal = ZERO
    patient_responsibility: Decimal = ZERO  # CLP05: every PR amount
    not_patients: Decimal = ZERO  # PR amounts the patient does not owe (wrong payer, no advance notice)
    adjustments: Decimal = ZERO  # this payer's own CO, OA and PI (what restates an earlier payer's left out)
    open_denials: Decimal = ZERO
    remitted: bool = False
    crossed_over: bool = False  # the payer forwarded the claim to the next payer itself

    @property
    def patient_share(self) -> Decimal:
        """What this payer left to the patient, or to the next payer first."""
        return self.patient_responsibility - self.not_patients

    def settle(self, billed: Decimal, later: bool) -> None:
        for posting in self.postings:
            self.remitted = True
            self.paid += posting.paid
            self.patient_responsibility += posting.patient_responsibility
            adjusted = posting.contractual + posting.other_adjustments
            if later:
                # A later payer's 835 restates the earlier payers' part of the charge (OA-23, and
                # often their CO-45 again): only what it adjusted of what it was billed is its own,
                # or the net collection rate counts the primary's write-down twice.
                restated = max(abs(posting.charge) - billed, ZERO)
                adjusted -= restated if posting.charge >= ZERO else -restated
            self.adjustments += adjusted
        standing = [p for p in self.postings if p.status_code != REVERSAL and p.reversed_by_id is None]
        self.crossed_over = bool(standing) and standing[-1].crossed_over

    def balance(self, billed: Decimal) -> Decimal:
        if not self.remitted:
            return billed
        written = self.adjustments + self.not_patients - self.open_denials
        return max(billed - self.paid - self.patient_share - written, ZERO)


def _stage_for(stages: list[_Stage], coverage_id: int, payer_id: str, order: int | None) -> _Stage:
    for stage in reversed(stages):
        if (stage.coverage_id == coverage_id and stage.payer_id in (None, payer_id)
                and (order is None or stage.order in (None, order))):
            stage.payer_id = payer_id
            stage.order = stage.order or order
            return stage
    stages.append(_Stage(coverage_id, payer_id, order))
    return stages[-1]


@dataclass
class ClaimBalance:
    """One claim (one patient control number, all its revisions and payers)."""

    claim_id: int  # the latest revision
    patient_control_number: str
    payer_id: str  # the payer it is with now
    provider: str  # rendering provider NPI, else billing
    status: str
    service_date: date
    billed_on: date | None  # first put in a batch
    charge: Decimal
    paid: Decimal = ZERO  # by every payer
    adjustments: Decimal = ZERO
    denied: Decimal = ZERO  # denied amounts posted and not reversed (for the denial rate)
    denied_not_patient: Decimal = ZERO
    insurance_balance: Decimal = ZERO
    patient_balance: Decimal = ZERO
    remitted: bool = False
    first_pass_paid: bool = False
    needed_rework: bool = False
    responded: bool = False
    awaiting_next_payer: bool = False  # the last payer's patient share is owed by the next payer

    @property
    def contractual(self) -> Decimal:
        """Write-downs that are not denials (CO-45, CO-253): what the net collection rate excludes."""
        return self.adjustments - self.denied_not_patient


@dataclass
class ArReport:
    as_of: date
    claims: list[ClaimBalance]
    figures: dict = field(default_factory=dict)
    aging: dict = field(default_factory=dict)  # {"by_payer": {payer: {bucket: {...}}}, ...}
    no_response: list[ClaimBalance] = field(default_factory=list)


def report_json(report: ArReport) -> dict:
    """What ``bhhub ar --json`` prints (and the workspace's overview shows)."""
    return {"as_of": report.as_of, "figures": report.figures, "formulas": FORMULAS, "aging": report.aging,
            "no_response_30_days": [{"patient_control_number": b.patient_control_number, "payer_id": b.payer_id,
                                     "billed_on": b.billed_on, "charge": b.charge} for b in report.no_response]}


def bucket(days: int) -> str:
    if days <= 30:
        return "0-30"
    if days <= 60:
        return "31-60"
    if days <= 90:
        return "61-90"
    if days <= 120:
        return "91-120"
    return "120+"


def ar_report(session, as_of: date | None = None, *, facts: _Facts | None = None, known_by: date | None = None) -> ArReport:
    """The A/R report as of a day. ``known_by`` restricts it to what the store had recorded by
    the end of that day (a trend's month end: ``bhhub.remittance.trends``); ``facts`` reuses rows
    already read (one read for every month of a trend)."""
    as_of = as_of or today()  # the hub's clock: BHHUB_TODAY re-dates a report as it re-dates the checks
    balances = _balances(facts or _Facts.read(session), known_by)
    report = ArReport(as_of, balances)
    report.aging = _aging(balances, as_of)
    report.figures = _figures(balances, as_of)
    report.no_response = [b for b in balances if not b.responded and b.billed_on is not None
                          and (as_of - b.billed_on).days >= 30 and b.status not in ("void", "rejected")]
    return report


def _utc(at: datetime | None) -> datetime | None:
    """SQLite gives timestamps back without their zone; they were written in UTC."""
    return at.replace(tzinfo=timezone.utc) if at is not None and at.tzinfo is None else at


@dataclass
class _Facts:
    """Every row the figures are computed from, read once, each with the time it was recorded."""

    rows: list  # sent claims (every revision ever put in a batch)
    payers: dict
    npis: dict
    events: list  # (claim_id, status, at) in order
    acknowledgments: list  # (claim_id, at) of 277CAs
    overrides: list  # (claim_id, created_at)
    postings: list  # (RemitClaim, the 835's payer id), posted ones, in order
    denials: list

    @classmethod
    def read(cls, session) -> _Facts:
        c = schema.Claim
        rows = session.scalars(select(c).where(c.batch_id.is_not(None)).order_by(c.patient_control_number, c.revision)).all()
        if not rows:
            return cls([], {}, {}, [], [], [], [], [])
        # the sent claims as a subquery, not their ids bound one by one: an IN list of every claim
        # ever sent cost as much to bind as the rows cost to read
        ids = select(c.id).where(c.batch_id.is_not(None)).scalar_subquery()
        e, a, o = schema.ClaimStatusEvent, schema.Acknowledgment, schema.FindingOverride
        r, p = schema.RemitClaim, schema.RemitPayment
        return cls(
            rows=rows,
            payers=dict(session.execute(select(schema.Coverage.id, schema.Payer.payer_id)
                                        .join(schema.Payer, schema.Payer.id == schema.Coverage.payer_id)).all()),
            npis=dict(session.execute(select(schema.Provider.id, schema.Provider.npi)).all()),
            events=session.execute(select(e.claim_id, e.status, e.at).where(e.claim_id.in_(ids)).order_by(e.id)).all(),
            acknowledgments=session.execute(select(a.claim_id, a.at).where(a.kind == "277CA", a.claim_id.in_(ids))).all(),
            # A finding a person overrode is a manual change: that claim was not clean.
            overrides=session.execute(select(o.claim_id, o.created_at).where(o.claim_id.in_(ids))).all(),
            postings=session.execute(select(r, p.payer_id).join(p, p.id == r.payment_id)
                                     .where(r.claim_id.in_(ids), r.state == "posted").order_by(r.id)).all(),
            denials=session.scalars(select(schema.Denial).where(schema.Denial.claim_id.in_(ids))
                                    .order_by(schema.Denial.id)).all())


@dataclass
class _Posting:
    """A posted claim payment as it stood at the cutoff: a reversal posted later had not undone it."""

    row: schema.RemitClaim
    reversed_by_id: int | None

    def __getattr__(self, name):
        return getattr(self.row, name)


@dataclass
class _DenialThen:
    """A denial as it stood at the cutoff: open until it was worked (or its payment reversed)."""

    row: schema.Denial
    status: str

    def __getattr__(self, name):
        return getattr(self.row, name)


def _balances(facts: _Facts, known_by: date | None = None) -> list[ClaimBalance]:
    """Every sent claim's balance from ``facts``; with ``known_by``, from what had been recorded
    by the end of that day (UTC): batches, status changes, 277CAs, overrides, 835 postings,
    denials and their working, each by the time the hub recorded it."""
    cutoff = (datetime.combine(known_by + timedelta(days=1), time.min, tzinfo=timezone.utc)
              if known_by is not None else None)

    def known(at) -> bool:
        return cutoff is None or (at is not None and _utc(at) < cutoff)

    history: dict[int, list[str]] = defaultdict(list)
    billed: dict[int, date] = {}
    for claim_id, status, at in facts.events:
        if not known(at):
            continue
        history[claim_id].append(status)
        if status == "batched" and claim_id not in billed:
            billed[claim_id] = at.date()
    rows = [row for row in facts.rows if cutoff is None or "batched" in history.get(row.id, ())]
    if not rows:
        return []
    acknowledged = {claim_id for claim_id, at in facts.acknowledgments if known(at)}
    overridden = {claim_id for claim_id, at in facts.overrides if known(at)}
    seen = {posting.id for posting, _ in facts.postings if known(posting.posted_at)}
    postings: dict[int, list[tuple[_Posting, str]]] = defaultdict(list)
    for posting, payer_id in facts.postings:
        if posting.id in seen:
            reversal = posting.reversed_by_id if posting.reversed_by_id in seen else None
            postings[posting.claim_id].append((_Posting(posting, reversal), payer_id))
    reversal_of = {posting.id: posting.reversed_by_id for posting, _ in facts.postings}
    denials: dict[int, list] = defaultdict(list)
    for denial in facts.denials:
        if cutoff is None:
            if denial.status != "undone":
                denials[denial.claim_id].append(denial)
            continue
        if not known(denial.created_at) or denial.remit_claim_id not in seen:
            continue
        if denial.status == "undone":  # undone when its payment's reversal posted
            if reversal_of.get(denial.remit_claim_id) in seen:
                continue
        worked = denial.status != "open" and denial.resolved_at is not None and known(denial.resolved_at)
        denials[denial.claim_id].append(_DenialThen(denial, "resolved" if worked else "open"))
    status_then = {claim_id: statuses[-1] for claim_id, statuses in history.items()} if cutoff else {}

    by_pcn: dict[str, list[schema.Claim]] = defaultdict(list)
    for row in rows:
        by_pcn[row.patient_control_number].append(row)
    payers, npis = facts.payers, facts.npis
    out = []
    for pcn, revisions in by_pcn.items():
        first, last = revisions[0], revisions[-1]
        last_status = status_then.get(last.id, last.status)
        balance = ClaimBalance(
            claim_id=last.id, patient_control_number=pcn, payer_id=payers.get(last.coverage_id, "?"),
            provider=npis.get(first.rendering_provider_id or first.billing_provider_id, "?"), status=last_status,
            service_date=first.service_date, billed_on=billed.get(first.id), charge=first.total_charge)
        stages: list[_Stage] = []
        stage_of: dict[int, _Stage] = {}  # posting id -> its stage
        for row in revisions:
            statuses = history.get(row.id, [])
            if row.coverage_id == first.coverage_id:  # a secondary claim is not rework
                balance.needed_rework |= ("needs_attention" in statuses or "rejected" in statuses
                                          or statuses.count("batched") > 1 or row.frequency_code == "7"
                                          or row.id in overridden)
            balance.responded |= row.id in acknowledged
            if not postings.get(row.id) and not any(s.coverage_id == row.coverage_id for s in stages):
                stages.append(_Stage(row.coverage_id))  # billed, nothing back yet
            for posting, payer_id in postings.get(row.id, []):
                if not balance.remitted:
                    balance.first_pass_paid = posting.paid > ZERO and posting.status_code != "4" and not any(
                        d.remit_claim_id == posting.id and d.group_code != "PR" for d in denials.get(row.id, []))
                balance.remitted = balance.responded = True
                stage = stage_of.get(posting.reverses_id) or _stage_for(
                    stages, row.coverage_id, payer_id, _ORDER.get(posting.status_code))
                stage_of[posting.id] = stage
                stage.postings.append(posting)
            for denial in denials.get(row.id, []):
                stage = stage_of.get(denial.remit_claim_id)
                balance.denied += denial.amount
                if denial.group_code != "PR":
                    balance.denied_not_patient += denial.amount
                if denial.patient_owes or stage is None:
                    continue
                if denial.group_code == "PR":
                    stage.not_patients += denial.amount  # a wrong payer's, or no advance notice
                if denial.status == "open":
                    stage.open_denials += denial.amount  # still owed by a payer until worked
        if last_status == "void" or last.frequency_code == "8":
            balance.insurance_balance = balance.patient_balance = ZERO
        else:
            billed_amount = balance.charge
            for number, stage in enumerate(stages):
                stage.settle(billed_amount, later=number > 0)
                balance.insurance_balance += stage.balance(billed_amount)
                if stage.remitted:
                    billed_amount = stage.patient_share  # what the next payer is billed
            final = stages[-1]
            if final.remitted:
                # The patient owes the last payer's patient share only when no payer is left: a
                # crossover's next payer has it already, and another coverage on file is billed next.
                payers_on_file = 1 + len(first.other_coverage_ids or ())
                balance.awaiting_next_payer = final.crossed_over or len(stages) < payers_on_file
                if balance.awaiting_next_payer:
                    balance.insurance_balance += final.patient_share
                else:
                    balance.patient_balance = final.patient_share
        balance.paid = sum((stage.paid for stage in stages), ZERO)
        balance.adjustments = sum((stage.adjustments for stage in stages), ZERO)
        out.append(balance)
    return out


def _aging(balances: list[ClaimBalance], as_of: date) -> dict:
    def empty():
        return {b: {"insurance": ZERO, "patient": ZERO, "claims": 0} for b in BUCKETS}

    by_payer: dict[str, dict] = defaultdict(empty)
    by_provider: dict[str, dict] = defaultdict(empty)
    total = empty()
    for balance in balances:
        owed = balance.insurance_balance + balance.patient_balance
        if owed <= ZERO or balance.billed_on is None:
            continue
        age = bucket((as_of - balance.billed_on).days)
        for table in (by_payer[balance.payer_id], by_provider[balance.provider], total):
            table[age]["insurance"] += balance.insurance_balance
            table[age]["patient"] += balance.patient_balance
            table[age]["claims"] += 1
    return {"by_payer": dict(by_payer), "by_provider": dict(by_provider), "total": total}


def _ratio(numerator, denominator) -> Decimal | None:
    """A rate as a fraction (0.889, not 88.9): every ``--json`` gives a share so, as a 271 gives
    coinsurance (EB08 0.2); people read it as a percentage (``percent``). To 0.1%."""
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(Decimal("0.001"), ROUND_HALF_UP)


def percent(rate: Decimal | None) -> str:
    """``0.889`` as ``88.9%``; ``n/a`` with nothing to divide by."""
    return "n/a" if rate is None else f"{rate * 100:.1f}%"


def _figures(balances: list[ClaimBalance], as_of: date) -> dict:
    live = [b for b in balances if b.status != "void"]
    total_ar = sum((b.insurance_balance + b.patient_balance for b in live), ZERO)
    since = as_of - timedelta(days=PERIOD_DAYS)
    recent = sum((b.charge for b in live if b.billed_on and since < b.billed_on <= as_of), ZERO)
    daily = recent / PERIOD_DAYS if recent else ZERO
    remitted = [b for b in live if b.remitted]
    charges_remitted = sum((b.charge for b in remitted), ZERO)
    contractual = sum((b.contractual for b in remitted), ZERO)
    payments = sum((b.paid for b in remitted), ZERO)
    return {
        "total_ar": total_ar,
        "insurance_ar": sum((b.insurance_balance for b in live), ZERO),
        "patient_ar": sum((b.patient_balance for b in live), ZERO),
        "days_in_ar": (total_ar / daily).quantize(Decimal("0.1"), ROUND_HALF_UP) if daily else None,
        "clean_claim_rate": _ratio(sum(not b.needed_rework for b in live), len(live)),
        "first_pass_resolution_rate": _ratio(sum(b.first_pass_paid and not b.needed_rework for b in remitted),
                                             len(remitted)),
        "denial_rate_count": _ratio(sum(b.denied > ZERO for b in remitted), len(remitted)),
        "denial_rate_dollars": _ratio(sum((b.denied for b in remitted), ZERO), charges_remitted),
        "net_collection_rate": _ratio(payments, charges_remitted - contractual),
        "net_collection_payments": payments,  # the rate's numerator
        "net_collection_expected": charges_remitted - contractual,  # and its denominator
        "claims_sent": len(live),
        "claims_with_835": len(remitted),
    }
