"""One real-time eligibility question: the 270, the CORE round trip, the 271 read and matched.

    response = ask(endpoint, patient, coverage, service_date, service_types)   # EligibilityResponse

1. The inquiry is built as the hub builds a batch one (``bhhub.eligibility.service.request_for``):
   the subscriber, or the patient as a 2000D dependent under the coverage's subscriber; the
   practice asking (2100B) is the file's ``[provider]``. Its trace number (TRN02) is new for
   each question.
2. ``write_270`` writes it alone in an interchange. Control numbers are per request: ISA13 (and
   GS06, ST02) from a counter started at the clock's tenth of a second (modulo 10^9), so two
   questions of one process never share one and a restart does not reuse them for three years.
3. The CORE form is POSTed (``core.CoreClient``); a non-Success ErrorCode is its error class.
4. The Payload is told by its content, not only by PayloadType: a 271 is read with
   ``read_271`` and the answer whose TRN02 is ours is returned; a 999 or TA1 (the clearinghouse
   refused the 270) is ``PortalRefusedRequest`` naming it and its reason; anything else is
   ``PortalAnswerUnreadable``: no record from an answer that is not one.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timezone

from bhhub.eligibility.benefits import EligibilityResponse
from bhhub.eligibility.inquiry import EligibilityRequest
from bhhub.eligibility.x270 import write_270
from bhhub.eligibility.x271 import read_271
from bhhub.errors import InputError
from bhhub.model import Coverage, Patient
from bhhub.acknowledgments.ta1 import read_ta1
from bhhub.acknowledgments.x999 import read_999
from bhhub.x12.envelope import ControlNumbers
from bhhub.x12.recognize import recognize

from bhhub.plugins.clearinghouse.realtime.config import RealtimeEndpoint
from bhhub.plugins.clearinghouse.realtime.core import CoreClient, raise_for_error, read_answer, request_fields
from bhhub.connectors.http_api.client import PortalAnswerUnreadable, PortalRefusedRequest

log = logging.getLogger(__name__)

_LARGEST = 999_999_999  # ISA13 is nine digits
_FIX = "nothing was recorded; if it persists, ask the clearinghouse about its real-time answers"


class ControlCounter:
    """ISA13 for real-time interchanges: distinct within a process, started from the clock."""

    def __init__(self):
        self._last: int | None = None
        self._lock = threading.Lock()

    def next(self, wall: float) -> int:
        with self._lock:
            if self._last is None:
                self._last = int(wall * 10) % _LARGEST
            self._last = self._last % _LARGEST + 1
            return self._last


_counter = ControlCounter()


def inquiry(endpoint: RealtimeEndpoint, patient: Patient, coverage: Coverage, service_date: date,
            service_types: Sequence[str], trace_number: str) -> EligibilityRequest:
    """The 270 inquiry about ``patient`` (as ``bhhub.eligibility.service.request_for`` builds one)."""
    common = {"trace_number": trace_number, "payer": coverage.payer, "provider": endpoint.provider,
              "member_id": coverage.member_id, "service_date": service_date, "service_types": tuple(service_types)}
    if coverage.patient_is_subscriber:
        return EligibilityRequest(subscriber=patient, **common)
    if coverage.subscriber is None:
        raise InputError("the patient is a dependent but the subscriber is unknown (the 270 names the subscriber)",
                         where=f"payer {coverage.payer.payer_id}",
                         fix="record the subscriber on the patient's coverage in the EHR")
    return EligibilityRequest(subscriber=coverage.subscriber, dependent=patient, **common)


def ask(endpoint: RealtimeEndpoint, patient: Patient, coverage: Coverage, service_date: date,
        service_types: Sequence[str], client_options: dict | None = None) -> EligibilityResponse:
    """The payer's answer about ``coverage``, over the endpoint, now."""
    trace_number = "RT" + uuid.uuid4().hex[:20].upper()
    request = inquiry(endpoint, patient, coverage, service_date, service_types, trace_number)
    client = client_for(endpoint, client_options)
    now = datetime.fromtimestamp(client.clock.wall(), timezone.utc)
    number = _counter.next(client.clock.wall())
    content = write_270([request], endpoint.envelope, ControlNumbers(number, number, number), now)
    # One line: what real-time endpoints take most readily (as bhhub.exchange does for such profiles).
    return exchange(endpoint, content.replace(b"~\n", b"~"), trace_number, coverage.payer.payer_id, client_options)


