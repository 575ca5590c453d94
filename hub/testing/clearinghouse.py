"""The contract a clearinghouse plugin (a transport to clearinghouse mailboxes) must keep.

In a plugin's tests::

    class TestContract(ClearinghousePluginContract):
        plugin, entry_point = my_plugin, "my_plugin"
        settings = {"my_transport": {"root": "/srv/mailbox"}}   # a valid mailbox table per transport

or ``check_plugin(my_plugin, settings={...})``. The checks:

1. ``check_registers_transports``: the plugin registers, implements only hooks bhhub specifies,
   and registers at least one ``bhhub.types.Transport`` whose name can be written in a mailbox's
   ``transport = "..."`` (lower case, digits, ``_`` and ``-``), with a description and callable
   ``configure``, ``connect`` and ``test``, and a name no built-in transport (``sftp``) uses.
   Registering touches no network.
2. ``check_settings``: ``configure(table, where)`` accepts each valid table given and returns
   settings; refuses an empty table and a table whose values all have the wrong type with a
   ``bhhub.errors.HubError`` (normally ``ConfigError``) and never another exception; its refusal
   names ``where`` (the mailbox), so a person knows which table to fix. Configuring reaches no
   network: connecting is for ``connect`` and ``test``.
3. ``check_no_network_at_import``, ``check_mapping_file``, ``check_entry_point`` from
   ``bhhub.testing.common``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from bhhub.errors import HubError
from bhhub.testing.common import (
    UNDER_TEST, ContractFailure, check_calls_need_no_network, check_entry_point, check_mapping_file,
    check_no_network_at_import, check_registers_cleanly, check_registration_problems, fail, module_name_of,
    plugin_label, run_all,
)
from bhhub.types import Transport

__all__ = ["ClearinghousePluginContract", "check_plugin", "check_registers_transports", "check_settings"]

TRANSPORT_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
WHERE = "mailboxes.contract_test"


def check_registers_transports(plugin: object) -> list[Transport]:
    """Check 1: the plugin's transports, registered without problems; returns them."""
    host = check_registers_cleanly(plugin)
    impls = [i for i in host.manager.hook.bhhub_register_transports.get_hookimpls() if i.plugin_name == UNDER_TEST]
    if not impls:
        raise fail(f"{plugin_label(plugin)} does not implement bhhub_register_transports",
                   "a clearinghouse plugin returns its bhhub.types.Transport records from that hook")
    transports = check_calls_need_no_network(lambda: list(impls[0].function() or ()), "bhhub_register_transports")
    if not transports:
        raise fail("bhhub_register_transports returned no transports")
    for transport in transports:
        if not isinstance(transport, Transport):
            raise fail(f"bhhub_register_transports returned a {type(transport).__name__}", "return bhhub.types.Transport")
        if not TRANSPORT_NAME.match(transport.name or ""):
            raise fail(f"transport name {transport.name!r} cannot be written in bhhub.toml",
                       "use lower case letters, digits, '_' and '-'")
        if not transport.description or not transport.description.strip():
            raise fail(f"transport {transport.name!r} needs a description")
        for part in ("configure", "connect", "test"):
            if not callable(getattr(transport, part)):
                raise fail(f"transport {transport.name!r}: {part} is not callable")
    host.hooks.transports()
    check_registration_problems(host, "transports")
    return transports


def check_settings(transports: list[Transport], settings: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Check 2: ``configure`` accepts the valid tables and refuses bad ones with a HubError naming
    the mailbox. ``settings`` maps a transport name to one valid mailbox table. Returns each
    transport's configured settings."""
    configured: dict[str, Any] = {}

    def configure_all() -> None:
        for transport in transports:
            valid = settings.get(transport.name)
            if valid is None:
                raise fail(f"no valid settings given for transport {transport.name!r}",
                           "set `settings = {name: {...}}`: one mailbox table that configure() accepts")
            try:
                configured[transport.name] = transport.configure(dict(valid), WHERE)
            except Exception as exc:  # noqa: BLE001 - the point of the check
                raise fail(f"transport {transport.name!r} refuses the valid settings: {type(exc).__name__}: {exc}")
            wrong_types = {key: object() for key in valid} or {"unexpected": object()}
            for label, table in (("an empty table", {}), ("values of the wrong type", wrong_types)):
                try:
                    transport.configure(table, WHERE)
                except HubError as exc:
                    if WHERE not in str(exc):
                        raise fail(f"transport {transport.name!r}: the refusal of {label} does not name the "
                                   f"mailbox ({str(exc)!r})", "include the `where` argument in the message")
                    continue
                except Exception as exc:  # noqa: BLE001
                    raise fail(f"transport {transport.name!r}.configure raised {type(exc).__name__} on {label}, "
                               f"not a bhhub.errors.ConfigError: {exc}",
                               "check each setting and raise ConfigError listing every problem") from None
                if label == "an empty table":
                    raise fail(f"transport {transport.name!r} accepts an empty table",
                               "refuse a mailbox that lacks what a connection needs")

    check_calls_need_no_network(configure_all, "configure")
    return configured


def check_plugin(plugin: object, *, settings: Mapping[str, Mapping[str, Any]], entry_point: str | None = None,
                 check_import: bool = True) -> dict[str, Any]:
    """Run every check in this module; raise one ``ContractFailure`` listing every failure."""
    state: dict[str, Any] = {}

    def transports() -> list[Transport]:
        if "transports" not in state:
            state["transports"] = check_registers_transports(plugin)
        return state["transports"]

    checks = [
        ("registers transports", transports),
        ("settings validate", lambda: check_settings(transports(), settings)),
        ("mapping file loads", lambda: check_mapping_file(plugin) or "no mapping file (not checked)"),
    ]
    if check_import:
        checks.append(("no network at import", lambda: check_no_network_at_import(module_name_of(plugin))))
    if entry_point:
        checks.append(("entry point", lambda: check_entry_point(entry_point, plugin)))
    return run_all(checks)


class ClearinghousePluginContract:
    """The contract as pytest tests; set ``plugin``, ``settings`` and ``entry_point``."""

    plugin: ClassVar[object] = None
    settings: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    entry_point: ClassVar[str | None] = None

    def _plugin(self) -> object:
        if self.plugin is None:
            raise ContractFailure(f"{type(self).__name__} must set `plugin` to the plugin module or object")
        return self.plugin

    def test_registers_transports(self):
        check_registers_transports(self._plugin())

    def test_settings_validate(self):
        check_settings(check_registers_transports(self._plugin()), self.settings)

    def test_no_network_at_import(self):
        check_no_network_at_import(module_name_of(self._plugin()))

    def test_mapping_file_loads_and_validates(self):
        if check_mapping_file(self._plugin()) is None:
            import pytest

            pytest.skip("the plugin declares no MAPPING_FILE: nothing was checked")

    def test_entry_point_loads_this_plugin(self):
        if not self.entry_point:
            import pytest

            pytest.skip("set entry_point to the name under [project.entry-points.bhhub] to check it")
        check_entry_point(self.entry_point, self._plugin())
