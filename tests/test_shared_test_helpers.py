"""Tests share their fixtures' configuration: one writing of each, so a change is one edit."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
SANDBOX_TABLE = "profile = " + '"sandbox"'  # spelt so this file does not match itself


def test_the_sandbox_mailbox_is_written_in_one_place():
    """Tests reach the sandbox clearinghouse through ``sandbox_support.sandbox_mailbox``: a new
    mailbox key (or a stricter transport) is then one edit, not one per test file."""
    by_hand = [p.name for p in sorted(TESTS.glob("*.py"))
               if p.name != "sandbox_support.py" and SANDBOX_TABLE in p.read_text(encoding="utf-8")]
    assert by_hand == []
