"""Asking a payer where a sent claim stands: a 276 queued for the clearinghouse mailbox.

    status_check(hub, claim) -> StatusOutcome       claim: a patient control number, or the claim's row id
    status_checks(hub, claims) -> [StatusOutcome]   one 276 for all of them

The question is the claim as it was sent (``bhhub.claimstatus.records.inquiry_for_claim``: its
coverage, billing provider, charge and dates, and the payer's claim number once a 277CA gave
one), stored with its own trace number (state requested) in the transaction that queues the
276 (``bhhub.exchange.inquiries.queue_276``); the next ``bhhub exchange`` sends it, and the 277
comes back through the mailbox (or ``bhhub intake``) into ``bhhub.responses``.

Only a claim that has left the hub can be asked about; with no mailbox configured there is no
way to ask, and ``ConfigError`` says how to set one up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from bhhub.claimstatus import store
from bhhub.claimstatus.records import inquiry_for_claim
from bhhub.claims.build import UNSENT
from bhhub.errors import ConfigError, UsageError
from bhhub.model import ClaimStatus
from bhhub.store import schema
from bhhub.store.repo import claim_record

NO_ROUTE = ("no way to ask about claim status: no clearinghouse mailbox is configured (fix: add a "
            "[mailboxes.NAME] section to bhhub.toml, see `bhhub mailbox test`; the 276 then goes out with the "
            "next `bhhub exchange`)")


@dataclass(frozen=True)
class StatusOutcome:
    check_id: int
    trace_number: str
    claim: str  # patient control number
    claim_status: str  # the claim's own status now
    state: str  # requested
    batch_id: int | None

    def as_dict(self) -> dict:
        return {"check_id": self.check_id, "trace_number": self.trace_number,
                "patient_control_number": self.claim,
                "claim_status": self.claim_status, "state": self.state, "batch_id": self.batch_id}


def status_check(hub, claim: str | int, *, mailbox: str | None = None) -> StatusOutcome:
    return status_checks(hub, [claim], mailbox=mailbox)[0]


def status_checks(hub, claims: Sequence[str | int], reason: str = "asked", *,
                  mailbox: str | None = None) -> list[StatusOutcome]:
    """Queue a 276 about each sent claim, through ``mailbox`` when named, else the mailbox each
    claim's payer is routed to (``bhhub.exchange.routing``)."""
    from bhhub.exchange.mailboxes import load_mailboxes

    if not load_mailboxes(hub):
        raise ConfigError(NO_ROUTE)
    if mailbox is not None:
        from bhhub.exchange.routing import known_mailbox

        known_mailbox(hub, mailbox)
    from bhhub.exchange.inquiries import queue_276  # the mailbox side; imported only when used

    with hub.store.session() as session:
        rows = [find_sent_claim(session, c) for c in claims]
        checks, inquiries = [], []
        for row in rows:
            check = store.ask(session, row.id, source=store.SOURCE_X12)
            checks.append(check)
            inquiries.append(inquiry_for_claim(claim_record(session, row), check.trace_number))
        batch_ids = queue_276(hub, session, inquiries, mailbox=mailbox)
        for check, batch_id in zip(checks, batch_ids):
            check.batch_id = batch_id
        hub.audit(session, "check_claim_status", "claim", [r.id for r in rows], reason)
        session.commit()
        return [StatusOutcome(c.id, c.trace_number, r.patient_control_number, r.status, c.state, c.batch_id)
                for c, r in zip(checks, rows)]


def find_sent_claim(session, claim: str | int) -> schema.Claim:
    """The claim by row id or patient control number (its latest revision); ``UsageError`` when
    it is unknown or has not been sent."""
    c = schema.Claim
    if isinstance(claim, int):
        row = session.get(c, claim)
    else:
        # a pending correction has not gone out: the payer reports on the revision it has
        row = session.scalar(select(c).where(c.patient_control_number == claim,
                                             c.status != ClaimStatus.PENDING_CORRECTION.value)
                             .order_by(c.revision.desc(), c.id.desc()).limit(1))
    if row is None:
        raise UsageError(f"no claim {claim} (see `bhhub claims`)")
    if row.status in UNSENT or row.batch_id is None:
        raise UsageError(f"claim {row.patient_control_number} is {row.status}: it has not been sent, so the payer "
                         "has nothing to report (it goes out with the next `bhhub exchange`)")
    return row
