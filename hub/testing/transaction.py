"""The contract an X12 transaction plugin (``bhhub_register_x12_transactions``) must keep.

In a plugin's tests::

    class TestContract(TransactionPluginContract):
        plugin, entry_point = my_plugin, "my_plugin"
        samples = {"ACME-RECEIPT": Path(__file__).parent / "samples" / "receipt.x12"}

The checks, for each registered transaction and its sample file:

1. ``check_registers_transactions``: the plugin registers, implements
   ``bhhub_register_x12_transactions``, and every record is a well-formed
   ``bhhub.types.X12Transaction`` the hub keeps (its name, and its transaction set and guide, not
   taken by bhhub's own kinds).
2. ``check_recognizes``: the hub recognizes the sample (its ST01 and GS08) as that kind.
3. ``check_reads``: ``read(sample)`` returns without raising and without the network.
4. ``check_applies_once``: in a temporary SQLite hub with bhhub's built-ins and the plugin, the
   sample given to the inbox is applied (format ``x12-<name>``, not quarantined); the same
   answer resent (the sample with another ISA13) is applied as a no-op: no table gains or
   loses a row, and no claim moves.
5. ``check_no_network_at_import``, ``check_entry_point`` from ``bhhub.testing.common``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from bhhub.testing.common import (
    UNDER_TEST, ContractFailure, check_calls_need_no_network, check_entry_point, check_no_network_at_import,
    check_registers_cleanly, check_registration_problems, fail, module_name_of, plugin_label, run_all,
)

__all__ = ["TransactionPluginContract", "check_plugin", "check_registers_transactions", "check_recognizes",
           "check_reads", "check_applies_once", "resent"]


def _transactions(plugin: object) -> dict[str, Any]:
    """The plugin's registered transactions by name, as the hub keeps them beside its own."""
    host = check_registers_cleanly(plugin)
    if "bhhub_register_x12_transactions" not in host.infos[UNDER_TEST].hooks:
        raise fail(f"{plugin_label(plugin)} does not implement bhhub_register_x12_transactions",
                   "a transaction plugin returns bhhub.types.X12Transaction records from that hook")
    kept = host.hooks.x12_transactions()
    check_registration_problems(host, "X12 transactions")
    impl = [i for i in host.manager.hook.bhhub_register_x12_transactions.get_hookimpls()
            if i.plugin_name == UNDER_TEST][0]
    mine = {record.name for record in impl.function() or ()}
    return {record.name: record for record in kept if record.name in mine}


def check_registers_transactions(plugin: object) -> dict[str, Any]:
    """Check 1; returns the plugin's transactions by name."""
    transactions = _transactions(plugin)
    if not transactions:
        raise fail(f"{plugin_label(plugin)} registers no X12 transaction",
                   "return at least one bhhub.types.X12Transaction from bhhub_register_x12_transactions")
    return transactions


def _registry_with(plugin: object):
    from bhhub.testing.common import host_with
    from bhhub.x12.registry import TransactionRegistry

    return TransactionRegistry(host_with(plugin).hooks.x12_transactions())


def check_recognizes(plugin: object, name: str, sample: bytes) -> None:
    """Check 2: the sample is recognized as ``name`` beside bhhub's own kinds."""
    from bhhub.errors import InputError
    from bhhub.x12.recognize import recognize

    try:
        recognized = recognize(sample, _registry_with(plugin))
    except InputError as exc:
        raise fail(f"the sample for {name} is not readable X12: {exc}", "fix the sample's ISA") from None
    if recognized is None or recognized.kind != name:
        said = recognized.kind if recognized is not None else "not X12"
        raise fail(f"the sample for {name} is recognized as {said} "
                   f"(ST01 {getattr(recognized, 'transaction_set', '') or '?'}, "
                   f"GS08 {getattr(recognized, 'version', '') or '?'})",
                   "make transaction_set the sample's ST01 and a guide a prefix of its GS08")


def check_reads(plugin: object, name: str, sample: bytes) -> Any:
    """Check 3: ``read(sample)`` returns, without the network; returns what it read."""
    transaction = _transaction(plugin, name)
    try:
        return check_calls_need_no_network(lambda: transaction.read(sample), f"the {name} reader")
    except ContractFailure:
        raise
    except Exception as exc:  # noqa: BLE001 - the point of the check
        raise fail(f"the {name} reader failed on its sample: {type(exc).__name__}: {exc}",
                   "the sample must be a file the reader accepts") from None


def resent(sample: bytes) -> bytes:
    """The same interchange as sent again: another ISA13 (and IEA02), nothing else changed."""
    text = sample.decode("utf-8")
    start = len(text) - len(text.lstrip(" \t\r\n\ufeff"))
    isa = text[start:start + 106]
    element = isa[3]
    number = isa.split(element)[13]
    other = f"{(int(number) + 1) % 1_000_000_000:09d}"
    isa_again = isa.replace(f"{element}{number}{element}", f"{element}{other}{element}", 1)
    rest = text[start + 106:].replace(f"IEA{element}1{element}{number}", f"IEA{element}1{element}{other}")
    return (text[:start] + isa_again + rest).encode("utf-8")


