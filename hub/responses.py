"""Applying what clearinghouses and payers send back: each inbound X12 file through the
transaction registered for its kind (``bhhub_register_x12_transactions``).

Called by the inbox for every stored X12 payload, inside the transaction that marks the item
processed, so a response is applied exactly once: the same file downloaded again is a duplicate
in the inbox and never reaches this module twice.

    recognize (ST01, GS08; bhhub.x12.recognize) -> the registration (bhhub.x12.registry)
        -> its read(content) -> its apply(context, read) -> Applied

bhhub's own kinds register like any plugin's, each in the capability that owns it: TA1, 999 and
277CA in ``bhhub.acknowledgments.transactions``, the 835 in ``bhhub.remittance.transactions``, the 271 and the 999
answering a 270 in ``bhhub.eligibility.transactions``, the 277 claim status and the 999 answering
a 276 in ``bhhub.claimstatus.transactions``. A kind nobody registered, and a response that names
nothing the hub sent, are quarantined with a reason; nothing is guessed.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError

from bhhub.errors import HubError, InputError
from bhhub.types import Applied, TransactionContext
from bhhub.x12.recognize import Recognized

log = logging.getLogger(__name__)

__all__ = ["Applied", "apply"]


def apply(hub, session, item_id: int, recognized: Recognized, content: bytes) -> Applied:
    transaction = hub.x12_transactions.named(recognized.kind)
    if transaction is None:
        what = (f"an X12 {recognized.kind} file" if recognized.kind != "X12"
                else "an X12 interchange of a kind bhhub does not know")
        raise InputError(
            f"{what} (GS08 {recognized.version or 'absent'}): the hub does not read this kind yet",
            fix="it is kept in the inbox; `bhhub inbox retry` it once a plugin or release reads it",
        )
    context = TransactionContext(hub, session, item_id, recognized, content)
    try:
        applied = transaction.apply(context, transaction.read(content))
    except (HubError, SQLAlchemyError):
        raise  # a reason for the quarantine, or a race the inbox redoes
    except Exception as exc:  # noqa: BLE001 - a plugin's bug quarantines this item only
        log.error("the %s transaction crashed on inbox item %s: %s", transaction.name, item_id, type(exc).__name__)
        raise InputError(
            f"the {transaction.name} transaction failed ({type(exc).__name__}); the file was kept",
            fix="report this to the plugin's author, then `bhhub inbox retry` after an upgrade",
        ) from exc
    if not isinstance(applied, Applied):
        raise InputError(f"the {transaction.name} transaction returned {type(applied).__name__}, not an Applied",
                         fix="report this to the plugin's author, then `bhhub inbox retry` after an upgrade")
    return applied
