"""Which payer ids the hub knows: an authorization or an enrollment typed for any other would
never match a claim (a typo, or a payer's name where its id belongs), so it is refused.

A payer is known once a claim or coverage for it is taken in (the store's payers), or when the
practice names it in a payer table: ``<home>/mappings/payers.toml`` (``[payer."ID"]``), which is
how one is added before its first claim, or the authorization rules the ledger keeps for it
(``rules/authorization.toml``, ``[payers."ID"]``).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bhhub.errors import UsageError
from bhhub.runtime.mapping_tables import MappingSet
from bhhub.store import schema

# (table, the key holding its payer ids)
PAYER_TABLES = (("payers.toml", "payer"), ("rules/authorization.toml", "payers"))
NAMED_AT_MOST = 20  # a hub with hundreds of payers names the first ones and says how many


def known_payer_ids(session: Session, mappings: MappingSet) -> set[str]:
    stored = set(session.scalars(select(schema.Payer.payer_id)))
    named = {str(payer_id) for table, key in PAYER_TABLES for payer_id in mappings.load(table).get(key, {})}
    return stored | named


def check_known_payer(session: Session, mappings: MappingSet, payer_id: str, option: str = "--payer") -> None:
    """A usage error (exit code 2) for a payer id the hub does not know, naming the known ones."""
    if session.scalar(select(schema.Payer.id).where(schema.Payer.payer_id == payer_id).limit(1)) is not None:
        return  # one indexed row: a listing filtered by payer pays no more than this
    known = known_payer_ids(session, mappings)
    if payer_id in known:
        return
    names = sorted(known)
    listed = ", ".join(names[:NAMED_AT_MOST]) + (f" and {len(names) - NAMED_AT_MOST} more" if len(names) > NAMED_AT_MOST else "")
    raise UsageError(f"{option} {payer_id!r} is no payer the hub knows (known: {listed or 'none yet'}); a payer is "
                     f"known once a claim for it is taken in, or add a [payer.\"{payer_id}\"] table to "
                     "<home>/mappings/payers.toml; nothing was changed")
