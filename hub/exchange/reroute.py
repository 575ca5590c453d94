"""Transmissions left for a mailbox no longer in bhhub.toml (``transmissions_orphaned``): let
them go, or hand them to the mailbox that replaced it (``bhhub mailbox reroute``).

A transmission's file was written in its mailbox's envelope (ISA06/ISA08 of that clearinghouse),
so its bytes can only go where that envelope points:

- ``--to NEW`` when NEW carries the same envelope (the mailbox was renamed, or the same
  clearinghouse is reached another way): the transmission, bytes and ISA13 unchanged, is NEW's,
  and NEW's next exchange sends it;
- without ``--to``, or when NEW's envelope differs: the file is released. Its claims go back to
  ``ready`` and the next exchange batches them for the mailbox ``[routing]`` gives their payer
  now, in that clearinghouse's envelope (their authorization visits stay counted once: a claim's
  uses are recorded once, whatever batch carries it).

An eligibility (270) or claim status (276) file written for the old mailbox and not yet given a
transmission (the old mailbox's exchange would have given it one) follows the same rules: moved
(``--to NEW`` with its envelope: NEW's next exchange sends it), or released, recorded as a
transmission in state ``released`` so that no exchange ever sends it, not even the old mailbox's
if it is configured again. A released 270/276's questions still waiting for their answer are
asked again in the same transaction (``bhhub.exchange.inquiries.ask_again``): each in a new file
for the mailbox ``[routing]`` gives its payer now, sent by that mailbox's next exchange, by 270 or
276 only (a payer portal is never called under the exchange lock). Not a third time when a
person asked it again first; one the hub cannot ask now (no route for its payer, no coverage or
provider on file) is named with the command to ask it by hand.

Only transmissions never uploaded (``ready``) move by default. One left ``uploading`` (its
upload was cut off) may or may not have reached the old clearinghouse: it is named and left
alone unless ``include_uploading`` (``--include-uploading``), so its claims are not stuck
``batched`` for good once the old mailbox is gone. Then it is moved like a ready one when NEW
carries its envelope (NEW's exchange looks for the file and otherwise sends the same bytes with
the same ISA13, which the clearinghouse answers with a TA1 025 if the first copy arrived), or
else released: its claims go into a new batch, and if the cut-off upload had reached the old
clearinghouse they are billed twice; that risk is the person's choice, stated in the output.

The work is one transaction, under the exchange lock (``bhhub.exchange.locks``): no upload is in
progress while it runs, so ``uploading`` means cut off, not under way; a twin waits and then
finds nothing left; a kill leaves all of it undone. Running it again changes nothing.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field

from sqlalchemy import exists, select

from bhhub.claims.build import set_status
from bhhub.runtime.crashpoints import crash_point
from bhhub.errors import UsageError
from bhhub.exchange.inquiries import INQUIRY_KINDS, AskedAgain, ask_again
from bhhub.model import ClaimStatus
from bhhub.store import schema

log = logging.getLogger(__name__)

RELEASED = "released"  # a transmission state: its file will not be sent (see the module's docstring)
# The audit action recording, as its whole detail, the name of the mailbox work was moved away
# from: a move rewrites the rows' mailbox, and this keeps the old name one that held work, so a
# second reroute from it says "nothing waits" rather than "never held work".
MOVED_FROM = "reroute_moved_from"


@dataclass
class RerouteResult:
    mailbox: str
    to: str | None
    moved: list[int] = field(default_factory=list)  # transmissions now the ``to`` mailbox's
    released: list[int] = field(default_factory=list)  # transmissions let go
    claims_ready: list[str] = field(default_factory=list)  # patient control numbers back in the queue
    in_doubt: list[int] = field(default_factory=list)  # uploading, left alone: may have reached the old clearinghouse
    # uploading, moved or released all the same (``include_uploading``): each may have reached it
    uploading: list[int] = field(default_factory=list)
    # 270/276 batches written for the old mailbox that had no transmission yet
    moved_inquiries: list[int] = field(default_factory=list)  # now written for ``to``
    released_inquiries: list[int] = field(default_factory=list)  # never to be sent
    asked_again: list[AskedAgain] = field(default_factory=list)  # the questions of every released 270/276

    def as_dict(self) -> dict:
        return {"mailbox": self.mailbox, "to": self.to, "moved_transmission_ids": self.moved,
                "released_transmission_ids": self.released, "patient_control_numbers": self.claims_ready,
                "in_doubt_transmission_ids": self.in_doubt, "uploading_transmission_ids": self.uploading,
                "moved_inquiry_batch_ids": self.moved_inquiries,
                "released_inquiry_batch_ids": self.released_inquiries,
                "questions": [q.as_dict() for q in self.asked_again]}

    @property
    def changed(self) -> bool:
        return bool(self.moved or self.released or self.moved_inquiries or self.released_inquiries)


def reroute(hub, old: str, to: str | None = None, *, include_uploading: bool = False,
            wait: float | None = None, waiting=None) -> RerouteResult:
    """Move or release every transmission not yet uploaded that waits for ``old``, a mailbox no
    longer configured (and those cut off while uploading, with ``include_uploading``); one
    transaction under the exchange lock, audited."""
    from bhhub.exchange.locks import DEFAULT_WAIT_SECONDS, EXCHANGE, hub_lock
    from bhhub.exchange.outbound import READY, UPLOADING
    from bhhub.exchange.routing import known_mailbox

    if not old.strip():
        raise UsageError("--from needs the name of the mailbox taken out of bhhub.toml")
    if old in hub.settings.file.mailboxes:
        raise UsageError(f"mailbox {old!r} is configured: its own exchange sends what waits for it; reroute "
                         "is for a mailbox taken out of bhhub.toml")
    envelope = _envelope_of(hub, known_mailbox(hub, to)) if to is not None else None
    _held_work(hub, old)
    result = RerouteResult(old, to)
    t = schema.Transmission
    # The exchange lock: no upload of this hub is under way meanwhile, so an ``uploading`` row
    # is one cut off (never one a running exchange is about to mark uploaded).
    with hub_lock(hub, EXCHANGE, wait=DEFAULT_WAIT_SECONDS if wait is None else wait, waiting=waiting), \
            hub.store.writer() as session:
        for transmission in session.scalars(select(t).where(t.mailbox == old, t.state.in_((READY, UPLOADING)))
                                            .order_by(t.id).with_for_update()):
            if transmission.state == UPLOADING:
                if not include_uploading:
                    result.in_doubt.append(transmission.id)
                    continue
                result.uploading.append(transmission.id)
            batch = session.get(schema.Batch, transmission.batch_id)
            if envelope is not None and _addressed_to(batch, envelope):
                _move(session, transmission, batch, to)
                result.moved.append(transmission.id)
            else:
                result.claims_ready += _release(session, transmission, batch, to)
                result.released.append(transmission.id)
                if batch.kind in INQUIRY_KINDS:
                    result.asked_again += ask_again(hub, session, batch, _why(old, to))
        b = schema.Batch
        for batch in session.scalars(select(b).where(b.mailbox == old, b.kind.in_(INQUIRY_KINDS),
                                                     ~exists().where(t.batch_id == b.id))
                                     .order_by(b.id).with_for_update()).all():
            if envelope is not None and _addressed_to(batch, envelope):
                batch.mailbox = to  # NEW's next exchange gives it a transmission and sends it
                result.moved_inquiries.append(batch.id)
            else:
                _release_unsent(session, batch, old, to)
                result.released_inquiries.append(batch.id)
                result.asked_again += ask_again(hub, session, batch, _why(old, to))
        if result.moved:
            hub.audit(session, MOVED_FROM, "transmission", result.moved, old)
        if result.moved_inquiries:
            hub.audit(session, MOVED_FROM, "batch", result.moved_inquiries, old)
        changed = result.moved + result.released
        if changed:
            hub.audit(session, "reroute_transmissions", "transmission", changed,
                      f"mailbox {old} no longer configured: {len(result.moved)} moved to {to}, "
                      f"{len(result.released)} released"
                      + (f", {len(result.uploading)} of them cut off while uploading" if result.uploading else ""))
        inquiries = result.moved_inquiries + result.released_inquiries
        if inquiries:
            hub.audit(session, "reroute_inquiries", "batch", inquiries,
                      f"mailbox {old} no longer configured: {len(result.moved_inquiries)} inquiry batch(es) moved "
                      f"to {to}, {len(result.released_inquiries)} released")
        for kind, object_type in (("270", "eligibility_check"), ("276", "claim_status_check")):
            questions = [q for q in result.asked_again if q.kind == kind]
            if questions:
                asked = sum(q.state == "asked_again" for q in questions)
                hub.audit(session, "reroute_questions", object_type, [q.check_id for q in questions],
                          f"{kind} released unsent: {asked} question(s) asked again, {len(questions) - asked} not")
        crash_point("reroute:before_commit")
        session.commit()
    _recheck_orphans(hub)
    log.info("reroute from %s: %d moved, %d released, %d in doubt left, %d in doubt handled; inquiry batches: "
             "%d moved, %d released; %d question(s) asked again", old, len(result.moved), len(result.released),
             len(result.in_doubt), len(result.uploading), len(result.moved_inquiries), len(result.released_inquiries),
             sum(q.state == "asked_again" for q in result.asked_again))
    return result


def _held_work(hub, old: str) -> None:
    """A UsageError unless some transmission or batch of the store was ever ``old``'s: a name
    that never held work is a typo, not "nothing waits" (the nearest name that did is offered).
    Work moved away by an earlier reroute counts as the old mailbox's: its audit event
    (``MOVED_FROM``) keeps the name the rows no longer carry."""
    with hub.store.session() as session:
        names = set(session.scalars(select(schema.Transmission.mailbox).distinct()))
        names |= set(session.scalars(select(schema.Batch.mailbox).where(schema.Batch.mailbox.is_not(None))
                                     .distinct()))
        names |= set(session.scalars(select(schema.AuditEvent.detail)
                                     .where(schema.AuditEvent.action == MOVED_FROM).distinct()))
    if old in names:
        return
    retired = sorted(names - set(hub.settings.file.mailboxes))
    near = difflib.get_close_matches(old, retired, n=1)
    hint = f"did you mean {near[0]!r}? " if near else ""
    raise UsageError(f"no mailbox named {old!r} ever held work in this hub ({hint}mailboxes no longer configured "
                     f"that did: {', '.join(retired) or 'none'})")


def _envelope_of(hub, name: str) -> tuple[str, str]:
    from bhhub.exchange.mailboxes import outbound_envelope

    envelope, _ = outbound_envelope(hub, name)
    return envelope.sender_id, envelope.receiver_id


def _addressed_to(batch: schema.Batch, envelope: tuple[str, str]) -> bool:
    """True when the file's ISA06/ISA08 are the mailbox's: its bytes may go through it."""
    from bhhub.x12.recognize import recognize

    isa = recognize(batch.content)
    return isa is not None and (isa.sender_id, isa.receiver_id) == envelope


def _move(session, transmission: schema.Transmission, batch: schema.Batch, to: str) -> None:
    detail = f"rerouted from mailbox {transmission.mailbox} (no longer configured) to {to}"
    transmission.mailbox = to
    if batch.mailbox is not None:  # an inquiry written for the old mailbox is now the new one's
        batch.mailbox = to
    session.add(schema.TransmissionEvent(transmission_id=transmission.id, state=transmission.state, detail=detail))


def _release(session, transmission: schema.Transmission, batch: schema.Batch, to: str | None) -> list[str]:
    why = _why(transmission.mailbox, to) + ("; its upload had been cut off and may have reached that clearinghouse"
                                            if transmission.state == "uploading" else "")
    then = ("its claims go with the next exchange" if batch.kind == "837P"
            else "its unanswered questions are asked again")
    transmission.state = RELEASED
    session.add(schema.TransmissionEvent(transmission_id=transmission.id, state=RELEASED,
                                         detail=f"released: {why}; {then}"))
    c = schema.Claim
    claims = session.scalars(select(c).where(c.batch_id == batch.id, c.status == ClaimStatus.BATCHED.value)
                             .order_by(c.id)).all()
    for claim in claims:
        claim.batch_id = None
        set_status(session, claim, ClaimStatus.READY, f"rerouted: {why} (its batch {batch.id} was not known sent)")
    return [claim.patient_control_number for claim in claims]


def _why(old: str, to: str | None) -> str:
    return f"mailbox {old} no longer configured" + (f"; {to} carries another envelope" if to is not None else "")


def _release_unsent(session, batch: schema.Batch, old: str, to: str | None) -> None:
    """A 270/276 never given a transmission, recorded as one ``released``: no exchange gives it
    another (``bhhub.exchange.outbound`` takes only inquiry batches with none), so it is never sent."""
    transmission = schema.Transmission(batch_id=batch.id, mailbox=old, remote_name="", state=RELEASED)
    session.add(transmission)
    session.flush()
    session.add(schema.TransmissionEvent(
        transmission_id=transmission.id, state=RELEASED,
        detail=f"released before it was sent: {_why(old, to)}; its unanswered questions are asked again"))


def _recheck_orphans(hub) -> None:
    """The ``transmissions_orphaned`` alert cleared at once when nothing is left stranded."""
    from bhhub.exchange.cycle import check_orphaned_transmissions

    check_orphaned_transmissions(hub, set(hub.settings.file.mailboxes))
