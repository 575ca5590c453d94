"""Broken on purpose: keeps only the diagnosis codes written with their dot and drops the others
(F411) silently, so the claim goes out with fewer diagnoses (still "ready")."""
from contract_plugins.visits import MAPPING_FILE, VisitReader, plugin_parts, validate_mapping

__all__ = ["FORMAT", "MAPPING_FILE", "bhhub_register_intake_formats", "validate_mapping"]


class DroppingReader(VisitReader):
    def diagnoses(self, visit, where):
        dotted = [c for c in visit.get("diagnoses") or [] if isinstance(c, str) and "." in c]  # the bug
        return super().diagnoses({**visit, "diagnoses": dotted or visit.get("diagnoses")}, where)


FORMAT, bhhub_register_intake_formats = plugin_parts(DroppingReader(), "kit-dropping-visits")
