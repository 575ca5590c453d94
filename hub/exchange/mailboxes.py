"""Clearinghouse mailboxes: a profile from ``mappings/clearinghouses/`` plus the practice's own
connection settings from ``bhhub.toml``.

    [mailboxes.officeally]
    profile = "office_ally"                # mappings/clearinghouses/office_ally.toml
    transport = "sftp"                     # a registered transport (the default)
    schedule = "*/15 * * * *"              # cron: when `bhhub run` exchanges files
    host = "sftp.officeally.com"
    username = "practice123"
    password_env = "OFFICEALLY_PASSWORD"   # secrets by reference only: an environment variable or a file
    known_hosts = ["sftp.officeally.com ssh-ed25519 AAAA..."]   # the server's pinned host key
    [mailboxes.officeally.interchange]     # overrides of the profile's envelope
    sender_id = "PRACTICE123"
    receiver_id = "OA"

A new clearinghouse is a new profile file, not code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from bhhub.errors import ConfigError
from bhhub.types import Transport
from bhhub.x12.envelope import Envelope

if TYPE_CHECKING:
    from bhhub.exchange.profiles import ClearinghouseProfile

MAILBOX_KEYS = {"profile", "transport", "schedule", "interchange"}  # the rest goes to the transport
# Where callers found these before profiles had their own module; imported when first asked for,
# so importing this module (the CLI does) costs no pydantic.
_FROM_PROFILES = {"DEFAULT_INQUIRY_NAME", "OUTBOUND_KINDS", "PICKUP_AFTER", "UPLOAD_METHODS",
                  "ClearinghouseProfile"}


def __getattr__(name: str):
    if name in _FROM_PROFILES:
        from bhhub.exchange import profiles

        return getattr(profiles, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_profile(mappings, key: str) -> ClearinghouseProfile:
    """``bhhub.exchange.profiles.load_profile``, imported when first used."""
    from bhhub.exchange.profiles import load_profile as load

    return load(mappings, key)


@dataclass(frozen=True)
class Mailbox:
    name: str
    profile: ClearinghouseProfile
    transport: Transport
    connection: Any  # the transport's own settings, checked by Transport.configure
    envelope: Envelope
    schedule: str | None


def load_mailboxes(hub) -> dict[str, Mailbox]:
    """Every mailbox in ``bhhub.toml``; ``ConfigError`` naming each mailbox's problems."""
    configured = hub.settings.file.mailboxes
    transports = {t.name: t for t in hub.transports}
    mailboxes: dict[str, Mailbox] = {}
    problems: list[str] = []
    for name, settings in configured.items():
        try:
            mailboxes[name] = _mailbox(hub, name, settings, transports)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("mailbox configuration: " + " | ".join(problems))
    return mailboxes


def _mailbox(hub, name: str, settings, transports: dict[str, Transport]) -> Mailbox:
    where = f"[mailboxes.{name}]"
    profile = load_profile(hub.mappings, settings.profile)
    transport = transports.get(settings.transport)
    if transport is None:
        raise ConfigError(f"{where}: no transport {settings.transport!r} is installed "
                          f"(installed: {', '.join(sorted(transports)) or 'none'})")
    envelope = _envelope(hub, name, profile, settings)
    connection = transport.configure(dict(settings.connection), where)
    return Mailbox(name, profile, transport, connection, envelope, settings.schedule)


def outbound_envelope(hub, name: str | None = None) -> tuple[Envelope, ClearinghouseProfile | None]:
    """The envelope a file for mailbox ``name`` is written with, and that mailbox's profile.

    ``name`` None means the only mailbox configured; with none it is the hub's own envelope and
    no profile (the file waits for a mailbox whose sender and receiver ids it carries, see
    ``bhhub.exchange.outbound``). With several and no name, ``ConfigError``: a file addressed to
    no clearinghouse in particular would wait for ever. Needs no transport: queuing an inquiry
    connects nowhere.
    """
    configured = hub.settings.file.mailboxes
    if name is None:
        if not configured:
            return hub.settings.envelope, None
        if len(configured) > 1:
            raise ConfigError(f"{len(configured)} mailboxes are configured ({', '.join(sorted(configured))}): "
                              "say which one carries this file (mailbox=NAME)")
        name = next(iter(configured))
    settings = configured.get(name)
    if settings is None:
        raise ConfigError(f"no mailbox {name!r} in bhhub.toml (configured: {', '.join(sorted(configured)) or 'none'})")
    profile = load_profile(hub.mappings, settings.profile)
    return _envelope(hub, name, profile, settings), profile


