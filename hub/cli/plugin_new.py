"""``bhhub plugin new ehr|clearinghouse|payer-portal|transaction NAME``: start a plugin package.

Beside ``bhhub plugins`` (the listing of installed plugins): ``plugin`` is for writing one.
"""

from __future__ import annotations

import argparse

from bhhub.cli.paths import output_folder
from bhhub.errors import UsageError

NEXT_STEPS = """\
next:
  cd {folder}
  pip install -e .           # into the environment where bhhub is installed
  python -m pytest           # the bhhub.testing contract kit, and the plugin's own tests
  bhhub plugins              # shows {package} from {distribution}
see README.md in the package, and docs/plugins.md in bhhub."""


def add_commands(sub) -> None:
    from bhhub.scaffold import FAMILIES

    p = sub.add_parser("plugin", help="write a new plugin package (see also `bhhub plugins`)",
                       description="Tools for plugin authors. To list installed plugins, use `bhhub plugins`.")
    p.set_defaults(func=_no_action)
    actions = p.add_subparsers(dest="plugin_command", metavar="ACTION")
    new = actions.add_parser(
        "new", help="write a separately installable plugin package from a template",
        description="Write a plugin package: pyproject.toml with its bhhub entry point, a plugin module "
                    "with a documented hook implementation, a mapping file, example (golden) files, tests "
                    "that run the bhhub.testing contract kit, and a README. The folder must not exist.")
    new.add_argument("family", choices=list(FAMILIES), metavar="FAMILY",
                     help="ehr (an intake format), clearinghouse (a transport), payer-portal (eligibility) or "
                          "transaction (an inbound X12 transaction the hub applies)")
    new.add_argument("name", metavar="NAME", help="the plugin's name, e.g. acme_ehr (lower case, '_' or '-')")
    new.add_argument("--out", default=".", metavar="DIR", type=output_folder,
                     help="where to create the NAME folder (default: here)")
    new.set_defaults(func=cmd_plugin_new)


def _no_action(args: argparse.Namespace) -> int:
    raise UsageError("say what to do: `bhhub plugin new FAMILY NAME` (to list plugins: `bhhub plugins`)")


def cmd_plugin_new(args: argparse.Namespace) -> int:
    from bhhub.runtime.app import named_home
    from bhhub.scaffold import generate
    from bhhub.scaffold import plugin_names

    named_home(getattr(args, "home", None))  # needs no hub, but one the user names must be one (as `bhhub plugins`)
    folder = generate(args.family, args.name, args.out)
    names = plugin_names(args.name)
    print(f"wrote {args.family} plugin {names.package} ({names.distribution}) in {folder}")
    print(NEXT_STEPS.format(folder=folder, package=names.package, distribution=names.distribution))
    return 0
