"""``PortalClient``: one payer portal over ``requests.Session``, polite and bounded.

    client = PortalClient(connection)            # one per portal, kept between checks
    answer = client.post_json("/eligibility", body, payer_id="60054")
    answer.status, answer.data                   # 2xx: parsed JSON; 4xx: JSON or None

What it does for every call:

* OAuth2 client credentials (RFC 6749 4.4): the token is fetched from ``[auth] token_url`` with
  the client id and secret from the environment or files, cached until shortly before it
  expires; a 401 refreshes it once, a second 401 is a ``PortalCredentialsError``.
* A connect and read timeout on every request; a deadline for the whole check
  (``[limits] deadline_seconds``) covering every attempt and every wait.
* Retries on 429, 502, 503, 504, timeouts and connection errors, up to ``max_attempts``, with
  exponential backoff and jitter; a ``Retry-After`` (seconds or HTTP date) is waited instead,
  unless it is longer than ``max_retry_after_seconds``: then the check ends with
  ``PortalUnavailable`` (retry later) rather than asking again before the portal said to.
* A per-portal rate limit (token buckets, requests per second and per minute).
* A 2xx that is not JSON (an HTML error page, truncated JSON) is ``PortalAnswerUnreadable``.

Errors, drawn by what the caller does (all ``bhhub.errors``)::

    InputError
     ├── PortalAnswerUnreadable   the portal answered something that is not JSON (or not the shape)
     └── PortalRefusedRequest     the portal refused the question (4xx): check the patient's details
    RetriableError
     └── PortalUnavailable        throttled, timed out or 5xx until attempts or the deadline ran out
    ConfigError (FatalError)
     └── PortalCredentialsError   no credentials, or the portal refuses them (401 after a refresh, 403)

Messages and logs name the portal, the payer id, HTTP statuses and attempt counts: never a
member id, a name, a birth date, a token or a secret. The clock (``monotonic``, ``sleep``,
``wall``) and the jitter's random source are injectable, so tests wait for nothing.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from bhhub.errors import ConfigError, InputError, RetriableError

from bhhub.connectors.http_api.connection import Connection

if TYPE_CHECKING:  # requests loads with the first portal client, not with the plugin host
    import requests

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
_OAUTH_ERRORS = frozenset({"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                           "unsupported_grant_type", "invalid_scope"})  # RFC 6749 5.2: safe to name
_TOKEN_MARGIN = 60.0  # refresh this long before expiry (half the lifetime for short-lived tokens)
_DEFAULT_TOKEN_LIFETIME = 300.0  # when the token endpoint gives no expires_in


class PortalAnswerUnreadable(InputError):
    """The portal answered, but not with what bhhub can read. No record is made."""


class PortalRefusedRequest(InputError):
    """The portal refused the question itself (HTTP 4xx)."""


class PortalUnavailable(RetriableError):
    """The portal did not answer usefully before attempts or the deadline ran out."""

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after  # seconds the portal asked for, when it did


class PortalCredentialsError(ConfigError):
    """Credentials are missing, or the portal does not accept them."""


class SystemClock:
    """The real clock. Tests pass an object with the same three methods."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def wall(self) -> float:
        return time.time()


@dataclass(frozen=True)
class PortalAnswer:
    status: int
    data: Any  # parsed JSON; None for a 4xx whose body is not JSON


class _Bucket:
    """A token bucket: ``capacity`` requests at once, refilled at ``rate`` per second."""

    def __init__(self, rate: float, capacity: float, now: float):
        self.rate, self.capacity, self.tokens, self.updated = rate, capacity, capacity, now

    def wait(self, now: float) -> float:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        # a tolerance: after waiting exactly (1 - tokens) / rate, float rounding may leave 0.9999999
        return 0.0 if self.tokens >= 1 - 1e-6 else (1 - self.tokens) / self.rate


class RateLimiter:
    """Requests per second and per minute for one portal, shared by every check against it."""

    def __init__(self, per_second: float | None, per_minute: float | None, clock):
        self.clock = clock
        now = clock.monotonic()
        self.buckets = [_Bucket(r, max(1.0, r), now) for r in (per_second,) if r] + [
            _Bucket(r / 60, max(1.0, r), now) for r in (per_minute,) if r]
        self.lock = threading.Lock()

    def acquire(self, deadline: float, fail: Callable[[str], Exception]) -> None:
        with self.lock:  # held while waiting: the next caller is spaced after this one
            while True:
                now = self.clock.monotonic()
                wait = max((b.wait(now) for b in self.buckets), default=0.0)
                if wait <= 0:
                    for bucket in self.buckets:
                        bucket.tokens -= 1
                    return
                if now + wait > deadline:
                    raise fail("its rate limit would delay the request past the check's deadline")
                self.clock.sleep(wait)


