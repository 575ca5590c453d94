"""Checks every plugin family shares: it registers cleanly, its entry point is the plugin, its
mapping file loads, it needs no network at import.

Each ``check_*`` function raises ``ContractFailure`` (an ``AssertionError``, so pytest shows it
as a test failure) naming what is wrong and how to fix it, and returns something useful when
the plugin passes. ``run_all`` runs several checks and reports every failure at once.
"""

from __future__ import annotations

import inspect
import tomllib
import types
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from bhhub import PROJECT_NAME
from bhhub.errors import HubError
from bhhub.runtime.plugin_host import ENTRY_POINT_GROUP, PluginHost, _distribution_name, _register, build_plugin_host
from bhhub.testing.network import imports_without_network, no_network

UNDER_TEST = "plugin_under_test"  # the name the kit registers the plugin under


class ContractFailure(AssertionError):
    """The plugin breaks the contract; the message says what and how to fix it."""


def fail(message: str, fix: str | None = None) -> ContractFailure:
    return ContractFailure(f"{message}" + (f"\n  fix: {fix}" if fix else ""))


def plugin_label(plugin: object) -> str:
    if isinstance(plugin, types.ModuleType):
        return plugin.__name__
    return f"{type(plugin).__module__}.{type(plugin).__qualname__}"


def module_name_of(plugin: object) -> str:
    """The module to import to get ``plugin`` (what an entry point would name)."""
    return plugin.__name__ if isinstance(plugin, types.ModuleType) else type(plugin).__module__


def builtin_entry_points() -> list[metadata.EntryPoint]:
    """bhhub's own plugins (checks, FHIR, SFTP, sandbox), without any other installed plugin:
    the kit runs the plugin beside the built-ins a practice always has, and nothing else."""
    return [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if _distribution_name(ep) == PROJECT_NAME]


def host_with(plugin: object, *, builtins: bool = True) -> PluginHost:
    """A plugin host with ``plugin`` registered (after bhhub's built-ins when ``builtins``).

    A built-in under test (it is one of bhhub's entry points) is registered once, as the plugin
    under test."""
    host = build_plugin_host(builtin_entry_points() if builtins else [])
    if host.manager.is_registered(plugin):
        host.infos.pop(host.manager.get_name(plugin), None)
        host.manager.unregister(plugin)
    _register(host, UNDER_TEST, plugin, distribution=None, version=None)
    return host


def check_registers_cleanly(plugin: object) -> PluginHost:
    """The plugin registers with pluggy, and every hook it implements is one bhhub specifies.

    Fails when registration raises (a hook implementation asking for an argument the spec does
    not have), when a ``bhhub_*`` function is not a hook the hub knows (a misspelt name is
    otherwise silently never called), or when the plugin implements no hook at all.
    Returns the host (bhhub's built-ins plus the plugin) for further checks.
    """
    host = host_with(plugin)
    info = host.infos[UNDER_TEST]
    if not info.loaded:
        raise fail(f"{plugin_label(plugin)} does not register: {info.error}",
                   "compare each @hookimpl's name and arguments with hub/hookspecs.py")
    hooked = [(name, value) for name, value in _members(plugin) if name.startswith("bhhub_") and callable(value)]
    unknown = [name for name, value in hooked if hasattr(value, f"{PROJECT_NAME}_impl")
               and getattr(getattr(host.manager.hook, name, None), "spec", None) is None]
    if unknown:  # pluggy would accept them and never call them
        raise fail(f"{plugin_label(plugin)} implements a hook bhhub does not specify: {', '.join(unknown)}",
                   "rename the function to a hook in hub/hookspecs.py")
    unmarked = [name for name, value in hooked if not hasattr(value, f"{PROJECT_NAME}_impl")]
    if unmarked:
        raise fail(f"{plugin_label(plugin)} has hook-named functions without @hub.hookimpl: {', '.join(unmarked)}",
                   "decorate them with @hookimpl (from hub import hookimpl); undecorated ones are never called")
    if not info.hooks:
        raise fail(f"{plugin_label(plugin)} implements no bhhub hook", "add a @hookimpl function")
    return host


def _members(plugin: object) -> Iterable[tuple[str, Any]]:
    for name in dir(plugin):
        try:
            yield name, inspect.getattr_static(plugin, name)
        except AttributeError:
            continue


def check_registration_problems(host: PluginHost, what: str) -> None:
    """Nothing the plugin registered was refused (a wrong record type, a name already taken)."""
    mine = [p for p in host.problems if repr(UNDER_TEST) in p]
    if mine:
        raise fail(f"the hub refused what the plugin registered as {what}: " + "; ".join(mine),
                   "return bhhub.types records with names no other plugin uses")


def check_entry_point(name: str, plugin: object) -> metadata.EntryPoint:
    """An installed distribution declares ``[project.entry-points.bhhub] name = ...`` and it loads
    to this very plugin: what ``bhhub plugins`` will find once the package is installed. The name
    is not one a built-in plugin uses, nor another distribution's: the hub loads the built-in (or
    the first by name) and refuses this one ("already taken")."""
    found = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    builtin = [ep for ep in found if _distribution_name(ep) == PROJECT_NAME]
    if builtin and builtin[0].load() is not plugin:
        raise fail(f"the entry point name {name!r} is bhhub's built-in plugin's ({builtin[0].value}): the hub loads "
                   "the built-in and refuses this plugin as already taken",
                   "rename the entry point (and the package: `bhhub plugin new` refuses built-in names)")
    if not found:
        raise fail(f"no installed distribution declares the bhhub entry point {name!r}",
                   f"add `{name} = \"{module_name_of(plugin)}\"` under [project.entry-points.bhhub] in "
                   f"pyproject.toml and `pip install -e .`")
    owners = sorted({_distribution_name(ep) or "?" for ep in found})
    if len(owners) > 1:
        raise fail(f"the bhhub entry point {name!r} is declared by {len(owners)} distributions ({', '.join(owners)}); "
                   "the hub loads one and refuses the others", "choose a name no installed plugin uses")
    loaded = found[0].load()
    if loaded is not plugin:
        raise fail(f"the bhhub entry point {name!r} loads {plugin_label(loaded)}, not {plugin_label(plugin)}",
                   "point the entry point at the plugin module")
    return found[0]


