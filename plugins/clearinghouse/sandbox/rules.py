"""The sandbox's business rules: front-end edits (277CA) and adjudication (835), from a table.

    rules = load_rules()                                  # mappings/clearinghouses/sandbox_rules.toml
    problems = front_end_edits(claim, rules)              # [] when the claim is accepted
    payment = adjudicate(claim, rules.payer(claim.payer_id), rules, payer_claim_control_number)

Everything a payer decides is data in the table (STYLE: routing is data): which payers exist,
their fees or percentage of charge, copay and coinsurance, which codes need an authorization
and which are not covered. The same claim always gets the same answer: amounts are Decimals
rounded half up to the cent, nothing depends on the clock or on chance.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from bhhub.errors import ConfigError
from bhhub.common.identifiers import npi_is_valid
from bhhub.runtime.mapping_tables import MappingSet

from bhhub.plugins.clearinghouse.sandbox.eligibility import EVERYONE_ACTIVE, EligibilityRules, eligibility_from_table
from bhhub.plugins.clearinghouse.sandbox.reader import Claim, ServiceLine

RULES_TABLE = "clearinghouses/sandbox_rules.toml"
CENT = Decimal("0.01")
# Adjustments every payer makes the same way (domain reference 6.3).
CONTRACTUAL = ("CO", "45")  # charge exceeds the fee schedule / contracted amount
COPAY = ("PR", "3")
COINSURANCE = ("PR", "2")
# 835 CLP06 codes (element 1032 as the 835 uses it).
CLP06_CODES = frozenset("12 13 14 15 16 17 AM CH DS HM LM MA MB MC OF TV VA WC ZZ".split())
CLP02_BY_RESPONSIBILITY = {"P": "1", "S": "2", "T": "3"}  # processed as primary/secondary/tertiary
DENIED = "4"


@dataclass(frozen=True)
class Status:
    """A 277CA STC01 composite: category (list 507), status (list 508), entity (element 98)."""

    category: str
    code: str
    entity: str = ""

    @classmethod
    def parse(cls, text: str, where: str) -> Status:
        parts = text.split(":")
        if len(parts) not in (2, 3) or not all(parts[:2]):
            raise ConfigError(f"{where}: {text!r} is not category:status[:entity] (e.g. A7:562:85)")
        return cls(*parts)

    def composite(self) -> tuple[str, ...]:
        return (self.category, self.code, self.entity) if self.entity else (self.category, self.code)


@dataclass(frozen=True)
class Denial:
    group: str  # CAS01
    reason: str  # CARC
    remark: str | None = None  # RARC, in LQ*HE
    status_code: str = "1"  # 277 STC01-2 (code list 508) answering a status inquiry: 1 see the remittance


@dataclass(frozen=True)
class PayerRules:
    payer_id: str
    name: str
    tax_id: str
    address: Mapping[str, str]
    edi_contact: Mapping[str, str]
    allowed_percent: Decimal
    fees: Mapping[str, Decimal]
    copay: Decimal
    coinsurance_percent: Decimal
    authorization_required: bool
    authorization_required_codes: frozenset[str]
    non_covered_codes: frozenset[str]
    claim_filing_indicator: str | None
    member_id_pattern: re.Pattern[str]
    pend: bool = False  # accepted claims wait: no 835 (a status inquiry is answered "pending")

    def needs_authorization(self, procedure_code: str) -> bool:
        return self.authorization_required or procedure_code in self.authorization_required_codes


@dataclass(frozen=True)
class Rules:
    clearinghouse_name: str
    clearinghouse_id: str
    receiver_ids: frozenset[str]  # empty: any ISA08 is accepted
    claim_number_prefix: str
    edits: Mapping[str, Status]
    denials: Mapping[str, Denial]
    filing_indicators: Mapping[str, str]
    payers: Mapping[str, PayerRules]
    eligibility: EligibilityRules = EVERYONE_ACTIVE  # how 270s are answered

    def payer(self, payer_id: str) -> PayerRules | None:
        return self.payers.get(payer_id)

    def accepts_receiver(self, receiver_id: str) -> bool:
        return not self.receiver_ids or receiver_id in self.receiver_ids

    def filing_indicator(self, claim: Claim, payer: PayerRules) -> str:
        """CLP06: the payer's own, else SBR09 when the 835 list has it, else the table's mapping."""
        if payer.claim_filing_indicator:
            return payer.claim_filing_indicator
        sent = claim.claim_filing_indicator
        return sent if sent in CLP06_CODES else self.filing_indicators.get(sent, "ZZ")


# --- loading ------------------------------------------------------------------------------


def load_rules(path: Path | None = None, mappings: MappingSet | None = None) -> Rules:
    """The rules in ``path``, else the packaged table laid under the practice's override."""
    where = str(path) if path else f"mappings/{RULES_TABLE}"
    if path is not None:
        try:
            table = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read sandbox rules {path}: {exc}") from exc
    else:
        table = (mappings or MappingSet()).load(RULES_TABLE)
    return rules_from_table(table, where)


