"""An eligibility inquiry: who is asking which payer about whom, for which services.

The parties are the canonical records of ``bhhub.model`` (``Payer``, ``Provider``, ``Person``),
so an inquiry is built from what an encounter or appointment already holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from bhhub.model import Payer, Person, Provider


@dataclass(frozen=True)
class EligibilityRequest:
    """One 270 inquiry (005010X279A1): one patient, one payer, one provider.

    When the patient is the subscriber, ``dependent`` is None and ``subscriber`` is the patient.
    When the patient is a dependent with no member id of their own, ``dependent`` is the patient
    and ``member_id`` is the subscriber's: the 270 then carries a 2000D loop. A dependent with
    their own member id is asked about as a subscriber: the guide treats a patient with a unique
    member id as the subscriber.
    """

    trace_number: str  # 2000C/D TRN02: the id the 271 echoes back (TRN*2), to match the answer
    payer: Payer  # 2100A NM1*PR, PI payer id
    provider: Provider  # 2100B NM1*1P, XX NPI
    member_id: str  # 2100C NM109 (MI)
    subscriber: Person  # 2100C name; DMG when the subscriber is the patient
    service_date: date | None = None  # DTP*291; None asks about the day the payer receives it
    dependent: Person | None = None  # 2000D/2100D: the patient, when not the subscriber
    service_types: tuple[str, ...] = ()  # EQ01, one 2110 loop each; () = the table's default
    trace_originator: str | None = None  # TRN03: 10 characters; default "1" + the provider's EIN

    @property
    def patient(self) -> Person:
        return self.dependent or self.subscriber
