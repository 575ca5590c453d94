"""What each page and its ``/api/`` twin show: the objects the CLI's ``--json`` prints, gathered
for one request. No figure is computed and no rule applied here: each value comes from the
function the command names beside it, and the page and the API answer are the same object
(the page renders it, the API returns it), with PHI taken out for a viewer
(``bhhub.web.privacy``).

Every view is an audit row (``view_page``: the path, never its query, since a filter may hold
an id a person typed), besides the rows the capability writes itself for the claims it shows
(``list_claims``, ``show_claim``, ``list_denials``: the claim ids), all under the user's name and
address.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from bhhub.web.guard import Visitor
from bhhub.web.privacy import without_phi


def shown(who: Visitor, data):
    return data if who.sees_phi else without_phi(data)


@contextmanager
def reading(who: Visitor) -> Iterator:
    """A read-only session for a page, whose audit rows are written after the read, in a write
    transaction of their own.

    The capabilities audit what they show on the session they read with (``hub.audit``), which a
    command then commits. Two people browsing at once make that a problem on SQLite: a read
    transaction that another request has written past cannot become a write ("database is
    locked", at once, not after the busy wait). So while the page reads, this request's hub
    collects its audit rows, and they are appended once the read is over: the same rows, the
    same actor and source, each chained as usual (``bhhub.audit.chain``); none lost when a
    capability's own commit would have been skipped."""
    hub = who.hub
    rows: list[tuple] = []

    def collect(session, action, object_type, object_ids, detail=None, **options) -> None:
        rows.append((action, object_type, list(object_ids), detail, options))

    hub.audit = collect  # this request's own copy of the hub (bhhub.web.app.request_hub)
    try:
        with hub.store.session() as session:
            yield session
    finally:
        del hub.audit  # the Hub's own method again
    if rows:
        with hub.store.writer() as session:
            for action, object_type, ids, detail, options in rows:
                hub.audit(session, action, object_type, ids, detail, **options)
            session.commit()


def audit_view(who: Visitor, path: str, object_type: str = "page", ids=()) -> None:
    with who.hub.store.writer() as session:
        who.hub.audit(session, "view_page", object_type, list(ids), path)
        session.commit()


def audit_retry(who: Visitor, item_id: int, result) -> None:
    """A retry from the workspace is an action whatever came of it: intake audits the claims a
    processed item stored, but an item quarantined again stores nothing and would leave no row."""
    detail, outcome = ("quarantined again", "failed") if result.failed else ("processed", "ok")
    with who.hub.store.writer() as session:
        who.hub.audit(session, "inbox_retry", "inbox_item", [item_id], detail, outcome=outcome)
        session.commit()


def overview(who: Visitor, figures) -> dict:
    """The pipeline (``bhhub claims --by-status``), A/R with its figures and formulas (``bhhub ar
    --json``), the figures month by month (``bhhub ar --trend --json``) and the open alerts
    (``bhhub alerts --json``). The A/R objects come from ``figures`` (``bhhub.web.figures``: kept
    until the data changes, with when they were computed); the rest is read now. No PHI."""
    from bhhub.claims.pipeline import status_counts
    from bhhub.exchange.alert_list import alerts

    computed, state = figures.current()
    with reading(who) as session:
        pipeline = status_counts(session)
        open_alerts = alerts(session, open_only=True)
    return {"pipeline": pipeline, "ar": computed["ar"], "trend": computed["trend"], "figures": state,
            "alerts": open_alerts}


def claims(who: Visitor, *, status=None, payer=None, provider=None, patient=None, since=None, until=None,
           after=None, limit: int = 50) -> dict:
    """A page of ``bhhub claims --json`` with its filters."""
    from bhhub.listings.claims import claim_page

    with reading(who) as session:
        rows, cursor = claim_page(who.hub, session, status=status, payer=payer, provider=provider,
                                  patient=patient, since=since, until=until, limit=limit, after=after)
    return {"claims": rows, "next_cursor": cursor}


def claim(who: Visitor, pcn: str) -> dict | None:
    """``bhhub claims show PCN --json``."""
    from bhhub.claims.detail import claim_detail

    with reading(who) as session:
        found = claim_detail(who.hub, session, pcn)
    return found


def work(who: Visitor) -> dict:
    """The denial worklist (``bhhub denials --json``), its actions, and the claims that need
    attention with their findings and fixes (``bhhub claims --status needs_attention --json``)."""
    from bhhub.listings.claims import claim_page
    from bhhub.remittance.denial_actions import ACTIONS
    from bhhub.remittance.worklist import denial_worklist

    hub = who.hub
    with reading(who) as session:
        denials = denial_worklist(hub, session)
        attention, cursor = claim_page(hub, session, status="needs_attention", limit=200)
    return {"denials": denials, "actions": list(ACTIONS), "needs_attention": attention,
            "needs_attention_next_cursor": cursor}


def authorizations(who: Visitor) -> list[dict]:
    """``bhhub auth list --json``: used, left, days to expiry, burn-down, run-out before appointments."""
    from bhhub.ledger.authorization_status import authorization_status

    with reading(who) as session:
        found = authorization_status(who.hub, session)
    return found


def inbox(who: Visitor, *, state=None, after=None, limit: int = 100) -> dict:
    """``bhhub inbox --json`` (a page) and ``bhhub mailbox status --json``."""
    from bhhub.exchange.mailbox_status import mailbox_status
    from bhhub.listings.inbox import inbox_page

    with reading(who) as session:
        items, cursor = inbox_page(session, state=state, limit=limit, after=after)
        mailboxes = mailbox_status(who.hub, session)
    if not who.sees_phi:  # a file's name is the EHR's or a person's choice and may name a patient
        items = [{**item, "source": None} for item in items]
    return {"items": items, "next_cursor": cursor, "mailboxes": mailboxes}


def eligibility(who: Visitor) -> list[dict]:
    """``bhhub eligibility list --json``: the last answer per patient and coverage."""
    from bhhub.eligibility.answers import latest_answers

    with reading(who) as session:
        found = latest_answers(who.hub, session)
    if not who.sees_phi:  # a payer's free text (271 MSG) may name the patient: the hub cannot know
        found = [{**answer, "messages": []} for answer in found]
    return found


def day(text: str | None, name: str) -> date | None:
    from bhhub.errors import UsageError

    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{name} must be a date (YYYY-MM-DD), not {text!r}") from None
