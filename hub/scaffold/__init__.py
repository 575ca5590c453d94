"""``bhhub plugin new``: write a separately installable plugin package from a template.

A template is a folder under ``hub/scaffold/templates/<family>/`` whose files end in ``.tmpl``.
Paths and contents may contain ``{{package}}`` (the import name), ``{{distribution}}`` (the
name on PyPI), ``{{slug}}`` (the name with dashes, used for formats and transports),
``{{title}}``, ``{{bhhub_version}}`` and ``{{guide}}`` (a GS08 for a transaction plugin's
sample: 005010 and the name's first letters); ``__package__`` in a path is the package folder. The
generated package's own tests run the ``bhhub.testing`` contract kit and pass as generated.
"""

from __future__ import annotations

import keyword
import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from bhhub import __version__
from bhhub.errors import UsageError

FAMILIES = {"ehr": "ehr", "clearinghouse": "clearinghouse", "payer-portal": "payer_portal",
            "transaction": "transaction"}
NAME = re.compile(r"^[a-z][a-z0-9]*(?:[_-][a-z0-9]+)*$")
# Top-level names a plugin must not take: bhhub's own packages, and what tests import by name.
RESERVED = {"hub", "plugins", "connectors", "mappings", "tests", "test", "bhhub", "src", "conftest"}
MAX_NAME = 60


@dataclass(frozen=True)
class PluginNames:
    """Every spelling of a new plugin's name."""

    package: str  # acme_ehr: the import name and the entry-point name
    distribution: str  # bhhub-acme-ehr
    slug: str  # acme-ehr: intake format / transport names
    title: str  # Acme Ehr


def plugin_names(name: str) -> PluginNames:
    """Check ``name`` and derive the package, distribution and display names, or ``UsageError``."""
    if not name:
        raise UsageError("the plugin needs a NAME, e.g. `bhhub plugin new ehr acme_ehr`")
    if name != name.lower() and NAME.match(name.lower()):
        raise UsageError(f"plugin name {name!r} has capital letters; use {name.lower()!r}")
    if len(name) > MAX_NAME or not NAME.match(name):
        raise UsageError(f"plugin name {name!r} is not usable: use lower-case letters and digits, separated by "
                         f"single '_' or '-', starting with a letter (e.g. acme_ehr), at most {MAX_NAME} characters")
    package = name.replace("-", "_")
    if keyword.iskeyword(package) or package in RESERVED or package in sys.stdlib_module_names:
        raise UsageError(f"plugin name {name!r} would clash with the Python module {package!r}; choose another")
    slug = package.replace("_", "-")
    return PluginNames(package, f"bhhub-{slug}".replace("bhhub-bhhub-", "bhhub-"), slug,
                       " ".join(part.capitalize() for part in package.split("_")))


def refuse_taken(names: PluginNames) -> None:
    """``UsageError`` when an installed plugin (bhhub's built-ins among them) already has this
    name: the hub loads plugins by entry-point name, so it would load that one and refuse the
    new one as "already taken"."""
    from importlib import metadata

    from bhhub import PROJECT_NAME
    from bhhub.runtime.plugin_host import ENTRY_POINT_GROUP, _distribution_name

    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name.replace("-", "_") != names.package:
            continue
        owner = _distribution_name(ep)
        whose = ("bhhub's built-in plugin" if owner == PROJECT_NAME
                 else f"the installed plugin from {owner or 'an unknown distribution'}")
        raise UsageError(f"plugin name {names.package!r} is taken by {whose} {ep.name!r}: the hub would load that one "
                         f"and refuse yours; choose another (e.g. acme_{names.package})")


def template_root(family: str):
    if family not in FAMILIES:
        raise UsageError(f"no plugin template {family!r}; choose one of: {', '.join(FAMILIES)}")
    return resources.files("bhhub.scaffold").joinpath("templates", FAMILIES[family])


def _walk(folder, prefix: str = ""):
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            yield from _walk(entry, f"{prefix}{entry.name}/")
        elif entry.name.endswith(".tmpl"):
            yield f"{prefix}{entry.name[:-5]}", entry.read_text(encoding="utf-8")


def sample_guide(names: PluginNames) -> str:
    """The GS08 a transaction plugin's sample is written under: 005010 and up to six letters of
    the name (GS08 is at most 12 characters), e.g. 005010ACMERC."""
    return "005010" + "".join(c for c in names.package if c.isalnum()).upper()[:6]


def render(text: str, names: PluginNames) -> str:
    values = {"package": names.package, "distribution": names.distribution, "slug": names.slug,
              "title": names.title, "bhhub_version": __version__, "guide": sample_guide(names)}
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def generate(family: str, name: str, out_dir: Path | str = ".") -> Path:
    """Write the ``family`` template for plugin ``name`` into ``out_dir/<name>``; return that folder.

    Refuses (``UsageError``) an unknown family, an unusable name, the name of an installed
    plugin (bhhub's built-ins included), or a folder that exists.
    """
    names = plugin_names(name)
    refuse_taken(names)
    root = template_root(family)
    target = Path(out_dir) / names.package
    if target.exists():
        raise UsageError(f"{target} already exists; nothing was written (remove it or choose another --out)")
    files = [(render(path, names).replace("__package__", names.package), render(text, names))
             for path, text in _walk(root)]
    leftovers = [path for path, text in files if "{{" in text or "{{" in path]
    if leftovers:  # a template bug, not the user's: say where
        raise RuntimeError(f"template {family} left placeholders in {', '.join(leftovers)}")
    try:
        target.mkdir(parents=True)
    except OSError as exc:
        raise UsageError(f"cannot create {target}: {exc.strerror or exc}") from None
    for path, text in files:
        destination = target / path
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(text, encoding="utf-8")
    return target
