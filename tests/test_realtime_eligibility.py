"""Real-time eligibility through a clearinghouse: one 270 over HTTP (CAQH CORE vC2.2.0, MIME
multipart), its 271 back at once, by the ``realtime_x12`` plugin.

Against the sandbox clearinghouse's real HTTP endpoint on 127.0.0.1 (``bhhub.plugins.clearinghouse.
sandbox.realtime``): no mocks. Its answers come from the same ``[eligibility]`` rules and 271
writer as the mailbox's, so a member asked in real time must read the same as the same member
asked by batch 270 (the sandbox's ``answer_upload``, what its SFTP server runs on an upload).
The plugin's clock is injected: a Retry-After is recorded, not slept.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import socket
import threading
import tomllib
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_eligibility_service import home, run_json  # noqa: F401 - the hub home fixture
from test_sandbox_clearinghouse import ENVELOPE, GROUP_PRACTICE

import bhhub.plugins.clearinghouse.realtime as realtime
from bhhub.eligibility import codes
from bhhub.eligibility.inquiry import EligibilityRequest
from bhhub.eligibility.x270 import write_270
from bhhub.eligibility.x271 import read_271
from bhhub.errors import ConfigError, InputError, MappingError, RetriableError
from bhhub.model import Coverage, Patient, Payer, PersonName
from bhhub.x12.envelope import ControlNumbers
from bhhub.plugins.clearinghouse.realtime.config import build_endpoint, endpoint_problems
from bhhub.plugins.clearinghouse.realtime.exchange import exchange
from bhhub.plugins.clearinghouse.sandbox.clearinghouse import answer_upload
from bhhub.plugins.clearinghouse.sandbox.command import COMMAND, configure
from bhhub.plugins.clearinghouse.sandbox.realtime import RealtimeSandbox
from bhhub.plugins.clearinghouse.sandbox.rules import load_rules
from bhhub.plugins.clearinghouse.sandbox.state import SandboxState
from bhhub.connectors.http_api.client import PortalCredentialsError, PortalRefusedRequest
from bhhub.connectors.http_api.registry import PortalFiles

TODAY = date(2026, 11, 30)
SERVICE_DATE = date(2026, 12, 2)
PASSWORD = "sandbox-Pa55word-not-for-logs"
PAYER = Payer("87726", "Sample Commercial Health Plan", "CI")
JOHN = Patient(PersonName("Doe", "John"), date(1980, 1, 1), "M", key="test:john")
MEMBERS = {"active": "SBXACTIVE0042", "inactive": "SBXENDED0042", "carve_out": "SBXMBHO0042"}


class Clock:
    """The plugin's clock: sleeps are recorded and move time on, nothing waits."""

    def __init__(self):
        self.now, self.slept = 1000.0, []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def wall(self) -> float:
        return datetime(2026, 11, 30, 9, 30).timestamp() + self.now


def endpoint_file(url: str, *, password_env: str = "BHHUB_TEST_REALTIME_PASSWORD", **overrides) -> str:
    """A practice's file for the sandbox's endpoint, serving payer 87726."""
    tables = {
        "portal": {"name": "sandbox-realtime", "payer_ids": [PAYER.payer_id], "base_url": url},
        "core": {"sender_id": "PRACTICE01", "receiver_id": "BHHUBSANDBOX"},
        "envelope": {"sender_id": "PRACTICE01", "receiver_id": "BHHUBSANDBOX"},
        "provider": {"npi": GROUP_PRACTICE.npi, "organization_name": GROUP_PRACTICE.organization_name,
                     "tax_id": GROUP_PRACTICE.tin},
        "auth": {"type": "core_username_password", "username": "bhhub", "password_env": password_env},
        "limits": {"max_attempts": 3, "backoff_seconds": 1, "max_retry_after_seconds": 10, "deadline_seconds": 30},
    }
    for table, values in overrides.items():
        tables[table] = {**tables[table], **values}
    lines = []
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def sandbox(tmp_path):
    with RealtimeSandbox(load_rules(), SandboxState(tmp_path / "state.json"), password=PASSWORD,
                         today=TODAY) as endpoint:
        yield endpoint


