"""Signing in and out: password, then (admins and billers) the one-time code, enrolling it with a
QR code the first time. Every attempt, right or wrong, is an audit row (``bhhub.accounts`` writes
them); a wrong name, a wrong password and a locked account read the same to the visitor.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from bhhub.web import guard

router = APIRouter()


def _render(request: Request, name: str, context: dict, status: int = 200) -> Response:
    return request.app.state.templates.TemplateResponse(request, name, {"user": None, **context},
                                                        status_code=status)


def _pending(request: Request):
    """The session of someone who gave their password but not yet their code, or None."""
    from bhhub import accounts

    token = request.cookies.get(guard.SESSION_COOKIE)
    if not token:
        return None, None
    found = accounts.session_for(request.app.state.hub, token)
    return token, found


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    token, found = _pending(request)
    if found is not None and found.mfa_done:
        return RedirectResponse(guard.safe_next(next), status_code=303)
    pre, new = guard.login_token(request)
    response = _render(request, "login.html", {"csrf": pre, "next": guard.safe_next(next), "error": None})
    if new:
        guard.set_login_cookie(request, response, pre)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    from bhhub import accounts
    from bhhub.web.app import client_address

    form = await request.form()
    guard.check_csrf(request.cookies.get(guard.PRE_COOKIE) or "", form.get("csrf"))
    name, password = str(form.get("name") or ""), str(form.get("password") or "")
    target = guard.safe_next(str(form.get("next") or "/"))
    hub, source = request.app.state.hub, f"web:{client_address(request)}"
    try:
        signed = await run_in_threadpool(accounts.check_password, hub, name, password, source=source)
    except accounts.LoginRefused as exc:
        return _render(request, "login.html", {"csrf": form.get("csrf"), "next": target, "error": str(exc)},
                       status=401)
    old = request.cookies.get(guard.SESSION_COOKIE)
    if old:  # a new session for each sign-in: a token someone planted before it is worth nothing
        await run_in_threadpool(accounts.close_session, hub, old)
    token, _csrf = await run_in_threadpool(accounts.open_session, hub, signed.user_id,
                                           mfa_done=not signed.mfa_required, source=source)
    if not signed.mfa_required:
        go = target
    elif signed.totp_enrolled:
        go = f"/login/code?next={_quoted(target)}"
    else:
        go = f"/login/enrol?next={_quoted(target)}"
    response = RedirectResponse(go, status_code=303)
    guard.set_session_cookie(request, response, token)
    return response


def _quoted(target: str) -> str:
    from urllib.parse import quote

    return quote(target, safe="/")


@router.get("/login/code")
def code_form(request: Request, next: str = "/") -> Response:
    token, found = _pending(request)
    if found is None:
        return RedirectResponse("/login", status_code=303)
    if found.mfa_done:
        return RedirectResponse(guard.safe_next(next), status_code=303)
    return _render(request, "code.html", {"csrf": found.csrf_token, "next": guard.safe_next(next), "error": None})


@router.post("/login/code")
async def code(request: Request) -> Response:
    from bhhub import accounts
    from bhhub.web.app import client_address

    token, found = await run_in_threadpool(_pending, request)
    if found is None:
        return RedirectResponse("/login", status_code=303)
    form = await request.form()
    guard.check_csrf(found.csrf_token, form.get("csrf"))
    target = guard.safe_next(str(form.get("next") or "/"))
    hub = request.app.state.hub
    ok = await run_in_threadpool(accounts.check_totp, hub, found.user_id, str(form.get("code") or "").strip(),
                                 source=f"web:{client_address(request)}")
    if not ok:
        return _render(request, "code.html", {"csrf": found.csrf_token, "next": target,
                                              "error": "that code is not right (or was used already): "
                                                       "enter the one your app shows now"}, status=401)
    await run_in_threadpool(accounts.mark_mfa_done, hub, token)
    return RedirectResponse(target, status_code=303)


@router.get("/login/enrol")
def enrol_form(request: Request, next: str = "/") -> Response:
    from bhhub import accounts

    token, found = _pending(request)
    if found is None:
        return RedirectResponse("/login", status_code=303)
    if found.mfa_done:
        return RedirectResponse(guard.safe_next(next), status_code=303)
    enrolment = accounts.begin_totp(request.app.state.hub, found.user_id)
    return _render(request, "enrol.html", {"csrf": found.csrf_token, "next": guard.safe_next(next),
                                           "enrolment": enrolment, "seal": _seal(request, found, enrolment.secret),
                                           "error": None})


def _seal(request: Request, found, secret: str) -> str:
    """The server's mark on the secret it offered this session: the form carries the secret back
    (the page is the only place it lives until it is confirmed), and a secret the server did not
    offer (all zeros, one a script gives every account) is refused. Keyed by a random key of
    this server process: a restart only means scanning a new code."""
    import hashlib
    import hmac

    message = f"{found.id}:{found.user_id}:{secret}".encode()
    return hmac.new(request.app.state.enrol_key, message, hashlib.sha256).hexdigest()


@router.post("/login/enrol")
async def enrol(request: Request) -> Response:
    from bhhub import accounts
    from bhhub.web.app import client_address

    token, found = await run_in_threadpool(_pending, request)
    if found is None:
        return RedirectResponse("/login", status_code=303)
    form = await request.form()
    guard.check_csrf(found.csrf_token, form.get("csrf"))
    target = guard.safe_next(str(form.get("next") or "/"))
    hub = request.app.state.hub
    secret = str(form.get("secret") or "")
    if not hmac.compare_digest(_seal(request, found, secret), str(form.get("seal") or "")):
        raise guard.CsrfRefused()  # not the secret this server offered this session
    ok = await run_in_threadpool(accounts.finish_totp, hub, found.user_id, secret,
                                 str(form.get("code") or "").strip(), source=f"web:{client_address(request)}")
    if not ok:
        enrolment = await run_in_threadpool(accounts.begin_totp, hub, found.user_id)
        return _render(request, "enrol.html", {"csrf": found.csrf_token, "next": target, "enrolment": enrolment,
                                               "seal": _seal(request, found, enrolment.secret),
                                               "error": "that code did not match: scan this new code and "
                                                        "enter the one your app shows"}, status=401)
    await run_in_threadpool(accounts.mark_mfa_done, hub, token)
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    from bhhub import accounts

    token, found = await run_in_threadpool(_pending, request)
    if found is not None:
        form = await request.form()
        guard.check_csrf(found.csrf_token, form.get("csrf"))
        await run_in_threadpool(accounts.close_session, request.app.state.hub, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(guard.SESSION_COOKIE, path="/")
    return response
