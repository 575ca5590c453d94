"""One ST/SE of an 835 (005010X221A1) as the reader goes through it (domain reference 6):
the payment header (table 1, 1000A payer, 1000B payee), the PLB provider adjustments (6.4) and
the trailer's checks: SE01/SE02, and BPR02 against the claims' CLP04 less the PLB (6.3).

``x835``'s reader hands this each header segment, each claim's event as it ends (for the
running total; never the claims themselves) and the PLB and SE segments. Problems are plain
sentences naming segments, numbers and amounts, never a value that could identify a patient.
"""

from __future__ import annotations

from datetime import date

from bhhub.errors import InputError
from bhhub.remittance.x835_elements import ZERO, _amount, _date, _element, _Malformed
from bhhub.remittance.x835_events import BadClaim, ClaimPayment, PaymentHeader, PaymentTrailer, ProviderAdjustment


class _Transaction:
    """One ST/SE: its header as read so far, then its running totals (never its claims)."""

    def __init__(self, st: list[str], number: int, interchange: str, component: str):
        self.st_number = number
        self.component = component
        self.control = _element(st, 2)
        self.interchange = interchange
        self.header_sent = False
        self.bpr: list[str] | None = None
        self.bpr_number = 0
        self.trn: list[str] | None = None
        self.party = ""
        self.payer_name = self.payer_xv = self.payer_ref = ""
        self.payee_name = self.payee_id = self.payee_qualifier = ""
        self.production_date: date | None = None
        self.amount = ZERO
        self.claims = 0
        self.paid_total = ZERO
        self.unreadable_paid: list[int] = []  # CLP numbers whose CLP04 could not be read
        self.plb: list[ProviderAdjustment] = []
        self.problems: list[str] = []

    def read_header(self, el: list[str], number: int) -> bool:
        """Take a header (table 1, 1000A, 1000B) segment; False when it is not one."""
        sid = el[0]
        if sid == "BPR":
            self.bpr, self.bpr_number = el, number
        elif sid == "TRN":
            if self.trn is None:
                self.trn = el
        elif sid == "N1":
            self.party = _element(el, 1)
            if self.party == "PR":
                self.payer_name = _element(el, 2)
                if _element(el, 3) == "XV":
                    self.payer_xv = _element(el, 4)
            elif self.party == "PE":
                self.payee_name = _element(el, 2)
                self.payee_qualifier = _element(el, 3)
                self.payee_id = _element(el, 4)
        elif sid == "REF":
            if self.party == "PR" and _element(el, 1) == "2U":
                self.payer_ref = _element(el, 2)
        elif sid == "DTM":
            if _element(el, 1) == "405":
                self.production_date = _date(_element(el, 2))
                if self.production_date is None:
                    self.problems.append(f"DTM*405 (segment {number}), the production date, is not a valid date")
        elif sid not in _HEADER_OTHERS:
            return False
        return True

    def header(self) -> PaymentHeader:
        self.header_sent = True
        where = f"the 835 that begins at segment {self.st_number}"
        if self.bpr is None:
            raise InputError(f"{where} has no BPR (financial information) before its claims")
        if self.trn is None:
            raise InputError(f"{where} has no TRN (reassociation trace number) before its claims")
        bpr = self.bpr
        try:
            self.amount = _amount(_element(bpr, 2), "BPR02")
        except _Malformed as problem:
            raise InputError(f"BPR (segment {self.bpr_number}) of {where}: {problem}") from None
        payment_date = None
        if _element(bpr, 16):
            payment_date = _date(bpr[16])
            if payment_date is None:
                self.problems.append(f"BPR16 (segment {self.bpr_number}), the payment date, is not a valid date")
        originator = _element(self.trn, 3)
        return PaymentHeader(
            control_number=self.control, handling=_element(bpr, 1), amount=self.amount,
            credit_debit=_element(bpr, 3), method=_element(bpr, 4), payment_date=payment_date,
            trace_number=_element(self.trn, 2), trace_originator=originator, payer_name=self.payer_name,
            payer_id=self.payer_ref or self.payer_xv or originator, payee_name=self.payee_name,
            payee_id=self.payee_id, payee_id_qualifier=self.payee_qualifier,
            production_date=self.production_date, interchange_control_number=self.interchange,
            segment_number=self.st_number,
        )

    def close_claim(self, event: ClaimPayment | BadClaim, clp: list[str], number: int) -> ClaimPayment | BadClaim:
        """Count the claim's CLP04 in the transaction's total; the event itself, unchanged."""
        if isinstance(event, ClaimPayment):
            self.paid_total += event.paid
        elif clp[0] == "CLP":  # a quarantined claim's CLP04 still counts toward BPR02 when readable
            try:
                self.paid_total += _amount(_element(clp, 4), "CLP04")
            except _Malformed:
                self.unreadable_paid.append(number)
        return event

    def provider_adjustments(self, el: list[str], number: int) -> None:
        """PLB: provider, fiscal period end, then up to six (reason:reference, amount) pairs."""
        provider = _element(el, 1)
        period = _date(_element(el, 2)) if _element(el, 2) else None
        if _element(el, 2) and period is None:
            self.problems.append(f"PLB02 (segment {number}), the fiscal period end, is not a valid date")
        for position in range(3, len(el), 2):
            composite, amount_text = el[position], _element(el, position + 1)
            if not composite and not amount_text:
                continue
            reason, _, reference = composite.partition(self.component)
            try:
                if not reason:
                    raise _Malformed(f"PLB{position:02d} has no adjustment reason code")
                amount = _amount(amount_text, f"PLB{position + 1:02d}")
            except _Malformed as problem:
                self.problems.append(f"PLB (segment {number}): {problem}; that adjustment is left out")
                continue
            self.plb.append(ProviderAdjustment(provider, period, reason, reference, amount))

    def trailer(self, se: list[str], number: int) -> PaymentTrailer:
        problems = self.problems
        counted = number - self.st_number + 1
        if _element(se, 1) != str(counted):
            problems.append(f"SE01 (segment {number}) counts {_element(se, 1) or 'no'} segments; "
                            f"the transaction has {counted}")
        if _element(se, 2) != self.control:
            problems.append(f"SE02 (segment {number}) does not repeat ST02 {self.control}")
        adjusted = ZERO
        for adjustment in self.plb:
            adjusted += adjustment.amount
        if self.unreadable_paid:
            problems.append(f"BPR02 cannot be checked: the paid amount of the claim(s) at segment(s) "
                            f"{', '.join(map(str, self.unreadable_paid))} could not be read")
        elif self.paid_total - adjusted != self.amount:
            problems.append(f"the payment {self.amount} (BPR02) is not the claims' {self.paid_total} paid "
                            f"less {adjusted} of provider adjustments (PLB): {self.paid_total - adjusted}")
        return PaymentTrailer(self.control, self.claims, self.paid_total, tuple(self.plb), tuple(problems))


# Header segments read past: addresses, contacts, the 1000B remittance delivery method.
_HEADER_OTHERS = frozenset({"N3", "N4", "PER", "RDM", "CUR"})
