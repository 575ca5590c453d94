"""The inbox as the web workspace shows it (issue 16): inbox_page() is `bhhub inbox --json` a page at
a time, and a retry's to_json() is what `bhhub inbox retry --json` prints."""

from __future__ import annotations

import json

import pytest

from bhhub.cli.main import main
from bhhub.errors import UsageError
from bhhub.intake import inbox as intake
from bhhub.listings.inbox import inbox_page
from views_support import as_printed, take_in


def test_pages_of_the_inbox_filtered_by_state_are_what_the_command_prints(hub, capsys):
    take_in(hub, seeds=(3, 5, 8))
    bad = intake.receive(hub, b"not a format anyone reads", "junk.txt")
    assert bad.outcome == "quarantined"
    with hub.store.session() as session:
        first, cursor = inbox_page(session, limit=2)
        rest, end = inbox_page(session, limit=2, after=cursor)
        quarantined, _ = inbox_page(session, state="quarantined")
    assert len(first) == 2 and len(rest) == 2 and end is None
    assert [i["id"] for i in quarantined] == [bad.item_id] and quarantined[0]["reason"]
    home = str(hub.settings.home)
    assert main(["--home", home, "inbox", "--limit", "2", "--json"]) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out) == as_printed(first) and f"--after {cursor}" in printed.err
    with hub.store.session() as session, pytest.raises(UsageError):
        inbox_page(session, state="lost")


def test_a_retry_answers_with_the_object_the_command_prints(hub, capsys):
    bad = intake.receive(hub, b"not a format anyone reads", "junk.txt")
    again = intake.retry(hub, bad.item_id)
    assert main(["--home", str(hub.settings.home), "inbox", "retry", str(bad.item_id), "--json"]) == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed == as_printed(again.to_json())
    assert printed["inbox_item_id"] == bad.item_id and printed["outcome"] == "quarantined"
