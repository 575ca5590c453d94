"""One MLLP message → the inbox → the ACK that says truthfully what happened to it.

The ACK is built only after ``bhhub.intake.inbox.receive`` has returned, and ``receive`` commits the
raw bytes before it parses them, so an AA or AE always names a committed inbox item:

- ``AA``: imported, or the same bytes are in the inbox already and were imported (a sender
  resending after a lost ACK; nothing new is stored);
- ``AE``: stored, but quarantined (the reason, which intake keeps free of PHI, goes back in
  MSA-3 and ERR; a resent copy of a quarantined message hears the same) or stored and then not
  processed (``bhhub inbox retry`` finishes it, and so does the sender's resend);
- ``AR``: not stored: no MSH, too large, or the store failed before the commit. The sender
  may send it again.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from dataclasses import dataclass

from sqlalchemy import select

from bhhub.connectors.mllp.ack import (
    ACCEPT, APPLICATION_INTERNAL_ERROR, ERROR, REJECT, SEGMENT_SEQUENCE_ERROR, UNSUPPORTED_MESSAGE_TYPE,
    MessageHeader, NotHL7, build_ack, read_header,
)
from bhhub.intake import inbox as intake
from bhhub.store import schema

log = logging.getLogger(__name__)

NOT_HL7 = "not an HL7 v2 message (no MSH segment); nothing was stored"
# Reasons that mean "the hub does not read this kind of message" (HL7 table 0357 code 200):
# bhhub.intake.inbox.format_for's words, and the HL7 v2 reader's for a message type it does not take.
UNRECOGNIZED = ("not a format any installed plugin reads", "MSH-9 message type")


@dataclass(frozen=True)
class Answer:
    code: str  # AA, AE, AR
    ack: bytes
    item_id: int | None = None  # the inbox item, when the message is stored
    outcome: str | None = None  # imported, duplicate, quarantined, unprocessed, rejected


class Answerer:
    """Stores messages one at a time and answers each.

    Intake is serialized: the hub's caches of committed rows are not shared safely between
    threads, and SQLite takes one writer at a time anyway. Sockets are still read in parallel.
    """

    def __init__(self, hub, receive=intake.receive):
        self.hub = hub
        self._receive = receive
        self._lock = threading.Lock()

    def answer(self, message: bytes, peer: str) -> Answer:
        try:
            header = read_header(message)
        except NotHL7:
            return Answer(REJECT, build_ack(None, REJECT, NOT_HL7, error_code=SEGMENT_SEQUENCE_ERROR),
                          outcome="rejected")
        source = source_name(header, peer)
        with self._lock:
            try:
                result = self._receive(self.hub, message, source)
                if result.outcome == "duplicate":
                    return self._again(header, result.item_id)
            except Exception as exc:  # noqa: BLE001 - whatever failed, the sender gets an answer
                return self._after_failure(header, message, exc)
        return self._verdict(header, result.item_id, result.outcome, result.reason)

    def _again(self, header: MessageHeader, item_id: int) -> Answer:
        """The same bytes are held already: the answer the first copy earned, so a sender that
        lost an ACK hears the same verdict again. A copy left ``received`` (the listener died
        between the commit and the parse) is processed now."""
        items = schema.InboxItem
        with self.hub.store.session() as session:
            state, reason = session.execute(select(items.state, items.reason).where(items.id == item_id)).one()
        if state == intake.RECEIVED:
            result = intake.retry(self.hub, item_id)
            return self._verdict(header, item_id, result.outcome, result.reason)
        if state == intake.QUARANTINED:
            return self._verdict(header, item_id, "duplicate", reason, quarantined=True)
        return Answer(ACCEPT, build_ack(header, ACCEPT), item_id, "duplicate")

    def _verdict(self, header: MessageHeader, item_id: int, outcome: str, reason: str | None,
                 *, quarantined: bool = False) -> Answer:
        if not quarantined and outcome != intake.QUARANTINED:
            return Answer(ACCEPT, build_ack(header, ACCEPT), item_id, outcome)
        reason = reason or "quarantined"
        code = UNSUPPORTED_MESSAGE_TYPE if any(u in reason for u in UNRECOGNIZED) else APPLICATION_INTERNAL_ERROR
        text = f"stored as inbox item {item_id}, quarantined: {reason}"
        return Answer(ERROR, build_ack(header, ERROR, text, error_code=code), item_id, outcome)

    def _after_failure(self, header: MessageHeader, message: bytes, exc: Exception) -> Answer:
        """``receive`` raised: whether the message is committed decides between AE and AR."""
        kind = type(exc).__name__
        try:
            item_id = held_item(self.hub, message)
        except Exception as lookup:  # noqa: BLE001 - the store is gone: it was not stored for all we know
            log.error("mllp: cannot tell whether a message was stored (%s, then %s)", kind, type(lookup).__name__)
            item_id = None
        if item_id is None:
            log.error("mllp: a message was not stored (%s); answered AR", kind)
            text = f"not stored ({kind}); send it again later"
            return Answer(REJECT, build_ack(header, REJECT, text, error_code=APPLICATION_INTERNAL_ERROR),
                          outcome="rejected")
        log.error("mllp: inbox item %s stored but not processed (%s); answered AE", item_id, kind)
        text = f"stored as inbox item {item_id} but not processed ({kind}); run `bhhub inbox retry {item_id}`"
        return Answer(ERROR, build_ack(header, ERROR, text, error_code=APPLICATION_INTERNAL_ERROR),
                      item_id, "unprocessed")


def held_item(hub, message: bytes) -> int | None:
    """The id of the inbox item holding exactly these bytes, or None."""
    digest = hashlib.sha256(message).hexdigest()
    with hub.store.session() as session:
        return session.execute(select(schema.InboxItem.id).where(schema.InboxItem.sha256 == digest)).scalar()


_UNSAFE = re.compile(r"[^A-Za-z0-9._:@-]")


def source_name(header: MessageHeader, peer: str) -> str:
    """What ``bhhub inbox`` shows as the item's source: the channel and MSH-10, never content."""
    control_id = _UNSAFE.sub("_", header.control_id)[:40] or "no-MSH-10"
    return f"mllp://{peer}/{control_id}"
