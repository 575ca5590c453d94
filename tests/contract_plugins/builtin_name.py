"""Broken on purpose: installed under the entry-point name of bhhub's built-in HL7 v2 plugin
(``hl7v2 = "builtin_name"``), so the hub loads the built-in and refuses this one."""
from contract_plugins.visits import MAPPING_FILE, VisitReader, plugin_parts, validate_mapping

__all__ = ["ENTRY_POINT", "FORMAT", "MAPPING_FILE", "bhhub_register_intake_formats", "validate_mapping"]

ENTRY_POINT = "hl7v2"  # the bug: a built-in plugin's name
FORMAT, bhhub_register_intake_formats = plugin_parts(VisitReader(), "kit-renamed-visits")
