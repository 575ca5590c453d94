"""Eligibility from a payer's FHIR R4 API: ``CoverageEligibilityRequest`` in,
``CoverageEligibilityResponse`` out, read into the same record a 271 gives.

A built-in plugin, registered through the ``bhhub`` entry point ``fhir_coverage``. Which payers
it serves, the base URL, auth, rate limit and code translations come from
``mappings/payer_portals/fhir/*.toml`` (bhhub's example serves an invented payer id only;
a practice adds ``<hub home>/mappings/payer_portals/fhir/<payer>.toml``). A payer no file lists
gets ``None`` ("not my payer") without the network.

Not read: carve-outs (a CoverageEligibilityResponse names no other payer per benefit) and the
response's free-text ``disposition``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from importlib import resources

from bhhub import hookimpl
from bhhub.eligibility.benefits import EligibilityResponse
from bhhub.model import Coverage, Patient

from bhhub.plugins.payer_portals.fhir_coverage.exchange import coverage_eligibility_request, read_response
from bhhub.plugins.payer_portals.fhir_coverage.mapping import FhirPortal, build_portal, validate_mapping
from bhhub.connectors.http_api.client import PortalClient
from bhhub.connectors.http_api.registry import PortalFiles

log = logging.getLogger(__name__)

__all__ = ["MAPPING_FILE", "bhhub_check_eligibility", "check", "portal_files", "use_portal_files", "validate_mapping"]

MAPPING_FILE = resources.files("bhhub.mappings").joinpath("payer_portals/fhir/example_fhir_payer.toml")
FHIR_JSON = "application/fhir+json"

_files: PortalFiles[FhirPortal] = PortalFiles("payer_portals/fhir", build_portal)
_client_options: dict = {}


def portal_files() -> PortalFiles[FhirPortal]:
    return _files


def use_portal_files(files: PortalFiles[FhirPortal], **client_options) -> None:
    """Read payer files from ``files`` from now on; ``client_options`` (``clock``, ``session``,
    ``jitter``) go to each ``PortalClient``."""
    global _files, _client_options
    _files, _client_options = files, dict(client_options)


@hookimpl
def bhhub_check_eligibility(patient: Patient, coverage: Coverage, service_date: date,
                            service_types: Sequence[str]) -> EligibilityResponse | None:
    """The payer's CoverageEligibilityResponse as a benefits record, when a file under
    ``mappings/payer_portals/fhir/`` lists ``coverage.payer.payer_id``; ``None`` otherwise."""
    portal = _files.for_payer(coverage.payer.payer_id)
    if portal is None:
        return None
    return check(portal, patient, coverage, service_date, service_types)


def check(portal: FhirPortal, patient: Patient, coverage: Coverage, service_date: date,
          service_types: Sequence[str]) -> EligibilityResponse:
    if portal.client is None:
        portal.client = PortalClient(portal.connection, **_client_options)
    payer_id = coverage.payer.payer_id
    body = coverage_eligibility_request(portal, patient, coverage, service_date, service_types)
    answer = portal.client.post_json(portal.path, body, payer_id=payer_id, content_type=FHIR_JSON, accept=FHIR_JSON)
    response = read_response(portal, answer, coverage, service_types)
    log.info("portal %s (payer %s): answered, %d service types, %d rejections", portal.connection.name, payer_id,
             len(response.benefits), len(response.rejections))
    return response
