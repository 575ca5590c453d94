"""The coding rules about modifiers: telehealth (the payer's coding-table rules and the session
modifiers against its telehealth rule in ``mappings/payers.toml``, domain reference 2) and the
licensure modifiers a payer requires by taxonomy (3.1). ``bhhub.scrub.coding_rules`` registers
and runs them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from bhhub.coding import rules as telehealth
from bhhub.model import Claim, Finding
from bhhub.scrub.coding_table import ClaimRules, error

# --- 2 telehealth ---------------------------------------------------------------------------------------

def check_telehealth(claim: Claim, rules: ClaimRules) -> Iterator[Finding]:
    """The payer's coding-table telehealth rules, then each line's session modifiers against the
    payer's telehealth rule (payers.toml), a modifier reported by one check not again by the next."""
    if not any(line.modifiers for line in claim.lines):
        # Telehealth is told by its modifiers: none on any line, nothing to say (the session
        # modifiers' table is still read, so a broken one is reported as before).
        telehealth.session_modifiers(rules.mappings)
        return
    named: dict[int, set[str]] = defaultdict(set)  # line -> modifiers a finding already named
    placed: set[int] = set()  # lines already told their place does not fit telehealth
    for finding, modifiers in _payer_table_telehealth(claim, rules):
        named[finding.line].update(modifiers)
        if finding.code == "coding.telehealth_place":
            placed.add(finding.line)
        yield finding
    yield from _session_modifiers(claim, rules, named, placed)


def _session_modifiers(claim: Claim, rules: ClaimRules, named: dict[int, set[str]],
                       placed: set[int]) -> Iterator[Finding]:
    """Domain reference 2.2, whoever put the modifier on the line: FQ only on a rural health
    clinic's or FQHC's claim; no session modifier on an in-person place; one session modifier
    per line; and only the one the payer's rule (mappings/payers.toml) wants with that place.
    Errors the biller fixes in the EHR: the hub never removes what the EHR sent."""
    mods = telehealth.session_modifiers(rules.mappings)
    if not any(m in mods.session for line in claim.lines for m in line.modifiers):
        return
    payer = claim.coverage.payer
    billing = claim.billing_provider
    rhc = telehealth.is_rhc_fqhc(rules.mappings, billing)
    for number, line in enumerate(claim.lines, start=1):
        on_line = [m for m in line.modifiers if m in mods.session]
        if not on_line:
            continue
        left = [m for m in on_line if m not in named[number]]
        place = line.place_of_service or claim.place_of_service
        for modifier in [m for m in left if m in mods.rhc_fqhc_only and not rhc]:
            left.remove(modifier)
            yield error("coding.telehealth_modifier",
                         f"line {number}: modifier {modifier} is billed only by rural health clinics and FQHCs; "
                         f"the billing provider (taxonomy {billing.taxonomy or 'unknown'}) is neither",
                         f"remove {modifier} in the EHR (audio-only: the payer's audio-only modifier); if the "
                         "practice is an RHC or FQHC, send its NUCC taxonomy (261QR1300X, 261QF0400X) or list its "
                         "NPI under rhc_fqhc_npis in mappings/payers.toml", number)
        if len(left) > 1 and line.service_date < mods.rules_from:
            yield error("coding.telehealth_modifier",
                         f"line {number} carries {' and '.join(left)}; each says how the session was held, "
                         "and a line takes one", "keep the one that describes the session in the EHR", number)
            continue
        if line.service_date < mods.rules_from:
            continue
        audio_only = any(m in mods.audio_only for m in on_line)
        wanted = telehealth.wanted_at(rules.mappings, payer, billing, place, audio_only=audio_only)
        if wanted is None:
            if left and number not in placed:
                yield error("coding.telehealth_modifier",
                             f"line {number}: telehealth modifier {', '.join(left)} on an in-person place of "
                             f"service (POS {place})",
                             f"remove {', '.join(left)} in the EHR if the patient was seen in person; if the visit "
                             "was telehealth, send where the patient was (POS 02, or 10 at home)", number)
            continue
        if len(left) > 1:
            keep = sorted(wanted & set(left)) or sorted(wanted)
            yield error("coding.telehealth_modifier",
                         f"line {number} carries {' and '.join(left)}; each says how the session was held, "
                         "and a line takes one",
                         (f"keep {keep[0]} (what payer {payer.payer_id} wants at POS {place}) and remove the other"
                          if keep else f"remove them: payer {payer.payer_id} wants no telehealth modifier at "
                                       f"POS {place}") + " in the EHR", number)
            continue
        for modifier in [m for m in left if m not in wanted]:
            instead = f"bill {' or '.join(sorted(wanted))} instead" if wanted else "remove it"
            yield error("coding.telehealth_modifier",
                         f"line {number}: payer {payer.payer_id}'s telehealth rule does not take modifier "
                         f"{modifier} for {'audio-only' if audio_only else 'audio-video'} sessions at POS {place}",
                         f"{instead} in the EHR (the payer's rule is in mappings/payers.toml)", number)


