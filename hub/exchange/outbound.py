"""Sending batches to a mailbox (837P claims, 270 and 276 inquiries), losing nothing and sending
nothing twice.

A transmission moves ready → uploading → uploaded, each step committed before the next remote
action (or, never uploaded and its mailbox taken out of bhhub.toml, ready → released:
``bhhub.exchange.reroute``). Its bytes and control numbers were stored with its batch before any upload. An
``uploading`` transmission found later (the previous attempt crashed or lost its connection) is
reconciled: if the file is on the server under its final name it was delivered; otherwise the
same bytes, with the same ISA13, are sent again. If a first copy did arrive unseen (a write-once
server hides it), the receiver's duplicate-interchange edit answers the second with a TA1 025,
which the hub recognises as harmless.

Inquiry batches (``bhhub.exchange.inquiries``) are stored before ``submit`` sees them; it gives each
one not yet transmitted a transmission when this mailbox's sender and receiver ids are the ones
in its ISA (the file was written for this clearinghouse), and from there it travels exactly as a
claim batch does.
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import exists, func, select

from bhhub.claims.batches import create_batch
from bhhub.claims.build import set_status
from bhhub.runtime.crashpoints import crash_point
from bhhub.errors import HubError
from bhhub.model import ClaimStatus
from bhhub.store import schema
from bhhub.store.schema import utcnow
from bhhub.x12.recognize import recognize

log = logging.getLogger(__name__)

READY, UPLOADING, UPLOADED, ACKNOWLEDGED, REJECTED = "ready", "uploading", "uploaded", "acknowledged", "rejected"
UNFINISHED = (READY, UPLOADING)
IN_FLIGHT = (READY, UPLOADING, UPLOADED)  # a transmission not yet answered by a TA1/999: a file in flight


@dataclass(frozen=True)
class Sent:
    transmission_id: int
    batch_id: int
    remote_name: str
    claims: int
    how: str  # uploaded, found_on_server, resent
    kind: str = "837P"  # 837P, 270 or 276


INQUIRY_KINDS = ("270", "276")  # bhhub.exchange.inquiries


def submit(hub, mailbox, connection) -> list[Sent]:
    """Finish this mailbox's unfinished transmissions, then send every ready claim routed to it
    (``bhhub.exchange.routing``), then every inquiry batch written for it and not yet transmitted."""
    from bhhub.exchange.routing import routes

    table = routes(hub)
    sent = [_deliver(hub, mailbox, connection, t) for t in _unfinished(hub, mailbox.name)]
    while (transmission_id := _new_transmission(hub, mailbox, table.payers_of(mailbox.name))) is not None:
        sent.append(_deliver(hub, mailbox, connection, transmission_id))
    _watch_unrouted(hub, table)
    for transmission_id in _inquiry_transmissions(hub, mailbox):
        sent.append(_deliver(hub, mailbox, connection, transmission_id))
    return sent


def _unfinished(hub, mailbox_name: str) -> list[int]:
    with hub.store.session() as session:
        return list(session.scalars(
            select(schema.Transmission.id)
            .where(schema.Transmission.mailbox == mailbox_name, schema.Transmission.state.in_(UNFINISHED))
            .order_by(schema.Transmission.id)
        ))


def _new_transmission(hub, mailbox, payers=None) -> int | None:
    """Batch the ready claims for this mailbox (of the ``payers`` routed to it) and record the
    transmission, all in one commit."""
    with hub.store.writer() as session:
        batch = create_batch(hub, session, mailbox.envelope, mailbox.profile.max_claims_per_file,
                             line_breaks=mailbox.profile.line_breaks, payers=payers)
        if batch is None:
            session.commit()  # claims set aside while batching keep their findings
            return None
        transmission_id = _record_transmission(session, mailbox, batch)
        session.commit()
    crash_point("transmission:after_create")
    return transmission_id


def _watch_unrouted(hub, table) -> None:
    """Ready claims whose payer no mailbox serves (several mailboxes, no default): one alert
    naming the payer ids, cleared once the routing table covers them."""
    from bhhub.exchange.alerts import clear_alert, raise_alert

    if table.default is not None:
        with hub.store.session() as session:
            clear_alert(session, "claims_unrouted")
            session.commit()
        return
    c, cov, payer = schema.Claim, schema.Coverage, schema.Payer
    with hub.store.session() as session:
        waiting = session.execute(
            select(payer.payer_id, func.count()).join(cov, cov.payer_id == payer.id).join(c, c.coverage_id == cov.id)
            .where(c.status == ClaimStatus.READY.value, payer.payer_id.not_in(sorted(table.payers)))
            .group_by(payer.payer_id).order_by(payer.payer_id)).all()
        if waiting:
            raise_alert(session, "claims_unrouted", "claims_unrouted",
                        f"{sum(n for _, n in waiting)} ready claim(s) wait for a mailbox: no mailbox serves payer(s) "
                        f"{', '.join(p for p, _ in waiting)}; add them to [routing.payers] in bhhub.toml, or set "
                        "[routing] default")
        else:
            clear_alert(session, "claims_unrouted")
        session.commit()


def _inquiry_transmissions(hub, mailbox) -> list[int]:
    """A ready transmission (committed) for each inquiry batch addressed through this mailbox."""
    created = []
    with hub.store.writer() as session:
        waiting = session.scalars(
            select(schema.Batch).where(
                schema.Batch.kind.in_(INQUIRY_KINDS),
                schema.Batch.sender_id == mailbox.envelope.sender_id,
                ~exists().where(schema.Transmission.batch_id == schema.Batch.id),
            ).order_by(schema.Batch.id)
        ).all()
        for batch in waiting:
            # Written for a mailbox (routing, or --mailbox): that one carries it. Written before
            # batches named theirs: the ISA is the truth of where the file was meant to go.
            if batch.mailbox is not None:
                if batch.mailbox != mailbox.name:
                    continue
            elif recognize(batch.content).receiver_id != mailbox.envelope.receiver_id:
                continue
            created.append(_record_transmission(session, mailbox, batch))
            session.commit()
    return created


def _record_transmission(session, mailbox, batch: schema.Batch) -> int:
    """A ready transmission of ``batch`` through ``mailbox``, named by the profile (the caller commits)."""
    now = datetime.now(timezone.utc)
    kind = batch.kind or "837P"
    name = mailbox.profile.remote_name(
        kind, sender_id=mailbox.envelope.sender_id, isa13=batch.interchange_control_number,
        batch_id=batch.id, date=now.strftime("%Y%m%d"), time=now.strftime("%H%M%S"),
    )
    transmission = schema.Transmission(batch_id=batch.id, mailbox=mailbox.name, remote_name=name, state=READY)
    session.add(transmission)
    session.flush()
    _history(session, transmission, READY, f"{kind} batch {batch.id}, ISA13 {batch.interchange_control_number}")
    log.info("transmission %s created for mailbox %s (%s batch %s)", transmission.id, mailbox.name, kind, batch.id)
    return transmission.id


def _deliver(hub, mailbox, connection, transmission_id: int) -> Sent:
    profile = mailbox.profile
    with hub.store.session() as session:
        transmission = session.get(schema.Transmission, transmission_id)
        batch = session.get(schema.Batch, transmission.batch_id)
        content, remote_name, previous = batch.content, transmission.remote_name, transmission.state
        claims, kind = batch.claim_count, batch.kind or "837P"
    final_path = posixpath.join(profile.outbound_dir, remote_name)
    how = "uploaded"
    if previous == UPLOADING:
        # The last attempt's outcome is unknown. A file under its final name is complete (it is
        # renamed into place only when whole); then it was delivered.
        remote = connection.stat(final_path) if profile.upload_method == "rename" else None
        if remote is not None and remote.size == len(content):
            _mark_uploaded(hub, transmission_id, "found on the server after an interrupted upload")
            return Sent(transmission_id, transmission.batch_id, remote_name, claims, "found_on_server", kind)
        how = "resent"
    with hub.store.session() as session:
        transmission = session.get(schema.Transmission, transmission_id)
        transmission.state = UPLOADING
        transmission.attempts += 1
        _history(session, transmission, UPLOADING, f"attempt {transmission.attempts}")
        session.commit()
    crash_point("upload:before_put")
    try:
        connection.upload(content, profile.outbound_dir, remote_name, method=profile.upload_method,
                          temp_suffix=profile.temp_suffix, confirm=profile.confirm_upload)
    except HubError as exc:
        with hub.store.session() as session:
            transmission = session.get(schema.Transmission, transmission_id)
            transmission.last_error = str(exc)
            session.commit()
        raise
    crash_point("upload:after_put")
    _mark_uploaded(hub, transmission_id, "sent again with the same bytes and ISA13" if how == "resent" else None)
    return Sent(transmission_id, transmission.batch_id, remote_name, claims, how, kind)


def _mark_uploaded(hub, transmission_id: int, detail: str | None) -> None:
    with hub.store.session() as session:
        transmission = session.get(schema.Transmission, transmission_id)
        transmission.state = UPLOADED
        transmission.uploaded_at = utcnow()
        transmission.last_error = None
        _history(session, transmission, UPLOADED, detail)
        claims = session.scalars(select(schema.Claim).where(
            schema.Claim.batch_id == transmission.batch_id, schema.Claim.status == ClaimStatus.BATCHED.value))
        for claim in claims:
            set_status(session, claim, ClaimStatus.SUBMITTED, f"transmission {transmission_id} uploaded")
        session.commit()
    log.info("transmission %s uploaded", transmission_id)


def _history(session, transmission: schema.Transmission, state: str, detail: str | None) -> None:
    session.add(schema.TransmissionEvent(transmission_id=transmission.id, state=state, detail=detail))
