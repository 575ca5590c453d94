"""Where the hub lives and how it is set up: the home folder and ``<home>/bhhub.toml``.

Everything has a default that works with no configuration: the home is ``./.bhhub`` (or
``BHHUB_HOME``, or ``--home``), the store a SQLite file inside it, the 837P envelope a test
(ISA15 ``T``) interchange with placeholder ids a clearinghouse profile replaces. Secrets never
live in this file; later sections name an environment variable or a file instead.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.errors import ConfigError
from hub.x12.envelope import Envelope

CONFIG_NAME = "bhhub.toml"

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
usage_indicator = "T"   # T test, P production (ISA15)

[submitter]
# Loop 1000A: who sends the file, and the EDI contact.
name = "BHHUB PRACTICE"
id = "BHHUB"
contact_name = "BILLING OFFICE"
phone = "5555550100"

[receiver]
# Loop 1000B: the clearinghouse receiving the file.
name = "CLEARINGHOUSE"
id = "CLEARINGHOUSE"
"""


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    envelope: Envelope
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def mappings_dir(self) -> Path:
        """Practice overrides of the packaged ``mappings/`` tables."""
        return self.home / "mappings"

    @property
    def batches_dir(self) -> Path:
        return self.home / "batches"


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """``--home``, else ``BHHUB_HOME``, else ``./.bhhub``."""
    chosen = home or os.environ.get("BHHUB_HOME") or ".bhhub"
    return Path(chosen).expanduser().resolve()


def load_settings(home: str | os.PathLike[str] | None = None) -> Settings:
    root = resolve_home(home)
    raw: dict[str, Any] = tomllib.loads(DEFAULT_CONFIG)
    path = root / CONFIG_NAME
    if path.is_file():
        try:
            local = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
        for section, values in local.items():
            if isinstance(values, dict):
                raw.setdefault(section, {}).update(values)
            else:
                raw[section] = values
    url = (
        os.environ.get("BHHUB_DATABASE_URL")
        or raw.get("store", {}).get("url")
        or f"sqlite:///{root / 'bhhub.db'}"
    )
    return Settings(home=root, database_url=url, envelope=_envelope(raw, path), raw=raw)


def _envelope(raw: dict[str, Any], path: Path) -> Envelope:
    isa, sub, rcv = raw.get("interchange", {}), raw.get("submitter", {}), raw.get("receiver", {})
    usage = str(isa.get("usage_indicator", "T")).upper()
    if usage not in ("T", "P"):
        raise ConfigError(f"{path}: [interchange] usage_indicator must be T or P, not {usage!r}")
    try:
        return Envelope(
            sender_qualifier=str(isa["sender_qualifier"]),
            sender_id=str(isa["sender_id"]),
            receiver_qualifier=str(isa["receiver_qualifier"]),
            receiver_id=str(isa["receiver_id"]),
            usage_indicator=usage,
            submitter_name=str(sub["name"]),
            submitter_id=str(sub["id"]),
            submitter_contact_name=str(sub["contact_name"]),
            submitter_phone=str(sub["phone"]),
            receiver_name=str(rcv["name"]),
            receiver_id_code=str(rcv["id"]),
        )
    except KeyError as exc:
        raise ConfigError(f"{path}: missing setting {exc.args[0]!r}") from exc
