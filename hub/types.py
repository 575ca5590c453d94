"""Small typed records that registration hooks return.

The host owns each registry: it rejects a second registration under a name already taken and
reports it with the plugin's name, rather than letting plugin order decide.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

    from bhhub.runtime.mapping_tables import MappingSet
    from bhhub.model import Claim, Encounter, Finding
    from bhhub.intake.records import Record
    from bhhub.x12.recognize import Recognized


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


@dataclass
class Applied:
    """What applying one inbound X12 file did, for the intake report and the hooks after commit.

    ``kind`` is the transaction's name; ``summary`` one line for a person (ids, never PHI);
    ``claims`` maps a patient control number to the status the file moved its claim to;
    ``notify`` holds ``bhhub_acknowledgment_received`` calls (kind, ISA13, accepted, pcns) and
    ``remittances`` ``bhhub_remittance_posted`` calls (payer id, trace, pcns), both made after
    the commit.
    """

    kind: str
    summary: str
    claims: dict[str, str] = field(default_factory=dict)
    notify: list[tuple] = field(default_factory=list)
    remittances: list[tuple] = field(default_factory=list)


@dataclass(frozen=True)
class TransactionContext:
    """Where one inbound X12 file is being applied.

    ``session`` is the database session of the transaction that marks the inbox item
    ``item_id`` processed: whatever ``apply`` writes commits with it, or not at all, so a file is
    applied exactly once. (The one hook that sees a session: applying a response is changing
    the hub's own records.) ``recognized`` holds the envelope (ISA13, sender, receiver, GS08,
    ST01); ``content`` the file's bytes; ``hub`` the running hub (mappings, plugins, settings).
    """

    hub: Any
    session: Any
    item_id: int
    recognized: Recognized
    content: bytes


@dataclass(frozen=True)
class X12Transaction:
    """An inbound X12 transaction the hub applies: a response, an acknowledgment, a payment.

    ``name`` is the kind (``"835"``, ``"277CA"``, ``"278"``): the inbox shows the item's format
    as ``x12-<name>``, and a name already registered is refused. A payload is this kind when
    the ST01 of its first transaction is ``transaction_set`` (``"TA1"`` stands for an
    interchange acknowledgment without a functional group) and its GS08 matches one of
    ``guides``: each is a prefix of GS08 (``"005010X217"``) or of its implementation-guide part
    after the six-digit version (``"X217"``, any version); an empty tuple matches any GS08. A
    registration naming a guide wins over one that names none for the same transaction set;
    two registrations claiming the same transaction set and guide are an error naming both.

    ``read(content)`` parses the bytes into whatever ``apply`` takes, raising
    ``bhhub.errors.InputError`` (which names the segment, never a patient) when it cannot; it
    must not touch the database. ``apply(context, read_result)`` applies it inside the inbox
    item's transaction (``TransactionContext``) and returns an ``Applied``; raising
    ``InputError`` quarantines the item with that reason and rolls back everything it wrote.
    ``apply`` must be a no-op on a repeat: the same answer arriving again (a resent file with
    a new ISA13) changes nothing the first copy did not.

    ``answers``, on a registration for an acknowledgment's groups (the 999 answering a 270 or
    276), is the GS01 of the groups it is about (``"HS"``): the owning acknowledgment's
    ``apply`` gives each such group to it (``Registry.answering``); ``read`` is then unused.
    """

    name: str
    description: str
    transaction_set: str
    read: Callable[[bytes], Any]
    apply: Callable[[TransactionContext, Any], Any]
    guides: tuple[str, ...] = ()
    answers: str = ""
