"""Which sent claim an 835 claim payment (CLP) is about, or why none (domain reference 6.5).

1. **CLP01** = the CLM01 the hub sent: the latest revision whose payer is the 835's payer. A
   CLP01 the hub sent to another payer is not posted to that claim: the payment is unmatched,
   with both payer ids in the reason.
2. Else the payer's claim number (**CLP07**, known from a 277CA or an earlier 835) of a claim of
   this payer. Payers have put one CLP07 on many CLPs: a CLP07 that this file also carries
   under another CLP01 says nothing about which claim, and is not used.
3. Else the **lines**: the sent claim of this payer with the same charge and the same procedure
   codes on the same dates (payers drop or change modifiers on the way back).

A match by 2 or 3 must also be this patient's (``bhhub.remittance.identity.patient_disagreement``) and
the only such claim; otherwise the claim payment waits in ``bhhub remit unmatched`` with the
reason. The reason names fields and ids, never a patient's name or member id.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from bhhub.common.memo import IdentityMemo
from bhhub.remittance.identity import patient_disagreement, payer_agrees, plain
from bhhub.store import schema

PAYERS_TABLE = "payers.toml"
_LATER_PAYER = {"2", "3", "20", "21"}  # CLP02: processed as secondary or tertiary


@dataclass(frozen=True)
class Match:
    claim: schema.Claim | None
    reason: str | None = None  # why no claim, when none


class ClaimMatcher:
    """Finds the sent claim a CLP is about, for the payments of one 835.

    The keys of every sent claim are read once per 835 (a file may carry 50,000 claims), and a
    claim row (with its patient and coverage) only when it is a candidate.
    """

    def __init__(self, session, mappings=None):
        self.session = session
        c, cov, p = schema.Claim, schema.Coverage, schema.Payer
        self.by_pcn: dict[str, list[int]] = {}
        self.by_payer_number: dict[str, list[int]] = {}
        self.payer_of: dict[int, tuple[str, str]] = {}
        self._by_charge: dict[Decimal, list[int]] | None = None
        self._listed = remittance_ids(mappings)
        self._agrees: dict[str, bool] = {}
        self._header = None
        self._numbers_seen: dict[str, str] = {}  # CLP07 -> the first CLP01 it came with in this file
        for claim_id, pcn, number, payer_id, payer_name in session.execute(
                select(c.id, c.patient_control_number, c.payer_claim_control_number, p.payer_id, p.name)
                .join(cov, cov.id == c.coverage_id).join(p, p.id == cov.payer_id)
                .where(c.batch_id.is_not(None)).order_by(c.revision, c.id)):
            self.by_pcn.setdefault(pcn, []).append(claim_id)  # latest revision last
            self.payer_of[claim_id] = (payer_id, payer_name)
            if number:
                self.by_payer_number.setdefault(number, []).append(claim_id)

    def begin_payment(self, header) -> None:
        """The claim payments that follow are this payment's (its payer)."""
        self._header, self._agrees = header, {}

    def __call__(self, paid) -> Match:
        number = paid.payer_claim_control_number
        first_with_number = self._numbers_seen.setdefault(number, paid.patient_control_number) if number else None
        sent = self.by_pcn.get(paid.patient_control_number)
        if sent:
            ours = [i for i in sent if self._payer_agrees(i)]
            if ours:
                return Match(self._claim(ours[-1]))
            forwarded = self._crossed_over_to_this_payer(paid, sent)
            if forwarded is not None:
                return Match(self._claim(forwarded))
            payer_id, _ = self.payer_of[sent[-1]]
            return Match(None, f"claim {paid.patient_control_number} was billed to payer {payer_id}; this 835 is "
                               f"from payer {self._payer_835()}: not posted to it")
        if number and number in self.by_payer_number:
            if first_with_number != paid.patient_control_number:
                return Match(None, "no claim the hub sent has this patient control number, and its payer claim "
                                   "number (CLP07) is on other claim payments of this file too")
            return self._only_one(paid, self.by_payer_number[number], "payer claim number (CLP07)")
        candidates = self._by_lines(paid)
        if candidates:
            return self._only_one(paid, candidates, "charge, procedure codes and dates")
        return Match(None, "no claim the hub sent has this patient control number, payer claim number or these lines")

    def _only_one(self, paid, candidates: list[int], how: str) -> Match:
        ours = [i for i in candidates if self._payer_agrees(i)]
        if not ours:
            return Match(None, f"the claim with this {how} was billed to another payer than this 835's "
                               f"({self._payer_835()}): not posted to it")
        why = {}
        for claim_id in ours:
            why[claim_id] = self._patient_disagreement(paid, claim_id)
        agreeing = [i for i in ours if why[i] is None]
        if len(agreeing) == 1:
            return Match(self._claim(agreeing[0]))
        if agreeing:
            return Match(None, f"{len(agreeing)} claims of this payer and patient have this {how}: "
                               f"match it by hand")
        return Match(None, f"a claim has this {how}, but {why[ours[0]]}: not posted to it")

    def _claim(self, claim_id: int) -> schema.Claim:
        return self.session.get(schema.Claim, claim_id)

    def _payer_agrees(self, claim_id: int) -> bool:
        payer_id, payer_name = self.payer_of[claim_id]
        if payer_id not in self._agrees:
            self._agrees[payer_id] = payer_agrees(self._header, payer_id, payer_name, self._listed.get(payer_id, ()))
        return self._agrees[payer_id]

    def _crossed_over_to_this_payer(self, paid, sent: list[int]) -> int | None:
        """The claim (latest of ``sent``) when its payer forwarded it (a crossover) and this 835
        is the next payer's answer: the next payer's 835 carries the CLP01 the hub sent to the
        first. It is that payer when its N1*PR names the payer the crossover named (NM1*TT), or
        is the payer of another coverage of this patient on file, or, when the crossover named
        no payer, says it paid as a later payer (CLP02 2/3/20/21). The patient must agree."""
        r = schema.RemitClaim
        named = self.session.scalars(select(r.crossover_payer).where(
            r.claim_id.in_(sent), r.state == "posted", r.crossed_over.is_(True))).all()
        if not named:
            return None
        claim = self._claim(sent[-1])
        names = {plain(n) for n in named} - {""}
        if plain(self._header.payer_name) in names:
            pass
        elif self._another_coverage_agrees(claim):
            pass
        elif names or paid.status_code not in _LATER_PAYER:
            return None
        # The next payer's member id is its own, so the patient is known by name: family and
        # given names must both agree (a crossover carries the patient's full name).
        patient = self.session.get(schema.Patient, claim.patient_id)
        family, given = (plain(part) for part in paid.patient_name)
        ours = plain(patient.given_name)
        if not family or family != plain(patient.family_name):
            return None
        if not given or not ours or not (given.startswith(ours) or ours.startswith(given)):
            return None
        return claim.id

    def _another_coverage_agrees(self, claim: schema.Claim) -> bool:
        cov, p = schema.Coverage, schema.Payer
        others = self.session.execute(select(p.payer_id, p.name).join(cov, cov.payer_id == p.id).where(
            cov.patient_id == claim.patient_id, cov.id != claim.coverage_id)).all()
        return any(payer_agrees(self._header, payer_id, name, self._listed.get(payer_id, ()))
                   for payer_id, name in others)

    def _payer_835(self) -> str:
        header = self._header
        return header.payer_id or header.trace_originator or "with no id"

    def _patient_disagreement(self, paid, claim_id: int) -> str | None:
        claim = self._claim(claim_id)
        patient = self.session.get(schema.Patient, claim.patient_id)
        coverage = self.session.get(schema.Coverage, claim.coverage_id)
        return patient_disagreement(paid, coverage.member_id, patient.family_name, patient.given_name)

    def _by_lines(self, paid) -> list[int]:
        """The sent claims with the same charge whose lines have the same codes on the same dates."""
        wanted = sorted((s.original_procedure_code or s.procedure_code, s.service_date) for s in paid.services)
        if not wanted or any(d is None for _, d in wanted):
            return []
        if self._by_charge is None:
            self._by_charge = {}
            c = schema.Claim
            for claim_id, charge in self.session.execute(select(c.id, c.total_charge).where(c.batch_id.is_not(None))):
                self._by_charge.setdefault(Decimal(charge), []).append(claim_id)
        matches = []
        line = schema.ServiceLine
        for claim_id in self._by_charge.get(abs(paid.charge), ()):  # a reversal's charge is negative
            lines = self.session.execute(select(line.procedure_code, line.service_date)
                                         .where(line.claim_id == claim_id)).all()
            if sorted((code, day) for code, day in lines) == wanted:
                matches.append(claim_id)
        return matches


def remittance_ids(mappings) -> dict[str, tuple[str, ...]]:
    """Per claim payer id, the other ids its 835s use (``remittance_ids`` in payers.toml), read
    once per loaded table (posting asks for every claim payment with a denial). Shared: callers
    only read it."""
    if mappings is None:
        return {}
    table = mappings.load(PAYERS_TABLE)
    return _REMITTANCE_IDS.get(table, None, _remittance_ids, table)


_REMITTANCE_IDS: IdentityMemo[dict[str, tuple[str, ...]]] = IdentityMemo(limit=64)


def _remittance_ids(table: dict) -> dict[str, tuple[str, ...]]:
    return {payer_id: tuple(str(i) for i in entry.get("remittance_ids", ()))
            for payer_id, entry in table.get("payer", {}).items() if isinstance(entry, dict)}