@pytest.fixture
def point_plugin_at(tmp_path):
    """The plugin reading one file, tmp/realtime/sandbox.toml, pointed at ``url``; its clock."""
    folder = tmp_path / "realtime"
    folder.mkdir()
    clock = Clock()
    saved = realtime.endpoint_files(), dict(realtime._client_options)

    def point(url: str) -> Clock:
        (folder / "sandbox.toml").write_text(endpoint_file(url), encoding="utf-8")
        realtime.use_endpoint_files(PortalFiles(realtime.FOLDER, realtime.build_endpoint, directories=[folder]),
                                    clock=clock, jitter=lambda: 0.5)
        return clock

    yield point
    realtime.use_endpoint_files(saved[0], **saved[1])


@pytest.fixture
def clock(point_plugin_at, monkeypatch, sandbox):
    monkeypatch.setenv("BHHUB_TEST_REALTIME_PASSWORD", PASSWORD)
    return point_plugin_at(sandbox.url)


def ask(member_id: str, payer: Payer = PAYER):
    coverage = Coverage(order=1, payer=payer, member_id=member_id)
    return realtime.bhhub_check_eligibility(JOHN, coverage, SERVICE_DATE, codes.default_service_types())


def batch_answer(member_id: str, tmp_path: Path):
    """The same member asked by batch 270 through the sandbox's mailbox code: its 271, read."""
    request = EligibilityRequest(trace_number="BATCH-1", payer=PAYER, provider=GROUP_PRACTICE, member_id=member_id,
                                 subscriber=JOHN, service_date=SERVICE_DATE)
    content = write_270([request], ENVELOPE, ControlNumbers(7, 7, 7), datetime(2026, 11, 30, 9, 0))
    answer = answer_upload(content, load_rules(), SandboxState(tmp_path / f"batch-{member_id}.json"),
                           datetime(2026, 11, 30, 12, 0))
    [response] = read_271(dict(answer.replies)["271"])
    return response


# --- answers, the same as the batch path's ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["active", "inactive", "carve_out"])
def test_a_member_asked_in_real_time_reads_the_same_as_by_batch_270(kind, clock, sandbox, tmp_path):
    answered = ask(MEMBERS[kind])
    batch = batch_answer(MEMBERS[kind], tmp_path)
    assert answered.active is batch.active is (kind != "inactive")
    assert answered.mental_health_summary() == batch.mental_health_summary()
    assert answered.member_id == MEMBERS[kind] and answered.trace_numbers[0].startswith("RT")
    assert sandbox.requests == 1 and clock.slept == []
    summary = answered.mental_health_summary()
    if kind == "active":
        assert (summary.copay, summary.visits_remaining) == (batch.mental_health_summary().copay, 8)
        assert summary.copay is not None and summary.auth_required is False
    if kind == "carve_out":
        assert "SANDBOX BEHAVIORAL HEALTH" in " ".join(answered.messages)


def test_a_member_the_payer_does_not_know_is_a_refusal_not_an_error(clock):
    answered = ask("SBXNONE0042")
    assert answered.rejected and [r.code for r in answered.rejections] == ["75"]


# --- throttling, credentials, payers not served ------------------------------------------------------


def test_throttled_twice_then_answered_gives_one_record_after_the_waits_asked_for(clock, sandbox):
    sandbox.throttle(2, retry_after=3)
    answered = ask(MEMBERS["active"])
    assert answered.active is True
    assert clock.slept == [3.0, 3.0]  # Retry-After honoured, not the backoff
    assert sandbox.requests == 3


def test_throttled_past_the_attempts_is_retriable(clock, sandbox):
    sandbox.throttle(5, retry_after=1)
    with pytest.raises(RetriableError, match="did not answer for payer 87726"):
        ask(MEMBERS["active"])
    assert sandbox.requests == 3  # limits.max_attempts


def test_a_wrong_password_is_a_clear_credentials_error(clock, monkeypatch, sandbox):
    monkeypatch.setenv("BHHUB_TEST_REALTIME_PASSWORD", "not-the-password")
    with pytest.raises(PortalCredentialsError) as refused:
        ask(MEMBERS["active"])
    message = str(refused.value)
    assert "sandbox-realtime refused bhhub's credentials for payer 87726 (HTTP 401, UnAuthorized)" in message
    assert "not-the-password" not in message and isinstance(refused.value, ConfigError)


