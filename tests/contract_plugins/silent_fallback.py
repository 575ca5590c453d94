"""Broken on purpose: reads units from a misspelt key and falls back to 1 without a word, so a
line billed for 2 units goes out as 1 (the claim is still "ready")."""
from decimal import Decimal

from contract_plugins.visits import MAPPING_FILE, VisitReader, plugin_parts, validate_mapping

__all__ = ["FORMAT", "MAPPING_FILE", "bhhub_register_intake_formats", "validate_mapping"]


class FallbackReader(VisitReader):
    def units(self, line, where):
        return Decimal(line.get("unit") or 1)  # the bug: "unit", not "units", and a default


FORMAT, bhhub_register_intake_formats = plugin_parts(FallbackReader(), "kit-fallback-visits")
