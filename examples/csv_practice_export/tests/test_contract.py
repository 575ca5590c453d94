"""bhhub's contract kit for EHR plugins (bhhub.testing.ehr): every check is a test here."""
from pathlib import Path

import csv_practice_export
from bhhub.testing.ehr import EhrPluginContract


class TestContract(EhrPluginContract):
    plugin, goldens, entry_point = csv_practice_export, Path(__file__).parent / "goldens", "csv_practice_export"
