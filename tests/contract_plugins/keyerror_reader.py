"""Broken on purpose: looks a visit's keys up with ``record[key]``, so an export without a key
(another version of the EHR, a field left out) raises KeyError instead of an InputError."""
from contract_plugins.visits import MAPPING_FILE, InputError, VisitReader, plugin_parts, validate_mapping

__all__ = ["FORMAT", "MAPPING_FILE", "bhhub_register_intake_formats", "validate_mapping"]


class KeyErrorReader(VisitReader):
    def text(self, record, key, where):
        if not isinstance(record, dict):
            raise InputError("is not an object", where=where)
        value = record[key]  # the bug: a missing key is a KeyError
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{key} is missing or not text", where=where)
        return value.strip()


FORMAT, bhhub_register_intake_formats = plugin_parts(KeyErrorReader(), "kit-keyerror-visits")
