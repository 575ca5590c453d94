"""The workspace's pages: each renders the object its ``/api/`` twin returns (``bhhub.web.views``).

Reads are GETs any signed-in user may make (a viewer's copy has no PHI); actions are POSTs from
forms that carry the session's CSRF token, open to billers and admins, and each lands in the
audit trail under the user's name through the capability it calls.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from bhhub.errors import InputError, UsageError
from bhhub.web import guard, views
from bhhub.web.guard import Visitor

router = APIRouter()


def _render(request: Request, who: Visitor, name: str, page: str, context: dict) -> Response:
    views.audit_view(who, request.url.path)
    return request.app.state.templates.TemplateResponse(
        request, name, {"user": who, "page": page, "notice": request.query_params.get("done"), **context})


@router.get("/")
def overview(request: Request, who: Visitor = Depends(guard.visitor)) -> Response:
    from bhhub.remittance.ar import BUCKETS

    data = views.shown(who, views.overview(who, request.app.state.figures))
    return _render(request, who, "overview.html", "overview", {"data": data, "buckets": BUCKETS})


@router.get("/claims")
def claims(request: Request, status: str | None = None, payer: str | None = None, provider: str | None = None,
           patient: str | None = None, since: str | None = None, until: str | None = None,
           after: str | None = None, who: Visitor = Depends(guard.visitor)) -> Response:
    from bhhub.model import ClaimStatus

    filters = {"status": status or None, "payer": payer or None, "provider": provider or None,
               "patient": patient or None, "since": since or None, "until": until or None}
    data = views.shown(who, views.claims(who, **_claim_filters(filters), after=after or None))
    more = None
    if data["next_cursor"]:
        more = "/claims?" + urlencode({**{k: v for k, v in filters.items() if v}, "after": data["next_cursor"]})
    return _render(request, who, "claims.html", "claims",
                   {"data": data, "filters": filters, "statuses": [s.value for s in ClaimStatus], "more": more})


def _claim_filters(filters: dict) -> dict:
    patient = filters["patient"]
    if patient is not None and not patient.isdigit():
        raise UsageError(f"patient must be the hub's patient id (a number), not {patient!r}")
    return {**filters, "patient": int(patient) if patient else None,
            "since": views.day(filters["since"], "since"), "until": views.day(filters["until"], "until")}


@router.get("/claims/{pcn}")
def claim(request: Request, pcn: str, who: Visitor = Depends(guard.visitor)) -> Response:
    data = views.claim(who, pcn)
    if data is None:
        raise UsageError(f"no claim {pcn}")
    return _render(request, who, "claim.html", "claims", {"claim": views.shown(who, data)})


@router.get("/work")
def work(request: Request, who: Visitor = Depends(guard.visitor)) -> Response:
    data = views.shown(who, views.work(who))
    return _render(request, who, "work.html", "work", {"data": data})


@router.post("/work/denials/{denial_id}")
async def act_on_denial(request: Request, denial_id: int, who: Visitor = Depends(guard.acting)) -> Response:
    from bhhub.remittance.denial_actions import FOLLOWUP_ACTIONS, RESOLVING_ACTIONS
    from bhhub.remittance.worklist import act_on_denial

    form = await request.form()
    guard.check_csrf(who.csrf, form.get("csrf"))
    action = str(form.get("action") or "")
    note = str(form.get("note") or "").strip() or None
    try:
        await run_in_threadpool(act_on_denial, who.hub, denial_id, action, note)
    except InputError as exc:
        raise UsageError(str(exc)) from exc
    # the action's own words ("written off", "appeal sent", "replace claim built"), not the
    # note: a note is the biller's free text and a URL ends up in histories and proxy logs
    done = RESOLVING_ACTIONS.get(action) or f"{FOLLOWUP_ACTIONS[action]} claim built"
    return RedirectResponse("/work?" + urlencode({"done": f"denial {denial_id}: {done}"}), status_code=303)


@router.get("/authorizations")
def authorizations(request: Request, who: Visitor = Depends(guard.visitor)) -> Response:
    data = views.shown(who, views.authorizations(who))
    return _render(request, who, "authorizations.html", "authorizations", {"data": data})


@router.get("/inbox")
def inbox(request: Request, state: str | None = None, after: str | None = None,
          who: Visitor = Depends(guard.visitor)) -> Response:
    if state and state not in ("received", "processed", "quarantined"):
        raise UsageError(f"state must be received, processed or quarantined, not {state!r}")
    data = views.shown(who, views.inbox(who, state=state or None, after=after or None))
    more = None
    if data["next_cursor"]:
        more = "/inbox?" + urlencode({**({"state": state} if state else {}), "after": data["next_cursor"]})
    return _render(request, who, "inbox.html", "inbox", {"data": data, "state": state, "more": more})


@router.post("/inbox/{item_id}/retry")
async def retry(request: Request, item_id: int, who: Visitor = Depends(guard.acting)) -> Response:
    from bhhub.intake import inbox as intake

    form = await request.form()
    guard.check_csrf(who.csrf, form.get("csrf"))
    try:
        result = await run_in_threadpool(intake.retry, who.hub, item_id)
    except InputError as exc:
        raise UsageError(str(exc)) from exc
    await run_in_threadpool(views.audit_retry, who, item_id, result)
    outcome = "quarantined again: " + (result.reason or "") if result.failed else "processed"
    return RedirectResponse("/inbox?" + urlencode({"done": f"item {item_id}: {outcome}"}), status_code=303)


@router.get("/eligibility")
def eligibility(request: Request, who: Visitor = Depends(guard.visitor)) -> Response:
    data = views.shown(who, views.eligibility(who))
    return _render(request, who, "eligibility.html", "eligibility", {"data": data})
