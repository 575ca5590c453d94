"""Sending 837P batches to a mailbox, losing nothing and sending nothing twice.

A transmission moves ready → uploading → uploaded, each step committed before the next remote
action. Its bytes and control numbers were stored with its batch before any upload. An
``uploading`` transmission found later (the previous attempt crashed or lost its connection) is
reconciled: if the file is on the server under its final name it was delivered; otherwise the
same bytes, with the same ISA13, are sent again. If a first copy did arrive unseen (a write-once
server hides it), the receiver's duplicate-interchange edit answers the second with a TA1 025,
which the hub recognises as harmless.
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select

from hub.batches import create_batch
from hub.claims import set_status
from hub.crashpoints import crash_point
from hub.errors import HubError
from hub.model import ClaimStatus
from hub.store import schema
from hub.store.schema import utcnow

log = logging.getLogger(__name__)

READY, UPLOADING, UPLOADED, ACKNOWLEDGED, REJECTED = "ready", "uploading", "uploaded", "acknowledged", "rejected"
UNFINISHED = (READY, UPLOADING)


@dataclass(frozen=True)
class Sent:
    transmission_id: int
    batch_id: int
    remote_name: str
    claims: int
    how: str  # uploaded, found_on_server, resent


def submit(hub, mailbox, connection) -> list[Sent]:
    """Finish this mailbox's unfinished transmissions, then send every ready claim."""
    sent = [_deliver(hub, mailbox, connection, t) for t in _unfinished(hub, mailbox.name)]
    while (transmission_id := _new_transmission(hub, mailbox)) is not None:
        sent.append(_deliver(hub, mailbox, connection, transmission_id))
    return sent


def _unfinished(hub, mailbox_name: str) -> list[int]:
    with hub.store.session() as session:
        return list(session.scalars(
            select(schema.Transmission.id)
            .where(schema.Transmission.mailbox == mailbox_name, schema.Transmission.state.in_(UNFINISHED))
            .order_by(schema.Transmission.id)
        ))


def _new_transmission(hub, mailbox) -> int | None:
    """Batch the ready claims for this mailbox and record the transmission, all in one commit."""
    with hub.store.session() as session:
        batch = create_batch(hub, session, mailbox.envelope, mailbox.profile.max_claims_per_file,
                             line_breaks=mailbox.profile.line_breaks)
        if batch is None:
            return None
        now = datetime.now(timezone.utc)
        name = mailbox.profile.file_name.format(
            sender_id=mailbox.envelope.sender_id, isa13=batch.interchange_control_number,
            batch_id=batch.id, date=now.strftime("%Y%m%d"), time=now.strftime("%H%M%S"),
        )
        transmission = schema.Transmission(batch_id=batch.id, mailbox=mailbox.name, remote_name=name, state=READY)
        session.add(transmission)
        session.flush()
        _history(session, transmission, READY, f"batch {batch.id}, ISA13 {batch.interchange_control_number}")
        session.commit()
        log.info("transmission %s created for mailbox %s (batch %s)", transmission.id, mailbox.name, batch.id)
        return transmission.id


def _deliver(hub, mailbox, connection, transmission_id: int) -> Sent:
    profile = mailbox.profile
    with hub.store.session() as session:
        transmission = session.get(schema.Transmission, transmission_id)
        batch = session.get(schema.Batch, transmission.batch_id)
        content, remote_name, previous = batch.content, transmission.remote_name, transmission.state
        claims = batch.claim_count
    final_path = posixpath.join(profile.outbound_dir, remote_name)
    how = "uploaded"
    if previous == UPLOADING:
        # The last attempt's outcome is unknown. A file under its final name is complete (it is
        # renamed into place only when whole); then it was delivered.
        remote = connection.stat(final_path) if profile.upload_method == "rename" else None
        if remote is not None and remote.size == len(content):
            _mark_uploaded(hub, transmission_id, "found on the server after an interrupted upload")
            return Sent(transmission_id, transmission.batch_id, remote_name, claims, "found_on_server")
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
    return Sent(transmission_id, transmission.batch_id, remote_name, claims, how)


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
