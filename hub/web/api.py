"""``/api/``: what each page shows, as JSON, the objects ``bhhub ... --json`` prints (money as
dollars, dates as ``YYYY-MM-DD``: ``bhhub.common.jsontext``). The browser's session authorises
a call; an action's POST carries the session's CSRF token in ``X-CSRF-Token``. A viewer's
answers carry no PHI, as on the pages.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from bhhub.common.jsontext import dumps
from bhhub.errors import InputError, UsageError
from bhhub.web import guard, views
from bhhub.web.guard import Visitor

router = APIRouter(prefix="/api", tags=["workspace"])


class JSONText(Response):
    media_type = "application/json"


def _answer(request: Request, who: Visitor, data: Any) -> Response:
    views.audit_view(who, request.url.path)
    return JSONText(dumps(views.shown(who, data)))


@router.get("/overview", summary="the pipeline, A/R with figures and formulas, 12 months of figures, open alerts")
def overview(request: Request, who: Visitor = Depends(guard.visitor)) -> Response:
    return _answer(request, who, views.overview(who, request.app.state.figures))


@router.get("/claims", summary="a page of claims as `bhhub claims --json`; next_cursor is the next page's `after`")
def claims(request: Request, status: str | None = None, payer: str | None = None, provider: str | None = None,
           patient: int | None = None, since: str | None = None, until: str | None = None,
           after: str | None = None, limit: int = 50, who: Visitor = Depends(guard.visitor)) -> Response:
    if not 0 < limit <= 1000:
        raise UsageError("limit must be 1-1000")
    data = views.claims(who, status=status, payer=payer, provider=provider, patient=patient,
                        since=views.day(since, "since"), until=views.day(until, "until"), after=after, limit=limit)
    return _answer(request, who, data)


@router.get("/claims/{pcn}", summary="one claim with its lines, findings, history and 837P segments")
def claim(request: Request, pcn: str, who: Visitor = Depends(guard.visitor)) -> Response:
    data = views.claim(who, pcn)
    if data is None:
        return JSONText(dumps({"error": f"no claim {pcn}"}), status_code=404)
    return _answer(request, who, data)


@router.get("/work", summary="the denial worklist with its actions, and the claims that need attention")
def work(request: Request, who: Visitor = Depends(guard.visitor)) -> Response:
    return _answer(request, who, views.work(who))


@router.post("/denials/{denial_id}", summary="take a worklist action on a denial: form or JSON {action, note}")
async def act_on_denial(request: Request, denial_id: int, who: Visitor = Depends(guard.acting)) -> Response:
    from bhhub.remittance.worklist import act_on_denial

    guard.check_csrf(who.csrf, request.headers.get("x-csrf-token"))
    body = await _body(request)
    try:
        done = await run_in_threadpool(act_on_denial, who.hub, denial_id, str(body.get("action") or ""),
                                       (str(body.get("note") or "").strip() or None))
    except InputError as exc:
        raise UsageError(str(exc)) from exc
    return JSONText(dumps(views.shown(who, done)))


@router.get("/authorizations", summary="authorizations: used, left, days to expiry, burn-down, run-out")
def authorizations(request: Request, who: Visitor = Depends(guard.visitor)) -> Response:
    return _answer(request, who, views.authorizations(who))


@router.get("/inbox", summary="received and quarantined items (a page) and each mailbox's status")
def inbox(request: Request, state: str | None = None, after: str | None = None, limit: int = 100,
          who: Visitor = Depends(guard.visitor)) -> Response:
    if state and state not in ("received", "processed", "quarantined"):
        raise UsageError("state must be received, processed or quarantined")
    return _answer(request, who, views.inbox(who, state=state, after=after, limit=limit))


@router.post("/inbox/{item_id}/retry", summary="process a quarantined item again")
async def retry(request: Request, item_id: int, who: Visitor = Depends(guard.acting)) -> Response:
    from bhhub.intake import inbox as intake

    guard.check_csrf(who.csrf, request.headers.get("x-csrf-token"))
    try:
        result = await run_in_threadpool(intake.retry, who.hub, item_id)
    except InputError as exc:
        raise UsageError(str(exc)) from exc
    await run_in_threadpool(views.audit_retry, who, item_id, result)
    return JSONText(dumps(result.to_json()))


@router.get("/eligibility", summary="the last eligibility answer per patient and coverage")
def eligibility(request: Request, who: Visitor = Depends(guard.visitor)) -> Response:
    return _answer(request, who, views.eligibility(who))


@router.get("/openapi.json", summary="this API described as OpenAPI 3 (for code generators)")
def openapi(request: Request, who: Visitor = Depends(guard.visitor)) -> Response:
    return JSONText(dumps(request.app.openapi()))


async def _body(request: Request) -> dict:
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            found = await request.json()
        except ValueError:
            raise UsageError("the body is not JSON") from None
        if not isinstance(found, dict):
            raise UsageError("the body must be a JSON object")
        return found
    return dict(await request.form())
