"""Declarative tables from ``mappings/``: code rules, fee schedules, payer rules, EHR field maps.

Tables are TOML files. The project's own live in the ``mappings`` package; a practice overrides
any of them with a file of the same relative path under ``<home>/mappings/``, which is laid over
the packaged one: TOML tables merge key by key, values and lists are replaced whole. Routing
and payer quirks are data here, never ``if payer == ...`` in code.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from bhhub.errors import MappingError


@dataclass
class MappingSet:
    """Loads and caches mapping tables, the practice's overrides first."""

    override_dir: Path | None = None
    _cache: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    def load(self, name: str) -> dict[str, Any]:
        """The table at ``name`` (e.g. ``"ehr/fhir_r4.toml"``), parsed."""
        if name not in self._cache:
            self._cache[name] = self._read(name)
        return self._cache[name]

    def _read(self, name: str) -> dict[str, Any]:
        packaged = resources.files("bhhub.mappings").joinpath(name)
        table = _parse(packaged.read_bytes(), f"mappings/{name}") if packaged.is_file() else None
        local = self.override_dir / name if self.override_dir is not None else None
        if local is not None and local.is_file():
            override = _parse(local.read_bytes(), str(local))
            table = _merged(table, override) if table is not None else override
            return _checked(name, table, f"mappings/{name} (with {local})")
        if table is None:
            raise MappingError(f"mapping table {name!r} not found", fix="reinstall bhhub or add the file")
        return _checked(name, table, f"mappings/{name}")

    def load_plugin_table(self, package: str, resource: str, name: str) -> dict[str, Any]:
        """A table a plugin ships in its own package (``resource`` inside ``package``, e.g.
        ``"mapping.toml"``), with the practice's ``<home>/mappings/<name>`` laid over it the
        same way as bhhub's own tables; parsed once per MappingSet."""
        key = f"{package}:{resource}|{name}"
        if key not in self._cache:
            packaged = resources.files(package).joinpath(resource)
            table = _parse(packaged.read_bytes(), f"{package}/{resource}")
            local = self.override_dir / name if self.override_dir is not None else None
            if local is not None and local.is_file():
                table = _merged(table, _parse(local.read_bytes(), str(local)))
            self._cache[key] = table
        return self._cache[key]

    def effective(self, name: str, key: str, on: date) -> dict[str, Any]:
        """The entry of list ``key`` in table ``name`` in effect on ``on``.

        Entries carry ``valid_from`` (and optionally ``valid_to``) dates; the latest one that
        started on or before ``on`` wins. Code sets change on fixed dates, so rules are keyed
        by date of service.
        """
        entries = self.load(name).get(key, [])
        live = [
            e for e in entries
            if _as_date(e.get("valid_from", date.min)) <= on
            and (e.get("valid_to") is None or on <= _as_date(e["valid_to"]))
        ]
        if not live:
            raise MappingError(f"{name}: no [{key}] entry in effect on {on.isoformat()}")
        return max(live, key=lambda e: _as_date(e.get("valid_from", date.min)))


def overlay(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` laid over ``base`` as bhhub lays a practice's file over a packaged table."""
    return _merged(base, override)


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """The packaged table with a practice's override laid over it: tables merge key by key,
    anything else (values, lists, arrays of tables) is replaced whole."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merged(result[key], value)
        else:
            result[key] = value
    return result


def _checked(name: str, table: dict[str, Any], where: str) -> dict[str, Any]:
    """``table`` checked against its model when it has one (``bhhub.configuration.tables``): an
    unknown key or a wrong type is a ``MappingError`` naming the file, the key and the nearest."""
    if name not in _MODELLED:
        return table
    from bhhub.configuration.problems import validated  # pydantic, only for the tables that have a model
    from bhhub.configuration.tables import MODELS
    from bhhub.errors import ConfigError

    try:
        validated(MODELS[name], table, where)
    except ConfigError as exc:
        raise MappingError(str(exc), fix=f"correct <home>/mappings/{name} (the packaged file documents each key)") from None
    return table


_MODELLED = frozenset({"payers.toml"})  # bhhub.configuration.tables.MODELS, named here so others import nothing


def _parse(data: bytes, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MappingError(f"{where} is not valid TOML: {exc}") from exc


def _as_date(value: Any) -> date:
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))
