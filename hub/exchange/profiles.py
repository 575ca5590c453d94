"""Clearinghouse profiles, ``mappings/clearinghouses/<key>.toml``: a strict model of the file and
the profile the exchange uses.

A profile is what every practice using a clearinghouse shares: its folders, how it wants files
uploaded and named, what it sends back, its envelope ids. What a clearinghouse assigns each
practice, or what its published guides do not say, the profile lists under
``practice_supplies`` instead of guessing: folders and names the practice writes in
``<home>/mappings/clearinghouses/<key>.toml`` (laid over the packaged file), envelope ids in its
mailbox's ``[mailboxes.NAME.interchange]``. A mailbox whose profile still lacks one is refused,
naming the key.

ISA15 (test or production) is the hub's (``[interchange] usage_indicator`` in bhhub.toml). A
profile may only force test (``usage_indicator = "T"``, e.g. the sandbox); it never makes a test
hub send production files.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from bhhub.configuration.hub_file import InterchangeOverrides
from bhhub.configuration.problems import Strict, validated
from bhhub.errors import ConfigError, MappingError
from bhhub.runtime.mapping_tables import MappingSet

OUTBOUND_KINDS = ("837P", "270", "276")  # what the hub uploads: claims, eligibility and status inquiries
UPLOAD_METHODS = ("rename", "direct")
PICKUP_AFTER = ("delete", "archive", "leave")
DEFAULT_INQUIRY_NAME = "{sender_id}_{isa13}.{kind}"
NAME_FIELDS = dict(sender_id="S", isa13="000000001", batch_id=1, date="20260101", time="000000")

# Keys a profile may leave to the practice, and the keys a profile must otherwise give.
SUPPLIABLE = ("folders.outbound", "folders.inbound", "folders.archive", "upload.method", "upload.file_name",
              "upload.outbound_names.270", "upload.outbound_names.276", "interchange.sender_qualifier",
              "interchange.sender_id", "interchange.receiver_qualifier", "interchange.receiver_id",
              "interchange.submitter_id", "interchange.application_sender_code",
              "interchange.application_receiver_code")
REQUIRED = ("folders.outbound", "folders.inbound", "upload.method", "upload.file_name")


class Folders(Strict):
    outbound: str | None = None  # where the hub uploads 837P, 270 and 276 files
    inbound: str | None = None  # where the clearinghouse leaves its answers
    archive: str | None = None  # where picked-up files go when pickup.after = "archive"


class Upload(Strict):
    method: Literal["rename", "direct"] | None = None  # required unless practice_supplies lists it
    temp_suffix: str = ".part"
    confirm: bool = True
    file_name: str | None = None  # the 837P's remote name; or outbound_names."837P"
    outbound_names: dict[Literal["837P", "270", "276"], str] = {}

    @model_validator(mode="after")
    def _rename_needs_a_suffix(self) -> Upload:
        if self.method == "rename" and not self.temp_suffix:
            raise PydanticCustomError("profile_rule", "upload.method 'rename' needs a temp_suffix")
        return self


class Pickup(Strict):
    after: Literal["delete", "archive", "leave"]
    patterns: list[str] = ["*"]  # glob patterns of files to take, in this order
    stable_seconds: int = Field(120, ge=0)


class ProfileInterchange(InterchangeOverrides):
    usage_indicator: Literal["T"] | None = None  # a profile may force test, never production
    test_receiver_id: str | None = Field(None, min_length=2, max_length=15)  # ISA08 of test files, when it differs

    @field_validator("usage_indicator", mode="wrap")
    @classmethod
    def _only_test(cls, value: Any, handler: Any) -> Any:
        if value == "P":
            raise PydanticCustomError(
                "profile_production", "may only be \"T\" (force test files): whether the hub sends production "
                "files is [interchange] usage_indicator in bhhub.toml")
        return handler(value)


class Acknowledgments(Strict):
    expect_999_within_hours: float = Field(24.0, gt=0)  # no 999 this long after an upload raises an alert


class Claims(Strict):
    max_claims_per_file: int = Field(5000, gt=0)
    line_breaks: bool = True  # false: the whole interchange on one line


class ProfileFile(Strict):
    """The whole of a clearinghouse profile file."""

    name: str = Field(min_length=1)
    practice_supplies: list[str] = []
    folders: Folders = Folders()
    upload: Upload
    pickup: Pickup
    interchange: ProfileInterchange = ProfileInterchange()
    acknowledgments: Acknowledgments = Acknowledgments()
    claims: Claims = Claims()

    @field_validator("practice_supplies")
    @classmethod
    def _suppliable(cls, keys: list[str]) -> list[str]:
        for key in keys:
            if key not in SUPPLIABLE:
                near = difflib.get_close_matches(key, SUPPLIABLE, n=1)
                hint = f"did you mean {near[0]!r}?" if near else f"one of {', '.join(SUPPLIABLE)}"
                raise PydanticCustomError("profile_rule", "{key!r} is not a key a practice supplies ({hint})",
                                          {"key": key, "hint": hint})
        return keys

    @model_validator(mode="after")
    def _whole(self) -> ProfileFile:
        problems = []
        for key in REQUIRED:
            if _given(self, key) is None and key not in self.practice_supplies:
                problems.append(f"required key {key!r} is missing (or list it under practice_supplies)")
        if self.pickup.after == "archive" and not self.folders.archive and "folders.archive" not in self.practice_supplies:
            problems.append("pickup.after is 'archive' but folders.archive is empty")
        for kind in OUTBOUND_KINDS:
            template = _template(self, kind)
            if template is None:
                continue
            try:
                template.format(kind=kind, **NAME_FIELDS)
            except (KeyError, IndexError, ValueError) as exc:
                problems.append(f"the outbound file name for {kind} has an unknown field {exc} "
                                f"(fields: {', '.join(['kind', *NAME_FIELDS])})")
        if problems:
            raise PydanticCustomError("profile_rule", "; ".join(problems))
        return self


def _template(profile: ProfileFile, kind: str) -> str | None:
    names = profile.upload.outbound_names
    if kind == "837P":
        return names.get("837P") or profile.upload.file_name
    return names.get(kind, DEFAULT_INQUIRY_NAME)


def _given(profile: ProfileFile, key: str) -> Any:
    """The value at dotted ``key`` (None or "" when the file leaves it out)."""
    if key == "upload.file_name":
        return _template(profile, "837P")
    section, _, rest = key.partition(".")
    value = getattr(profile, section)
    if rest.startswith("outbound_names."):
        return value.outbound_names.get(rest.removeprefix("outbound_names."))
    return getattr(value, rest) or None


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
    interchange: dict[str, Any]  # the keys the file gives, as InterchangeOverrides (plus test_receiver_id)
    practice_supplies: tuple[str, ...] = ()
    source: str = ""  # where the profile comes from, for messages

    def remote_name(self, kind: str, **fields: Any) -> str:
        """The outbound file name for a batch of ``kind``, from the profile's template.

        Fields: {sender_id}, {isa13}, {batch_id}, {date}, {time}, {kind}. A kind the profile
        names no template for is sent as ``{sender_id}_{isa13}.{kind}`` (e.g. ``..._000000012.270``).
        """
        template = self.file_name if kind == "837P" else self.outbound_names.get(kind, DEFAULT_INQUIRY_NAME)
        return template.format(kind=kind, **fields)

    def unfilled(self, mailbox_interchange: dict[str, Any]) -> list[str]:
        """The ``practice_supplies`` keys nobody has filled in yet: file keys by the practice's copy of
        the profile, envelope ids by it or the mailbox's ``[interchange]``."""
        missing = []
        for key in self.practice_supplies:
            section, _, rest = key.partition(".")
            if section == "interchange":
                given = mailbox_interchange.get(rest) or self.interchange.get(rest)
            elif key == "upload.file_name":
                given = self.file_name
            elif key == "upload.method":
                given = self.upload_method
            elif rest.startswith("outbound_names."):
                given = self.outbound_names.get(rest.removeprefix("outbound_names."))
            else:
                given = {"folders.outbound": self.outbound_dir, "folders.inbound": self.inbound_dir,
                         "folders.archive": self.archive_dir}[key]
            if not given:
                missing.append(key)
        return missing


