"""``bhhub rules``: load the payer edit tables CMS publishes (NCCI pairs, MUEs) into the hub home."""

from __future__ import annotations

import argparse
from pathlib import Path

from bhhub.cli.commands import open_hub
from bhhub.common.filekinds import input_file
from bhhub.cli.output import print_json

_EPILOG = {
    "load-ncci": "CMS publishes the practitioner PTP edits each quarter (Medicare NCCI, or a state's Medicaid\n"
                 "NCCI files) as Excel and text: give the .txt (or the .zip holding it); all parts (f1-f4) at\n"
                 "once, as each load replaces the table. Pairs of codes behavioral health bills are kept\n"
                 "(mappings/rules/ncci.toml [load]); --all-codes keeps every pair.",
    "load-mue": "CMS publishes the practitioner services MUE table each quarter as CSV and Excel: give the\n"
                ".csv (or the .zip holding it). Codes behavioral health bills are kept (mappings/rules/\n"
                "ncci.toml [load]); --all-codes keeps every code.",
}


def add_commands(sub) -> None:
    p = sub.add_parser("rules", help="load payer edit tables (NCCI pairs, MUEs) from CMS's files",
                       description="Load CMS's quarterly NCCI files into <home>/mappings/rules/, laid over "
                                   "the small, unverified subset bhhub ships. The scrubber applies them to "
                                   "every claim checked afterwards (`bhhub scrub` re-checks unsent claims).")
    actions = p.add_subparsers(dest="rules_command", metavar="ACTION")
    actions.required = True
    for name, what in (("load-ncci", "procedure-to-procedure pairs (PTP)"), ("load-mue", "medically unlikely edits")):
        a = actions.add_parser(name, help=f"load NCCI {what} from CMS's file(s)", epilog=_EPILOG[name],
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        a.add_argument("files", nargs="+", metavar="FILE", help="CMS's .txt/.csv file, or the .zip holding it")
        a.add_argument("--all-codes", action="store_true", help="keep every code, not only behavioral health's")
        a.add_argument("--json", action="store_true")
        a.set_defaults(func=cmd_load, rules_kind=name)


def cmd_load(args: argparse.Namespace) -> int:
    from bhhub.scrub import ncci_files  # the loader reads large files: imported only when asked

    load = ncci_files.load_ptp if args.rules_kind == "load-ncci" else ncci_files.load_mue
    for name in args.files:
        input_file(name)
    with open_hub(args) as hub:
        result = load(hub.settings.mappings_dir, [Path(f) for f in args.files], all_codes=args.all_codes)
    unit = "pair" if args.rules_kind == "load-ncci" else "code"
    if args.json:
        print_json({"table": str(result.path), "rows_read": result.rows, "kept": result.kept,
                    "packaged_withdrawn": result.withdrawn})
        return 0
    print(f"{result.rows} rows read; {result.kept} {unit}{'s' if result.kept != 1 else ''} written to {result.path}"
          + (f"; {result.withdrawn} packaged {unit}(s) not in the file no longer apply" if result.withdrawn else ""))
    print("run `bhhub scrub` to check unsent claims against them")
    return 0
