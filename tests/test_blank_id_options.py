"""A ``--payer``, ``--mailbox`` or ``--member`` given as "" (a script's empty variable) is a
usage error from every command, exit code 2 and one line, never "use the default"."""

from __future__ import annotations

import pytest
from test_eligibility_service import MAILBOX, MEMBER, MRN, PAYER, bhhub, count, home, with_mailbox  # noqa: F401

from bhhub.store import schema

CASES = {
    "eligibility check --payer": ["eligibility", "check", "--patient", MRN, "--date", "2026-11-30", "--payer", ""],
    "eligibility check --mailbox": ["eligibility", "check", "--patient", MRN, "--date", "2026-11-30", "--mailbox", " "],
    "eligibility sweep --mailbox": ["eligibility", "sweep", "--mailbox", ""],
    "claims --payer": ["claims", "--payer", ""],
    "exchange --mailbox": ["exchange", "--mailbox", ""],
    "auth add --member": ["auth", "add", "--payer", PAYER, "--member", "", "--number", "A-1", "--visits", "10",
                          "--from", "2026-10-01", "--to", "2026-12-31"],
    "auth add --payer": ["auth", "add", "--payer", "", "--member", MEMBER, "--number", "A-1", "--visits", "10",
                         "--from", "2026-10-01", "--to", "2026-12-31"],
}


@pytest.mark.parametrize("argv", CASES.values(), ids=CASES.keys())
def test_a_blank_id_option_is_a_usage_error_and_changes_nothing(home, capsys, argv):
    with_mailbox(home)
    checks, authorizations = count(home, schema.EligibilityCheck), count(home, schema.Authorization)
    assert bhhub(home, *argv) == 2
    out, err = capsys.readouterr()
    flag = argv[argv.index("") - 1] if "" in argv else argv[argv.index(" ") - 1]
    assert err.splitlines() == [err.strip()] and f"{flag} is blank" in err
    assert out == ""
    assert count(home, schema.EligibilityCheck) == checks and count(home, schema.Authorization) == authorizations