def rules_from_table(table: Mapping[str, Any], where: str = "sandbox rules") -> Rules:
    try:
        house = table["clearinghouse"]
        edits_table = dict(table["front_end_edits"])
        pattern = edits_table.pop("member_id_pattern", r"^[A-Za-z0-9]{2,20}$")
        edits = {name: Status.parse(str(value), f"{where} [front_end_edits] {name}")
                 for name, value in edits_table.items()}
        missing = {"billing_npi_invalid", "rendering_npi_invalid", "member_id_missing", "member_id_invalid",
                   "payer_unknown", "charge_mismatch"} - set(edits)
        if missing:
            raise ConfigError(f"{where}: [front_end_edits] needs {', '.join(sorted(missing))}")
        denials = {name: Denial(str(d["group"]), str(d["reason"]), d.get("remark"), str(d.get("status_code", "1")))
                   for name, d in table["denials"].items()}
        for needed in ("authorization_absent", "not_covered"):
            if needed not in denials:
                raise ConfigError(f"{where}: [denials.{needed}] is missing")
        defaults = dict(table.get("defaults", {}))
        defaults.setdefault("member_id_pattern", pattern)
        payers = {str(payer_id): _payer(str(payer_id), {**defaults, **entry}, where)
                  for payer_id, entry in table.get("payers", {}).items()}
        return Rules(
            clearinghouse_name=str(house["name"]), clearinghouse_id=str(house["id"]),
            receiver_ids=frozenset(str(r) for r in house.get("receiver_ids", [])),
            claim_number_prefix=str(house.get("claim_number_prefix", "SBX")),
            edits=edits, denials=denials,
            filing_indicators={str(k): str(v) for k, v in table.get("claim_filing_indicators", {}).items()},
            payers=payers,
            eligibility=eligibility_from_table(table.get("eligibility"), where),
        )
    except KeyError as exc:
        raise ConfigError(f"{where}: {exc.args[0]!r} is missing") from exc


def _payer(payer_id: str, entry: Mapping[str, Any], where: str) -> PayerRules:
    here = f"{where} [payers.{payer_id!r}]"
    try:
        member_pattern = re.compile(str(entry["member_id_pattern"]))
    except re.error as exc:
        raise ConfigError(f"{here}: member_id_pattern is not a regular expression ({exc})") from exc
    return PayerRules(
        payer_id=payer_id, name=str(entry.get("name", payer_id)), tax_id=str(entry.get("tax_id", "999999999")),
        address=dict(entry.get("address", {})), edi_contact=dict(entry.get("edi_contact", {})),
        allowed_percent=_amount(entry.get("allowed_percent", "100"), f"{here} allowed_percent"),
        fees={str(code): _amount(fee, f"{here} fee for {code}") for code, fee in entry.get("fees", {}).items()},
        copay=_amount(entry.get("copay", "0"), f"{here} copay"),
        coinsurance_percent=_amount(entry.get("coinsurance_percent", "0"), f"{here} coinsurance_percent"),
        authorization_required=bool(entry.get("authorization_required", False)),
        authorization_required_codes=frozenset(str(c) for c in entry.get("authorization_required_codes", [])),
        non_covered_codes=frozenset(str(c) for c in entry.get("non_covered_codes", [])),
        claim_filing_indicator=entry.get("claim_filing_indicator"),
        member_id_pattern=member_pattern,
        pend=bool(entry.get("pend", False)),
    )


