"""Broken on purpose: recognizes any JSON, so a FHIR bundle, another vendor's JSON or random
JSON would be handed to it (or it never gets its own files when a built-in comes first)."""
from contract_plugins.visits import MAPPING_FILE, VisitReader, plugin_parts, validate_mapping

__all__ = ["FORMAT", "MAPPING_FILE", "bhhub_register_intake_formats", "validate_mapping"]


class AnyJsonReader(VisitReader):
    def recognizes(self, content):
        return content.lstrip(b" \t\r\n\xef\xbb\xbf")[:1] in (b"{", b"[")  # the bug: any JSON


FORMAT, bhhub_register_intake_formats = plugin_parts(AnyJsonReader(), "kit-any-json")
