"""The hub as one object: settings, store, plugins and mapping tables, opened together."""

from __future__ import annotations

import getpass
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from hub.config import Settings, load_settings
from hub.mappings import MappingSet
from sqlalchemy import insert

from hub.plugins import PluginHost, build_plugin_host
from hub.store import schema
from hub.store.db import Store, open_store
from hub.store.schema import utcnow
from hub.types import ClaimCheck, IntakeFormat, Transport


log = logging.getLogger(__name__)
_INSERT_AUDIT = insert(schema.AuditEvent.__table__)


def _private_home(home: Path) -> None:
    """The home holds PHI (the store, raw inbound files, exports): only its owner may enter it.

    Created 0700; an existing home of ours that others can read is tightened, as OpenSSH
    tightens nothing but refuses: here refusing would stop a practice's billing, so we fix it.
    """
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    found = home.stat()
    if found.st_uid == os.getuid() and found.st_mode & 0o077:
        os.chmod(home, 0o700)
        log.warning("hub home %s was open to other users: now 0700", home)


@dataclass
class Hub:
    settings: Settings
    store: Store
    plugins: PluginHost
    actor: str = field(default_factory=lambda: _actor())
    # Rows this process has committed, by their exact values (see hub.store.repo.Upserter).
    known_rows: dict = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, home: str | os.PathLike[str] | None = None, *, plugins: PluginHost | None = None) -> Hub:
        settings = load_settings(home)
        _private_home(settings.home)
        store = open_store(settings.database_url)
        return cls(settings, store, plugins or build_plugin_host())

    @cached_property
    def mappings(self) -> MappingSet:
        return MappingSet(override_dir=self.settings.mappings_dir)

    @cached_property
    def intake_formats(self) -> list[IntakeFormat]:
        return self.plugins.hooks.intake_formats()

    @cached_property
    def claim_checks(self) -> list[ClaimCheck]:
        return self.plugins.hooks.claim_checks()

    @cached_property
    def transports(self) -> list[Transport]:
        return self.plugins.hooks.transports()

    def audit(self, session, action: str, object_type: str, object_ids: Sequence[int], detail: str | None = None) -> None:
        """Record a read or change of PHI (promise 8). Ids only, never the data itself."""
        session.connection().execute(_INSERT_AUDIT, {
            "at": utcnow(), "actor": self.actor, "action": action, "object_type": object_type,
            "object_ids": list(object_ids), "detail": detail,
        })

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "cli"