class PortalClient:
    """One payer portal: a session, its token, its rate limit."""

    def __init__(self, connection: Connection, *, clock=None, session: requests.Session | None = None,
                 jitter: Callable[[], float] = random.random):
        self.connection = connection
        self.clock = clock or SystemClock()
        if session is None:
            import requests

            session = requests.Session()
        self.session = session
        self.jitter = jitter
        limits = connection.limits
        self.limiter = RateLimiter(limits.requests_per_second, limits.requests_per_minute, self.clock)
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.connection.name

    # --- the one call plugins make -----------------------------------------------------------

    def post_json(self, path: str, body: Any, *, payer_id: str, content_type: str = "application/json",
                  accept: str = "application/json") -> PortalAnswer:
        """POST ``body`` to ``base_url + path``; the JSON answer of a 2xx or 4xx (401/403 and the
        retried statuses excepted). Raises the errors drawn at the top of this module."""
        response = self.post(path, json.dumps(body).encode("utf-8"), payer_id=payer_id,
                             headers={"Content-Type": content_type, "Accept": accept})
        if 200 <= response.status_code < 300:
            return PortalAnswer(response.status_code, self._json(response, payer_id))
        try:
            parsed = self._json(response, payer_id)
        except PortalAnswerUnreadable:
            parsed = None
        return PortalAnswer(response.status_code, parsed)

    def post(self, path: str, data: bytes, *, payer_id: str, headers: dict[str, str],
             detail: Callable[[requests.Response], str] | None = None) -> requests.Response:
        """POST ``data`` to ``base_url + path`` with the portal's auth, deadline, retries and
        rate limit; the response of a 2xx or 4xx. 401/403 (after one token refresh) raise
        ``PortalCredentialsError`` and 5xx ``PortalUnavailable``; ``refused`` is added to
        their messages with ``detail(response)`` (e.g. an error code the body names, never its
        free text)."""
        deadline = self.clock.monotonic() + self.connection.limits.deadline
        url = self.connection.base_url + path
        response = self._send("POST", url, payer_id, deadline, limited=True, data=data,
                              headers={**headers, **self._auth_headers(payer_id, deadline)})
        if response.status_code == 401 and self.connection.auth.type == "oauth2_client_credentials":
            log.info("portal %s (payer %s): HTTP 401, refreshing the access token once", self.name, payer_id)
            self._forget_token()
            response = self._send("POST", url, payer_id, deadline, limited=True, data=data,
                                  headers={**headers, **self._auth_headers(payer_id, deadline)})
        failed = response.status_code in (401, 403) or response.status_code >= 500
        extra = detail(response) if detail is not None and failed else ""
        if response.status_code in (401, 403):
            raise PortalCredentialsError(
                f"portal {self.name} refused bhhub's credentials for payer {payer_id} "
                f"(HTTP {response.status_code}{extra})"
                + (" even after a new access token" if response.status_code == 401
                   and self.connection.auth.type == "oauth2_client_credentials" else "")
                + "; check the file's [auth] and the secret it names",
            )
        if response.status_code >= 500:
            raise PortalUnavailable(f"portal {self.name} failed for payer {payer_id} "
                                    f"(HTTP {response.status_code}{extra})"
                                    "; try again later")
        return response

    # --- sending, with retries ---------------------------------------------------------------

    def _send(self, method: str, url: str, payer_id: str, deadline: float, *, limited: bool,
              what: str = "request", **kwargs: Any) -> requests.Response:
        limits = self.connection.limits
        attempt = 0
        while True:
            attempt += 1
            if limited:
                self.limiter.acquire(deadline, lambda why: self._unavailable(payer_id, why, attempt - 1))
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                raise self._unavailable(payer_id, "the check's deadline passed", attempt - 1)
            timeout = (min(limits.connect_timeout, remaining), min(limits.read_timeout, remaining))
            retry_after: float | None = None
            import requests

            try:
                response = self.session.request(method, url, timeout=timeout, allow_redirects=False, **kwargs)
            except requests.Timeout as exc:
                problem, cause = "timed out", exc
            except requests.ConnectionError as exc:
                problem, cause = "could not be reached", exc
            except requests.RequestException as exc:  # an invalid URL, too many redirects...
                raise PortalUnavailable(f"portal {self.name}: the {what} for payer {payer_id} failed "
                                        f"({type(exc).__name__})") from exc
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                problem, cause = f"answered HTTP {response.status_code}", None
                retry_after = self._retry_after(response.headers.get("Retry-After"))
            if attempt >= limits.max_attempts:
                raise self._unavailable(payer_id, f"{problem} on every attempt", attempt) from cause
            if retry_after is not None and retry_after > limits.max_retry_after:
                raise PortalUnavailable(
                    f"portal {self.name} {problem} for payer {payer_id} and asked to wait {retry_after:.0f} s, "
                    f"more than the {limits.max_retry_after:.0f} s allowed (limits.max_retry_after_seconds); "
                    "try again later", retry_after=retry_after) from cause
            wait = retry_after if retry_after is not None else self._backoff(attempt)
            if self.clock.monotonic() + wait > deadline:
                raise self._unavailable(payer_id, f"{problem}, and waiting {wait:.1f} s more would pass the "
                                        "check's deadline", attempt) from cause
            log.warning("portal %s (payer %s): %s %s, attempt %d of %d; waiting %.1f s", self.name, payer_id,
                        what, problem, attempt, limits.max_attempts, wait)
            self.clock.sleep(wait)

    def _backoff(self, attempt: int) -> float:
        limits = self.connection.limits
        ceiling = min(limits.max_backoff, limits.backoff * 2 ** (attempt - 1))
        return ceiling * (0.5 + self.jitter() / 2)  # "equal jitter": never zero, never in lockstep

    def _retry_after(self, value: str | None) -> float | None:
        """Retry-After as seconds from now (RFC 9110 10.2.3: delay-seconds or an HTTP date)."""
        if not value:
            return None
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return max(0.0, when.timestamp() - self.clock.wall())

    def _unavailable(self, payer_id: str, why: str, attempts: int) -> PortalUnavailable:
        return PortalUnavailable(f"portal {self.name} did not answer for payer {payer_id}: {why} "
                                 f"({attempts} attempt{'s' if attempts != 1 else ''}); try again later")

    # --- answers -----------------------------------------------------------------------------

    def _json(self, response: requests.Response, payer_id: str) -> Any:
        content = response.content
        where = f"portal {self.name}, payer {payer_id}, HTTP {response.status_code}"
        fix = "nothing was recorded; if it persists, ask the payer whether the API changed"
        kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind == "text/html" or content.lstrip()[:1] == b"<":
            raise PortalAnswerUnreadable("the portal answered with a web page, not JSON", where=where, fix=fix)
        try:
            return json.loads(content.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise PortalAnswerUnreadable(f"the answer is not UTF-8 text (byte {exc.start})", where=where,
                                         fix=fix) from exc
        except json.JSONDecodeError as exc:
            # a string left open, or an error at the very end: the answer stopped mid-way
            cut = exc.pos >= len(content.rstrip()) - 1 or exc.msg.startswith("Unterminated")
            problem = (f"the JSON answer is cut short (at character {exc.pos})" if cut
                       else f"the answer is not JSON ({exc.msg}: character {exc.pos})")
            raise PortalAnswerUnreadable(problem, where=where, fix=fix) from exc

    # --- credentials -------------------------------------------------------------------------

    def _auth_headers(self, payer_id: str, deadline: float) -> dict[str, str]:
        auth = self.connection.auth
        if auth.type == "api_key":
            return {auth.api_key_header: auth.api_key.read(self.name)}
        if auth.type == "oauth2_client_credentials":
            return {"Authorization": f"Bearer {self._access_token(payer_id, deadline)}"}
        return {}

    def _forget_token(self) -> None:
        with self._token_lock:
            self._token, self._token_expires = None, 0.0

    def _access_token(self, payer_id: str, deadline: float) -> str:
        with self._token_lock:
            if self._token and self.clock.monotonic() < self._token_expires:
                return self._token
            auth = self.connection.auth
            client_id, secret = auth.client_id.read(self.name), auth.client_secret.read(self.name)
            form = {"grant_type": "client_credentials"}
            if auth.scope:
                form["scope"] = auth.scope
            kwargs: dict[str, Any] = {"data": form, "headers": {"Accept": "application/json"}}
            if auth.client_auth == "body":
                form.update(client_id=client_id, client_secret=secret)
            else:
                kwargs["auth"] = (client_id, secret)
            started = self.clock.monotonic()
            response = self._send("POST", auth.token_url, payer_id, deadline, limited=False,
                                  what="token request", **kwargs)
            if response.status_code != 200:
                code = _oauth_error(response)
                raise PortalCredentialsError(
                    f"portal {self.name}: the token endpoint refused the client credentials "
                    f"(HTTP {response.status_code}{', ' + code if code else ''})")
            data = self._json(response, payer_id)
            token = data.get("access_token") if isinstance(data, dict) else None
            if not isinstance(token, str) or not token:
                raise PortalAnswerUnreadable("the token endpoint's answer has no access_token",
                                             where=f"portal {self.name}", fix="check [auth] token_url")
            lifetime = data.get("expires_in", _DEFAULT_TOKEN_LIFETIME)
            if not isinstance(lifetime, (int, float)) or isinstance(lifetime, bool) or lifetime <= 0:
                lifetime = _DEFAULT_TOKEN_LIFETIME
            self._token = token
            self._token_expires = started + lifetime - min(_TOKEN_MARGIN, lifetime / 2)
            return token


def _oauth_error(response: requests.Response) -> str | None:
    try:
        code = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    return code if code in _OAUTH_ERRORS else None
