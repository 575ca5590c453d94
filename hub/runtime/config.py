"""Where the hub lives and how it is set up: the home folder and ``<home>/bhhub.toml``.

Everything has a default that works with no configuration: the home is ``./.bhhub`` (or
``BHHUB_HOME``, or ``--home``), the store a SQLite file inside it, the 837P envelope a test
(ISA15 ``T``) interchange with placeholder ids a clearinghouse profile replaces. Secrets never
live in this file; later sections name an environment variable or a file instead.

The file is checked against its model (``bhhub.configuration.hub_file``): an unknown key or a
wrong type is a ``ConfigError`` naming the file, the key and the nearest valid key. pydantic is
imported only when the file is read, so ``bhhub --help`` never pays for it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bhhub.errors import ConfigError, UsageError
from bhhub.x12.envelope import Envelope

CONFIG_NAME = "bhhub.toml"
STORE_NAME = "bhhub.db"  # the default store: a SQLite file in the home
SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file

DEFAULT_CONFIG = """\
# bhhub configuration. Every key is optional; delete what you do not need.

[store]
# Any SQLAlchemy URL. Default: a SQLite file in this folder.
# url = "postgresql+psycopg://bhhub@127.0.0.1:5432/bhhub"

[interchange]
# ISA/GS envelope of the 837P files the hub writes. The clearinghouse assigns these ids.
sender_qualifier = "ZZ"
sender_id = "BHHUB"
receiver_qualifier = "ZZ"
receiver_id = "CLEARINGHOUSE"
usage_indicator = "T"   # T test, P production (ISA15): the one switch; a profile or mailbox may only narrow it to T

[submitter]
# Loop 1000A: who sends the file, and the EDI contact.
name = "BHHUB PRACTICE"
id = "BHHUB"
contact_name = "BILLING OFFICE"
phone = "5555550100"    # in quotes: ids and numbers are strings, so leading zeros are kept
# email = "billing@example.org"   # instead of (or as well as) the phone

[receiver]
# Loop 1000B: the clearinghouse receiving the file.
name = "CLEARINGHOUSE"
id = "CLEARINGHOUSE"

[workspace]
# The web workspace (`bhhub serve`) and its logins (`bhhub user add`).
host = "127.0.0.1"      # loopback only; another address shows PHI pages to that network
port = 8080
idle_minutes = 15       # a session unused this long ends
lockout_after = 5       # failed logins (password or code) in a row lock the account ...
lockout_minutes = 15    # ... for this long
"""


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    envelope: Envelope
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # bhhub.toml as written (checked)
    file: Any = field(default=None, repr=False)  # bhhub.toml as its model, bhhub.configuration.hub_file.HubFile

    @property
    def mappings_dir(self) -> Path:
        """Practice overrides of the packaged ``mappings/`` tables."""
        return self.home / "mappings"

    @property
    def batches_dir(self) -> Path:
        return self.home / "batches"

    @property
    def config_path(self) -> Path:
        return self.home / CONFIG_NAME

    def section(self, model: type[T]) -> T:
        """The section of bhhub.toml modelled by ``model`` (a ``hub_file.Section``), defaults and all."""
        return getattr(self.file, _section_key(model))


T = TypeVar("T")


def _section_key(model: type) -> str:
    from bhhub.configuration.hub_file import Section

    for key, cls in Section.registry.items():
        if cls is model:
            return key
    raise TypeError(f"{model.__name__} is not a registered bhhub.toml section")


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """``--home``, else ``BHHUB_HOME``, else ``./.bhhub``.

    An empty ``--home`` is a mistake (an unset shell variable, ``--home "$HOME_DIR"``), told
    rather than read as "the default"; an empty ``BHHUB_HOME`` counts as unset, as the shell's
    own ``${VAR:-default}`` has it."""
    if home is not None and not os.fspath(home):
        raise UsageError("--home is empty: name the hub's folder (or leave --home out for $BHHUB_HOME or ./.bhhub)")
    chosen = home or os.environ.get("BHHUB_HOME") or ".bhhub"
    return Path(chosen).expanduser().resolve()


def is_hub_home(folder: Path) -> bool:
    """Whether ``folder`` holds what ``bhhub init`` makes: ``bhhub.toml`` (init always writes it,
    whatever the store) or the default SQLite store (a hub made before init wrote the file).
    A ``bhhub.db`` counts only when it is a SQLite database (its header): an empty or foreign
    file of that name must not make a folder a hub, to be migrated into and chmod-ed.

    ``BHHUB_DATABASE_URL`` alone makes no folder a hub: it chooses the store, and a mistyped
    ``--home`` beside it must not become the folder of that store's raw files and batches.
    """
    return (folder / CONFIG_NAME).is_file() or _is_sqlite_file(folder / STORE_NAME)


def _is_sqlite_file(path: Path) -> bool:
    if not path.is_file():  # a FIFO of that name is never opened: it would block
        return False
    try:
        with path.open("rb") as database:
            return database.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def load_settings(home: str | os.PathLike[str] | None = None) -> Settings:
    """The hub's settings: ``<home>/bhhub.toml`` checked against its model (an unknown key or a
    wrong type is a ``ConfigError`` naming the file, the key and the nearest valid one), every
    key it leaves out at its default."""
    from bhhub.configuration.hub_file import load_hub_file  # pydantic: not for `bhhub --help`

    root = resolve_home(home)
    path = root / CONFIG_NAME
    raw: dict[str, Any] = {}
    if path.is_file():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    model = load_hub_file(raw, str(path))
    url = os.environ.get("BHHUB_DATABASE_URL") or model.store.url or f"sqlite:///{root / STORE_NAME}"
    return Settings(home=root, database_url=url, envelope=_envelope(model, path), raw=raw, file=model)


def _envelope(model, path: Path) -> Envelope:
    isa, sub, rcv = model.interchange, model.submitter, model.receiver
    try:
        return Envelope(
            sender_qualifier=isa.sender_qualifier,
            sender_id=isa.sender_id,
            receiver_qualifier=isa.receiver_qualifier,
            receiver_id=isa.receiver_id,
            usage_indicator=isa.usage_indicator,
            submitter_name=sub.name,
            submitter_id=sub.id,
            submitter_contact_name=sub.contact_name,
            submitter_phone=sub.phone or None,
            submitter_email=sub.email or None,
            receiver_name=rcv.name,
            receiver_id_code=rcv.id,
        )
    except ConfigError as exc:  # a rule across keys (1000A PER needs a phone or an email)
        raise ConfigError(f"{path}: {exc}") from None
