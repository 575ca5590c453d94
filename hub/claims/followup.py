"""The claims a biller sends after a remittance: a replacement, a void, the claim to the next payer.

Pure functions: an original ``Claim`` and what the payer said in, the follow-up ``Claim`` out,
checked by rendering it once, so a follow-up that cannot be sent is refused here with an
``InputError`` naming the claim rather than failing a batch later.

- ``replacement`` (frequency 7) and ``void`` (frequency 8) carry the payer's claim control number
  of the claim they replace or cancel (REF*F8, from the 835's CLP07 or the 277CA's REF*1K) and
  keep the original's patient control number (CLM01): payers match the follow-up on F8, the hub
  matches every answer on CLM01 (domain reference 5.3, "Replacement and void").
- ``secondary`` sends the claim to the next payer in the order with the previous payer's
  adjudication (2320/2430). It is a new claim to that payer (frequency 1, no F8) with the same
  CLM01, so its answers (277CA TRN02, 835 CLP01) come back under the claim's one number.

A prior authorization number on a claim (REF*G1, claim or line) is one the payer the claim goes
to issued: the EHR plugins take the primary's, and the ledger keeps each number under the payer
and member it was issued for. A replacement and a void go to the same payer and keep them; the
claim to the next payer keeps only the numbers that payer issued, which the caller passes from
its ledger (``next_payer_authorizations``), and none when it passes nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Final

from bhhub.errors import InputError
from bhhub.model import Claim, Coverage, PriorPayerAdjudication, ServiceLine
from bhhub.claims.claim837p import render_claim
from bhhub.claims.claim_information import adjudicated_lines, same_coverage

REPLACEMENT, VOID = "7", "8"


class _Keep:
    """``prior_authorization`` left as the original has it (``None`` removes it)."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = _Keep()


def replacement(
    original: Claim,
    payer_claim_control_number: str,
    *,
    lines: tuple[ServiceLine, ...] | None = None,
    diagnoses: tuple[str, ...] | None = None,
    prior_authorization: str | None | _Keep = KEEP,
) -> Claim:
    """The corrected claim (frequency 7) replacing ``original`` at the payer.

    A replacement is the complete claim as it should have been, never just the changed line:
    ``lines`` and ``diagnoses``, when given, replace all of the original's. Everything else is
    the original's, its patient control number included.
    """
    _refuse_after_void(original, "replaced")
    corrected = replace(
        original,
        frequency_code=REPLACEMENT,
        payer_claim_control_number=payer_claim_control_number,
        lines=original.lines if lines is None else tuple(lines),
        diagnoses=original.diagnoses if diagnoses is None else tuple(diagnoses),
        prior_authorization=(original.prior_authorization if isinstance(prior_authorization, _Keep)
                             else prior_authorization),
        findings=(),
    )
    return _checked(corrected)


def void(original: Claim, payer_claim_control_number: str) -> Claim:
    """The void (frequency 8) cancelling ``original``: the claim repeated as sent, lines and all."""
    _refuse_after_void(original, "voided again")
    return _checked(replace(original, frequency_code=VOID,
                            payer_claim_control_number=payer_claim_control_number, findings=()))


def secondary(
    original: Claim, secondary: Coverage, adjudication: PriorPayerAdjudication, *,
    next_payer_authorizations: Collection[str] = (),
) -> Claim:
    """The claim to the next payer, carrying ``adjudication`` by the payer ``original`` went to.

    ``secondary`` becomes the claim's coverage. The payer that adjudicated joins the other
    coverages (and ``secondary`` leaves them, if the original listed it there); earlier payers'
    adjudications stay, so calling this again on a secondary claim builds the tertiary one.
    ``next_payer_authorizations`` are the authorization numbers the next payer issued for this
    member; an authorization on the original that is not one of them is the previous payer's and
    is left off (REF*G1 is the destination payer's number: TR3 2300 and 2400 REF*G1).
    """
    where = f"claim {original.patient_control_number}"
    _refuse_after_void(original, "sent to the next payer")
    if not same_coverage(adjudication.coverage, original.coverage):
        raise InputError(
            f"the adjudication is payer {adjudication.payer.payer_id}'s, but the claim went to payer "
            f"{original.coverage.payer.payer_id}", where=where,
            fix="use the adjudication of the payer the claim was sent to",
        )
    if secondary.payer.payer_id == original.coverage.payer.payer_id:
        raise InputError(f"the next payer is payer {secondary.payer.payer_id} again", where=where,
                         fix="choose the patient's next coverage in the order, with another payer")
    adjudications = (*original.prior_adjudications, adjudication)
    if any(a.coverage.order >= secondary.order for a in adjudications):
        raise InputError(
            f"the next payer's coverage order ({secondary.order}) is not after the payers that came first",
            where=where, fix="give the next coverage its place in the order: 2 secondary, 3 tertiary",
        )
    try:
        adjudicated_lines(original, adjudication)
    except ValueError as exc:  # said before anything else: the 835 is for other lines
        raise InputError(f"the adjudication does not match the claim's lines: {exc}", where=where,
                         fix=getattr(exc, "fix", None)) from exc
    others = tuple(o for o in original.other_coverages if not same_coverage(o, secondary))
    issued = frozenset(next_payer_authorizations)

    def its_own(number: str | None) -> str | None:
        return number if number in issued else None

    following = replace(
        original,
        coverage=secondary,
        prior_authorization=its_own(original.prior_authorization),
        lines=tuple(replace(line, prior_authorization=its_own(line.prior_authorization)) for line in original.lines),
        other_coverages=tuple(sorted((*others, original.coverage), key=lambda c: c.order)),
        prior_adjudications=adjudications,
        frequency_code="1",  # a new claim to this payer, whatever it was to the last one
        payer_claim_control_number=None,
        findings=(),
    )
    return _checked(following)


def _refuse_after_void(original: Claim, what: str) -> None:
    if original.frequency_code == VOID:
        raise InputError("the claim is a void and cannot be " + what,
                         where=f"claim {original.patient_control_number}",
                         fix="send a new original claim (frequency 1) if the service should be billed")


def _checked(claim: Claim) -> Claim:
    """The claim, once the 837P writer has accepted it (``InputError`` naming it otherwise)."""
    render_claim(claim)
    return claim