def client_for(endpoint: RealtimeEndpoint, client_options: dict | None = None) -> CoreClient:
    if endpoint.client is None:
        endpoint.client = CoreClient(endpoint.connection, **(client_options or {}))
    return endpoint.client


def exchange(endpoint: RealtimeEndpoint, content: bytes, trace_number: str, payer_id: str,
             client_options: dict | None = None) -> EligibilityResponse:
    """Send the 270 ``content`` and return the 271's answer for ``trace_number``."""
    client = client_for(endpoint, client_options)
    payload_id = str(uuid.uuid4())
    now = datetime.fromtimestamp(client.clock.wall(), timezone.utc)
    response = client.post_form(request_fields(endpoint, content, payload_id, now), payer_id=payer_id)
    answer = read_answer(response, endpoint, payer_id)
    raise_for_error(answer, endpoint, payer_id)
    where = f"clearinghouse {endpoint.name}, payer {payer_id}"
    payload = answer.payload.encode("utf-8")
    try:
        kind = recognize(payload)
    except InputError as exc:
        raise PortalAnswerUnreadable("the answer's Payload has an ISA that cannot be read", where=where,
                                     fix=_FIX) from exc
    if kind is None:
        raise PortalAnswerUnreadable(f"the answer's Payload ({answer.payload_type or 'no PayloadType'}) is not X12",
                                     where=where, fix=_FIX)
    if kind.kind == "999":
        reasons = "; ".join(ack.describe() for ack in _read(read_999, payload, where))
        raise PortalRefusedRequest(f"the clearinghouse answered with a 999 instead of a 271: the 270 was rejected "
                                   f"({reasons})", where=where,
                                   fix="nothing was recorded; check the practice's ids in the file's [provider] "
                                       "and [envelope], then report the 999 to bhhub's maintainers")
    if kind.kind == "TA1":
        reasons = "; ".join(ack.describe() for ack in _read(read_ta1, payload, where))
        raise PortalRefusedRequest(f"the clearinghouse answered with a TA1 instead of a 271: the 270's envelope "
                                   f"was refused ({reasons})", where=where,
                                   fix=f"check [envelope] sender_id and receiver_id in {endpoint.source}")
    if kind.kind != "271":
        raise PortalAnswerUnreadable(f"the answer's Payload is a {kind.kind}, not a 271", where=where, fix=_FIX)
    responses = _read(read_271, payload, where)
    response = _ours(responses, trace_number, where)
    log.info("real-time %s (payer %s): answered, ISA13 %s, %d service types, %d rejections", endpoint.name, payer_id,
             response.interchange_control_number, len(response.benefits), len(response.rejections))
    return response


def _read(reader, payload: bytes, where: str):
    try:
        return reader(payload)
    except InputError as exc:
        raise PortalAnswerUnreadable(f"the answer's Payload cannot be read ({exc})", where=where, fix=_FIX) from exc


def _ours(responses: list[EligibilityResponse], trace_number: str, where: str) -> EligibilityResponse:
    """The answer carrying our TRN02; a refusal above the patient (no TRN at all) when it is alone."""
    matching = [r for r in responses if r.matches(trace_number)]
    if len(matching) == 1:
        return matching[0]
    if not matching and len(responses) == 1 and not responses[0].traces and responses[0].rejected:
        return responses[0]  # the payer refused before reaching the patient: nothing else to match
    problem = ("the 271 does not answer this inquiry: no TRN02 matches the one sent" if not matching
               else "the 271 answers this inquiry more than once")
    raise PortalAnswerUnreadable(problem, where=where, fix=_FIX)
