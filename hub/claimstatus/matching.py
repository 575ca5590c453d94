"""Pairing a 277's claim statuses with the 276 inquiries they answer.

The payer echoes the inquiry's trace number (276 2200D/E TRN02) in the 277's TRN02: that is
the key. The patient control number (REF*EJ) the payer returns, when it returns one, must be
the one asked about: a payer that found a different claim for the same search answers with
the same trace number but another REF*EJ, and that answer must not update the claim asked about.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bhhub.claimstatus.records import ClaimStatusResult, StatusInquiry


@dataclass(frozen=True)
class InquiryAnswer:
    """One inquiry and the claim statuses the 277 gave for it (none when it was not answered)."""

    inquiry: StatusInquiry
    results: tuple[ClaimStatusResult, ...]  # same trace number, same (or no) REF*EJ
    other_claims: tuple[ClaimStatusResult, ...] = ()  # same trace number, another REF*EJ

    @property
    def answered(self) -> bool:
        return bool(self.results)


def match_results(
    inquiries: Sequence[StatusInquiry], results: Sequence[ClaimStatusResult]
) -> tuple[list[InquiryAnswer], list[ClaimStatusResult]]:
    """Each inquiry with its answers, in the inquiries' order, and the results no inquiry asked for.

    Level results (a receiver or provider refused the whole request) answer every inquiry
    sent under that receiver or provider, so they are given to each inquiry whose provider
    id matches and returned with the unmatched ones too, for the caller to report once.
    """
    by_trace: dict[str, list[ClaimStatusResult]] = {}
    unmatched: list[ClaimStatusResult] = []
    level_results = [r for r in results if r.level != "claim"]
    for result in results:
        if result.level == "claim":
            by_trace.setdefault(result.trace_number, []).append(result)
    answers = []
    asked = {inquiry.trace_number for inquiry in inquiries}
    for inquiry in inquiries:
        found = by_trace.get(inquiry.trace_number, [])
        same = tuple(r for r in found if r.patient_control_number in (None, inquiry.patient_control_number))
        other = tuple(r for r in found if r not in same)
        if not found:
            same = tuple(r for r in level_results if _covers(r, inquiry))
        answers.append(InquiryAnswer(inquiry, same, other))
    unmatched += [r for trace, found in by_trace.items() if trace not in asked for r in found]
    unmatched += level_results
    return answers, unmatched


def _covers(level_result: ClaimStatusResult, inquiry: StatusInquiry) -> bool:
    """Whether a refusal at a level above the claims applies to ``inquiry``."""
    if level_result.payer_id and level_result.payer_id != inquiry.payer.payer_id:
        return False
    if level_result.level in ("provider", "subscriber", "dependent"):
        provider_ids = {inquiry.provider.npi, inquiry.provider.tin} - {None, ""}
        if level_result.provider_id and level_result.provider_id not in provider_ids:
            return False
    if level_result.level in ("subscriber", "dependent"):
        return level_result.member_id == inquiry.member_id
    return True
