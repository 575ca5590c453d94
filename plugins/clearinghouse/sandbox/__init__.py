"""bhhub's sandbox clearinghouse: a local SFTP mailbox that answers 837Ps, 270s and 276s like a real one.

A built-in plugin, registered through the ``bhhub`` entry point as a vendor's would be. It adds
``bhhub sandbox serve``; from code, ``SandboxClearinghouse(root)`` is a context manager.

An upload to ``/to-clearinghouse`` is answered before its rename returns: a TA1 when asked for
(or a TA1 R for a bad envelope or a duplicate ISA13), a 999 from pyx12's check of the 837P, a
277CA with the front-end edits and an 835 adjudicated by ``mappings/clearinghouses/
sandbox_rules.toml``. Every answer passes pyx12. A 270 is answered with a 999 and a 271
(``[eligibility]`` in the rules: active, inactive, carve-out, not found), a 276 with a 999 and a
277 from what became of each claim the sandbox was sent (paid, denied, rejected, pending, or not
found); x12sdk's models check those in the tests. The hub's profile for it is
``mappings/clearinghouses/sandbox.toml``.

Modules: ``reader`` (837P → records), ``syntax`` (pyx12 findings for the 999), ``rules``
(edits and adjudication), ``writers`` (TA1, 999, 277CA, 835), ``state`` (control numbers,
interchanges seen, claim outcomes), ``interchange`` (the envelope checks every upload gets),
``clearinghouse`` (one upload → its answers), ``server``
(SFTP and files), ``command`` (the CLI); for inquiries ``inquiry_reader`` (270/276 → questions),
``eligibility`` (the coverage profiles), ``inquiry_writers`` (271, 277) and ``inquiries`` (one
inquiry upload → its answers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bhhub import hookimpl
from bhhub.types import Command

from bhhub.plugins.clearinghouse.sandbox.command import COMMAND

if TYPE_CHECKING:
    from bhhub.plugins.clearinghouse.sandbox.rules import Rules, load_rules
    from bhhub.plugins.clearinghouse.sandbox.server import Handled, SandboxClearinghouse

__all__ = ["SandboxClearinghouse", "Handled", "Rules", "load_rules", "bhhub_register_commands"]
# Loaded on first use: the hub imports this module for every command; only serving needs them.
_LAZY = {"SandboxClearinghouse": "server", "Handled": "server", "Rules": "rules", "load_rules": "rules"}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f"bhhub.plugins.clearinghouse.sandbox.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def bhhub_register_commands() -> list[Command]:
    return [COMMAND]
