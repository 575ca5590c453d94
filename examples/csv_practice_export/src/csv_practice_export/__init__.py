"""CSV practice export: a bhhub EHR plugin reading the CSV that small practice-management tools
export (one row per service) into canonical encounters.

An example third-party package, made with ``bhhub plugin new ehr csv_practice_export`` and then
edited: only ``reader.py``, ``encounters.py`` and the mapping changed. bhhub finds this module
through the ``bhhub`` entry point in ``pyproject.toml``. Column names, the delimiter, the date
format and the practice's billing identity are in ``mapping.toml``, never in code.
"""

from __future__ import annotations

from importlib import resources

from bhhub import hookimpl
from bhhub.types import IntakeFormat

from csv_practice_export.mapping import validate_mapping
from csv_practice_export.reader import FORMAT_NAME, parse, recognizes

__all__ = ["FORMAT", "MAPPING_FILE", "bhhub_register_intake_formats", "validate_mapping"]

# The contract kit (bhhub.testing) checks this file parses and passes validate_mapping.
MAPPING_FILE = resources.files(__name__).joinpath("mapping.toml")

FORMAT = IntakeFormat(
    name=FORMAT_NAME,
    description="CSV export of a practice-management tool: one row per service, columns from the mapping",
    recognizes=recognizes,
    parse=parse,
)


@hookimpl
def bhhub_register_intake_formats() -> list[IntakeFormat]:
    """Called once when the hub starts: the formats this plugin reads.

    For each payload the hub asks every format's ``recognizes(content)`` and hands the bytes to
    the one that says yes; ``parse`` returns every encounter in it or raises ``InputError``.
    """
    return [FORMAT]
