"""The MLLP listener: how an EHR's interface engine sends HL7 v2 messages to the hub.

A built-in plugin, registered through the ``bhhub`` entry point as a vendor's would be. It adds
``bhhub listen --port N``. Each framed message is committed to the inbox
(``bhhub.intake.inbox.receive``) before it is answered: AA imported or held already, AE stored but
quarantined, AR not stored. What reads the message is whichever intake format recognizes it
(the HL7 v2 EHR plugin); this package only moves bytes and answers.

Modules: ``framing`` (MLLP frames from a byte stream), ``ack`` (MSH reader and ACK writer),
``answer`` (one message → inbox → ACK), ``server`` (sockets, threads, deadlines and slots),
``settings`` (``[listen]`` in ``bhhub.toml``), ``command`` (the CLI).
"""

from __future__ import annotations

from bhhub import hookimpl
from bhhub.types import Command

from bhhub.connectors.mllp.command import COMMAND


@hookimpl
def bhhub_register_commands() -> list[Command]:
    return [COMMAND]