def _amount(value: Any, what: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0:
        raise ConfigError(f"{what} must be a non-negative number written as a string, e.g. \"25.00\"")
    return amount


# --- front-end edits (277CA) --------------------------------------------------------------


def front_end_edits(claim: Claim, rules: Rules) -> list[Status]:
    """Why the clearinghouse returns ``claim`` unprocessed; an empty list accepts it."""
    problems: list[Status] = []
    # NPIs pass the Luhn check over "80840" + the ten digits (domain reference 11.1).
    if not npi_is_valid(claim.billing_provider.npi):
        problems.append(rules.edits["billing_npi_invalid"])
    if claim.rendering_npi is not None and not npi_is_valid(claim.rendering_npi):
        problems.append(rules.edits["rendering_npi_invalid"])
    payer = rules.payer(claim.payer_id)
    if not claim.member_id.strip():
        problems.append(rules.edits["member_id_missing"])
    elif payer is not None and not payer.member_id_pattern.fullmatch(claim.member_id):
        problems.append(rules.edits["member_id_invalid"])
    if payer is None:
        problems.append(rules.edits["payer_unknown"])
    line_total = sum((line.charge or Decimal(0) for line in claim.lines), Decimal(0))
    if claim.total_charge is None or claim.total_charge != line_total:
        problems.append(rules.edits["charge_mismatch"])
    return problems


# --- adjudication (835) -------------------------------------------------------------------


@dataclass(frozen=True)
class Adjustment:
    group: str  # CAS01: CO, PR, OA, PI
    reason: str  # CARC
    amount: Decimal


@dataclass(frozen=True)
class LinePayment:
    line: ServiceLine
    charge: Decimal
    allowed: Decimal | None  # None when the line is denied
    paid: Decimal
    adjustments: tuple[Adjustment, ...]
    remark: str | None = None  # RARC


@dataclass(frozen=True)
class ClaimPayment:
    claim: Claim
    status: str  # CLP02
    charge: Decimal  # CLP03
    paid: Decimal  # CLP04
    patient_responsibility: Decimal  # CLP05: every PR adjustment
    filing_indicator: str  # CLP06
    payer_claim_control_number: str  # CLP07
    lines: tuple[LinePayment, ...]


def adjudicate(claim: Claim, payer: PayerRules, rules: Rules, payer_claim_control_number: str) -> ClaimPayment:
    """The payer's decision on each line; charge = paid + adjustments, per line and per claim."""
    copay_left = payer.copay
    lines: list[LinePayment] = []
    for line in claim.lines:
        charge = line.charge or Decimal(0)
        denial = _denial(claim, line, payer, rules)
        if denial is not None:
            lines.append(LinePayment(line, charge, None, Decimal(0),
                                     (Adjustment(denial.group, denial.reason, charge),), denial.remark))
            continue
        allowed = _allowed(line, charge, payer)
        copay = min(copay_left, allowed)
        copay_left -= copay
        coinsurance = _cents((allowed - copay) * payer.coinsurance_percent / 100)
        adjustments = [Adjustment(*CONTRACTUAL, charge - allowed), Adjustment(*COPAY, copay),
                       Adjustment(*COINSURANCE, coinsurance)]
        lines.append(LinePayment(line, charge, allowed, allowed - copay - coinsurance,
                                 tuple(a for a in adjustments if a.amount)))
    paid = sum((line.paid for line in lines), Decimal(0))
    patient = sum((a.amount for line in lines for a in line.adjustments if a.group == "PR"), Decimal(0))
    all_denied = bool(lines) and all(line.allowed is None for line in lines)
    status = DENIED if all_denied else CLP02_BY_RESPONSIBILITY.get(claim.payer_responsibility, "1")
    return ClaimPayment(claim, status, sum((line.charge for line in lines), Decimal(0)), paid, patient,
                        rules.filing_indicator(claim, payer), payer_claim_control_number, tuple(lines))


def _denial(claim: Claim, line: ServiceLine, payer: PayerRules, rules: Rules) -> Denial | None:
    if line.procedure_code in payer.non_covered_codes:
        return rules.denials["not_covered"]
    authorized = bool(claim.prior_authorization or line.prior_authorization)
    if payer.needs_authorization(line.procedure_code) and not authorized:
        return rules.denials["authorization_absent"]
    return None


def _allowed(line: ServiceLine, charge: Decimal, payer: PayerRules) -> Decimal:
    fee = payer.fees.get(line.procedure_code)
    if fee is not None:
        return min(charge, _cents(fee * (line.units or Decimal(1))))
    return min(charge, _cents(charge * payer.allowed_percent / 100))


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)
