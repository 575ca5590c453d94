"""Hypothesis strategies for canonical claims: varied, realistic and synthetic.

``claims()`` draws one behavioral-health ``Claim``; ``claim_batches()`` draws several claims
under several billing providers, as one 837P file would carry them. Names include apostrophes,
hyphens, accents and the X12 delimiters, which a writer must clean. Every NPI passes the
check digit (Luhn over the ten digits prefixed by 80840, domain reference 11.1).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import strategies as st

from bhhub.model import Address, Claim, Coverage, Patient, Payer, Person, PersonName, Provider, ServiceLine

# Billable ICD-10-CM leaf codes seen in behavioral health (domain reference 4.2, 4.3).
DIAGNOSES = (
    "F32.0", "F32.1", "F32.2", "F32.9", "F32.A", "F33.0", "F33.1", "F33.2", "F33.9", "F33.41",
    "F41.0", "F41.1", "F41.9", "F43.10", "F43.12", "F43.21", "F43.22", "F43.23", "F43.25", "F43.81",
    "F90.0", "F90.2", "F84.0", "F42.2", "F60.3", "F10.20", "F31.9", "F99", "Z63.0", "Z91.51", "R45.851",
)
PROCEDURES = (
    "90791", "90832", "90834", "90837", "90833", "90836", "90838", "90839", "90840", "90785",
    "90847", "90853", "99213", "99214", "H0004",
)
MODIFIERS = ("95", "93", "HO", "59", "XE")
PLACES_OF_SERVICE = ("11", "02", "10", "53")
TAXONOMIES = ("1041C0700X", "101YM0800X", "103T00000X", "2084P0800X", "261QM0801X")

# Realistic names, and names carrying every default delimiter (* ^ : ~).
FAMILY_NAMES = (
    "Doe", "O'Brien", "Smith-Jones", "Nuñez", "Núñez-García", "Nguyễn", "Zoë", "D'Angelo", "Van der Berg",
    "Lee*Park", "Chan~Wu", "Ma^Ri", "Bo:Bo", "Al-Sayed", "Ørsted",
)
GIVEN_NAMES = ("John", "Jane", "José", "Zoë", "Anne-Marie", "Mary Ann", "Ana*Lu", "Lou~", "Ça", None)
ORGANIZATIONS = (
    "Sample Behavioral Health PLLC", "Mind & Body Counseling, LLC", "Saint-Jérôme Psychiatry",
    "Family*Therapy~Group: North", "Jones' Wellness ^ Co",
)
CITIES = ("Springfield", "Coeur d'Alene", "Saint-Louis", "San José", "Winston-Salem", "Hope*Town")
STREETS = ("Main St", "Oak Ave", "Elm Street", "Route 9", "Martin Luther King Jr Blvd")
PAYERS = (
    Payer("99999", "Sample Health Plan", "CI"),
    Payer("BCBS1", "Blue Plan of Somewhere", "BL"),
    Payer("MCD01", "State Medicaid*Program", "MC"),
    Payer("MCR02", "Medicare Part B", "MB"),
    Payer("PPO77", "Preferred Provider Network", "12"),
    Payer("HMO88", "Health Maintenance Org", None),
)

_identifiers = st.text("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=2, max_size=15)


def npi_with_check_digit(first_nine: str) -> str:
    """The NPI whose tenth digit makes ``80840`` + NPI pass the Luhn check."""
    total = 0
    for position, char in enumerate(reversed("80840" + first_nine)):
        digit = int(char) * (2 if position % 2 == 0 else 1)  # the check digit will sit to the right
        total += digit - 9 if digit > 9 else digit
    return first_nine + str((10 - total % 10) % 10)


npis = st.builds(
    lambda first, rest: npi_with_check_digit(f"{first}{rest:08d}"),
    st.sampled_from("12"), st.integers(0, 99_999_999),
)


@st.composite
def addresses(draw) -> Address:
    zip5 = draw(st.integers(10_000, 99_999))
    postal = draw(st.sampled_from([f"{zip5}", f"{zip5}{draw(st.integers(1, 9999)):04d}", f"{zip5}-0001"]))
    return Address(
        line1=f"{draw(st.integers(1, 9999))} {draw(st.sampled_from(STREETS))}",
        line2=draw(st.sampled_from([None, "Apt 4*B", "Suite 200", "Unit ~3"])),
        city=draw(st.sampled_from(CITIES)),
        state=draw(st.sampled_from(["IL", "NY", "TX", "CA", "WA"])),
        postal_code=postal,
    )


@st.composite
def person_names(draw) -> PersonName:
    return PersonName(
        family=draw(st.sampled_from(FAMILY_NAMES)),
        given=draw(st.sampled_from(GIVEN_NAMES)),
        middle=draw(st.sampled_from([None, "Q", "Ann-Marie", "d'Arc"])),
        suffix=draw(st.sampled_from([None, "Jr", "III"])),
    )


birth_dates = st.dates(date(1940, 1, 1), date(2020, 12, 31))
genders = st.sampled_from("MFU")


@st.composite
def people(draw) -> Person:
    """A subscriber other than the patient; their birth date and address may be unknown."""
    return Person(
        name=draw(person_names()), gender=draw(genders),
        birth_date=draw(st.none() | birth_dates), address=draw(st.none() | addresses()),
    )


@st.composite
def patients(draw) -> Patient:
    return Patient(
        name=draw(person_names()), birth_date=draw(birth_dates), gender=draw(genders),
        address=draw(addresses()), key=f"test:{draw(_identifiers)}",
    )


@st.composite
def coverages(draw, order: int) -> Coverage:
    """The patient is the subscriber, or a spouse/child/other dependent on someone's plan."""
    relationship = draw(st.sampled_from(["18", "18", "01", "19", "G8"]))
    return Coverage(
        order=order,
        payer=draw(st.sampled_from(PAYERS)),
        member_id=draw(_identifiers),
        relationship=relationship,
        subscriber=None if relationship == "18" else draw(people()),
        group_number=draw(st.none() | _identifiers),
    )


