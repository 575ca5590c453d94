"""How each clearinghouse mailbox stands (``bhhub mailbox status``, the web workspace): its last
exchange, the files in flight, and the responses that are overdue.

Read from what the exchange already keeps, never worked out a second time: files in flight are
the transmissions ``bhhub_files_in_flight`` counts (``outbound.IN_FLIGHT``), overdue responses are
the uploads ``cycle.acknowledgments_overdue`` finds (the ``ack_missing`` alerts' query), and a
failed exchange is the mailbox's open ``mailbox_unreachable`` / ``mailbox_refused`` alert. The hub
keeps no row per exchange: the last one is the latest trace the store holds of it (a file sent or
taken, a failure raised or cleared), so an exchange that moved nothing and followed a good one
leaves none. Ids, file names and counts only: nothing here names a patient.
"""

from __future__ import annotations

from sqlalchemy import func, select

from bhhub.store import schema


def mailbox_status(hub, session) -> list[dict]:
    """One object per mailbox configured in bhhub.toml, in name order, as ``bhhub mailbox status
    --json`` prints it:

    ``{mailbox, clearinghouse, profile, transport, schedule,
    last_exchange: {at, outcome ("ok" | "failed"), error} | None (no trace of any),
    last_sent: {at, transmission_id, remote_name} | None, last_received: {at, name, inbox_item_id} | None,
    in_flight: [{transmission_id, batch_id, kind, remote_name, state, attempts, claims, created_at,
    uploaded_at, last_error}],
    missing: [{transmission_id, batch_id, remote_name, expected ("999"), uploaded_at, due_within_hours,
    alert_id (the open ack_missing alert, or None until the next exchange raises it)}]}``."""
    from bhhub.exchange.cycle import acknowledgments_overdue
    from bhhub.exchange.mailboxes import load_mailboxes
    from bhhub.exchange.outbound import IN_FLIGHT

    mailboxes = load_mailboxes(hub)
    t, b, te, seen, a = (schema.Transmission, schema.Batch, schema.TransmissionEvent, schema.RemoteFileSeen,
                         schema.Alert)
    found = []
    for name in sorted(mailboxes):
        mailbox = mailboxes[name]
        in_flight = session.execute(
            select(t.id, t.batch_id, b.kind, t.remote_name, t.state, t.attempts, b.claim_count, t.created_at,
                   t.uploaded_at, t.last_error)
            .join(b, b.id == t.batch_id).where(t.mailbox == name, t.state.in_(IN_FLIGHT)).order_by(t.id)).all()
        overdue = acknowledgments_overdue(session, mailbox)
        open_missing = dict(session.execute(select(a.key, a.id).where(
            a.key.in_([f"ack_missing:transmission:{o.id}" for o in overdue]), a.cleared_at.is_(None))).all())
        last_sent = session.execute(
            select(te.at, t.id, t.remote_name).join(t, t.id == te.transmission_id)
            .where(t.mailbox == name, te.state == "uploaded").order_by(te.at.desc(), te.id.desc()).limit(1)).first()
        last_received = session.execute(
            select(seen.taken_at, seen.name, seen.inbox_item_id)
            .where(seen.mailbox == name, seen.taken_at.is_not(None))
            .order_by(seen.taken_at.desc(), seen.id.desc()).limit(1)).first()
        found.append({
            "mailbox": name, "clearinghouse": mailbox.profile.name, "profile": mailbox.profile.key,
            "transport": mailbox.transport.name, "schedule": mailbox.schedule,
            "last_exchange": _last_exchange(session, name, last_sent, last_received),
            "last_sent": None if last_sent is None else
            {"at": last_sent.at, "transmission_id": last_sent.id, "remote_name": last_sent.remote_name},
            "last_received": None if last_received is None else
            {"at": last_received.taken_at, "name": last_received.name, "inbox_item_id": last_received.inbox_item_id},
            "in_flight": [{"transmission_id": r.id, "batch_id": r.batch_id, "kind": r.kind,
                           "remote_name": r.remote_name, "state": r.state, "attempts": r.attempts,
                           "claims": r.claim_count, "created_at": r.created_at, "uploaded_at": r.uploaded_at,
                           "last_error": r.last_error} for r in in_flight],
            "missing": [{"transmission_id": o.id, "batch_id": o.batch_id, "remote_name": o.remote_name,
                         "expected": "999", "uploaded_at": o.uploaded_at,
                         "due_within_hours": mailbox.profile.expect_999_within_hours,
                         "alert_id": open_missing.get(f"ack_missing:transmission:{o.id}")} for o in overdue],
        })
    return found


def _last_exchange(session, name: str, last_sent, last_received) -> dict | None:
    """The latest exchange the store remembers: a failure while its alert is open (the next good
    exchange clears it), else the latest good trace (a file sent or taken, a failure cleared)."""
    a = schema.Alert
    keys = [f"mailbox_unreachable:{name}", f"mailbox_refused:{name}"]
    failing = session.execute(select(a.last_seen_at, a.message).where(a.key.in_(keys), a.cleared_at.is_(None))
                              .order_by(a.last_seen_at.desc()).limit(1)).first()
    if failing is not None:
        return {"at": failing.last_seen_at, "outcome": "failed", "error": failing.message}
    recovered = session.scalar(select(func.max(a.cleared_at)).where(a.key.in_(keys)))
    traces = [at for at in (last_sent and last_sent.at, last_received and last_received.taken_at, recovered) if at]
    if not traces:
        return None
    return {"at": max(traces, key=_comparable), "outcome": "ok", "error": None}


def _comparable(moment):
    """SQLite gives times back without their zone (the hub stores UTC): compare them as UTC."""
    from datetime import timezone

    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
