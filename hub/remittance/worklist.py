"""The denial worklist and the actions on it, as functions both the CLI and the workspace call.

``denial_worklist`` is what ``bhhub denials --json`` prints; ``resolve_denial`` and
``act_on_denial`` are ``bhhub denials resolve`` and ``bhhub denials act``. Each action runs its
own transaction, records ``hub.actor`` in the audit trail, and claims the denial with a
conditional UPDATE (``... WHERE status = 'open'``): of two people working the same denial at once
one does it, the other is refused, and nothing is built or resolved twice.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select, update

from bhhub.errors import InputError, UsageError
from bhhub.remittance.denial_actions import ACTIONS, FOLLOWUP_ACTIONS, RESOLVING_ACTIONS
from bhhub.store import schema



def denial_worklist(hub, session, *, include_resolved: bool = False) -> list[dict]:
    """The denials, oldest deadline first (none last), each with its next step as it stands
    today; open ones only unless ``include_resolved``. Audited as a read of the claims'."""
    from bhhub.remittance.denials import DenialRules
    from bhhub.remittance.next_steps import on_worklist

    d, c = schema.Denial, schema.Claim
    cov, payer = schema.Coverage, schema.Payer
    # payer_id is the claim's (the id `bhhub claims` gives and mappings/ rows are keyed by),
    # not how the 835 named its payer: the worklist's deadlines are looked up by it
    query = (select(d, c.patient_control_number, c.other_coverage_ids, payer.payer_id)
             .join(c, c.id == d.claim_id).join(cov, cov.id == c.coverage_id).join(payer, payer.id == cov.payer_id))
    if not include_resolved:
        query = query.where(d.status == "open")
    rows = session.execute(query).all()
    rules = DenialRules.load(hub.mappings)
    # A step whose last day has passed since the 835 posted is shown as it stands today.
    steps = {x.id: on_worklist(rules, x, payer_id, bool(others)) for x, _, others, payer_id in rows}
    rows.sort(key=lambda row: (steps[row[0].id].deadline is None, steps[row[0].id].deadline or date.max,
                               row[0].id))
    data = [{"id": x.id, "patient_control_number": pcn, "payer_id": claim_payer, "line": x.line,
             "procedure_code": x.procedure_code, "adjustment": f"{x.group_code}-{x.reason_code}",
             "remarks": x.remark_codes, "amount": x.amount,
             "category": x.category, "action": steps[x.id].action, "next_step": steps[x.id].text,
             "deadline": steps[x.id].deadline, "status": x.status, "resolution": x.resolution}
            for x, pcn, _, claim_payer in rows]
    hub.audit(session, "list_denials", "claim", sorted({x.claim_id for x, *_ in rows}), None)
    return data


def resolve_denial(hub, denial_id: int, how: str) -> dict:
    """Mark a denial worked with ``how`` (what was done). UsageError: an empty ``how``, an
    unknown id, or a denial that is not open (someone worked it already: nothing changes)."""
    how = how.strip()
    if not how:  # the worklist keeps it as what was done: an empty one records nothing
        raise UsageError("--how must say what was done (e.g. \"appealed with auth 12345\")")
    with hub.store.writer() as session:  # SQLite's write lock first: a twin waits, then is refused
        denial = _claim(session, denial_id, how)
        hub.audit(session, "resolve_denial", "claim", [denial.claim_id], how)
        session.commit()
        return _resolved(session, denial)


def act_on_denial(hub, denial_id: int, action: str, note: str | None = None, *, as_billed: bool = False) -> dict:
    """Take one of the worklist's ``ACTIONS`` on a denial and mark it worked, in one transaction.

    ``corrected_claim``, ``void`` and ``bill_secondary`` build the follow-up claim (as ``bhhub
    followup replace|void|secondary`` does; ``as_billed`` resends a replacement unchanged);
    ``appeal_done`` and ``write_off`` record that resolution. ``note`` is added to the resolution.
    UsageError: an unknown action or id, or a denial already worked (by someone else a moment
    ago: nothing is built twice). InputError: the follow-up cannot be built (the denial stays open).
    """
    if action not in ACTIONS:
        raise UsageError(f"no denial action {action!r}; one of: {', '.join(ACTIONS)}")
    note = (note or "").strip()
    with hub.store.writer() as session:  # SQLite's write lock first: a twin waits, then is refused
        resolution = RESOLVING_ACTIONS.get(action, action.replace("_", " "))
        denial = _claim(session, denial_id, resolution)  # first, so a second click waits here and is refused
        followup = None
        if action in FOLLOWUP_ACTIONS:
            kind = FOLLOWUP_ACTIONS[action]
            try:
                followup = _followup(hub, session, denial, kind, as_billed=as_billed)
            except InputError:
                session.rollback()  # the denial is open again: nothing was done
                raise
            resolution = f"{kind} claim built (revision {followup['revision']})"
        if note:
            resolution = f"{resolution}: {note}"
        denial.resolution = resolution  # a void's own closing of the claim's denials keeps this one's words
        denial.status = "resolved"
        hub.audit(session, "resolve_denial", "claim", [denial.claim_id], action)
        session.commit()
        return {**_resolved(session, denial), "action": action, "followup": followup}


def _claim(session, denial_id: int, resolution: str) -> schema.Denial:
    """Mark the denial resolved if, and only if, it is still open: the UPDATE's WHERE decides,
    under the row's write lock, so of two at once the second finds it resolved."""
    d = schema.Denial
    done = session.execute(update(d).where(d.id == denial_id, d.status == "open")
                           .values(status="resolved", resolution=resolution, resolved_at=schema.utcnow())
                           .execution_options(synchronize_session=False))
    denial = session.get(d, denial_id, populate_existing=True)
    if denial is None:
        raise UsageError(f"no denial {denial_id} (`bhhub denials --all` lists them)")
    if done.rowcount != 1:  # the request, not the hub, is wrong: exit code 2
        session.rollback()
        raise UsageError(f"denial {denial_id} is {denial.status}, not open (already worked); nothing was changed")
    return denial


def _resolved(session, denial: schema.Denial) -> dict:
    pcn = session.get(schema.Claim, denial.claim_id).patient_control_number
    return {"id": denial.id, "patient_control_number": pcn, "status": denial.status,
            "resolution": denial.resolution, "resolved_at": denial.resolved_at, "amount": denial.amount}


def _followup(hub, session, denial: schema.Denial, kind: str, *, as_billed: bool) -> dict:
    """The follow-up claim for the denial's claim, as `bhhub followup KIND PCN` builds it."""
    from bhhub.remittance.followups import create_replacement, create_secondary, create_void

    make = {"replace": create_replacement, "void": create_void, "secondary": create_secondary}[kind]
    pcn = session.get(schema.Claim, denial.claim_id).patient_control_number
    row = session.scalars(select(schema.Claim).where(schema.Claim.patient_control_number == pcn)
                          .order_by(schema.Claim.revision.desc())).first()
    new = make(session, row, hub=hub, as_billed=as_billed)
    hub.audit(session, f"followup_{kind}", "claim", [row.id, new.id], f"denial {denial.id}")
    return followup_summary(pcn, new)


def followup_summary(pcn: str, new: schema.Claim) -> dict:
    """A follow-up claim as `bhhub followup --json` lists it under ``created``."""
    return {"patient_control_number": pcn, "revision": new.revision, "frequency_code": new.frequency_code,
            "status": new.status, "payer_claim_control_number": new.payer_claim_control_number,
            "errors": [f.code for f in new.findings if f.severity == "error"]}

