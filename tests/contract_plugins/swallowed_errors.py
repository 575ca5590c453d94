"""Broken on purpose: skips a visit it cannot read (logs and carries on), so a bad visit is
never billed and nobody is told. Its goldens have no refused/ file, so nothing showed it."""
import logging

from contract_plugins.visits import MAPPING_FILE, VisitReader, plugin_parts, validate_mapping
from bhhub.errors import HubError

__all__ = ["FORMAT", "MAPPING_FILE", "bhhub_register_intake_formats", "validate_mapping"]

log = logging.getLogger(__name__)


class SwallowingReader(VisitReader):
    def encounters(self, visits, mapping):
        read = []
        for n, visit in enumerate(visits, start=1):
            try:
                read.append(self.encounter(visit, mapping, f"visit {n}"))
            except HubError:  # the bug: the visit is left out, the file "imports"
                log.warning("visit %d skipped", n)
        return read


FORMAT, bhhub_register_intake_formats = plugin_parts(SwallowingReader(), "kit-swallowing-visits")
