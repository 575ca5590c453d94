"""The hub as one object: settings, store, plugins and mapping tables, opened together."""

from __future__ import annotations

import getpass
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

from hub.config import Settings, load_settings
from hub.mappings import MappingSet
from sqlalchemy import insert

from hub.plugins import PluginHost, build_plugin_host
from hub.store import schema
from hub.store.db import Store, open_store
from hub.store.schema import utcnow
from hub.types import ClaimCheck, IntakeFormat, Transport


_INSERT_AUDIT = insert(schema.AuditEvent.__table__)


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
        settings.home.mkdir(parents=True, exist_ok=True)
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