def _payer_table_telehealth(claim: Claim, rules: ClaimRules) -> Iterator[tuple[Finding, set[str]]]:
    """mappings/rules/coding.toml's telehealth rules: each finding with the modifiers it names."""
    for number, line in enumerate(claim.lines, start=1):
        if not line.modifiers:
            continue  # telehealth is told by its modifiers
        payer_rules_today = rules.payer(line.service_date)
        mods = set(line.modifiers)
        video = mods.intersection(payer_rules_today.get("telehealth_video_modifiers", ()))
        audio = mods.intersection(payer_rules_today.get("audio_only_modifiers", ()))
        if not (video or audio):
            continue
        place = line.place_of_service or claim.place_of_service
        payer = claim.coverage.payer.payer_id
        for retired in sorted(mods.intersection(payer_rules_today.get("retired_telehealth_modifiers", ()))):
            yield error("coding.telehealth_modifier",
                         f"line {number}: modifier {retired} is retired for professional claims by payer {payer}",
                         f"remove {retired}; telehealth is told by POS 02/10"
                         + (f" ({'/'.join(payer_rules_today['audio_only_modifiers'][:1])} if audio-only)"
                            if payer_rules_today.get("audio_only_modifiers") else ""), number), {retired}
        if video and audio:
            yield error("coding.telehealth_modifier",
                         f"line {number} carries both audio-video ({', '.join(sorted(video))}) and audio-only "
                         f"({', '.join(sorted(audio))}) modifiers", "keep the one that describes the session",
                         number), video | audio
        allowed = payer_rules_today.get("telehealth_place_of_service") or []
        if allowed and place not in allowed:
            yield error("coding.telehealth_place",
                         f"line {number}: telehealth modifier {', '.join(sorted(video | audio))} with POS {place}; "
                         f"payer {payer} wants POS {' or '.join(allowed)} for telehealth",
                         "use POS 10 (patient at home) or 02 (patient elsewhere)", number), set()
        audio_places = payer_rules_today.get("audio_only_place_of_service") or []
        if audio and audio_places and place not in audio_places and (not allowed or place in allowed):
            yield error("coding.telehealth_place",
                         f"line {number}: audio-only ({', '.join(sorted(audio))}) with POS {place}; payer {payer} "
                         f"pays audio-only behavioral telehealth only to the home (POS {' or '.join(audio_places)})",
                         f"use POS {audio_places[0]} if the patient was at home; otherwise bill it as video",
                         number), set()


# --- 3.1 licensure modifiers ------------------------------------------------------------------------------

def check_licensure(claim: Claim, rules: ClaimRules) -> Iterator[Finding]:
    clinician = claim.rendering_provider or claim.billing_provider
    for number, line in enumerate(claim.lines, start=1):
        payer_rules_today = rules.payer(line.service_date)
        required = payer_rules_today.get("licensure_modifiers", {}).get(clinician.taxonomy or "")
        if not required:
            continue
        codes = payer_rules_today.get("licensure_codes") or []
        if (codes and line.procedure_code not in codes) or set(line.modifiers) & set(required):
            continue
        yield error("coding.licensure_modifier",
                     f"line {number} ({line.procedure_code}): payer {claim.coverage.payer.payer_id} requires a "
                     f"licensure modifier for taxonomy {clinician.taxonomy}",
                     f"add modifier {' or '.join(required)}", number)
