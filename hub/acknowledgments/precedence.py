"""Which of a claim's acknowledgments decides its status (domain reference 7: TA1, 999, 277CA).

An answer outranks another by, in order:

1. **what kind of answer it is.** A decision (277CA A2/A5 accepted, A4 not found, A3/A6/A7/A8
   rejected; a rejecting TA1 or 999) outranks a receipt (277CA A0/A1, an accepting TA1 or 999),
   which says only that the file arrived. So a receipt never undoes a rejection, before or after.
2. **who gives it.** The payer, who adjudicates, outranks the clearinghouse in front of it.
3. **when.** The later effective date (STC02; else the file's date) wins between equals.
4. **what it means.** Same kind, source and day: rejection, then not found, then acceptance.

An 835 adjudication outranks every acknowledgment; it is not ranked here: a claim it decided is
never moved by one (``bhhub.acknowledgments.standing``). The ranking reads only what the answers say, never
the order they arrived in, so one set of answers gives one status in any order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from bhhub.model import ClaimStatus
from bhhub.acknowledgments.codes import ACCEPTED, NOT_FOUND, OUTCOME_ORDER, RECEIVED, REJECTED

CLEARINGHOUSE, PAYER = "clearinghouse", "payer"
_SOURCES = (CLEARINGHOUSE, PAYER)  # least authoritative first

# The claim status a deciding answer puts a claim in. A receipt decides nothing (the claim
# stays where it is); not found keeps the claim in flight (submitted) with an alert, since
# the payer has not accepted it and has not rejected anything a person could fix.
STATUS_FOR = {ACCEPTED: ClaimStatus.ACCEPTED, NOT_FOUND: ClaimStatus.SUBMITTED, REJECTED: ClaimStatus.REJECTED}

# Said in listings and alerts.
SAID = {RECEIVED: "received", ACCEPTED: "accepted", NOT_FOUND: "not found", REJECTED: "rejected"}


@dataclass(frozen=True)
class Answer:
    """One acknowledgment's word on one claim's submission."""

    outcome: str  # received | accepted | not_found | rejected
    source: str  # clearinghouse | payer
    effective_on: date
    kind: str  # TA1, 999, 277CA
    code: str  # TA104/TA105, IK5, the deciding STC category
    detail: str  # plain language, no data values
    about_this_claim: bool = True  # False for a TA1/999 verdict on the whole file

    def rank(self) -> tuple:
        decision = self.outcome != RECEIVED
        return (decision, _SOURCES.index(self.source), self.effective_on, OUTCOME_ORDER.index(self.outcome),
                # ties that decide nothing about the status, broken by content for a stable reason
                self.about_this_claim, self.kind, self.code, self.detail)

    def describe(self) -> str:
        return f"{self.kind}: {self.detail} (from the {self.source})"


def deciding(answers) -> Answer | None:
    """The answer that outranks all the others; None when there are none."""
    return max(answers, key=Answer.rank, default=None)

