"""The portal files of one plugin: bhhub's packaged ones and the practice's, as built portals.

``PortalFiles("payer_portals", build)`` reads ``mappings/payer_portals/*.toml`` from bhhub's
package and from ``<hub home>/mappings/payer_portals/`` (``BHHUB_HOME``); a practice file with
the name of a packaged one is laid over it (tables merged key by key), any other adds a portal.
Files are read again only when one changes, so each portal keeps its ``PortalClient`` (token,
rate limit) between checks.

A file that fails its checks does not stop the others: it is logged, and only a question about
a payer it lists raises its ``MappingError``. Two files serving one payer id is an error too.
"""

from __future__ import annotations

import logging
import threading
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Generic, TypeVar

from bhhub.runtime.config import resolve_home
from bhhub.errors import HubError, MappingError
from bhhub.runtime.mapping_tables import overlay

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class _Broken:
    source: str
    payer_ids: tuple[str, ...]
    error: HubError


class PortalFiles(Generic[T]):
    """``build(table, source) -> portal`` for each file; ``portal.connection.payer_ids`` says
    which payers it serves."""

    def __init__(self, folder: str, build: Callable[[dict[str, Any], str], T], *,
                 directories: Sequence[Path] | None = None):
        self.folder = folder  # under mappings/, e.g. "payer_portals" or "payer_portals/fhir"
        self.build = build
        self.directories = list(directories) if directories is not None else None
        self._stamp: tuple | None = None
        self._by_payer: dict[str, T] = {}
        self._broken: list[_Broken] = []
        self._lock = threading.Lock()

    def for_payer(self, payer_id: str) -> T | None:
        """The portal serving ``payer_id``, None when no file lists it (no network either way)."""
        with self._lock:
            self._refresh()
            for broken in self._broken:
                if payer_id in broken.payer_ids:
                    raise broken.error
            return self._by_payer.get(payer_id)

    def portals(self) -> list[T]:
        with self._lock:
            self._refresh()
            return list({id(p): p for p in self._by_payer.values()}.values())  # one per file

    # --- reading -----------------------------------------------------------------------------

    def _files(self) -> list[Path]:
        """Every file, packaged first; a later file with the same name is laid over the earlier."""
        if self.directories is not None:
            folders = self.directories
        else:
            packaged = Path(str(resources.files("bhhub.mappings").joinpath(self.folder)))
            folders = [packaged, resolve_home() / "mappings" / self.folder]
        return [p for folder in folders if folder.is_dir() for p in sorted(folder.glob("*.toml"))]

    def _refresh(self) -> None:
        files = self._files()
        stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
        if stamp == self._stamp:
            return
        tables: dict[str, tuple[str, dict[str, Any] | None, HubError | None]] = {}
        for path in files:
            source, table, error = tables.get(path.name, (str(path), {}, None))
            try:
                layer = tomllib.loads(path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
                tables[path.name] = (str(path), None, MappingError(f"{path} is not valid TOML: {exc}"))
                continue
            if table is not None and error is None:
                tables[path.name] = (str(path), overlay(table, layer), None)
        by_payer: dict[str, T] = {}
        sources: dict[str, str] = {}
        broken: list[_Broken] = []
        for source, table, error in tables.values():
            portal = None
            if error is None:
                try:
                    portal = self.build(table, source)
                except HubError as exc:
                    error = exc
            if error is not None:
                log.error("payer portal file %s is not used: %s", source, error)
                broken.append(_Broken(source, _listed_payers(table), error))
                continue
            for payer_id in portal.connection.payer_ids:
                if payer_id in by_payer:
                    problem = MappingError(f"payer {payer_id} is served by two portal files, {sources[payer_id]} "
                                           f"and {source}", fix="list each payer id in one file only")
                    broken.append(_Broken(source, (payer_id,), problem))
                    log.error("%s", problem)
                    continue
                by_payer[payer_id], sources[payer_id] = portal, source
        self._stamp, self._by_payer, self._broken = stamp, by_payer, broken


def _listed_payers(table: dict[str, Any] | None) -> tuple[str, ...]:
    portal = (table or {}).get("portal")
    ids = portal.get("payer_ids") if isinstance(portal, dict) else None
    return tuple(i for i in ids if isinstance(i, str)) if isinstance(ids, list) else ()
