"""Crossovers: the payer sent the claim on to the next payer itself (domain reference 6.2, 6.5).

CLP02 19/20/21 ("processed as primary/secondary/tertiary, forwarded to additional payer(s)"), an
NM1*TT (the crossover carrier) or the remarks MA18/N89 say so; which codes count is data in
``mappings/remittance/responsibility.toml`` ``[crossover]``. Billing that payer again would be
a duplicate (it answers with CARC 18 / N522), so until its own 835 arrives:

- no secondary claim is built (``bhhub followup secondary`` refuses and says why);
- what the patient's share on the forwarding 835 was is owed by the next payer, not the patient
  (insurance A/R in ``bhhub.remittance.ar``);
- the claim says so (its status reason and ``bhhub claims``).

The next payer's 835 usually comes back under the same patient control number (CLP01): it posts
to the same claim, and the crossover is then answered.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from bhhub.store import schema

REVERSAL = "22"
# CLP02: the payer's place in the order of payers (primary 1/19, secondary 2/20, tertiary 3/21).
_ORDER = {"1": 1, "19": 1, "2": 2, "20": 2, "3": 3, "21": 3}


def crossover_of(paid, table) -> tuple[bool, str]:
    """(forwarded?, the payer it went to, "" when the 835 does not name it) for a claim payment."""
    remarks = set(getattr(paid, "remarks", ()))
    for service in getattr(paid, "services", ()):
        remarks.update(getattr(service, "remarks", ()))
    named = (getattr(paid, "crossover_payer", None) or "").strip()
    forwarded = bool(named) or paid.status_code in table.crossover_status_codes or bool(remarks & table.crossover_remarks)
    return forwarded, named[:80]


@dataclass(frozen=True)
class PendingCrossover:
    """A crossover whose next payer has not answered yet."""

    payer_id: str  # the payer that forwarded it, by the hub's id: the claim's payer its 835 posted to
    payer_id_835: str  # the same payer as its 835 names it (REF*2U, N1*PR N104 or TRN03 alone)
    trace_number: str
    to: str  # the payer it went to, "" when the 835 did not name it
    order: int = 0  # the forwarding payer's place (CLP02), 0 when the 835 did not say

    def sentence(self, pcn: str) -> str:
        to = f"to {self.to} " if self.to else "to the next payer "
        named = f" ({self.payer_id_835} on its 835)" if self.payer_id_835 != self.payer_id else ""
        return (f"claim {pcn} was forwarded {to}by payer {self.payer_id}{named} itself (crossover, 835 trace "
                f"{self.trace_number}): that payer already has it, so it is not billed again; wait for its 835")


def pending(session, claim: schema.Claim) -> PendingCrossover | None:
    """The crossover on this claim (any revision) that no later payer's 835 has answered."""
    r, p = schema.RemitClaim, schema.RemitPayment
    rows = session.execute(
        select(r, p.payer_id, p.trace_number, schema.Payer.payer_id).join(p, p.id == r.payment_id)
        .join(schema.Claim, schema.Claim.id == r.claim_id)
        .join(schema.Coverage, schema.Coverage.id == schema.Claim.coverage_id)
        .join(schema.Payer, schema.Payer.id == schema.Coverage.payer_id)
        .where(schema.Claim.patient_control_number == claim.patient_control_number, r.state == "posted",
               r.status_code != REVERSAL, r.reversed_by_id.is_(None))
        .order_by(r.id)).all()
    return pending_among(rows)


def pending_among(rows) -> PendingCrossover | None:
    """``pending`` over one claim's posted claim payments, (row, the 835's payer id, trace, the
    payer id of the claim revision it posted to) oldest first; reversals and reversed payments are
    skipped here, so a caller may pass every posted one."""
    found: PendingCrossover | None = None
    for row, payer_id_835, trace, claim_payer_id in rows:
        if row.status_code == REVERSAL or row.reversed_by_id is not None:
            continue
        order = _ORDER.get(row.status_code, 0)
        # Told apart by the 835's own id: the next payer's 835 often posts to the same revision,
        # whose payer id is the forwarding payer's.
        if found is not None and (payer_id_835 != found.payer_id_835 or order > found.order > 0):
            found = None  # the next payer answered (a payer may be its own supplemental, hence CLP02)
        if row.crossed_over:
            found = PendingCrossover(claim_payer_id, payer_id_835, trace, row.crossover_payer, order)
    return found
