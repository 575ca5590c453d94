"""What the acknowledgment readers (``ta1``, ``x999``, ``x277ca``) share: the meaning of their
codes and the outcome vocabulary of a claim's answer.

    lookup(table, value)  -> Code     a code of ``mappings/x12/ack_codes.toml`` with its meaning;
                                      a code missing there reads "code N"
    RECEIVED, ACCEPTED, NOT_FOUND, REJECTED, OUTCOMES, OUTCOME_ORDER
                                      what a 277CA category (STC01-1, 005010X214; domain
                                      reference 7.3) means for the claim, least decisive first;
                                      ``precedence``, ``standing`` and ``bhhub.responses`` speak it
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from bhhub.runtime.mapping_tables import MappingSet

ACK_CODES = "x12/ack_codes.toml"

# 277CA claim status categories (STC01-1), domain reference 7.3: A2 is acceptance; A3, A6,
# A7, A8 reject. ``accepted``/``rejected`` (``x277ca``'s statuses and claims) are the reader's coarse
# view (A0/A1/A5 not refused, A4 refused); what a claim's answer means for its status is ``outcome``.
ACCEPTED_CATEGORIES = frozenset({"A0", "A1", "A2", "A5"})
REJECTED_CATEGORIES = frozenset({"A3", "A4", "A6", "A7", "A8"})
# What each category means for the claim (7.3 "Hub status"), least decisive first: a claim with
# several statuses (STC01, STC10, STC11, its provider's or receiver's) is decided by the most
# decisive one. A1 is receipt only, not acceptance; A4 (not found) is neither accepted nor
# rejected: someone must find out why. Other categories (pending, finalized) decide nothing here.
RECEIVED, ACCEPTED, NOT_FOUND, REJECTED = "received", "accepted", "not_found", "rejected"
OUTCOME_ORDER = (RECEIVED, ACCEPTED, NOT_FOUND, REJECTED)
OUTCOMES = {"A0": RECEIVED, "A1": RECEIVED, "A2": ACCEPTED, "A5": ACCEPTED, "A4": NOT_FOUND,
            "A3": REJECTED, "A6": REJECTED, "A7": REJECTED, "A8": REJECTED}


@functools.cache
def ack_codes() -> dict[str, Any]:
    """The code tables of ``mappings/x12/ack_codes.toml``, parsed once."""
    return MappingSet().load(ACK_CODES)


@dataclass(frozen=True)
class Code:
    """A code from an acknowledgment and what it means."""

    value: str
    description: str

    def __str__(self) -> str:
        return f"{self.description} ({self.value})"


def lookup(table: str, value: str) -> Code:
    """``value`` of the code list ``table`` of ack_codes.toml, with its meaning."""
    return Code(value, ack_codes().get(table, {}).get(value) or f"code {value}")