@st.composite
def organizations(draw) -> Provider:
    return Provider(
        npi=draw(npis), organization_name=draw(st.sampled_from(ORGANIZATIONS)),
        tin=f"{draw(st.integers(10_000_000, 999_999_999)):09d}",
        taxonomy=draw(st.none() | st.sampled_from(TAXONOMIES)), address=draw(addresses()),
    )


@st.composite
def clinicians(draw, *, billing: bool = False) -> Provider:
    """A Type-1 clinician: a rendering provider, or a sole proprietor billing in their own name."""
    return Provider(
        npi=draw(npis), name=draw(person_names()), taxonomy=draw(st.none() | st.sampled_from(TAXONOMIES)),
        tin=f"{draw(st.integers(10_000_000, 999_999_999)):09d}" if billing else None,
        address=draw(addresses()) if billing else None,
    )


billing_providers = organizations() | clinicians(billing=True)


@st.composite
def service_lines(draw, diagnosis_count: int, claim_place: str) -> ServiceLine:
    pointers = draw(st.lists(st.integers(1, diagnosis_count), min_size=1, max_size=4, unique=True))
    return ServiceLine(
        procedure_code=draw(st.sampled_from(PROCEDURES)),
        service_date=draw(st.dates(date(2024, 1, 1), date(2025, 12, 31))),
        modifiers=tuple(draw(st.lists(st.sampled_from(MODIFIERS), max_size=4, unique=True))),
        charge=Decimal(draw(st.integers(0, 250_000))).scaleb(-2),  # cents: 180.00, 180.50, 0.05
        units=draw(st.sampled_from([Decimal(1), Decimal(1), Decimal(2), Decimal(4), Decimal("1.5")])),
        diagnosis_pointers=tuple(pointers),
        place_of_service=draw(st.sampled_from([None, claim_place, *PLACES_OF_SERVICE])),
        prior_authorization=draw(st.none() | _identifiers),
        control_number=draw(st.none() | _identifiers),
    )


@st.composite
def claims(draw, billing_provider=billing_providers, patient_control_number=None) -> Claim:
    """One claim. ``billing_provider`` is a strategy, so a batch can share a few providers."""
    billing = draw(billing_provider)
    diagnoses = tuple(draw(st.lists(st.sampled_from(DIAGNOSES), min_size=1, max_size=12, unique=True)))
    place = draw(st.sampled_from(PLACES_OF_SERVICE))
    rendering = draw(st.sampled_from([None, billing, "other"]))
    frequency = draw(st.sampled_from(["1", "1", "1", "7", "8"]))
    primary_claim = draw(st.booleans())
    coverage = draw(coverages(order=1 if primary_claim else 2))
    other = () if primary_claim and draw(st.booleans()) else (draw(coverages(order=2 if primary_claim else 1)),)
    return Claim(
        patient_control_number=patient_control_number or draw(_identifiers),
        patient=draw(patients()),
        coverage=coverage,
        billing_provider=billing,
        rendering_provider=draw(clinicians()) if rendering == "other" else rendering,
        diagnoses=diagnoses,
        lines=tuple(draw(st.lists(service_lines(len(diagnoses), place), min_size=1, max_size=6))),
        place_of_service=place,
        frequency_code=frequency,
        other_coverages=other,
        prior_authorization=draw(st.none() | _identifiers),
        payer_claim_control_number=draw(_identifiers) if frequency != "1" else None,
    )


@st.composite
def claim_batches(draw, max_claims: int = 6) -> list[Claim]:
    """Several claims (unique control numbers) under one to three billing providers."""
    providers = draw(st.lists(billing_providers, min_size=1, max_size=3, unique_by=lambda p: p.npi))
    count = draw(st.integers(1, max_claims))
    return [
        draw(claims(st.sampled_from(providers), patient_control_number=f"P{n:03d}{draw(_identifiers)}"))
        for n in range(count)
    ]
