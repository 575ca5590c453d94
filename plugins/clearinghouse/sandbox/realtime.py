"""The sandbox's real-time eligibility endpoint: CAQH CORE vC2.2.0 HTTP MIME multipart on 127.0.0.1.

    with RealtimeSandbox(rules, state, password="...") as endpoint:   # port 0: a free port
        endpoint.url                  # http://127.0.0.1:PORT/core/realtime
        endpoint.throttle(2, retry_after=3)   # the next 2 requests get 429 with Retry-After: 3
        endpoint.requests             # how many POSTs it has seen

A real HTTP server (``http.server.ThreadingHTTPServer`` in a thread). A POST of the CORE
real-time form is checked as a CORE server would: every field present (else HTTP 400 with
``<Field>Required``), the UserName and Password (else 401 ``UnAuthorized``), then the values
(``ProcessingModeIllegal``, ``PayloadTypeIllegal``, ``PayloadIDIllegal`` (not a UUID),
``TimeStampIllegal``, ``ReceiverIDIllegal`` (not the sandbox's id), ``VersionMismatch``).
A good envelope is answered (200, ``Success``) like an uploaded 270, with the same rules and
writers (``inquiries``): a TA1 for a bad interchange envelope, a 999 for a 270 with structural
faults, else the 271 the ``[eligibility]`` rules give. Unlike the mailbox, a repeated ISA13 is
answered again: a real-time client retries the same request after a timeout, and CORE ties
the answer to the PayloadID.

Its log lines carry the PayloadID, HTTP statuses and error codes: never a field's value.
"""

from __future__ import annotations

import logging
import secrets
import threading
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timezone
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bhhub.errors import InputError

from bhhub.plugins.clearinghouse.sandbox.interchange import envelope_fault
from bhhub.plugins.clearinghouse.sandbox.inquiries import _coverage
from bhhub.plugins.clearinghouse.sandbox.inquiry_reader import ELIGIBILITY_GUIDE, read_inquiries
from bhhub.plugins.clearinghouse.sandbox.inquiry_writers import EligibilityAnswer, write_271
from bhhub.plugins.clearinghouse.sandbox.reader import read_interchange_header
from bhhub.plugins.clearinghouse.sandbox.rules import Rules
from bhhub.plugins.clearinghouse.sandbox.state import SandboxState
from bhhub.plugins.clearinghouse.sandbox.writers import ReplyEnvelope, write_999, write_ta1

log = logging.getLogger(__name__)

PATH = "/core/realtime"
HOST = "127.0.0.1"
MAX_BODY = 1_000_000  # a real-time 270 is a few hundred bytes
REQUIRED = ("PayloadType", "ProcessingMode", "PayloadID", "TimeStamp", "SenderID", "ReceiverID",
            "CORERuleVersion", "Payload")
REQUEST_TYPE = "X12_270_Request_005010X279A1"
ANSWER_TYPES = {"271": "X12_271_Response_005010X279A1", "999": "X12_999_Response_005010X231A1",
                "ta1": "X12_TA1_Response_00501X231A1"}


