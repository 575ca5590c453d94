"""Finding and loading plugins, and the typed facade through which the hub calls hooks.

Built-ins and third-party plugins alike are entry points in the group ``bhhub``. Each is loaded
on its own: one that fails to import or to register is recorded (with its distribution) and
reported by ``bhhub plugins``; the others load. A failing implementation of a broadcast or
registration hook is logged with the plugin's name and the other implementations still run.

Plugins are imported only when the hub needs a hook: listings never do. ``bhhub --help`` lists
the plugins' commands from a small cache (``command_summaries``) kept in the user's cache folder
and keyed by the installed entry points, so it imports no plugin while nothing was installed,
removed or upgraded; running a plugin's command always loads the plugins themselves.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pluggy

from bhhub import PROJECT_NAME, hookspecs
from bhhub.errors import HubError, RetriableError
from bhhub.types import ClaimCheck, Command, IntakeFormat, Job, Transport, X12Transaction

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "bhhub"


@dataclass(frozen=True)
class PluginInfo:
    """What ``bhhub plugins`` shows for one plugin."""

    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...] = ()
    error: str | None = None  # why it did not load, or what it registered wrongly

    @property
    def loaded(self) -> bool:
        return self.error is None


@dataclass
class PluginHost:
    """The plugin manager plus what the hub learned while loading plugins."""

    manager: pluggy.PluginManager
    infos: dict[str, PluginInfo] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # duplicate names, failing hooks

    @property
    def hooks(self) -> Hooks:
        return Hooks(self)

    def plugin_infos(self) -> list[PluginInfo]:
        return sorted(self.infos.values(), key=lambda i: i.name)

    def plugin(self, name: str) -> object:
        """The plugin registered as ``name`` (its entry point's name): the object to ask for what
        it publishes beyond hooks, as the demo asks the sandbox for its server.

        A HubError says why there is none: not installed, or installed and failed to load.
        """
        plugin = self.manager.get_plugin(name)
        if plugin is not None:
            return plugin
        info = self.infos.get(name)
        if info is not None and info.error is not None:
            raise HubError(f"the plugin {name!r} did not load ({info.error}); `bhhub plugins` shows why")
        raise HubError(f"no plugin named {name!r} is installed; `bhhub plugins` lists those that are")


def build_plugin_host(
    entry_points: Iterable[metadata.EntryPoint] | None = None, extra: Sequence[tuple[str, object]] = ()
) -> PluginHost:
    """Create the plugin manager and load every ``bhhub`` entry point, one at a time.

    ``entry_points`` defaults to the installed ones; ``extra`` registers (name, plugin object)
    pairs directly, for tests and embedding.
    """
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    host = PluginHost(manager)
    if entry_points is None:
        entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
    # bhhub's own plugins first, then the others by name: on a registration name clash the
    # first registered wins, so a third-party plugin cannot silently replace a built-in.
    for ep in sorted(entry_points, key=lambda e: (_distribution_name(e) != PROJECT_NAME, e.name)):
        _load_entry_point(host, ep)
    for name, plugin in extra:
        _register(host, name, plugin, distribution=None, version=None)
    return host


# --- the commands ``bhhub --help`` lists, without importing plugins ---------------------------

COMMANDS_CACHE_FORMAT = 1


def command_summaries(taken: Iterable[str] = ()) -> list[Command]:
    """The plugins' commands, named and explained, for ``bhhub --help``.

    From the cache when it was written for the entry points installed now; otherwise the
    plugins are loaded (once) and the cache written. The records' ``configure`` and ``run`` do
    nothing: running a plugin's command loads the plugins (``build_plugin_host``).
    """
    entry_points = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    key = _entry_points_key(entry_points)
    cached = _read_command_cache(key)
    if cached is None:
        host = build_plugin_host(entry_points)
        commands = host.hooks.commands(taken=taken)
        remember_commands(commands, entry_points)
        return commands
    taken = set(taken)
    return [Command(name, text, _no_arguments, _not_loaded) for name, text in cached if name not in taken]


def remember_commands(commands: Sequence[Command], entry_points: Iterable[metadata.EntryPoint] | None = None) -> None:
    """Keep the commands the installed plugins registered, for the next ``bhhub --help``."""
    if entry_points is None:
        entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
    path = _command_cache_path()
    data = {"key": _entry_points_key(list(entry_points)), "commands": [[c.name, c.help] for c in commands]}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(data), encoding="utf-8")
        os.replace(temporary, path)  # a concurrent reader sees the old file or the new, never half
    except OSError as exc:  # a read-only home: --help is only slower
        log.debug("cannot keep the plugin commands in %s: %s", path, exc)


def _read_command_cache(key: str) -> list[tuple[str, str]] | None:
    try:
        data = json.loads(_command_cache_path().read_text(encoding="utf-8"))
        if data["key"] != key:
            return None
        return [(str(name), str(text)) for name, text in data["commands"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _entry_points_key(entry_points: Sequence[metadata.EntryPoint]) -> str:
    """What the cache depends on: each entry point, its distribution and version, and bhhub's."""
    from bhhub import __version__

    rows = sorted([ep.name, ep.value, _distribution_name(ep) or "", _distribution_version(ep) or ""]
                  for ep in entry_points)
    return hashlib.sha256(json.dumps([COMMANDS_CACHE_FORMAT, __version__, rows]).encode()).hexdigest()


def _command_cache_path() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / PROJECT_NAME
    # One file per Python environment: two virtualenvs have different plugins.
    environment = hashlib.sha256(sys.prefix.encode()).hexdigest()[:16]
    return root / f"plugin-commands-{environment}.json"


def _distribution_version(ep: metadata.EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return dist.version if dist is not None else None


def _no_arguments(parser) -> None:
    pass


def _not_loaded(args, hub) -> int:  # pragma: no cover - main loads the plugins before running one
    raise HubError("the plugins were not loaded")


def _distribution_name(ep: metadata.EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else None


def _load_entry_point(host: PluginHost, ep: metadata.EntryPoint) -> None:
    dist = getattr(ep, "dist", None)
    dist_name = _distribution_name(ep)
    version = dist.version if dist is not None else None
    if ep.name in host.infos:
        taker = host.infos[ep.name].distribution
        whose = "bhhub's built-in plugin" if taker == PROJECT_NAME else f"the plugin from {taker}"
        log.warning("plugin %s (%s) not loaded: the name is taken by %s", ep.name, dist_name, whose)
        host.problems.append(f"plugin name {ep.name!r} from {dist_name} is already taken by {whose}; not loaded "
                             "(rename its entry point)")
        return
    try:
        plugin = ep.load()
    except Exception as exc:  # noqa: BLE001 - any import failure is the plugin's, not ours
        log.warning("plugin %s (%s) failed to load: %s", ep.name, dist_name, type(exc).__name__)
        host.infos[ep.name] = PluginInfo(ep.name, dist_name, version, error=f"{type(exc).__name__}: {exc}")
        return
    _register(host, ep.name, plugin, dist_name, version)


def _register(host: PluginHost, name: str, plugin: object, distribution: str | None, version: str | None) -> None:
    try:
        host.manager.register(plugin, name=name)
    except Exception as exc:  # noqa: BLE001 - e.g. a hookimpl with a misspelled argument
        host.infos[name] = PluginInfo(name, distribution, version, error=f"{type(exc).__name__}: {exc}")
        return
    hooks = tuple(sorted(h.name for h in host.manager.get_hookcallers(plugin) or ()))
    host.infos[name] = PluginInfo(name, distribution, version, hooks)


@dataclass(frozen=True)
class PortalAnswer:
    """What a payer-portal plugin said about one coverage: an answer, or why there is none."""

    plugin: str
    response: Any | None  # bhhub.eligibility.benefits.EligibilityResponse, None when it failed
    error: str | None = None
    retriable: bool = False  # the plugin raised RetriableError: asking again later may work

    @property
    def failed(self) -> bool:
        return self.response is None


class Hooks:
    """The only way the hub calls hooks: typed, and tolerant of one bad plugin."""

    def __init__(self, host: PluginHost):
        self._host = host
        self._hook = host.manager.hook

    # --- registration hooks: collected, duplicate names refused ---

    def intake_formats(self) -> list[IntakeFormat]:
        return self._registry("bhhub_register_intake_formats", IntakeFormat)

    def claim_checks(self) -> list[ClaimCheck]:
        return self._registry("bhhub_register_claim_checks", ClaimCheck)

    def commands(self, taken: Iterable[str] = ()) -> list[Command]:
        return self._registry("bhhub_register_commands", Command, taken=set(taken))

    def jobs(self) -> list[Job]:
        return self._registry("bhhub_register_jobs", Job)

    def transports(self) -> list[Transport]:
        return self._registry("bhhub_register_transports", Transport)

    def x12_transactions(self) -> list[X12Transaction]:
        """The registered inbound X12 transactions; besides a taken name, a registration whose
        transaction set and guide (and answered group) another plugin claims is refused, naming
        both, so which plugin applies a file never depends on plugin order."""
        owners: dict[str, str] = {}
        claimed: dict[tuple[str, str, str], tuple[str, str]] = {}
        kept = []
        for record in self._registry("bhhub_register_x12_transactions", X12Transaction, owners=owners):
            problem = _malformed_transaction(record)
            if problem:
                self._host.problems.append(f"plugin {owners[record.name]!r}: X12Transaction {record.name!r} "
                                           f"{problem}; ignored")
                continue
            keys = [(record.transaction_set, guide, record.answers) for guide in (record.guides or ("",))]
            clash = next((claimed[k] for k in keys if k in claimed), None)
            if clash is not None:
                guide = next(k[1] for k in keys if k in claimed)
                self._host.problems.append(
                    f"plugin {owners[record.name]!r}: X12Transaction {record.name!r} claims transaction set "
                    f"{record.transaction_set}" + (f" guide {guide}" if guide else " (any guide)")
                    + (f" answering {record.answers}" if record.answers else "")
                    + f", already claimed by {clash[1]!r} of plugin {clash[0]!r}; ignored")
                continue
            for key in keys:
                claimed[key] = (owners[record.name], record.name)
            kept.append(record)
        return kept

    # --- broadcasts ---

    def encounters_received(self, encounters: Sequence[Any], source_name: str) -> None:
        self._broadcast("bhhub_encounters_received", encounters=encounters, source_name=source_name)

    def batch_written(self, batch_id: int, path: str, claim_count: int) -> None:
        self._broadcast("bhhub_batch_written", batch_id=batch_id, path=path, claim_count=claim_count)

    def acknowledgment_received(self, kind: str, interchange_control_number: str, accepted: bool,
                                claim_control_numbers: Sequence[str]) -> None:
        self._broadcast("bhhub_acknowledgment_received", kind=kind,
                        interchange_control_number=interchange_control_number, accepted=accepted,
                        claim_control_numbers=claim_control_numbers)

    def remittance_posted(self, payer_id: str, trace_number: str, claim_control_numbers: Sequence[str]) -> None:
        self._broadcast("bhhub_remittance_posted", payer_id=payer_id, trace_number=trace_number,
                        claim_control_numbers=claim_control_numbers)

    def alert_receivers(self) -> list[str]:
        """The plugins that take alerts (``bhhub_alert_raised``)."""
        return [impl.plugin_name for impl in self._hook.bhhub_alert_raised.get_hookimpls()]

    def alert_raised(self, alert: Any, only: Sequence[str] | None = None) -> dict[str, str | None]:
        """Give ``alert`` to each plugin that takes alerts (those in ``only`` when given); per
        plugin, None when it took it, else the error's name (it is tried again later)."""
        outcome: dict[str, str | None] = {}
        for impl in self._hook.bhhub_alert_raised.get_hookimpls():
            if only is not None and impl.plugin_name not in only:
                continue
            try:
                impl.function(*[{"alert": alert}[a] for a in impl.argnames])
                outcome[impl.plugin_name] = None
            except Exception as exc:  # noqa: BLE001 - one broken plugin must not stop the rest
                log.error("plugin %s failed in bhhub_alert_raised: %s", impl.plugin_name, type(exc).__name__)
                outcome[impl.plugin_name] = type(exc).__name__
        return outcome

    # --- questions ---

    def code_encounter(self, encounter: Any) -> Any | None:
        return self._hook.bhhub_code_encounter(encounter=encounter)

    def check_eligibility(self, patient: Any, coverage: Any, service_date: Any,
                          service_types: Sequence[str]) -> PortalAnswer | None:
        """The first payer-portal plugin's answer about ``coverage``; None when none serves its payer.

        Plugins are asked in registration order (built-ins first). The first that returns an
        answer (an ``EligibilityResponse``) decides; one that raises has served the payer and
        failed (a timeout, throttling it gave up on, garbage from the API): that is a failed
        answer with the reason, and no other plugin is asked, since a second opinion from
        another portal would not be the payer's. Reasons name the plugin and the error class
        and the plugin's own message (``HubError`` messages carry ids, never PHI).
        """
        from bhhub.eligibility.benefits import EligibilityResponse  # lazily: the facade loads first

        kwargs = {"patient": patient, "coverage": coverage, "service_date": service_date,
                  "service_types": tuple(service_types)}
        for impl in self._hook.bhhub_check_eligibility.get_hookimpls():
            name = impl.plugin_name
            try:
                answer = impl.function(*[kwargs[a] for a in impl.argnames])
            except HubError as exc:
                log.warning("payer portal %s failed: %s", name, type(exc).__name__)
                return PortalAnswer(name, None, f"payer portal {name!r} failed: {exc}",
                                    retriable=isinstance(exc, RetriableError))
            except Exception as exc:  # noqa: BLE001 - a plugin's bug: a failed check, not a crash
                log.error("payer portal %s crashed: %s", name, type(exc).__name__)
                self._host.problems.append(f"plugin {name!r} failed in bhhub_check_eligibility: "
                                           f"{type(exc).__name__}: {exc}")
                return PortalAnswer(name, None, f"payer portal {name!r} crashed ({type(exc).__name__}); "
                                    "report it to the plugin's author")
            if answer is None:
                continue
            if not isinstance(answer, EligibilityResponse):
                return PortalAnswer(name, None, f"payer portal {name!r} returned {type(answer).__name__}, "
                                    "not an EligibilityResponse; report it to the plugin's author")
            return PortalAnswer(name, answer)
        return None

    # --- machinery ---

    def _each(self, hook_name: str, **kwargs: Any) -> Iterable[tuple[str, Any]]:
        caller = getattr(self._hook, hook_name)
        for impl in caller.get_hookimpls():  # registration order: built-ins first, then the rest
            try:
                yield impl.plugin_name, impl.function(*[kwargs[a] for a in impl.argnames])
            except Exception as exc:  # noqa: BLE001 - one broken plugin must not stop the rest
                message = f"plugin {impl.plugin_name!r} failed in {hook_name}: {type(exc).__name__}: {exc}"
                log.error("plugin %s failed in %s: %s", impl.plugin_name, hook_name, type(exc).__name__)
                self._host.problems.append(message)

    def _broadcast(self, hook_name: str, **kwargs: Any) -> None:
        for _ in self._each(hook_name, **kwargs):
            pass

    def _registry(self, hook_name: str, record_type: type, taken: set[str] | None = None,
                  owners: dict[str, str] | None = None) -> list:
        seen: dict[str, str] = {name: "bhhub" for name in (taken or ())}
        records = []
        for plugin_name, result in self._each(hook_name):
            for record in result or ():
                if not isinstance(record, record_type):
                    self._host.problems.append(
                        f"plugin {plugin_name!r}: {hook_name} returned {type(record).__name__}, "
                        f"expected {record_type.__name__}"
                    )
                    continue
                if record.name in seen:
                    self._host.problems.append(
                        f"plugin {plugin_name!r}: {record_type.__name__} {record.name!r} is already "
                        f"registered by {seen[record.name]!r}; ignored"
                    )
                    continue
                seen[record.name] = plugin_name
                records.append(record)
        if owners is not None:
            owners.update(seen)
        return records


def _malformed_transaction(record: X12Transaction) -> str | None:
    """Why ``record`` cannot be matched or applied, or None."""
    if not (isinstance(record.name, str) and record.name and record.name.isprintable()):
        return "has no name"
    if not (isinstance(record.transaction_set, str) and record.transaction_set.isalnum()
            and 1 < len(record.transaction_set) <= 3):
        return "needs transaction_set, the ST01 it reads (e.g. '278'), or 'TA1'"
    if isinstance(record.guides, str) or not all(isinstance(g, str) and g.isalnum() for g in record.guides):
        return "needs guides as a tuple of GS08 prefixes (e.g. ('005010X217',))"
    if not callable(record.apply) or not (record.answers or callable(record.read)):
        return "needs callable read and apply"
    return None