def check_no_network_at_import(module_name: str) -> None:
    """Importing the plugin's module (what the hub does for every command) reaches no network.

    Checked in a fresh interpreter with every non-loopback connection and name lookup refused
    and recorded; a failed import fails the check too.
    """
    probe = imports_without_network(module_name)
    if probe.attempts:
        raise fail(f"importing {module_name} reached for the network: {', '.join(probe.attempts)}",
                   "connect only when a hook is called, never at import time")
    if probe.error:
        raise fail(f"{module_name} does not import on its own: {probe.error}")


def check_calls_need_no_network(call: Callable[[], Any], what: str) -> Any:
    """Run ``call`` with the network refused; fail if it tried to reach it (even if it then
    swallowed the error). Returns what ``call`` returned."""
    with no_network() as attempts:
        try:
            result = call()
        except Exception:
            if not attempts:
                raise
            result = None  # the refused connection is the failure to report, not what it caused
    if attempts:
        raise fail(f"{what} reached for the network: {', '.join(str(a) for a in attempts)}",
                   "plugins read their input and mapping files only; a test must not need a server")
    return result


def mapping_file_of(plugin: object) -> Path | None:
    """The plugin's mapping file: its ``MAPPING_FILE`` attribute (a path or an importlib
    resource), or None when it declares none."""
    declared = getattr(plugin, "MAPPING_FILE", None)
    if declared is None:
        return None
    return Path(str(declared))


def check_mapping_file(plugin: object, path: Path | None = None, *, required: bool = False) -> dict[str, Any] | None:
    """The plugin's mapping file (``path``, else its ``MAPPING_FILE``) exists, is UTF-8 TOML with
    something in it, and passes the plugin's own ``validate_mapping(table)``.

    ``validate_mapping`` must return normally for a good table and raise a ``HubError`` (normally
    ``bhhub.errors.MappingError``) listing the problems for a bad one; any other exception fails
    the check, and so does a validator that accepts an empty table while the packaged one has
    keys (it checks nothing). A plugin with ``validate_mapping`` but no ``MAPPING_FILE`` fails
    (it declares a mapping it does not ship to the kit), and so does, when ``required``, one
    that declares no mapping file or no validator (a typo in a practice's copy would be
    ignored). Returns the parsed table, or None when there is no mapping file and none is
    required: callers report that as "not checked", never as passed.
    """
    path = path or mapping_file_of(plugin)
    validate = getattr(plugin, "validate_mapping", None)
    if path is None:
        if validate is not None:
            raise fail(f"{plugin_label(plugin)} has validate_mapping but declares no MAPPING_FILE, so the mapping "
                       "it ships is never checked", "set MAPPING_FILE to the packaged mapping file "
                       "(importlib.resources.files(__name__).joinpath(\"mapping.toml\"))")
        if required:
            raise fail(f"{plugin_label(plugin)} declares no MAPPING_FILE: what differs between practices (field "
                       "names, the billing identity) belongs in a mapping file the kit can check",
                       "ship mapping.toml and set MAPPING_FILE and validate_mapping (see `bhhub plugin new`); a "
                       "plugin that truly reads no mapping sets require_mapping = False and is reported so")
        return None
    if not path.is_file():
        raise fail(f"the mapping file {path} does not exist",
                   "ship it as package data ([tool.setuptools.package-data]) or fix MAPPING_FILE")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise fail(f"the mapping file {path} is not valid TOML: {exc}") from None
    if not table:
        raise fail(f"the mapping file {path} is empty", "ship the mapping the plugin reads, every key documented")
    if validate is None:
        if required:
            raise fail(f"{plugin_label(plugin)} ships {path.name} but no validate_mapping, so a wrong key or type in "
                       "a practice's copy would be ignored", "add validate_mapping(table) raising MappingError "
                       "naming every problem")
        return table
    try:
        validate(table)
    except HubError as exc:
        raise fail(f"the plugin's own validator refuses its mapping file {path.name}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the point of the check
        raise fail(f"validate_mapping crashed on {path.name} with {type(exc).__name__}: {exc}",
                   "raise bhhub.errors.MappingError naming every problem") from None
    try:
        validate({})
    except HubError:
        pass
    except Exception as exc:  # noqa: BLE001
        raise fail(f"validate_mapping crashed on an empty table with {type(exc).__name__}: {exc}",
                   "raise bhhub.errors.MappingError naming the missing keys") from None
    else:
        raise fail("validate_mapping accepts an empty table", "check the keys the plugin needs are present")
    return table


def run_all(checks: Iterable[tuple[str, Callable[[], Any]]]) -> dict[str, Any]:
    """Run every check; if any fails, raise one ``ContractFailure`` listing all the failures.
    Returns each check's result by name."""
    results: dict[str, Any] = {}
    failures: list[str] = []
    for name, check in checks:
        try:
            results[name] = check()
        except ContractFailure as exc:
            failures.append(f"- {name}: {exc}")
    if failures:
        raise ContractFailure(f"{len(failures)} contract check(s) failed:\n" + "\n".join(failures))
    return results
