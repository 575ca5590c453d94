"""Eligibility from any payer portal with a JSON API, configured entirely by mapping files.

A built-in plugin, registered through the ``bhhub`` entry point ``generic_json``. Each file in
``mappings/payer_portals/*.toml`` (bhhub's, then ``<hub home>/mappings/payer_portals/``)
describes one portal: the payer ids it serves, its URL, auth and rate limit, the request body,
and where each benefit value is in the answer. bhhub ships one example, which serves an
invented payer id only. A payer no file lists gets ``None`` ("not my payer") without the
network.

    bhhub_check_eligibility(patient, coverage, service_date, service_types) -> EligibilityResponse | None
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from importlib import resources

from bhhub import hookimpl
from bhhub.eligibility.benefits import EligibilityResponse
from bhhub.model import Coverage, Patient

from bhhub.plugins.payer_portals.generic_json.exchange import read_answer, request_body
from bhhub.plugins.payer_portals.generic_json.mapping import JsonPortal, build_portal, validate_mapping
from bhhub.connectors.http_api.client import PortalClient, PortalRefusedRequest
from bhhub.connectors.http_api.registry import PortalFiles

log = logging.getLogger(__name__)

__all__ = ["MAPPING_FILE", "bhhub_check_eligibility", "check", "portal_files", "use_portal_files", "validate_mapping"]

MAPPING_FILE = resources.files("bhhub.mappings").joinpath("payer_portals/example_json_portal.toml")

_files: PortalFiles[JsonPortal] = PortalFiles("payer_portals", build_portal)
_client_options: dict = {}


def portal_files() -> PortalFiles[JsonPortal]:
    return _files


def use_portal_files(files: PortalFiles[JsonPortal], **client_options) -> None:
    """Read portals from ``files`` from now on; ``client_options`` (``clock``, ``session``,
    ``jitter``) go to each ``PortalClient`` (tests pass a clock that does not sleep)."""
    global _files, _client_options
    _files, _client_options = files, dict(client_options)


@hookimpl
def bhhub_check_eligibility(patient: Patient, coverage: Coverage, service_date: date,
                            service_types: Sequence[str]) -> EligibilityResponse | None:
    """The portal's answer for ``coverage`` on ``service_date``, when a mapping file lists
    ``coverage.payer.payer_id``; ``None`` otherwise, decided from the files alone."""
    portal = _files.for_payer(coverage.payer.payer_id)
    if portal is None:
        return None
    return check(portal, patient, coverage, service_date, service_types)


def check(portal: JsonPortal, patient: Patient, coverage: Coverage, service_date: date,
          service_types: Sequence[str]) -> EligibilityResponse:
    if portal.client is None:
        portal.client = PortalClient(portal.connection, **_client_options)
    payer_id = coverage.payer.payer_id
    body = request_body(portal, patient, coverage, service_date, service_types)
    answer = portal.client.post_json(portal.request["path"], body, payer_id=payer_id)
    response = read_answer(portal, answer, coverage, service_types)
    if response is None:
        raise PortalRefusedRequest(f"portal {portal.connection.name} refused the question for payer {payer_id} "
                                   f"(HTTP {answer.status})", fix="check the patient's member id, name and birth "
                                   "date against the card, and the mapping's [request] against the portal's API")
    log.info("portal %s (payer %s): answered, %d service types, %d rejections", portal.connection.name, payer_id,
             len(response.benefits), len(response.rejections))
    return response
