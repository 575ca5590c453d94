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
from typing import Any

from hub.errors import ConfigError, MappingError
from hub.mappings import MappingSet
from hub.types import Transport
from hub.x12.envelope import Envelope

UPLOAD_METHODS = ("rename", "direct")
OUTBOUND_KINDS = ("837P", "270", "276")  # what the hub uploads: claims, eligibility and status inquiries
PICKUP_AFTER = ("delete", "archive", "leave")
MAILBOX_KEYS = {"profile", "transport", "schedule", "interchange"}  # the rest goes to the transport


@dataclass(frozen=True)
class ClearinghouseProfile:
    key: str
    name: str
    outbound_dir: str
    inbound_dir: str
    archive_dir: str
    upload_method: str
    temp_suffix: str
    confirm_upload: bool
    file_name: str  # the 837P's remote name
    outbound_names: dict[str, str]  # kind (270, 276) -> remote name template; 837P uses file_name
    pickup_after: str
    patterns: tuple[str, ...]
    stable_seconds: int
    expect_999_within_hours: float
    max_claims_per_file: int
    line_breaks: bool  # a line break after each segment terminator in the 837 (a claim quirk)
    interchange: dict[str, Any]

    def remote_name(self, kind: str, **fields: Any) -> str:
        """The outbound file name for a batch of ``kind``, from the profile's template.

        Fields: {sender_id}, {isa13}, {batch_id}, {date}, {time}, {kind}. A kind the profile
        names no template for is sent as ``{sender_id}_{isa13}.{kind}`` (e.g. ``..._000000012.270``).
        """
        template = self.file_name if kind == "837P" else self.outbound_names.get(kind, DEFAULT_INQUIRY_NAME)
        return template.format(kind=kind, **fields)


DEFAULT_INQUIRY_NAME = "{sender_id}_{isa13}.{kind}"


@dataclass(frozen=True)
class Mailbox:
    name: str
    profile: ClearinghouseProfile
    transport: Transport
    connection: Any  # the transport's own settings, checked by Transport.configure
    envelope: Envelope
    schedule: str | None