def usage_indicator(hub_usage: str, profile: ClearinghouseProfile, mailbox_usage: str | None, where: str) -> str:
    """ISA15 of a mailbox's files: the hub's, narrowed to test by the profile or the mailbox.

    A test hub never sends production files: a mailbox asking for "P" on one is refused (its
    person meant to go live and would otherwise wait for payments that never come)."""
    if mailbox_usage == "P" and hub_usage == "T":
        raise ConfigError(f"{where}: interchange.usage_indicator is \"P\" but the hub is in test ([interchange] "
                          f"usage_indicator = \"T\" in bhhub.toml); a mailbox can only narrow production to test "
                          f"(fix: set usage_indicator = \"P\" under [interchange] to go live)")
    if hub_usage == "T" or profile.interchange.get("usage_indicator") == "T" or mailbox_usage == "T":
        return "T"
    return "P"


def _envelope(hub, name: str, profile: ClearinghouseProfile, settings) -> Envelope:
    """The hub's envelope with the profile's ids laid over it, then the mailbox's own overrides."""
    where = f"[mailboxes.{name}]"
    overrides = settings.interchange.model_dump(exclude_none=True)
    unfilled = profile.unfilled(overrides)
    if unfilled:
        raise ConfigError(f"{where}: profile {profile.key!r} leaves {', '.join(unfilled)} to the practice "
                          f"(the clearinghouse assigns it or does not publish it): "
                          + _where_to_fill(profile, unfilled, name))
    interchange = {**profile.interchange, **overrides}
    base = hub.settings.envelope
    usage = usage_indicator(base.usage_indicator, profile, overrides.get("usage_indicator"), where)
    receiver_id = interchange.get("receiver_id", base.receiver_id)
    if usage == "T" and "receiver_id" not in overrides and profile.interchange.get("test_receiver_id"):
        receiver_id = profile.interchange["test_receiver_id"]  # some clearinghouses route test files by ISA08
    try:
        return replace(
            base,
            sender_qualifier=interchange.get("sender_qualifier", base.sender_qualifier),
            sender_id=interchange.get("sender_id", base.sender_id),
            receiver_qualifier=interchange.get("receiver_qualifier", base.receiver_qualifier),
            receiver_id=receiver_id,
            usage_indicator=usage,
            acknowledgment_requested=bool(interchange.get("acknowledgment_requested", False)),
            receiver_id_code=interchange.get("receiver_id", base.receiver_id_code),
            receiver_name=interchange.get("receiver_name", profile.name.upper()),
            submitter_id=interchange.get("submitter_id", interchange.get("sender_id", base.submitter_id)),
            application_sender_code=_optional(interchange.get("application_sender_code",
                                                              base.application_sender_code)),
            application_receiver_code=_optional(interchange.get("application_receiver_code",
                                                                base.application_receiver_code)),
        )
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _where_to_fill(profile: ClearinghouseProfile, keys: list[str], name: str) -> str:
    ids = [k.removeprefix("interchange.") for k in keys if k.startswith("interchange.")]
    files = [k for k in keys if not k.startswith("interchange.")]
    fixes = []
    if ids:
        fixes.append(f"set {', '.join(ids)} under [mailboxes.{name}.interchange] in bhhub.toml")
    if files:
        fixes.append(f"set {', '.join(files)} in <home>/mappings/clearinghouses/{profile.key}.toml "
                     f"(laid over the packaged profile)")
    return "; ".join(fixes)


def _optional(value) -> str | None:
    return None if value in (None, "") else str(value)
