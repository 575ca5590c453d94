"""One exchange with a mailbox: send what is ready, pick up what came back, watch for silence."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import exists, select

from bhhub.errors import HubError, RetriableError
from bhhub.exchange.alerts import clear_alert, raise_alert
from bhhub.exchange.locks import DEFAULT_WAIT_SECONDS, EXCHANGE, LockBusy, hub_lock
from bhhub.intake.inbox import finish_received
from bhhub.exchange.inbound import PickedUp, pick_up
from bhhub.exchange.outbound import UPLOADED, Sent, submit
from bhhub.store import schema
from bhhub.store.schema import utcnow

log = logging.getLogger(__name__)


@dataclass
class ExchangeReport:
    mailbox: str
    sent: list[Sent] = field(default_factory=list)
    picked_up: list[PickedUp] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def exchange(hub, mailbox, *, wait: float = DEFAULT_WAIT_SECONDS,
             waiting: Callable[[str], None] | None = None) -> ExchangeReport:
    """Connect once, submit, pick up; a mailbox that cannot be reached is one alert, not a crash.

    Holds the hub's exchange lock throughout (``bhhub.exchange.locks``): the runner's scheduled
    exchange and a person's ``bhhub exchange`` never interleave; the second waits for the first.
    Items an interrupted run left stored but not applied are finished first.
    """
    report = ExchangeReport(mailbox.name)
    try:
        with hub_lock(hub, EXCHANGE, wait=wait, waiting=waiting):
            finish_received(hub)
            return _exchange(hub, mailbox, report)
    except LockBusy as exc:
        report.error = str(exc)
        return report


def _exchange(hub, mailbox, report: ExchangeReport) -> ExchangeReport:
    unreachable = f"mailbox_unreachable:{mailbox.name}"
    _check_eligibility_before_batch(hub)
    try:
        with mailbox.transport.connect(mailbox.connection) as connection:
            report.sent = submit(hub, mailbox, connection)
            report.picked_up = pick_up(hub, mailbox, connection)
    except RetriableError as exc:
        report.error = str(exc)
        with hub.store.session() as session:
            raise_alert(session, unreachable, "mailbox_unreachable",
                        f"mailbox {mailbox.name}: {exc}; the next exchange tries again")
            session.commit()
    except HubError as exc:  # e.g. a changed host key: a person must look
        report.error = str(exc)
        with hub.store.session() as session:
            raise_alert(session, f"mailbox_refused:{mailbox.name}", "mailbox_refused", f"mailbox {mailbox.name}: {exc}")
            session.commit()
    else:
        with hub.store.session() as session:
            if clear_alert(session, unreachable) | clear_alert(session, f"mailbox_refused:{mailbox.name}"):
                session.commit()
    check_acknowledgments_due(hub, mailbox)
    return report


def _check_eligibility_before_batch(hub) -> None:
    """Ask about the members of claims about to be batched whose check is stale (see
    ``bhhub.eligibility.sweep.before_batch``). Never stops the exchange: a failure is one alert."""
    from bhhub.eligibility import sweep

    if not sweep.checks_before_batch(hub):
        return
    key = "eligibility_before_batch"
    try:
        report = sweep.before_batch(hub)
    except HubError as exc:
        with hub.store.session() as session:
            raise_alert(session, key, "eligibility_before_batch",
                        f"checking eligibility before the batch failed: {exc}; the claims went as they were")
            session.commit()
        return
    if report.outcomes:
        log.info("eligibility before the batch: %d question(s)", len(report.outcomes))
    with hub.store.session() as session:
        if clear_alert(session, key):
            session.commit()


def check_acknowledgments_due(hub, mailbox) -> None:
    """An upload with no 999 within the profile's window is an alert ("expected file missing");
    it clears when the 999 (or a TA1 rejecting the file) arrives. An accepting TA1 only says the
    file arrived: the 999 is still expected."""
    with hub.store.session() as session:
        for transmission in acknowledgments_overdue(session, mailbox):
            raise_alert(session, f"ack_missing:transmission:{transmission.id}", "ack_missing",
                        f"mailbox {mailbox.name}: no 999 for {transmission.remote_name} (transmission "
                        f"{transmission.id}) {mailbox.profile.expect_999_within_hours:g} hours after upload")
        session.commit()


def acknowledgments_overdue(session, mailbox) -> list[schema.Transmission]:
    """The mailbox's uploads whose 999 is overdue (the profile's ``expect_999_within_hours``), in
    id order: the files ``check_acknowledgments_due`` raises ``ack_missing`` for, and
    ``bhhub mailbox status`` shows as expected responses missing."""
    deadline = utcnow() - timedelta(hours=mailbox.profile.expect_999_within_hours)
    return list(session.scalars(
        select(schema.Transmission).where(
            schema.Transmission.mailbox == mailbox.name,
            schema.Transmission.state == UPLOADED,
            schema.Transmission.uploaded_at < deadline,
            ~exists().where(schema.Acknowledgment.batch_id == schema.Transmission.batch_id,
                            schema.Acknowledgment.kind == "999"),
        ).order_by(schema.Transmission.id)
    ).all())


INQUIRIES_WAITING = "inquiries_waiting"


def check_inquiries_waiting(hub, *, hours: float = 1.0) -> int:
    """Inquiry batches (270/276) that no mailbox has taken ``hours`` after they were written (none
    carries their ISA sender and receiver ids): one alert naming how many, cleared when none wait."""
    cutoff = utcnow() - timedelta(hours=hours)
    b, t = schema.Batch, schema.Transmission
    with hub.store.session() as session:
        rows = session.execute(select(b.id, b.mailbox).where(
            b.kind != "837P", b.created_at < cutoff, ~exists().where(t.batch_id == b.id)).order_by(b.id)).all()
        waiting = [batch_id for batch_id, _ in rows]
        if waiting:
            # Written for a mailbox taken out of bhhub.toml: reroute moves them or asks their questions again.
            retired = sorted({m for _, m in rows if m is not None and m not in hub.settings.file.mailboxes})
            way_out = (f"; or `bhhub mailbox reroute --from {retired[0]} [--to NEW]` for mailbox(es) "
                       f"{', '.join(retired)}, no longer configured" if retired else "")
            raise_alert(session, INQUIRIES_WAITING, INQUIRIES_WAITING,
                        f"{len(waiting)} eligibility or claim status inquiry batch(es) (first: batch {waiting[0]}) "
                        f"have waited over {hours:g} hour(s) for a mailbox: none configured carries their ISA "
                        "sender and receiver ids; configure that clearinghouse's mailbox, or ask again" + way_out)
        else:
            clear_alert(session, INQUIRIES_WAITING)
        session.commit()
    return len(waiting)



ORPHANED = "transmissions_orphaned"


def check_orphaned_transmissions(hub, configured: set[str]) -> int:
    """Transmissions not yet sent whose mailbox is no longer in bhhub.toml (its claims would wait
    ``batched`` for ever): one alert naming them and the way out, cleared when none is left."""
    from bhhub.exchange.outbound import UNFINISHED

    t = schema.Transmission
    with hub.store.session() as session:
        stranded = session.execute(select(t.id, t.mailbox).where(t.state.in_(UNFINISHED), t.mailbox.not_in(
            sorted(configured) or [""])).order_by(t.id)).all()
        if stranded:
            names = sorted({m for _, m in stranded})
            raise_alert(session, ORPHANED, ORPHANED,
                        f"{len(stranded)} transmission(s) (first: {stranded[0][0]}) wait for mailbox(es) "
                        f"{', '.join(names)}, no longer configured: their claims stay batched until that mailbox "
                        "is configured again (under the same name) and exchanges, or `bhhub mailbox reroute --from "
                        f"{names[0]} [--to NEW]` hands them on (with --include-uploading, also those whose "
                        "upload was cut off: they may have arrived)")
        else:
            clear_alert(session, ORPHANED)
        session.commit()
    return len(stranded)