def load_profile(mappings: MappingSet, key: str) -> ClearinghouseProfile:
    table = mappings.load(f"clearinghouses/{key}.toml")
    where = f"mappings/clearinghouses/{key}.toml"
    try:
        folders, upload, pickup = table["folders"], table["upload"], table["pickup"]
        names = {str(kind): str(name) for kind, name in dict(upload.get("outbound_names", {})).items()}
        profile = ClearinghouseProfile(
            key=key,
            name=str(table["name"]),
            outbound_dir=str(folders["outbound"]),
            inbound_dir=str(folders["inbound"]),
            archive_dir=str(folders.get("archive", "")),
            upload_method=str(upload["method"]),
            temp_suffix=str(upload.get("temp_suffix", ".part")),
            confirm_upload=bool(upload.get("confirm", True)),
            file_name=str(names.get("837P") or upload["file_name"]),
            outbound_names={kind: name for kind, name in names.items() if kind != "837P"},
            pickup_after=str(pickup["after"]),
            patterns=tuple(pickup.get("patterns", ["*"])),
            stable_seconds=int(pickup.get("stable_seconds", 120)),
            expect_999_within_hours=float(table.get("acknowledgments", {}).get("expect_999_within_hours", 24)),
            max_claims_per_file=int(table.get("claims", {}).get("max_claims_per_file", 5000)),
            line_breaks=bool(table.get("claims", {}).get("line_breaks", True)),
            interchange=dict(table.get("interchange", {})),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MappingError(f"{where}: missing or malformed setting {exc}") from exc
    problems = []
    if profile.upload_method not in UPLOAD_METHODS:
        problems.append(f"upload.method must be one of {UPLOAD_METHODS}")
    if profile.pickup_after not in PICKUP_AFTER:
        problems.append(f"pickup.after must be one of {PICKUP_AFTER}")
    if profile.pickup_after == "archive" and not profile.archive_dir:
        problems.append("pickup.after is 'archive' but folders.archive is empty")
    if profile.upload_method == "rename" and not profile.temp_suffix:
        problems.append("upload.method 'rename' needs a temp_suffix")
    unknown = sorted(set(profile.outbound_names) - set(OUTBOUND_KINDS))
    if unknown:
        problems.append(f"upload.outbound_names has unknown kinds {unknown} (use {', '.join(OUTBOUND_KINDS)})")
    for kind in OUTBOUND_KINDS:
        try:
            profile.remote_name(kind, sender_id="S", isa13="000000001", batch_id=1, date="20260101", time="000000")
        except (KeyError, IndexError, ValueError) as exc:
            problems.append(f"the outbound file name for {kind} has an unknown field {exc}")
    if problems:
        raise MappingError(f"{where}: " + "; ".join(problems))
    return profile


def load_mailboxes(hub) -> dict[str, Mailbox]:
    """Every mailbox in ``bhhub.toml``; ``ConfigError`` naming each mailbox's problems."""
    configured = hub.settings.raw.get("mailboxes", {})
    transports = {t.name: t for t in hub.transports}
    mailboxes: dict[str, Mailbox] = {}
    problems: list[str] = []
    for name, table in configured.items():
        where = f"[mailboxes.{name}]"
        try:
            mailboxes[name] = _mailbox(hub, name, table, where, transports)
        except (ConfigError, MappingError) as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("mailbox configuration: " + " | ".join(problems))
    return mailboxes


def _mailbox(hub, name: str, table: dict, where: str, transports: dict[str, Transport]) -> Mailbox:
    if not isinstance(table, dict) or "profile" not in table:
        raise ConfigError(f"{where} needs profile = \"<clearinghouse>\" (a file in mappings/clearinghouses/)")
    profile = load_profile(hub.mappings, str(table["profile"]))
    transport_name = str(table.get("transport", "sftp"))
    transport = transports.get(transport_name)
    if transport is None:
        raise ConfigError(f"{where}: no transport {transport_name!r} is installed "
                          f"(installed: {', '.join(sorted(transports)) or 'none'})")
    connection = transport.configure({k: v for k, v in table.items() if k not in MAILBOX_KEYS}, where)
    envelope = _envelope(hub, profile, table)
    schedule = table.get("schedule")
    return Mailbox(name, profile, transport, connection, envelope, str(schedule) if schedule else None)


def outbound_envelope(hub, name: str | None = None) -> tuple[Envelope, ClearinghouseProfile | None]:
    """The envelope a file for mailbox ``name`` is written with, and that mailbox's profile.

    ``name`` None means the only mailbox configured; with none it is the hub's own envelope and
    no profile (the file waits for a mailbox whose sender and receiver ids it carries, see
    ``hub.exchange.outbound``). With several and no name, ``ConfigError``: a file addressed to
    no clearinghouse in particular would wait for ever. Needs no transport: queuing an inquiry
    connects nowhere.
    """
    configured = hub.settings.raw.get("mailboxes", {})
    if name is None:
        if not configured:
            return hub.settings.envelope, None
        if len(configured) > 1:
            raise ConfigError(f"{len(configured)} mailboxes are configured ({', '.join(sorted(configured))}): "
                              "say which one carries this file (mailbox=NAME)")
        name = next(iter(configured))
    table = configured.get(name)
    where = f"[mailboxes.{name}]"
    if table is None:
        raise ConfigError(f"no mailbox {name!r} in bhhub.toml (configured: {', '.join(sorted(configured)) or 'none'})")
    if not isinstance(table, dict) or "profile" not in table:
        raise ConfigError(f"{where} needs profile = \"<clearinghouse>\" (a file in mappings/clearinghouses/)")
    profile = load_profile(hub.mappings, str(table["profile"]))
    return _envelope(hub, profile, table), profile


def _envelope(hub, profile: ClearinghouseProfile, table: dict) -> Envelope:
    """The hub's envelope with the profile's ids laid over it, then the mailbox's own overrides."""
    interchange = {**profile.interchange, **table.get("interchange", {})}
    base = hub.settings.envelope
    return replace(
        base,
        sender_qualifier=str(interchange.get("sender_qualifier", base.sender_qualifier)),
        sender_id=str(interchange.get("sender_id", base.sender_id)),
        receiver_qualifier=str(interchange.get("receiver_qualifier", base.receiver_qualifier)),
        receiver_id=str(interchange.get("receiver_id", base.receiver_id)),
        usage_indicator=str(interchange.get("usage_indicator", base.usage_indicator)),
        acknowledgment_requested=bool(interchange.get("acknowledgment_requested", False)),
        receiver_id_code=str(interchange.get("receiver_id", base.receiver_id_code)),
        receiver_name=str(interchange.get("receiver_name", profile.name.upper())),
        submitter_id=str(interchange.get("submitter_id", interchange.get("sender_id", base.submitter_id))),
        application_sender_code=_optional(interchange.get("application_sender_code", base.application_sender_code)),
        application_receiver_code=_optional(interchange.get("application_receiver_code",
                                                            base.application_receiver_code)),
    )


def _optional(value) -> str | None:
    return None if value in (None, "") else str(value)
