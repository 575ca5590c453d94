"""``<home>/bhhub.toml`` as a model: one class per section, every key checked.

A new section is one class here, registered by its key::

    class Routing(Section, key="routing"):
        default_mailbox: str | None = None

and read as ``hub.settings.section(Routing)`` (or ``hub.settings.file.routing``); the class must be
defined (imported) before bhhub.toml is read, so sections live in this module. Every section
has defaults, so a hub with no file, or a file without the section, works.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, create_model, field_validator, model_validator
from pydantic_core import PydanticCustomError

from bhhub.configuration.problems import HTTP_URL, NO_OUTER_SPACES, TEN_DIGITS, Strict, validated
from bhhub.x12.envelope import ID_QUALIFIERS

IdQualifier = Literal[tuple(sorted(ID_QUALIFIERS))]  # ISA05/ISA07: the qualifiers the envelope writer knows


class Section(Strict):
    """A table of bhhub.toml; subclasses name theirs with ``key=``."""

    registry: ClassVar[dict[str, type[Section]]] = {}

    def __init_subclass__(cls, key: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if key is not None:
            if key in Section.registry:
                raise TypeError(f"bhhub.toml section [{key}] is defined twice")
            Section.registry[key] = cls


class Store(Section, key="store"):
    url: str | None = None  # any SQLAlchemy URL; default a SQLite file in the home (BHHUB_DATABASE_URL wins)


class Interchange(Section, key="interchange"):
    """The hub's own ISA/GS ids, and whether it is in test or production (ISA15). A mailbox's
    profile and overrides lay their ids over these; ISA15 they may only narrow to test."""

    sender_qualifier: IdQualifier = "ZZ"
    sender_id: str = Field("BHHUB", min_length=2, max_length=15, pattern=NO_OUTER_SPACES)
    receiver_qualifier: IdQualifier = "ZZ"
    receiver_id: str = Field("CLEARINGHOUSE", min_length=2, max_length=15, pattern=NO_OUTER_SPACES)
    usage_indicator: Literal["T", "P"] = "T"


class Submitter(Section, key="submitter"):
    """Loop 1000A: who sends the file, and the EDI contact (a phone or an email)."""

    name: str = Field("BHHUB PRACTICE", min_length=1)
    id: str = Field("BHHUB", min_length=1)
    contact_name: str = Field("BILLING OFFICE", min_length=1)
    phone: str | None = "5555550100"
    email: str | None = None


class Receiver(Section, key="receiver"):
    """Loop 1000B: the clearinghouse receiving the file (a mailbox's profile names its own)."""

    name: str = Field("CLEARINGHOUSE", min_length=1)
    id: str = Field("CLEARINGHOUSE", min_length=1)


class InterchangeOverrides(Strict):
    """Envelope ids a clearinghouse assigns, laid over the hub's: in a profile's [interchange] and
    in a mailbox's [mailboxes.NAME.interchange]. Each may be left out."""

    sender_qualifier: IdQualifier | None = None
    sender_id: str | None = Field(None, min_length=2, max_length=15, pattern=NO_OUTER_SPACES)
    receiver_qualifier: IdQualifier | None = None
    receiver_id: str | None = Field(None, min_length=2, max_length=15, pattern=NO_OUTER_SPACES)
    usage_indicator: Literal["T", "P"] | None = None  # only narrows the hub's: see bhhub.exchange.mailboxes
    acknowledgment_requested: bool | None = None  # ISA14: ask for a TA1
    application_sender_code: str | None = None  # GS02 when it differs from ISA06
    application_receiver_code: str | None = None  # GS03 when it differs from ISA08
    receiver_name: str | None = None  # 1000B NM103 (default: the profile's name)
    submitter_id: str | None = None  # 1000A NM109 (default: the sender id)


MAILBOX_KEYS = ("profile", "transport", "schedule", "interchange")  # the rest is the transport's


class Mailbox(Strict):
    """``[mailboxes.NAME]``: a clearinghouse profile, the transport that reaches it, when to
    exchange, envelope overrides; every other key is the transport's own, which its ``configure``
    checks as strictly (the SFTP one refuses unknown keys and written secrets)."""

    profile: str = Field(min_length=1)  # a file in mappings/clearinghouses/ (without .toml)
    transport: str = "sftp"
    schedule: str | None = None  # cron: when `bhhub run` exchanges files
    interchange: InterchangeOverrides = InterchangeOverrides()
    connection: dict[str, Any] = {}

    @model_validator(mode="before")
    @classmethod
    def _split_connection(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if "connection" in data:
            raise PydanticCustomError("reserved_key", "'connection' is not a mailbox key; write the transport's "
                                                      "settings (host, username ...) in the mailbox table itself")
        own = {k: v for k, v in data.items() if k in MAILBOX_KEYS}
        rest = {k: v for k, v in data.items() if k not in MAILBOX_KEYS}
        for key in rest:  # a mailbox key misspelt would reach the transport as one of its own
            near = difflib.get_close_matches(key, [k for k in MAILBOX_KEYS if k not in own], n=1, cutoff=0.75)
            if near:
                raise PydanticCustomError("unknown_key", "unknown key {key!r} (did you mean {near!r}?)",
                                          {"key": key, "near": near[0]})
        return {**own, "connection": rest}


class Eligibility(Section, key="eligibility"):
    provider_npi: str | None = Field(None, pattern=TEN_DIGITS)  # who asks, when a claim names no provider


# A notification's deadline and timeouts: finite, and at most five minutes, well inside the lease a
# send holds on its target (bhhub.notify.delivery.LEASE, ten minutes); "inf" or 1e20 seconds would
# overflow the clock (OverflowError) and hold the runner's dispatcher for good.
MAX_NOTIFY_SECONDS = 300


class EmailNotifier(Strict):
    """``[notify.email]``: alerts by SMTP (``bhhub.notify``). Secrets by reference only."""

    host: str = Field(min_length=1)
    port: int | None = Field(None, gt=0, lt=65536)  # default 587 with starttls, 25 without
    starttls: bool = True  # the server's certificate is verified (system CAs, or ca_file)
    ca_file: str | None = None  # a private CA's certificate(s), PEM
    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    sender: str
    to: str | list[str]
    timeout: float = Field(20.0, gt=0, le=MAX_NOTIFY_SECONDS, allow_inf_nan=False)  # per connection and per read

    @field_validator("sender")
    @classmethod
    def _sender_is_an_address(cls, value: str) -> str:
        if _has_control(value):
            raise PydanticCustomError("header_injection", _CONTROL)
        if not _is_mailbox(value):
            raise PydanticCustomError("email_address", "must be one email address (name@example.org, or "
                                      "\"Billing <name@example.org>\")")
        return value

    @field_validator("to")
    @classmethod
    def _to_is_addresses(cls, value: str | list[str]) -> str | list[str]:
        # An empty list would make every alert "sent" to nobody; a typo would bounce unseen.
        listed = [value] if isinstance(value, str) else value
        if not listed:
            raise PydanticCustomError("no_recipient", "must name at least one email address")
        controlled = [n for n, address in enumerate(listed, 1) if not isinstance(address, str) or _has_control(address)]
        if controlled:  # by position, not value
            raise PydanticCustomError("header_injection", _CONTROL + "{where}",
                                      {"where": "" if isinstance(value, str)
                                       else f" (entry {', '.join(map(str, controlled))})"})
        wrong = [n for n, address in enumerate(listed, 1) if not _is_mailbox(address)]
        if wrong:  # by position, not value: a person's address stays out of logs
            where = (" (several go in a list: to = [\"a@example.org\", \"b@example.org\"])" if isinstance(value, str)
                     else f" (entry {', '.join(map(str, wrong))})")
            raise PydanticCustomError("email_address", "must be email addresses, one per entry{where}",
                                      {"where": where})
        return value

    @model_validator(mode="after")
    def _no_password_in_clear(self) -> "EmailNotifier":
        if self.username and not self.starttls:
            raise PydanticCustomError("password_in_clear", "username without starttls would send the password in "
                                      "clear; set starttls = true (and ca_file for a private CA)")
        if self.password_env and self.password_file:
            raise PydanticCustomError("two_secrets", "name the password once: password_env or password_file")
        return self


# One address as a From or To header takes it: "name@domain" or "Display Name <name@domain>".
_ADDRESS = r"[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?"
_MAILBOX = re.compile(rf"(?:{_ADDRESS}|[^<>@,;]*<{_ADDRESS}>)")


_CONTROL = ("must not hold a line break or other control character: in a mail header it would start "
            "another header (a Bcc: to someone else)")


def _has_control(value: str) -> bool:
    """A control character (CR, LF, tab, NUL, C1) or a Unicode line or paragraph separator."""
    return any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value)


def _is_mailbox(value: str) -> bool:
    return bool(_MAILBOX.fullmatch(value.strip())) and value == value.strip()


class WebhookNotifier(Strict):
    """``[notify.webhook]``: alerts POSTed as JSON (``bhhub.notify``)."""

    # The address, or (when its path or query is the webhook's secret, as Slack's is) where to
    # find it: an environment variable or a file. Exactly one of the three.
    url: str | None = Field(None, pattern=HTTP_URL)
    url_env: str | None = None
    url_file: str | None = None
    timeout: float = Field(10.0, gt=0, le=MAX_NOTIFY_SECONDS, allow_inf_nan=False)  # per connection and per read
    token_env: str | None = None
    token_file: str | None = None

    @field_validator("url")
    @classmethod
    def _no_secret_in_the_address(cls, value: str | None) -> str | None:
        # https://user:pass@host/... puts a secret in a file that is copied and committed (and in
        # every log that prints the address); the token goes by reference, as the SMTP password does.
        if value is not None and has_user_info(value):
            raise PydanticCustomError("secret_in_url", USER_INFO_REFUSED)
        return value

    @model_validator(mode="after")
    def _one_token(self) -> "WebhookNotifier":
        if self.token_env and self.token_file:
            raise PydanticCustomError("two_secrets", "name the token once: token_env or token_file")
        if sum(v is not None for v in (self.url, self.url_env, self.url_file)) != 1:
            raise PydanticCustomError("one_url", "name the address once: url, url_env or url_file")
        return self


USER_INFO_REFUSED = ("must not carry a user or password (https://user:pass@...): secrets are never written here; "
                     "name an environment variable (token_env) or a file (token_file) holding the token, sent as "
                     "\"Authorization: Bearer\"")


def has_user_info(url: str) -> bool:
    return "@" in urlsplit(url).netloc


class Notify(Section, key="notify"):
    """``[notify]``: who hears of alerts besides ``bhhub alerts`` (none by default)."""

    email: EmailNotifier | None = None
    webhook: WebhookNotifier | None = None
    # By default email and webhook carry ids only; an alert's message (an eligibility alert's
    # names a date of service) leaves the hub only when the practice says so (bhhub.notify).
    include_message: bool = False
    # The whole of one send (connecting, TLS, every read) to one target, a plugin included: a
    # server that answers a byte at a time never trips a per-read timeout, and would hold the
    # runner's dispatcher (and its shutdown) for ever. A send still running then counts as failed.
    deadline: float = Field(30.0, gt=0, le=MAX_NOTIFY_SECONDS, allow_inf_nan=False)


class Routing(Section, key="routing"):
    """``[routing]``: which clearinghouse mailbox carries each payer's files (837P claims, 270
    eligibility and 276 status inquiries alike; ``bhhub.exchange.routing``).

        [routing]
        default = "officeally"            # every payer not listed below
        [routing.payers]
        "87726" = "availity"              # payer id (the claim's, as in mappings/payers.toml) -> mailbox

    With one mailbox and no table, everything goes through it."""

    default: str | None = Field(None, min_length=1)
    payers: dict[str, str] = {}

    @model_validator(mode="after")
    def _payer_ids_as_written(self) -> "Routing":
        # " 00431" matches no claim and would send Medicare's claims to the default in silence.
        for payer_id in self.payers:
            if not payer_id or payer_id != payer_id.strip():
                raise PydanticCustomError("payer_id", "a payer id with spaces around it ({payer_id!r}) matches no claim; "
                                          "write it as the claim carries it", {"payer_id": payer_id})
        return self


class Workspace(Section, key="workspace"):
    """``[workspace]``: the web workspace (``bhhub serve``) and its logins (``bhhub.accounts``)."""

    host: str = Field("127.0.0.1", min_length=1)  # loopback: another address exposes PHI pages to that network
    port: int = Field(8080, gt=0, lt=65536)
    idle_minutes: float = Field(15, gt=0, le=24 * 60, allow_inf_nan=False)  # a session unused this long ends
    lockout_after: int = Field(5, ge=1, le=1000)  # failed logins (password or code) in a row lock the account
    lockout_minutes: float = Field(15, gt=0, le=7 * 24 * 60, allow_inf_nan=False)  # ... for this long


class Listen(Section, key="listen"):
    """``[listen]``: the MLLP listener's limits. Its keys are the mllp connector's
    (``bhhub.connectors.mllp.settings.ListenSettings``), checked as strictly when `bhhub listen` starts;
    the hub only sees that it is a table."""

    model_config = Strict.model_config | {"extra": "allow"}


_MODELS: dict[tuple, type[Strict]] = {}


def hub_file_model() -> type[Strict]:
    """The model of the whole file: one field per registered section, plus [mailboxes]. Built
    from the registry when first asked (and again if a section was added since)."""
    sections = tuple(Section.registry.items())
    if sections not in _MODELS:
        fields: dict[str, Any] = {key: (cls, cls()) for key, cls in sections}
        fields["mailboxes"] = (dict[str, Mailbox], {})
        _MODELS.clear()
        _MODELS[sections] = create_model("HubFile", __base__=Strict, __doc__="The whole of bhhub.toml.", **fields)
    return _MODELS[sections]


def load_hub_file(data: dict[str, Any], where: str):
    """bhhub.toml's parsed TOML as the model; ``ConfigError`` naming ``where`` and each bad key."""
    return validated(hub_file_model(), data, where)