def load_profile(mappings: MappingSet, key: str) -> ClearinghouseProfile:
    """The profile ``key``: the packaged file with the practice's copy laid over it, checked.
    ``ConfigError`` naming the file, each bad key and the nearest valid one."""
    where = f"mappings/clearinghouses/{key}.toml"
    if mappings.override_dir is not None and (mappings.override_dir / "clearinghouses" / f"{key}.toml").is_file():
        where += f" (with {mappings.override_dir / 'clearinghouses' / f'{key}.toml'})"
    try:
        table = mappings.load(f"clearinghouses/{key}.toml")
    except MappingError as exc:  # no such file, or not TOML
        raise ConfigError(f"clearinghouse profile {key!r}: {exc}") from exc
    model = validated(ProfileFile, table, where)
    return ClearinghouseProfile(
        key=key,
        name=model.name,
        outbound_dir=model.folders.outbound or "",
        inbound_dir=model.folders.inbound or "",
        archive_dir=model.folders.archive or "",
        upload_method=model.upload.method or "",
        temp_suffix=model.upload.temp_suffix,
        confirm_upload=model.upload.confirm,
        file_name=_template(model, "837P") or "",
        outbound_names={kind: name for kind, name in model.upload.outbound_names.items() if kind != "837P"},
        pickup_after=model.pickup.after,
        patterns=tuple(model.pickup.patterns),
        stable_seconds=model.pickup.stable_seconds,
        expect_999_within_hours=model.acknowledgments.expect_999_within_hours,
        max_claims_per_file=model.claims.max_claims_per_file,
        line_breaks=model.claims.line_breaks,
        interchange=model.interchange.model_dump(exclude_none=True),
        practice_supplies=tuple(model.practice_supplies),
        source=where,
    )