def test_a_missing_password_says_which_variable_to_set(clock, monkeypatch, sandbox):
    monkeypatch.delenv("BHHUB_TEST_REALTIME_PASSWORD")
    with pytest.raises(ConfigError, match="BHHUB_TEST_REALTIME_PASSWORD"):
        ask(MEMBERS["active"])
    assert sandbox.requests == 0


def test_a_payer_no_file_lists_is_not_served_and_nothing_is_sent(clock, sandbox):
    assert ask(MEMBERS["active"], Payer("00431", "Sample Medicare Part B", "MB")) is None
    assert sandbox.requests == 0


# --- refusals and garbage ------------------------------------------------------------------------


def test_a_999_answered_instead_of_a_271_is_a_clear_refusal(clock, sandbox):
    endpoint = realtime.endpoint_files().for_payer(PAYER.payer_id)
    request = EligibilityRequest(trace_number="RT-BROKEN", payer=PAYER, provider=GROUP_PRACTICE,
                                 member_id=MEMBERS["active"], subscriber=JOHN, service_date=SERVICE_DATE)
    content = write_270([request], endpoint.envelope, ControlNumbers(9, 9, 9), datetime(2026, 11, 30, 9, 0))
    broken = content.replace(b"SE*", b"SE*9", 1)  # a wrong segment count: the set is rejected
    with pytest.raises(PortalRefusedRequest) as refused:
        exchange(endpoint, broken, "RT-BROKEN", PAYER.payer_id)
    message = str(refused.value)
    assert "answered with a 999 instead of a 271: the 270 was rejected" in message
    assert "rejected" in message.split("(", 1)[1] and MEMBERS["active"] not in message


def test_a_271_for_another_inquiry_is_not_taken_as_this_ones_answer(clock, sandbox):
    endpoint = realtime.endpoint_files().for_payer(PAYER.payer_id)
    request = EligibilityRequest(trace_number="RT-SOMEONE-ELSE", payer=PAYER, provider=GROUP_PRACTICE,
                                 member_id=MEMBERS["active"], subscriber=JOHN, service_date=SERVICE_DATE)
    content = write_270([request], endpoint.envelope, ControlNumbers(9, 9, 9), datetime(2026, 11, 30, 9, 0))
    with pytest.raises(InputError, match="does not answer this inquiry: no TRN02 matches"):
        exchange(endpoint, content, "RT-MINE", PAYER.payer_id)
    assert sandbox.requests == 1  # it was answered (for RT-SOMEONE-ELSE): the answer was refused here


def test_a_ta1_answered_instead_of_a_271_names_the_envelope(clock, tmp_path, sandbox):
    (tmp_path / "realtime" / "sandbox.toml").write_text(
        endpoint_file(sandbox.url, envelope={"receiver_id": "SOMEONEELSE"}), encoding="utf-8")
    with pytest.raises(PortalRefusedRequest, match="answered with a TA1 instead of a 271.*009"):
        ask(MEMBERS["active"])


def test_a_wrong_core_receiver_id_is_refused_with_its_error_code(clock, tmp_path, sandbox):
    (tmp_path / "realtime" / "sandbox.toml").write_text(
        endpoint_file(sandbox.url, core={"receiver_id": "SOMEONEELSE"}), encoding="utf-8")
    with pytest.raises(PortalRefusedRequest, match="ErrorCode ReceiverIDIllegal.*check \\[core\\]"):
        ask(MEMBERS["active"])


class _Garbage(BaseHTTPRequestHandler):
    """A real endpoint that answers a web page, as a misconfigured proxy does."""

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b"<html><body>Service moved</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_garbage_is_an_input_error_and_no_answer(clock, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        (tmp_path / "realtime" / "sandbox.toml").write_text(
            endpoint_file(f"http://127.0.0.1:{server.server_address[1]}/core"), encoding="utf-8")
        with pytest.raises(InputError, match="not a CORE real-time answer: the answer is text/html"):
            ask(MEMBERS["active"])
    finally:
        server.shutdown()
        server.server_close()


# --- configuration --------------------------------------------------------------------------------


