"""The hub as one object: settings, store, plugins and mapping tables, opened together."""

from __future__ import annotations

import getpass
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from bhhub.runtime.config import CONFIG_NAME, DEFAULT_CONFIG, STORE_NAME, Settings, is_hub_home, load_settings, resolve_home
from bhhub.errors import UsageError
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.store.db import Store, open_store
from bhhub.types import ClaimCheck, IntakeFormat, Transport

if TYPE_CHECKING:
    from bhhub.x12.registry import TransactionRegistry
    from bhhub.runtime.plugin_host import PluginHost

log = logging.getLogger(__name__)


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


def _write_default_config(path: Path) -> None:
    """``bhhub.toml`` with every key at its default, unless the hub has one (``init`` twice, or
    two at once, keep the first)."""
    try:
        with path.open("x", encoding="utf-8") as config:
            config.write(DEFAULT_CONFIG)
    except FileExistsError:
        pass


def existing_home(option: str | os.PathLike[str] | None) -> Path:
    """The hub home ``--home`` (``option``), ``BHHUB_HOME`` or the default names, when it is a
    hub already (``bhhub.runtime.config.is_hub_home``); a clear UsageError otherwise.

    Every command but ``init`` (and ``demo``, which makes its own) works on a hub that exists: a
    mistyped ``--home`` must not quietly become a new, empty hub, and a folder that is not a hub
    (an empty one, someone's documents) is left as it is: nothing is created in it, nor chmod-ed.
    """
    home = resolve_home(option)
    named_by = _named_by(option)
    if home.exists() and not home.is_dir():
        raise UsageError(f"the hub home {home} ({named_by}) is a file, not a folder")
    if not home.is_dir():
        raise UsageError(f"no hub at {home} ({named_by}): check the path, or create one with "
                         f"`bhhub --home {home} init`")
    if not is_hub_home(home):
        raise UsageError(f"{home} ({named_by}) is not a bhhub hub (no {CONFIG_NAME} or SQLite {STORE_NAME} in it): "
                         f"check the path, or make it one with `bhhub --home {home} init`")
    return home


def named_home(option: str | os.PathLike[str] | None) -> Path | None:
    """For a command that needs no hub (``plugins``): the home ``--home`` or ``BHHUB_HOME``
    names, which must be a hub (the user named it: a mistake there is told, not ignored); None
    when neither names one."""
    if option is None or option == "":
        resolve_home(option)  # an empty --home is told, not read as "none named"
        if not os.environ.get("BHHUB_HOME"):
            return None
    return existing_home(option)


def _named_by(option: str | os.PathLike[str] | None) -> str:
    if option:
        return "--home"
    if os.environ.get("BHHUB_HOME"):
        return "$BHHUB_HOME"
    return "the default; --home or $BHHUB_HOME name another"


@dataclass
class Hub:
    settings: Settings
    store: Store
    # The plugin host, or what builds it; built on first use: listings and most commands never
    # call a hook, so they never import plugin modules (``bhhub claims`` stays fast however many
    # plugins are installed).
    given_plugins: PluginHost | Callable[[], PluginHost] | None = None
    actor: str = field(default_factory=lambda: _actor())
    # From where this hub's work comes, for the audit trail: "cli", or "web:<client ip>" per request.
    source: str = "cli"
    # Rows this process has committed, by their exact values (see bhhub.store.repo.Upserter).
    known_rows: dict = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, home: str | os.PathLike[str] | None = None, *,
             plugins: PluginHost | Callable[[], PluginHost] | None = None, create: bool = False) -> Hub:
        """The hub at ``home``; ``plugins`` is its plugin host, or a function that builds it when a
        hook is first needed (default: every installed plugin, then).

        ``home`` must be a hub already (``existing_home``: a UsageError otherwise, before anything
        is written) unless ``create``, which makes one there as ``bhhub init`` does: the folder
        (0700), the store, migrated, and a ``bhhub.toml`` with every key at its default."""
        if create:
            found = resolve_home(home)
            if found.exists() and not found.is_dir():
                raise UsageError(f"the hub home {found} is a file, not a folder")
        else:
            existing_home(home)
        settings = load_settings(home)
        _private_home(settings.home)
        store = open_store(settings.database_url)
        if create:
            _write_default_config(settings.config_path)
        return cls(settings, store, plugins)

    @cached_property
    def plugins(self) -> PluginHost:
        given = self.given_plugins
        if given is None:
            from bhhub.runtime.plugin_host import build_plugin_host

            return build_plugin_host()
        return given() if callable(given) else given

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
    def x12_transactions(self) -> TransactionRegistry:
        from bhhub.x12.registry import TransactionRegistry

        return TransactionRegistry(self.plugins.hooks.x12_transactions())

    @cached_property
    def transports(self) -> list[Transport]:
        return self.plugins.hooks.transports()

    def audit(self, session, action: str, object_type: str, object_ids: Sequence[int], detail: str | None = None,
              *, actor: str | None = None, source: str | None = None, outcome: str | None = None) -> None:
        """Record a read or change of PHI (promise 8), or a login. Ids only, never the data itself.

        The row joins the hash chain (``bhhub.audit.chain``) when ``session`` (an ORM Session)
        commits, and is dropped if it rolls back; it is not visible before the commit.
        ``actor`` and ``source`` default to the hub's (the workspace passes the user and the
        client's address); ``outcome`` says how it ended where that matters ("ok", "failed")."""
        from bhhub.audit.chain import record

        record(session, actor=actor or self.actor, source=source or self.source, action=action,
               object_type=object_type, object_ids=object_ids, detail=detail, outcome=outcome)

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
