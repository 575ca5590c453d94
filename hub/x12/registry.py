"""The inbound X12 transactions plugins registered (``bhhub_register_x12_transactions``), and
which one a payload is.

    registry = TransactionRegistry(hub.plugins.hooks.x12_transactions())
    registry.match("278", "005010X217")      # the X12Transaction that reads it, or None
    registry.answering("999", "HS")          # the registration for a 999's groups about 270s

Duplicates were refused by the plugin host, so at most one registration claims a transaction set
and guide; among those that match, one naming a guide wins over one naming none (the 277CA, X214,
over the 277 that reads any other claim-status group).
"""

from __future__ import annotations

from collections.abc import Iterable

from bhhub.types import X12Transaction

INTERCHANGE_ACKNOWLEDGMENT = "TA1"  # the "transaction set" of a TA1-only interchange (no GS, no ST)


def guide_matches(guide: str, version: str) -> bool:
    """``guide`` is a prefix of GS08 (005010X217) or of its part after the version (X217)."""
    return version.startswith(guide) or version[6:].startswith(guide)


class TransactionRegistry:
    """The registered transactions, looked up by name, by ST01 and GS08, or by answered group."""

    def __init__(self, transactions: Iterable[X12Transaction] = ()):
        self.transactions = tuple(transactions)

    def __iter__(self):
        return iter(self.transactions)

    def named(self, name: str) -> X12Transaction | None:
        return next((t for t in self.transactions if t.name == name and not t.answers), None)

    def match(self, transaction_set: str, version: str) -> X12Transaction | None:
        """The registration reading ST01 ``transaction_set`` under GS08 ``version``; the one
        whose matching guide is longest wins (any guide counts as length 0)."""
        best, best_length = None, -1
        for transaction in self.transactions:
            if transaction.answers or transaction.transaction_set != transaction_set:
                continue
            if not transaction.guides:
                length = 0
            else:
                length = max((len(g) for g in transaction.guides if guide_matches(g, version)), default=-1)
            if length > best_length:
                best, best_length = transaction, length
        return best

    def answering(self, transaction_set: str, functional_id: str) -> X12Transaction | None:
        """The registration applying the groups of an acknowledgment (ST01 ``transaction_set``)
        that answer functional groups ``functional_id`` (GS01 of what was sent)."""
        return next((t for t in self.transactions
                     if t.answers == functional_id and t.transaction_set == transaction_set), None)
