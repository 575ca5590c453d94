"""Remittance: posting 835 payments to claims, denials and their next actions, accounts receivable."""