class RealtimeSandbox:
    """The endpoint; shares the mailbox's rules and state (its control numbers) when started by it."""

    def __init__(self, rules: Rules, state: SandboxState, *, port: int = 0, username: str = "bhhub",
                 password: str | None = None, today: date | datetime | None = None):
        self.rules, self.state, self.today = rules, state, today
        self.username = username
        self.password = password or secrets.token_urlsafe(18)
        self.requests = 0
        self._throttled = 0
        self._retry_after = 1
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((HOST, port), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}{PATH}"

    def throttle(self, count: int, retry_after: int = 1) -> None:
        """Answer the next ``count`` requests with 429 and ``Retry-After: retry_after``."""
        with self._lock:
            self._throttled, self._retry_after = count, retry_after

    def start(self) -> RealtimeSandbox:
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox-realtime", daemon=True)
        self._thread.start()
        log.info("sandbox real-time endpoint listening on %s", self.url)
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> RealtimeSandbox:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- one request --------------------------------------------------------------------------

    def _take_throttle(self) -> int | None:
        with self._lock:
            self.requests += 1
            if self._throttled > 0:
                self._throttled -= 1
                return self._retry_after
            return None

    def answer(self, fields: dict[str, str]) -> tuple[int, dict[str, str]]:
        """The HTTP status and CORE fields answering a request's ``fields``."""
        for name in REQUIRED:
            if not fields.get(name):
                return 400, self._fields(fields, f"{name}Required", f"{name} is required")
        if not (secrets.compare_digest(fields.get("UserName", ""), self.username)
                and secrets.compare_digest(fields.get("Password", ""), self.password)):
            return 401, self._fields(fields, "UnAuthorized", "UserName or Password not accepted")
        problem = self._envelope_problem(fields)
        if problem is not None:
            return 400, self._fields(fields, *problem)
        kind, payload = answer_270(fields["Payload"].encode("utf-8"), self.rules, self.state, self._now())
        if kind is None:
            return 400, self._fields(fields, "PayloadIllegal", "the Payload is not an X12 interchange")
        return 200, self._fields(fields, "Success", "", payload_type=ANSWER_TYPES[kind], payload=payload)

    def _envelope_problem(self, fields: dict[str, str]) -> tuple[str, str] | None:
        if fields["ProcessingMode"] != "RealTime":
            return "ProcessingModeIllegal", "only RealTime is served here"
        if fields["PayloadType"] != REQUEST_TYPE:
            return "PayloadTypeIllegal", f"only {REQUEST_TYPE} is served here"
        if fields["CORERuleVersion"] != "2.2.0":
            return "VersionMismatch", "CORERuleVersion 2.2.0 is served here"
        try:
            uuid.UUID(fields["PayloadID"])
        except ValueError:
            return "PayloadIDIllegal", "PayloadID must be a UUID"
        try:
            datetime.strptime(fields["TimeStamp"], "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            return "TimeStampIllegal", "TimeStamp must be an xsd:dateTime in UTC"
        if fields["ReceiverID"] != self.rules.clearinghouse_id:
            return "ReceiverIDIllegal", f"ReceiverID must be {self.rules.clearinghouse_id}"
        return None

    def _fields(self, request: dict[str, str], code: str, message: str, *, payload_type: str = "",
                payload: bytes = b"") -> dict[str, str]:
        return {"PayloadType": payload_type or "CoreEnvelopeError", "ProcessingMode": "RealTime",
                "PayloadID": request.get("PayloadID", ""),
                "TimeStamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "SenderID": self.rules.clearinghouse_id, "ReceiverID": request.get("SenderID", ""),
                "CORERuleVersion": "2.2.0", "ErrorCode": code, "ErrorMessage": message,
                **({"Payload": payload.decode("ascii")} if payload else {})}

    def _now(self) -> datetime:
        if isinstance(self.today, datetime):
            return self.today
        if isinstance(self.today, date):
            return datetime.combine(self.today, time(12, 0))
        return datetime.now().replace(second=0, microsecond=0)


def answer_270(content: bytes, rules: Rules, state: SandboxState, now: datetime) -> tuple[str | None, bytes]:
    """("ta1" | "999" | "271", its bytes) answering one real-time 270; (None, b"") for content
    with no readable ISA. The mailbox's checks and writers (``inquiries``), without its
    duplicate check and without the 999 that precedes a batch 271."""
    try:
        header = read_interchange_header(content)
        upload = read_inquiries(content)
    except (InputError, StopIteration):
        return None, b""
    if len(header.control_number) != 9 or not header.control_number.isdigit():
        return None, b""  # no TA1 can name it (as the mailbox decides)
    envelope = upload.envelope
    fault = envelope_fault(envelope, upload.groups, upload.ends_with_iea, rules, {"HS": ELIGIBILITY_GUIDE})
    if fault is not None:
        reply = ReplyEnvelope.answering(envelope, rules, now, state.next_control_number())
        return "ta1", write_ta1(envelope, reply, accepted=False, note_code=fault)
    reply = ReplyEnvelope.answering(envelope, rules, now, state.next_control_number(),
                                    upload.groups[0].application_sender)
    findings = upload.findings()
    accepted = [t for t in upload.transactions if t.accepted and t.questions]
    if findings is not None or not accepted:
        return "999", write_999(upload.groups, findings, reply)
    answered = [(t, [EligibilityAnswer(q, _coverage(q, rules)) for q in t.questions]) for t in accepted]
    return "271", write_271(answered, reply, rules.eligibility.plan_begin)


def _encode(fields: dict[str, str]) -> tuple[bytes, str]:
    """multipart/form-data written by hand (the client decodes it with the email package)."""
    boundary = f"sandbox-{uuid.uuid4().hex}"
    out = bytearray()
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode("ascii")
        out += value.encode("utf-8") + b"\r\n"
    out += f"--{boundary}--\r\n".encode("ascii")
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def _decode(body: bytes, content_type: str) -> dict[str, str] | None:
    """The form's fields; None when the body is not multipart/form-data."""
    if not content_type.lower().startswith("multipart/form-data"):
        return None
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not message.is_multipart():
        return None
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[str(name)] = (part.get_payload(decode=True) or b"").decode("utf-8", "replace").strip()
    return fields


def _handler(sandbox: RealtimeSandbox) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "bhhub-sandbox-realtime"
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            if self.path != PATH:
                return self._send(404, b"not found\n", "text/plain")
            retry_after = sandbox._take_throttle()
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._send(413, b"too large\n", "text/plain", close=True)
            body = self.rfile.read(length)
            if retry_after is not None:
                log.info("sandbox real-time: throttled (429, Retry-After %d)", retry_after)
                return self._send(429, b"slow down\n", "text/plain", headers={"Retry-After": str(retry_after)})
            fields = _decode(body, self.headers.get("Content-Type", "")) or {}
            try:
                status, answer = sandbox.answer(fields)
            except Exception as exc:  # noqa: BLE001 - a bug answers 500, the server keeps serving
                log.error("sandbox real-time: could not answer (%s)", type(exc).__name__)
                return self._send(500, b"internal error\n", "text/plain")
            log.info("sandbox real-time: PayloadID %s answered HTTP %d, %s, %s", answer.get("PayloadID") or "-",
                     status, answer["ErrorCode"], answer["PayloadType"])
            content, content_type = _encode(answer)
            self._send(status, content, content_type)

        def do_GET(self) -> None:  # noqa: N802
            self._send(405, b"POST the CORE real-time form\n", "text/plain", headers={"Allow": "POST"})

        def _send(self, status: int, content: bytes, content_type: str, *, headers: dict | None = None,
                  close: bool = False) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(content)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
            log.debug("sandbox real-time: %s", format % args)  # method, path and status only

    return Handler
