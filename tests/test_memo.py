"""The identity memo the scrub's hot loops share (``bhhub.common.memo``): one answer per table object and
question, never another table's, and bounded."""

from __future__ import annotations

from bhhub.common.memo import IdentityMemo


def counting(calls: list):
    def work(table: dict, day: int) -> int:
        calls.append(day)
        return table["base"] + day
    return work


def test_the_same_table_and_question_are_worked_out_once():
    calls: list = []
    memo, work, table = IdentityMemo(limit=100), counting(calls), {"base": 10}
    assert [memo.get(table, 1, work, table, 1) for _ in range(3)] == [11, 11, 11]
    assert memo.get(table, 2, work, table, 2) == 12
    assert calls == [1, 2]


def test_an_equal_but_other_table_gets_its_own_answer():
    calls: list = []
    memo, work = IdentityMemo(limit=100), counting(calls)
    first, second = {"base": 10}, {"base": 10}
    memo.get(first, 1, work, first, 1)
    memo.get(second, 1, work, second, 1)
    assert calls == [1, 1]


def test_a_table_dropped_and_replaced_at_its_address_never_gets_its_answer():
    memo = IdentityMemo(limit=100_000)
    answers = set()
    for base in range(200):  # each table dropped at once: CPython reuses freed addresses
        table = {"base": base}
        answers.add(memo.get(table, 0, lambda t: t["base"], table))
        del table
    assert answers == set(range(200))


def test_the_memo_is_emptied_past_its_limit():
    memo, tables = IdentityMemo(limit=3), [{"base": n} for n in range(10)]
    for table in tables:
        memo.get(table, 0, lambda t: t["base"], table)
    assert len(memo) <= 4


def test_a_failed_answer_is_not_remembered():
    memo, table, tries = IdentityMemo(limit=10), {"base": 1}, []

    def flaky() -> int:
        tries.append(1)
        if len(tries) == 1:
            raise ValueError("first try fails")
        return 7

    try:
        memo.get(table, 0, flaky)
    except ValueError:
        pass
    assert memo.get(table, 0, flaky) == 7 and len(tries) == 2
