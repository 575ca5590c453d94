"""Broken on purpose: has a mapping validator but ships no mapping file to the kit (no
MAPPING_FILE), so "mapping file loads" checked nothing and passed."""
from contract_plugins.visits import VisitReader, plugin_parts, validate_mapping

__all__ = ["FORMAT", "bhhub_register_intake_formats", "validate_mapping"]

FORMAT, bhhub_register_intake_formats = plugin_parts(VisitReader(), "kit-unmapped-visits")
