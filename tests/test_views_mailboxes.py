"""Mailboxes and alerts as the web workspace shows them (issue 16): `bhhub mailbox status` and
`bhhub alerts` print what mailbox_status() and alerts() return, read from what the exchange keeps."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import update

from bhhub.cli.main import main
from bhhub.exchange.alert_list import alerts
from bhhub.exchange.cycle import check_acknowledgments_due, exchange
from bhhub.exchange.mailbox_status import mailbox_status
from bhhub.exchange.mailboxes import load_mailboxes
from bhhub.exchange.outbound import submit
from bhhub.runtime.app import Hub
from bhhub.store import schema
from bhhub.store.schema import utcnow
from views_support import as_printed, start_sandbox, take_in, with_sandbox_mailbox

pytest.importorskip("pyx12")


class Sent:
    """A hub that uploaded its claims to the sandbox and has not yet picked up the answers."""

    def __init__(self, home, sandbox):
        self.home, self.sandbox = home, sandbox
        with Hub.open(home) as hub:
            take_in(hub)
            mailbox = load_mailboxes(hub)["sandbox"]
            with mailbox.transport.connect(mailbox.connection) as connection:
                [self.sent] = submit(hub, mailbox, connection)

    def status(self) -> dict:
        with Hub.open(self.home) as hub, hub.store.session() as session:
            [only] = mailbox_status(hub, session)
            return only

    def upload_ago(self, hours: float) -> None:
        with Hub.open(self.home) as hub, hub.store.session() as session:
            session.execute(update(schema.Transmission).values(uploaded_at=utcnow() - timedelta(hours=hours)))
            session.commit()


@pytest.fixture
def sent(hub_home, tmp_path, request):
    sandbox = start_sandbox(tmp_path, request)
    with_sandbox_mailbox(hub_home, sandbox)
    return Sent(hub_home, sandbox)


def test_a_file_sent_and_not_answered_is_in_flight(sent):
    status = sent.status()
    assert status["mailbox"] == "sandbox" and status["profile"] == "sandbox"
    [flying] = status["in_flight"]
    assert flying["transmission_id"] == sent.sent.transmission_id and flying["state"] == "uploaded"
    assert flying["claims"] == sent.sent.claims and flying["kind"] == "837P"
    assert status["missing"] == []  # not overdue yet: the profile gives the 999 its window
    assert status["last_sent"]["transmission_id"] == sent.sent.transmission_id
    assert status["last_exchange"]["outcome"] == "ok"
    assert status["last_exchange"]["at"] == status["last_sent"]["at"]


def test_an_overdue_999_is_missing_and_names_the_alert_once_raised(sent):
    sent.upload_ago(hours=25)  # the sandbox profile expects the 999 within 24 hours
    [missing] = sent.status()["missing"]
    assert missing["transmission_id"] == sent.sent.transmission_id and missing["expected"] == "999"
    assert missing["alert_id"] is None  # the next exchange (or the runner's watch) raises it
    with Hub.open(sent.home) as hub:
        check_acknowledgments_due(hub, load_mailboxes(hub)["sandbox"])
        with hub.store.session() as session:
            [alert] = alerts(session)
    assert alert["kind"] == "ack_missing"
    assert sent.status()["missing"][0]["alert_id"] == alert["id"]


def test_once_the_answers_are_picked_up_nothing_is_in_flight_or_missing(sent):
    sent.upload_ago(hours=25)
    with Hub.open(sent.home) as hub:
        assert exchange(hub, load_mailboxes(hub)["sandbox"]).ok
    status = sent.status()
    assert status["in_flight"] == [] and status["missing"] == []
    assert status["last_received"]["inbox_item_id"] is not None
    assert status["last_exchange"] == {"at": status["last_received"]["at"], "outcome": "ok", "error": None}


def test_a_mailbox_that_cannot_be_reached_shows_its_failed_exchange(sent):
    sent.sandbox.stop()
    with Hub.open(sent.home) as hub:
        assert not exchange(hub, load_mailboxes(hub)["sandbox"]).ok
    last = sent.status()["last_exchange"]
    assert last["outcome"] == "failed" and "mailbox sandbox" in last["error"]


def test_cli_json_prints_what_the_functions_return(sent, capsys):
    sent.upload_ago(hours=25)
    with Hub.open(sent.home) as hub:
        check_acknowledgments_due(hub, load_mailboxes(hub)["sandbox"])
        with hub.store.session() as session:
            expected, open_alerts, every_alert = mailbox_status(hub, session), alerts(session), alerts(
                session, open_only=False)
    home = str(sent.home)
    assert main(["--home", home, "mailbox", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == as_printed(expected)
    assert main(["--home", home, "alerts", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == as_printed(open_alerts) != []
    assert main(["--home", home, "alerts", "--all", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == as_printed(every_alert)
    assert main(["--home", home, "mailbox", "status"]) == 0
    out = capsys.readouterr().out
    assert "1 file(s) in flight, 1 response(s) overdue" in out and "MISSING    999 for BHHUB_" in out


def test_cleared_alerts_are_left_out_unless_asked_for(hub):
    from bhhub.exchange.alerts import clear_alert, raise_alert

    with hub.store.session() as session:
        raise_alert(session, "mailbox_unreachable:x", "mailbox_unreachable", "mailbox x: refused")
        raise_alert(session, "ack_missing:transmission:9", "ack_missing", "mailbox x: no 999")
        clear_alert(session, "mailbox_unreachable:x")
        session.commit()
        assert [a["key"] for a in alerts(session)] == ["ack_missing:transmission:9"]
        assert [a["key"] for a in alerts(session, open_only=False)] == ["mailbox_unreachable:x",
                                                                        "ack_missing:transmission:9"]


def test_no_mailbox_configured_is_an_empty_status(hub, capsys):
    with hub.store.session() as session:
        assert mailbox_status(hub, session) == []
    assert main(["--home", str(hub.settings.home), "mailbox", "status"]) == 0
    assert capsys.readouterr().out == "no mailboxes configured\n"
