"""Keeps the contract: the kit passes it (so each broken plugin fails for its one fault)."""
from contract_plugins.visits import MAPPING_FILE, VisitReader, plugin_parts, validate_mapping

__all__ = ["FORMAT", "MAPPING_FILE", "bhhub_register_intake_formats", "validate_mapping"]

FORMAT, bhhub_register_intake_formats = plugin_parts(VisitReader(), "kit-good-visits")
