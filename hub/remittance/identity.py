"""Whose claim payment this is, and whether it is one the hub has already posted.

- **Payer.** An 835's payer is the claim's payer when one of its ids (REF*2U or N1*PR N104,
  TRN03 = "1" + the payer's EIN, or that EIN) is the claim's payer id or one the practice lists
  for it (``remittance_ids`` under ``[payer."ID"]`` in mappings/payers.toml), or when N1*PR names
  it by the claim's payer name (letters and digits compared, case ignored).
- **Patient.** A claim matched by anything but its CLP01 must be this patient's: every member
  id the 835 gives (NM1*QC, IL, 74) must include the coverage's, and the patient's name
  (NM1*QC) must agree: the same family name, and given names where one begins the other. An
  835 carries no date of birth (5010 has no DMG in the 835), so the name, the member id, the
  payer and the lines are all there is; a claim payment naming no patient matches nothing.
- **The same claim payment** (``fingerprint``): the same payer claim control number (CLP07),
  reversal or not (CLP02 22), charge, paid and patient share, the same adjustments, and the
  same lines (code, date of service, charge, paid). The envelope (ISA/GS/ST, TRN, BPR, its dates
  and the payer id it uses) is not part of it: a payer re-sends a payment with a new trace
  number, check date or production date. The payer and the claim are the claim row's. When
  the same claim payment is a repeat, and when it is a payment made again after a reversal,
  is ``bhhub.remittance.repeats``' rule.
"""

from __future__ import annotations

import hashlib
import unicodedata
from decimal import Decimal
from functools import lru_cache

CENT = Decimal("0.01")
REVERSAL = "22"


def plain(text: str | None) -> str:
    """Letters and digits only, accents dropped, upper case: what two spellings share."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and c.isalnum()).upper()


# --- payer -------------------------------------------------------------------------------------


def remittance_ids_835(header) -> frozenset[str]:
    """The ids an 835 gives its payer: REF*2U / N1*PR N104 (``payer_id``), TRN03 and its EIN."""
    ids = {plain(header.payer_id), plain(header.trace_originator)}
    originator = plain(header.trace_originator)
    if len(originator) == 10 and originator.startswith("1"):  # TRN03: "1" + EIN (6.1)
        ids.add(originator[1:])
    return frozenset(i for i in ids if i)


def payer_agrees(header, payer_id: str, payer_name: str, listed_ids: tuple[str, ...] = ()) -> bool:
    """True when the 835 whose header is ``header`` comes from this claim payer."""
    ours = {plain(payer_id), *(plain(i) for i in listed_ids)} - {""}
    if ours & remittance_ids_835(header):
        return True
    name = plain(header.payer_name)
    return bool(name) and name == plain(payer_name)


# --- patient -----------------------------------------------------------------------------------


def patient_disagreement(paid, member_id: str | None, family_name: str | None, given_name: str | None) -> str | None:
    """None when the claim payment is this patient's; else which field disagrees (never a value)."""
    ids = {plain(i) for i in paid.member_ids} - {""}
    family, given = (plain(part) for part in paid.patient_name)
    if not ids and not family:
        return "the 835 names no patient (NM1*QC / NM1*IL) to compare"
    if ids and plain(member_id) not in ids:
        return "the member id (NM1*QC / NM1*IL) is not the claim's"
    if family and family != plain(family_name):
        return "the patient's family name (NM1*QC) is not the claim's"
    ours = plain(given_name)
    if given and ours and not (given.startswith(ours) or ours.startswith(given)):
        return "the patient's given name (NM1*QC) is not the claim's"
    return None


# --- the same claim payment --------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _cents(amount) -> str:
    # Cached: a file repeats a few hundred amounts across its claims, and this is called for
    # every amount of every claim payment (the fingerprint of each one posted or kept unmatched).
    return str(Decimal(str(amount)).quantize(CENT))


def fingerprint(row) -> str:
    """The identity of a claim payment as stored (a ``remit_claims`` row), whatever envelope it came in."""
    adjustments = sorted((str(a.get("line")), a["group"], a["reason"], _cents(a["amount"])) for a in row.adjustments)
    lines = [(s["code"], s.get("date") or "", _cents(s["charge"]), _cents(s["paid"])) for s in row.services]
    parts = [row.payer_claim_control_number or "", "reversal" if row.status_code == REVERSAL else "payment",
             _cents(row.charge), _cents(row.paid), _cents(row.patient_responsibility), repr(adjustments), repr(lines)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
