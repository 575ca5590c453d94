"""Answers worked out from a loaded table, remembered per table object, for hot loops.

A scrub asks the same few questions of the same tables for every claim (the rules in effect on
a day, a payer's filing window, a code's findings): each answer is worked out once per table
object and question. Tables are keyed by identity, not value (hashing a table would cost more
than the work saved), so each entry keeps its table alive and is only used when the table it
was worked out from is the very object asked about: a table dropped and another allocated at
the same address never gets the old answer.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class IdentityMemo(Generic[T]):
    """At most about ``limit`` answers, keyed by (the identity of ``owner``, ``question``).

    Past the limit the memo is emptied and starts again: a long-running hub that loads new
    tables (a practice editing its mappings) does not grow without bound. Answers are shared
    between callers, who must only read them.
    """

    __slots__ = ("_answers", "_limit")

    def __init__(self, limit: int) -> None:
        self._answers: dict[tuple[int, Hashable], tuple[Any, T]] = {}
        self._limit = limit

    def get(self, owner: Any, question: Hashable, work: Callable[..., T], *args: Any) -> T:
        """The answer to ``question`` about ``owner``: the remembered one, or ``work(*args)``
        (remembered; an exception is not)."""
        slot = (id(owner), question)
        known = self._answers.get(slot)
        if known is not None and known[0] is owner:
            return known[1]
        answer = work(*args)
        if len(self._answers) > self._limit:
            self._answers.clear()
        self._answers[slot] = (owner, answer)
        return answer

    def clear(self) -> None:
        self._answers.clear()

    def __len__(self) -> int:
        return len(self._answers)
