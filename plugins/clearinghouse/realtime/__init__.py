"""Real-time eligibility through a clearinghouse: one 270 over HTTP, its 271 back at once (CAQH CORE).

A built-in plugin, registered through the ``bhhub`` entry point ``realtime_x12``. Each file in
``mappings/clearinghouses/realtime/*.toml`` (bhhub's, then ``<hub home>/mappings/clearinghouses/
realtime/``) is one clearinghouse account: the payer ids it answers for in real time, the
endpoint, the CORE and ISA ids, the practice asking, auth and limits (``config``). bhhub ships
one example, serving an invented payer id only. For a payer no file lists the answer is
``None`` without the network, and the hub queues a batch 270 for the mailbox instead.

    bhhub_check_eligibility(patient, coverage, service_date, service_types) -> EligibilityResponse | None

Modules: ``config`` (the file's schema and the built endpoint), ``core`` (the CORE vC2.2.0
HTTP MIME multipart envelope and its error codes; ``CoreClient``, the payer portals'
``PortalClient`` posting forms), ``exchange`` (270 out, 271 in, matched by trace number).
The sandbox clearinghouse serves the same protocol on loopback
(``bhhub.plugins.clearinghouse.sandbox.realtime``, ``bhhub sandbox serve --realtime-port N``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from importlib import resources

from bhhub import hookimpl
from bhhub.eligibility.benefits import EligibilityResponse
from bhhub.model import Coverage, Patient

from bhhub.plugins.clearinghouse.realtime.config import RealtimeEndpoint, build_endpoint, validate_endpoint
from bhhub.plugins.clearinghouse.realtime.exchange import ask
from bhhub.connectors.http_api.registry import PortalFiles

log = logging.getLogger(__name__)

__all__ = ["FOLDER", "EXAMPLE_FILE", "bhhub_check_eligibility", "endpoint_files", "use_endpoint_files",
           "validate_endpoint"]

FOLDER = "clearinghouses/realtime"  # under mappings/, packaged and the practice's
EXAMPLE_FILE = resources.files("bhhub.mappings").joinpath(f"{FOLDER}/example_realtime.toml")

_files: PortalFiles[RealtimeEndpoint] = PortalFiles(FOLDER, build_endpoint)
_client_options: dict = {}


def endpoint_files() -> PortalFiles[RealtimeEndpoint]:
    return _files


def use_endpoint_files(files: PortalFiles[RealtimeEndpoint], **client_options) -> None:
    """Read endpoints from ``files`` from now on; ``client_options`` (``clock``, ``session``,
    ``jitter``) go to each client (tests pass a clock that does not sleep)."""
    global _files, _client_options
    _files, _client_options = files, dict(client_options)


@hookimpl
def bhhub_check_eligibility(patient: Patient, coverage: Coverage, service_date: date,
                            service_types: Sequence[str]) -> EligibilityResponse | None:
    """The payer's 271 for ``coverage`` on ``service_date``, asked in real time, when a file lists
    ``coverage.payer.payer_id``; ``None`` otherwise, decided from the files alone."""
    endpoint = _files.for_payer(coverage.payer.payer_id)
    if endpoint is None:
        return None
    return ask(endpoint, patient, coverage, service_date, service_types, _client_options)
