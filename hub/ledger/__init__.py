"""Ledgers the scrubber checks claims against: prior authorizations (with the visits the
claims that went out used) and provider enrollments with payers."""