def check_applies_once(plugin: object, name: str, sample: bytes,
                       prepare: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """Check 4: applied from the inbox, and a resent copy changes nothing. ``prepare(hub)``, when
    given, stores what the sample answers first (claims, batches). Returns both results."""
    from bhhub.intake import inbox as intake
    from bhhub.runtime.app import Hub
    from bhhub.testing.common import host_with
    from bhhub.testing.temporary_hub import _environment

    with tempfile.TemporaryDirectory(prefix="bhhub-contract-") as folder, \
            _environment(BHHUB_DATABASE_URL=None), \
            Hub.open(Path(folder) / "home", plugins=host_with(plugin), create=True) as hub:
        if prepare is not None:
            prepare(hub)
        first = intake.receive(hub, sample, f"{name}-sample")
        if first.outcome != "imported":
            raise fail(f"the {name} sample was {first.outcome} by the inbox: {first.reason}",
                       "the sample must be a file the plugin applies in a fresh hub (or pass prepare=)")
        if first.format != f"x12-{name.lower()}":
            raise fail(f"the {name} sample was applied as {first.format}", "check transaction_set and guides")
        before = _row_counts(hub)
        again = intake.receive(hub, resent(sample), f"{name}-sample-resent")
        after = _row_counts(hub)
    if again.outcome != "imported":
        raise fail(f"the same {name} answer resent (a new ISA13) was {again.outcome}: {again.reason}",
                   "a repeat must be applied as a no-op, not refused")
    grew = {table: (before.get(table, 0), count) for table, count in after.items()
            if count != before.get(table, 0) and table != "inbox_items"}
    if grew or again.updated:
        raise fail(f"the same {name} answer applied twice changed things the second time: "
                   + ", ".join([f"{t} {a} -> {b} rows" for t, (a, b) in grew.items()]
                               + [f"{len(again.updated)} claim(s) moved"] * bool(again.updated)),
                   "apply must recognize what an earlier copy already did and leave it")
    return {"first": first, "again": again}


def _row_counts(hub) -> dict[str, int]:
    from sqlalchemy import func, select

    from bhhub.store import schema

    with hub.store.session() as session:
        return {table.name: session.scalar(select(func.count()).select_from(table))
                for table in schema.Base.metadata.sorted_tables}


def _transaction(plugin: object, name: str):
    transactions = check_registers_transactions(plugin)
    if name not in transactions:
        raise fail(f"{plugin_label(plugin)} registers no transaction named {name!r} "
                   f"(it registers {', '.join(sorted(transactions))})", "name the samples by the kinds registered")
    return transactions[name]


def check_plugin(plugin: object, samples: Mapping[str, bytes], *, entry_point: str | None = None,
                 check_import: bool = True, prepare: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """Run every check in this module for each (kind, sample bytes); one ``ContractFailure``
    lists every failure."""
    checks: list[tuple[str, Callable[[], Any]]] = [
        ("registers X12 transactions", lambda: check_registers_transactions(plugin))]
    for name, sample in samples.items():
        checks += [
            (f"{name}: sample recognized", lambda n=name, s=sample: check_recognizes(plugin, n, s)),
            (f"{name}: sample read", lambda n=name, s=sample: check_reads(plugin, n, s)),
            (f"{name}: applied once", lambda n=name, s=sample: check_applies_once(plugin, n, s, prepare)),
        ]
    if check_import:
        checks.append(("no network at import", lambda: check_no_network_at_import(module_name_of(plugin))))
    if entry_point:
        checks.append(("entry point", lambda: check_entry_point(entry_point, plugin)))
    return run_all(checks)


class TransactionPluginContract:
    """The contract as pytest tests; set ``plugin``, ``entry_point`` and ``samples`` (kind ->
    path of a sample file); override ``prepare(hub)`` when a sample answers something the hub
    must have sent first."""

    plugin: ClassVar[object] = None
    entry_point: ClassVar[str | None] = None
    samples: ClassVar[Mapping[str, Path]] = {}

    def _plugin(self) -> object:
        if self.plugin is None:
            raise ContractFailure(f"{type(self).__name__} must set `plugin` to the plugin module or object")
        return self.plugin

    def _samples(self) -> dict[str, bytes]:
        if not self.samples:
            raise ContractFailure(f"{type(self).__name__} must set `samples`: each registered kind -> a sample file")
        return {name: Path(path).read_bytes() for name, path in self.samples.items()}

    def prepare(self, hub) -> None:
        return None

    def test_registers_transactions(self):
        registered = check_registers_transactions(self._plugin())
        missing = sorted(set(registered) - set(self._samples()))
        if missing:
            raise ContractFailure(f"no sample for {', '.join(missing)}: add one to `samples`")

    def test_recognizes_each_sample(self):
        for name, sample in self._samples().items():
            check_recognizes(self._plugin(), name, sample)

    def test_reads_each_sample(self):
        for name, sample in self._samples().items():
            check_reads(self._plugin(), name, sample)

    def test_applies_each_sample_once_and_a_repeat_changes_nothing(self):
        for name, sample in self._samples().items():
            check_applies_once(self._plugin(), name, sample, self.prepare)

    def test_no_network_at_import(self):
        check_no_network_at_import(module_name_of(self._plugin()))

    def test_entry_point_loads_this_plugin(self):
        if not self.entry_point:
            import pytest

            pytest.skip("set entry_point to the name under [project.entry-points.bhhub] to check it")
        check_entry_point(self.entry_point, self._plugin())
