"""Identifier checks shared by the scrubber, the mappers and the tests."""

from __future__ import annotations

import re
from functools import lru_cache

_TIN = re.compile(r"^\d{9}$")


@lru_cache(maxsize=65536)  # a practice has few providers; every claim asks about them
def npi_is_valid(npi: str) -> bool:
    """NPI check digit: Luhn over the 10 digits as if prefixed by 80840 (domain reference 11.1)."""
    if len(npi) != 10 or not npi.isdigit():
        return False
    total = 24  # the contribution of the implied 80840 prefix
    for i, ch in enumerate(reversed(npi[:9])):
        digit = int(ch)
        if i % 2 == 0:  # the rightmost of the first nine digits is doubled
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10 == int(npi[9])


def npi_check_digit(first_nine: str) -> str:
    """The check digit that makes ``first_nine`` a valid NPI."""
    for digit in "0123456789":
        if npi_is_valid(first_nine + digit):
            return digit
    raise ValueError(f"not nine digits: {first_nine!r}")


def tin_is_valid(tin: str) -> bool:
    """An EIN or SSN as X12 wants it: nine digits, no dash."""
    return bool(_TIN.match(tin))
