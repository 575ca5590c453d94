"""Who owes an amount the payer put in group PR: the patient, or nobody yet (domain reference 6.3).

Group PR says the payer will not pay it and holds the patient liable, but two cases are not the
patient's to pay (tables in ``mappings/remittance/responsibility.toml``, per payer):

- **Wrong payer.** PR with a coverage or wrong-payer CARC (26/27 coverage not in effect, 31 not
  the payer's insured, 109 another payer's claim ...) means "find the payer that covered the
  date of service", not "bill the patient".
- **No advance notice.** PR-50/96/204 (not necessary, not covered) is the patient's only when
  they signed an advance notice before the service (Medicare ABN, 42 CFR 411.404; a plan's
  waiver). With none on file the amount is the provider's, as if the group were CO.

In both cases the denial's next action is the one the denial table gives the same CARC in group
CO, and ``patient_owes`` is False, so patient A/R does not include it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bhhub.errors import MappingError
from bhhub.runtime.mapping_tables import MappingSet

TABLE = "remittance/responsibility.toml"
LISTS = ("wrong_payer", "advance_notice", "notice_modifiers")
_KEYS = {
    "": frozenset({"crossover", "patient", "payer"}),
    "crossover": frozenset({"claim_status_codes", "remarks"}),
    "patient": frozenset(LISTS),
    "payer": frozenset({"name", *LISTS}),
}
_CODE = re.compile(r"^[A-Z0-9]{1,5}$")
WRONG_PAYER, NO_NOTICE = "wrong_payer", "no_advance_notice"


@dataclass(frozen=True)
class Decision:
    patient_owes: bool
    why: str | None = None  # WRONG_PAYER, NO_NOTICE, or None when the payer's word stands
    action: str | None = None  # the next action instead of the denial table's, when why is set
    action_text: str | None = None


class Responsibility:
    """The table, checked; decides who owes a PR amount."""

    def __init__(self, table: Mapping[str, Any]):
        self.table = table
        crossover = table.get("crossover", {})
        self.crossover_status_codes = frozenset(crossover.get("claim_status_codes", ()))
        self.crossover_remarks = frozenset(crossover.get("remarks", ()))

    @classmethod
    def load(cls, mappings: MappingSet) -> Responsibility:
        table = mappings.load(TABLE)
        problems = table_problems(table)
        if problems:
            raise MappingError(f"{len(problems)} problem(s): " + "; ".join(problems), where=f"mappings/{TABLE}",
                               fix="correct the table; its header documents the format")
        return cls(table)

    def codes(self, payer_id: str | None, name: str) -> frozenset[str]:
        payer = self.table.get("payer", {}).get(str(payer_id or "").strip(), {})
        return frozenset(payer.get(name, self.table.get("patient", {}).get(name, ())))

    def needs_notice(self, payer_id: str | None, reason: str) -> bool:
        return reason in self.codes(payer_id, "advance_notice")

    def decide(self, rules, payer_id: str | None, group: str, reason: str, remarks, found, *,
               notice_on_file: bool, has_secondary: bool) -> Decision:
        """``found`` is the denial table's classification of (``group``, ``reason``, ``remarks``)."""
        if group != "PR":
            return Decision(False)
        why = None
        if reason in self.codes(payer_id, "wrong_payer"):
            why = WRONG_PAYER
            opening = (f"The payer put PR-{reason} on the patient, but it means this payer is not the one to "
                       f"pay: do not bill the patient. ")
        elif reason in self.codes(payer_id, "advance_notice") and not notice_on_file:
            why = NO_NOTICE
            opening = (f"The payer put PR-{reason} on the patient, but no advance notice (ABN or waiver) is on "
                       f"file for this service, so the patient may not be billed; if they signed one, record it "
                       f"with `bhhub notice add`. Otherwise: ")
        if why is None:
            return Decision(True)
        as_provider = rules.classify("CO", reason, remarks, payer_id=payer_id, has_secondary=has_secondary)
        return Decision(False, why, as_provider.action, opening + as_provider.action_text)


def table_problems(table: Mapping[str, Any]) -> list[str]:
    """Every problem in the table as ``path: what is wrong``; [] when it is sound."""
    problems: list[str] = []
    _keys(table, "", "", problems)
    for section in ("crossover", "patient"):
        entry = table.get(section, {})
        if not isinstance(entry, Mapping):
            problems.append(f"{section}: must be a table")
            continue
        _keys(entry, section, section, problems)
        for name, value in entry.items():
            _codes(value, f"{section}.{name}", problems)
    payers = table.get("payer", {})
    for payer_id, entry in (payers.items() if isinstance(payers, Mapping) else ()):
        path = f'payer."{payer_id}"'
        if not isinstance(entry, Mapping):
            problems.append(f"{path}: must be a table")
            continue
        _keys(entry, "payer", path, problems)
        for name in LISTS:
            if name in entry:
                _codes(entry[name], f"{path}.{name}", problems)
    return problems


def _keys(entry: Mapping[str, Any], kind: str, path: str, problems: list[str]) -> None:
    allowed = _KEYS[kind]
    for key in entry:
        if key not in allowed:
            near = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else f" (expected one of {', '.join(sorted(allowed))})"
            problems.append(f"{path + '.' if path else ''}{key}: unknown key{hint}")


def _codes(value: Any, path: str, problems: list[str]) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) and _CODE.match(v) for v in value):
        problems.append(f"{path}: must be a list of codes in quotes, e.g. [\"27\", \"109\"]")


def patient_share(session, rules, payer_id: str | None, claim, row, procedure_code: str | None, adjustment,
                  remarks, found, has_secondary: bool) -> tuple[bool, str, str]:
    """(the patient owes it?, next action, its sentence) for one denied adjustment being posted."""
    from bhhub.remittance.notices import notices_for, on_file

    if adjustment.group != "PR":
        return False, found.action, found.action_text
    table: Responsibility = rules.responsibility
    notice = False
    if table.needs_notice(payer_id, adjustment.reason):
        notice = on_file(claim, procedure_code, notices_for(session, claim.patient_control_number),
                         table.codes(payer_id, "notice_modifiers"))
    decision = table.decide(rules, payer_id, "PR", adjustment.reason, remarks, found, notice_on_file=notice,
                            has_secondary=has_secondary)
    if decision.why is not None:
        return False, decision.action, decision.action_text
    if row.crossed_over and found.action in ("bill_patient", "bill_secondary"):
        # The next payer already has the claim: the patient is billed for what it leaves.
        return True, "none", ("Nothing to send yet: the payer forwarded the claim to the next payer itself "
                              "(crossover), so wait for its 835, then bill the patient for what it leaves.")
    return True, found.action, found.action_text
