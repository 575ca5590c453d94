"""The CAQH CORE Connectivity Rule vC2.2.0 (Phase II, "CORE 270") real-time envelope, HTTP MIME
multipart variant: the request's form fields, the answer's fields, and what each ErrorCode means.

    fields = request_fields(endpoint, payload, payload_id, now, password)
    answer = read_answer(response, endpoint, payer_id)     # CoreAnswer: payload type, error code, payload
    raise_for_error(answer, endpoint, payer_id)             # the portal error class for a non-Success code

A real-time request is one POST of ``multipart/form-data`` with the fields PayloadType
(``X12_270_Request_005010X279A1``), ProcessingMode (``RealTime``), PayloadID (a UUID),
TimeStamp (xsd:dateTime, UTC), UserName and Password (CORE's username/password submitter
authentication), SenderID, ReceiverID, CORERuleVersion (``2.2.0``) and Payload (the 270). The
answer is the same kind of form with PayloadType (the 271, or a 999 or TA1 when the 270 was
refused), the request's PayloadID, ErrorCode (``Success`` when the envelope was processed) and
ErrorMessage, and the Payload.

``CoreClient`` is ``PortalClient`` with a form POST: the same timeouts, deadline, retries on
429/502/503/504 honouring Retry-After, rate limit and OAuth2/API-key headers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.parser import BytesParser
from email.policy import HTTP
from typing import TYPE_CHECKING

from bhhub.connectors.http_api.client import (
    PortalAnswerUnreadable, PortalClient, PortalCredentialsError, PortalRefusedRequest, PortalUnavailable,
)

if TYPE_CHECKING:  # requests and urllib3 load when a form is sent, not with the plugin host
    import requests

log = logging.getLogger(__name__)

PAYLOAD_270 = "X12_270_Request_005010X279A1"
PAYLOAD_271 = "X12_271_Response_005010X279A1"
PAYLOAD_999 = "X12_999_Response_005010X231A1"
PAYLOAD_TA1 = "X12_TA1_Response_00501X231A1"
REAL_TIME = "RealTime"
RULE_VERSION = "2.2.0"
SUCCESS = "Success"

# ErrorCode → what the caller does. The rule names each envelope field's faults <Field>Required
# and <Field>Illegal; those and VersionMismatch are a fault in bhhub's request (or its ids).
CREDENTIALS_CODES = frozenset({"UnAuthorized"})
RETRIABLE_CODES = frozenset({"Busy", "ServerBusy", "Receiver.Busy"})
_ID_FIELDS = ("SenderID", "ReceiverID")
_FIX_UNREADABLE = "nothing was recorded; if it persists, ask the clearinghouse whether its real-time endpoint changed"


@dataclass(frozen=True)
class CoreAnswer:
    status: int  # HTTP status
    fields: dict[str, str] = field(repr=False)  # every form field; Payload may hold PHI

    @property
    def payload_type(self) -> str:
        return self.fields.get("PayloadType", "")

    @property
    def error_code(self) -> str:
        return self.fields.get("ErrorCode", "")

    @property
    def payload(self) -> str:
        return self.fields.get("Payload", "")


def timestamp(now: datetime) -> str:
    """xsd:dateTime in UTC, e.g. 2026-11-30T12:00:00Z."""
    return now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def request_fields(endpoint, payload: bytes, payload_id: str, now: datetime) -> dict[str, str]:
    """The real-time request's fields, in the rule's order (the password read now, never kept)."""
    fields = {"PayloadType": PAYLOAD_270, "ProcessingMode": REAL_TIME, "PayloadID": payload_id,
              "TimeStamp": timestamp(now)}
    if endpoint.username is not None:
        fields["UserName"] = endpoint.username
        fields["Password"] = endpoint.password.read(endpoint.name)
    fields |= {"SenderID": endpoint.core_sender_id, "ReceiverID": endpoint.core_receiver_id,
               "CORERuleVersion": RULE_VERSION, "Payload": payload.decode("ascii")}
    return fields


class CoreClient(PortalClient):
    """``PortalClient`` posting CORE forms instead of JSON (its sending, retries and auth reused)."""

    def post_form(self, fields: dict[str, str], *, payer_id: str) -> requests.Response:
        """POST ``fields`` as multipart/form-data to the endpoint; the response of a 2xx or 4xx
        (``PortalClient.post``: 401/403 and 5xx raise, naming the CORE ErrorCode if any)."""
        from urllib3 import encode_multipart_formdata

        body, content_type = encode_multipart_formdata(list(fields.items()))
        return self.post("", body, payer_id=payer_id, detail=_code_of,
                         headers={"Content-Type": content_type, "Accept": "multipart/form-data"})


def _code_of(response: requests.Response) -> str:
    """", ErrorCode X" when the body is a CORE form naming one; "" otherwise (never the message)."""
    try:
        code = parse_form(response.content, response.headers.get("Content-Type", "")).get("ErrorCode")
    except ValueError:
        return ""
    return f", {code}" if code and code.replace(".", "").isalnum() else ""


def parse_form(content: bytes, content_type: str) -> dict[str, str]:
    """The fields of a multipart/form-data body; ``ValueError`` when it is not one."""
    if not content_type.lower().startswith("multipart/"):
        raise ValueError(f"the answer is {content_type.split(';')[0] or 'of no stated type'}, not multipart")
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + content)
    if not message.is_multipart() or message.defects:
        raise ValueError("the multipart body cannot be read (no boundary, or cut short)")
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        data = part.get_payload(decode=True) or b""
        try:
            fields[str(name)] = data.decode(part.get_content_charset() or "utf-8").strip()
        except (UnicodeDecodeError, LookupError) as exc:
            raise ValueError(f"the field {name} is not text") from exc
    if not fields:
        raise ValueError("the multipart body has no named fields")
    return fields


def read_answer(response: requests.Response, endpoint, payer_id: str) -> CoreAnswer:
    """The CORE fields of an answer; ``PortalAnswerUnreadable`` when it is not a CORE form."""
    where = f"clearinghouse {endpoint.name}, payer {payer_id}, HTTP {response.status_code}"
    try:
        fields = parse_form(response.content, response.headers.get("Content-Type", ""))
    except ValueError as exc:
        raise PortalAnswerUnreadable(f"not a CORE real-time answer: {exc}", where=where, fix=_FIX_UNREADABLE) from exc
    if "ErrorCode" not in fields:
        raise PortalAnswerUnreadable("the CORE answer has no ErrorCode", where=where, fix=_FIX_UNREADABLE)
    return CoreAnswer(response.status_code, fields)


def raise_for_error(answer: CoreAnswer, endpoint, payer_id: str) -> None:
    """Nothing for ``Success``; else the portal error class the ErrorCode calls for. The server's
    ErrorMessage is left out: free text from elsewhere may echo what was sent."""
    code = answer.error_code
    if code == SUCCESS and answer.status < 400:
        return
    said = f"clearinghouse {endpoint.name} answered payer {payer_id}'s inquiry with ErrorCode {code or '(none)'} " \
           f"(HTTP {answer.status})"
    if code in CREDENTIALS_CODES:
        raise PortalCredentialsError(f"{said}: it does not accept bhhub's credentials; check the file's [auth] "
                                     "username and the password it names")
    if code in RETRIABLE_CODES:
        raise PortalUnavailable(f"{said}: busy; try again later")
    if code.startswith(_ID_FIELDS):
        raise PortalRefusedRequest(f"{said}: the CORE envelope's ids are wrong",
                                   fix=f"check [core] sender_id and receiver_id in {endpoint.source} against "
                                       "what the clearinghouse assigned")
    if code.endswith(("Required", "Illegal")) or code == "VersionMismatch":
        raise PortalRefusedRequest(f"{said}: it refused the CORE envelope bhhub sent",
                                   fix="nothing was recorded; report it to bhhub's maintainers with the error code")
    raise PortalRefusedRequest(f"{said}: not a code bhhub knows", fix="nothing was recorded; ask the clearinghouse "
                                                                        "what the error code means")