def test_the_example_file_loads_and_serves_an_invented_payer_only():
    table = tomllib.loads(realtime.EXAMPLE_FILE.read_text(encoding="utf-8"))
    endpoint = build_endpoint(table, "example")
    assert endpoint.connection.example is True
    assert endpoint.connection.payer_ids == ("EXAMPLE-REALTIME-00000",)
    assert endpoint.connection.base_url.startswith("https://")


def test_a_bad_file_names_every_problem_at_once():
    table = tomllib.loads(endpoint_file("http://realtime.example.com/core"))
    table["auth"] |= {"password": "in-the-file"}
    table["provider"]["npi"] = "12"
    del table["core"]["sender_id"]
    problems = endpoint_problems(table)
    assert len(problems) == 4
    assert any("secrets are never written" in p for p in problems)
    assert any("https://" in p for p in problems)  # plain http only to loopback
    assert any("provider.npi" in p for p in problems) and any("core.sender_id" in p for p in problems)
    with pytest.raises(MappingError, match="4 problem"):
        build_endpoint(table, "bad.toml")


# --- logs ---------------------------------------------------------------------------------------


def test_logs_carry_no_member_id_and_no_secret(clock, sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox.throttle(1, retry_after=1)
    ask(MEMBERS["active"])
    ask(MEMBERS["carve_out"])
    assert "real-time sandbox-realtime (payer 87726): answered" in caplog.text
    assert "sandbox real-time: PayloadID" in caplog.text
    for secret in (*MEMBERS.values(), PASSWORD, "Doe", "19800101"):
        assert secret not in caplog.text


# --- bhhub sandbox serve --------------------------------------------------------------------------


def test_sandbox_serve_with_a_realtime_port_answers_over_http_beside_the_mailbox(tmp_path, point_plugin_at,
                                                                                 monkeypatch):
    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args(["serve", "--port", "0", "--realtime-port", "0", "--root", str(tmp_path / "sandbox"),
                              "--today", "2026-11-30"])
    printed: list[str] = []
    stop = threading.Event()
    hub = SimpleNamespace(settings=SimpleNamespace(home=tmp_path), mappings=None)
    serving = threading.Thread(target=COMMAND.run, args=(args, hub), kwargs={"stop": stop, "out": printed.append})
    serving.start()
    try:
        for _ in range(250):
            if printed and printed[-1] == "Ctrl-C stops it.":
                break
            threading.Event().wait(0.02)
        output = "\n".join(printed)
        url = re.search(r"real-time 270/271 .*: (http://127\.0\.0\.1:\d+/core/realtime)", output).group(1)
        password = (tmp_path / "sandbox" / ".sandbox" / "password").read_text().strip()
        assert password not in output and 'password_env = "BHHUB_SANDBOX_PASSWORD"' in output
        monkeypatch.setenv("BHHUB_TEST_REALTIME_PASSWORD", password)  # the mailbox's password, as printed
        point_plugin_at(url)
        assert ask(MEMBERS["active"]).active is True
    finally:
        stop.set()
        serving.join(timeout=10)
    assert not serving.is_alive()
    with pytest.raises(OSError):  # stopped with the mailbox
        socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1].split("/")[0])), timeout=2).close()


# --- through the hub ------------------------------------------------------------------------------


def test_eligibility_check_through_the_hub_stores_the_real_time_answer_at_once(home, monkeypatch, capsys,  # noqa: F811
                                                                                 sandbox):
    folder = home / "mappings" / "clearinghouses" / "realtime"
    folder.mkdir(parents=True)
    (folder / "sandbox.toml").write_text(endpoint_file(sandbox.url), encoding="utf-8")
    monkeypatch.setenv("BHHUB_HOME", str(home))  # where the plugin finds the practice's files
    monkeypatch.setenv("BHHUB_TEST_REALTIME_PASSWORD", PASSWORD)
    checked = run_json(home, capsys, "eligibility", "check", "--patient", "MRN0000004", "--date", "2026-12-02")
    assert (checked["state"], checked["source"], checked["active"]) == ("answered", "portal:realtime_x12", True)
    assert checked["batch_id"] is None and sandbox.requests == 1
    [listed] = run_json(home, capsys, "eligibility", "list")
    assert (listed["member_id"], listed["payer_id"], listed["active"]) == ("M00000004", "87726", True)
    assert listed["benefits"]["MH"]["visits_remaining"] == 8
