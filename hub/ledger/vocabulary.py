"""The ledgers' fixed words: where an authorization came from, enrollment statuses, CSV columns.

Kept apart from the ledgers' code (which needs the store) so the command line can offer them as
choices and help text without importing SQLAlchemy.
"""

from __future__ import annotations

# Authorizations (bhhub.ledger.authorizations).
SOURCES = ("typed", "fhir", "eligibility", "portal")
UNIT_TYPES = ("visits", "units")

# An authorizations CSV (bhhub.ledger.authorization_imports).
AUTHORIZATION_COLUMNS = ("payer_id", "member_id", "number", "quantity", "unit_type", "procedure_codes", "start",
                         "end", "rendering_npi", "source")
AUTHORIZATION_REQUIRED = ("payer_id", "member_id", "number", "quantity", "start", "end")
CSV_SOURCES = ("typed", "portal", "eligibility")  # "fhir" is what the EHR feed records

# Enrollments (bhhub.ledger.credentialing).
ENROLLMENT_STATUSES = ("enrolled", "pending", "terminated", "not_enrolled")
ENROLLMENT_COLUMNS = ("npi", "payer_id", "status", "effective", "end", "in_network", "era", "eft", "reattestation_due")
ENROLLMENT_REQUIRED = ("npi", "payer_id", "status")
