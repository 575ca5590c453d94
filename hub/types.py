"""Small typed records that registration hooks return.

The host owns each registry: it rejects a second registration under a name already taken and
reports it with the plugin's name, rather than letting plugin order decide.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

    from bhhub.runtime.mapping_tables import MappingSet
    from bhhub.model import Claim, Encounter, Finding
    from bhhub.intake.records import Record


@dataclass(frozen=True)
class IntakeContext:
    """What an intake parser is given besides the bytes.

    ``source_name`` is the file name or channel the payload came from (for messages only);
    ``mappings`` the practice's mapping tables.
    """

    source_name: str
    mappings: MappingSet


@dataclass(frozen=True)
class IntakeFormat:
    """An input format an EHR plugin reads.

    ``recognizes(content)`` answers cheaply from the bytes whether this format applies.
    ``parse(content, context)`` returns every record in the payload: ``bhhub.model.Encounter``
    (billable visits) and ``bhhub.intake.records`` records (``Registration``, ``Appointment``), or
    raises ``bhhub.errors.InputError`` naming what is wrong; it never returns part of a payload.
    ``split(content)``, when given, cuts a file holding several payloads (a folder drop of HL7
    messages) into its parts, each then stored and processed as its own inbox item; a file that
    is one payload comes back as ``[content]`` unchanged. It must not raise.
    ``fallback(content)``, when given, claims what no format recognized, so as to refuse it
    with a precise reason (the FHIR reader takes any JSON that way): a format that recognizes
    a payload always comes before one that only falls back to it.
    """

    name: str
    description: str
    recognizes: Callable[[bytes], bool]
    parse: Callable[[bytes, IntakeContext], Sequence[Encounter | Record]]
    split: Callable[[bytes], list[bytes]] | None = None
    fallback: Callable[[bytes], bool] | None = None


@dataclass(frozen=True)
class ClaimCheck:
    """A scrubbing rule set: ``check(claim, context)`` returns findings (empty when clean)."""

    name: str
    description: str
    check: Callable[[Claim, Any], Sequence[Finding]]


@dataclass(frozen=True)
class Command:
    """A ``bhhub`` sub-command a plugin adds.

    ``configure(parser)`` adds its arguments; ``run(args, hub)`` does the work and returns the
    exit code (0 success, 1 some inputs failed, 2 usage error).
    """

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Any], int]


@dataclass(frozen=True)
class Job:
    """A scheduled task: ``func(hub)`` runs every ``interval_seconds``; it must be idempotent."""

    name: str
    interval_seconds: int
    func: Callable[[Any], None]


@dataclass(frozen=True)
class Transport:
    """A way to reach a clearinghouse mailbox (SFTP, ...), named in a mailbox's ``transport``.

    ``configure(table, where)`` checks a mailbox's connection settings (a config table) and
    returns them in the transport's own form, raising ``bhhub.errors.ConfigError`` that lists every
    problem; ``connect(settings)`` returns an open connection, a context manager offering
    ``listdir``, ``stat``, ``download``, ``upload``, ``remove``, ``rename`` and ``makedirs``;
    ``test(settings, directories)`` tries connecting, authenticating and listing each directory
    and returns a report with ``ok`` and ``steps`` (name, passed, message) for a person.
    """

    name: str
    description: str
    configure: Callable[[dict, str], Any]
    connect: Callable[[Any], Any]
    test: Callable[[Any, Sequence[str]], Any]
