"""The practice workspace: an ASGI app (FastAPI) over the hub's store, served by ``bhhub serve``.

A thin layer: every page and every ``/api/`` answer is what a function the CLI's ``--json`` also
prints returns (``bhhub.web.pages``, ``bhhub.web.api``); the app adds who may see it
(``bhhub.web.guard``: sessions, second factor, CSRF, roles), the audit row of each view and
action, security headers, and templates. Nothing here computes a figure or applies a rule.

Requests run in FastAPI's thread pool (the handlers are plain functions): the store's
SQLAlchemy engine is shared, each request opens its own session.
"""

from __future__ import annotations

import copy
import logging
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from bhhub.errors import HubError, InputError, UsageError
from bhhub.runtime.app import Hub
from bhhub.web import charts
from bhhub.web.guard import CsrfRefused, Forbidden, LoginNeeded

log = logging.getLogger("bhhub.web")

# Every answer: no framing (clickjacking), no sniffing, no referrer leaving the hub, nothing
# loaded from anywhere but the hub itself (no CDN: PHI pages call no third party), and pages
# that hold PHI kept out of caches.
SECURITY_HEADERS = {
    "content-security-policy": ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "cache-control": "no-store",
}


def _folder(name: str) -> Path:
    return Path(str(resources.files("bhhub.web") / name))


def create_app(hub: Hub) -> FastAPI:
    """The workspace over ``hub`` (opened by the caller, closed by it)."""
    from contextlib import asynccontextmanager

    from bhhub.web.figures import Figures

    figures = Figures(hub)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        figures.start()  # the overview's first figures, computed while the server starts
        yield

    # No Swagger or ReDoc pages: both load their script from a CDN. The OpenAPI document itself
    # is served behind the login (bhhub.web.api) for a vendor's code generator.
    app = FastAPI(title="bhhub workspace", version=_version(), docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan,
                  description="What the workspace's pages show, as JSON: the same objects `bhhub ... --json` prints. "
                              "Sign in through /login first; the session cookie authorises these calls, and a "
                              "POST carries the session's CSRF token in the X-CSRF-Token header.")
    app.state.hub = hub
    app.state.figures = figures
    templates = Jinja2Templates(directory=str(_folder("templates")))
    templates.env.globals.update(bars=charts.bars, stacked=charts.stacked, line=charts.line,
                                 pipeline_items=charts.pipeline_items, aging_rows=charts.aging_rows,
                                 trend_points=charts.trend_points, burn_points=charts.burn_points)
    templates.env.filters["money"] = _money
    templates.env.filters["rate"] = _rate
    templates.env.filters["when"] = _when
    app.state.templates = templates
    app.mount("/static", StaticFiles(directory=str(_folder("static"))), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.scheme == "https":
            response.headers.setdefault("strict-transport-security", "max-age=31536000")
        return response

    @app.exception_handler(LoginNeeded)
    async def login_needed(request: Request, exc: LoginNeeded):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.reason}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(f"{exc.to}?{_next(target)}", status_code=303)
        if exc.clear_cookie:
            from bhhub.web.guard import SESSION_COOKIE

            response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, exc: CsrfRefused):
        return _problem(request, 403, "this form has expired or did not come from this workspace: "
                                      "reload the page and try again")

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden):
        return _problem(request, 403, str(exc))

    @app.exception_handler(UsageError)
    async def refused(request: Request, exc: UsageError):
        return _problem(request, 400, str(exc))

    @app.exception_handler(InputError)
    async def input_refused(request: Request, exc: InputError):
        return _problem(request, 400, str(exc))

    @app.exception_handler(HubError)
    async def hub_error(request: Request, exc: HubError):
        log.error("request %s failed: %s", request.url.path, type(exc).__name__)
        return _problem(request, 500, "the hub could not do this; the log names the cause")

    from bhhub.web import api, login, pages

    app.include_router(login.router)
    app.include_router(pages.router)
    app.include_router(api.router)
    return app


def _problem(request: Request, status: int, message: str) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=status)
    templates = request.app.state.templates
    return templates.TemplateResponse(request, "problem.html", {"message": message, "user": None},
                                      status_code=status)


def _next(target: str) -> str:
    from urllib.parse import urlencode

    return urlencode({"next": target})


def request_hub(request: Request, user_name: str) -> Hub:
    """The app's hub as this request's user: every ``hub.audit`` row a capability writes while
    serving it names the user and where they are (``web:ADDRESS``), not the server's account.
    A shallow copy: the store, plugins and mappings are the app's."""
    hub = copy.copy(request.app.state.hub)
    hub.actor = f"web:{user_name}"
    hub.source = f"web:{client_address(request)}"
    return hub


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _money(value) -> str:
    if value is None or value == "":
        return "-"
    return f"${float(value):,.2f}"


def _rate(value) -> str:
    if value is None:
        return "-"
    return f"{float(value) * 100:.1f}%"


def _when(value) -> str:
    """A stored time to the minute, in UTC, said so (the hub keeps UTC; SQLite drops the zone)."""
    from datetime import datetime, timezone

    if value is None or value == "":
        return "-"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(value, datetime):
        return str(value)
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _version() -> str:
    from bhhub import __version__

    return __version__
