"""A practice asks payers' APIs about a patient's mental-health benefits: the generic JSON portal
and the FHIR portal give the same record as the payer's 271; a portal that throttles, times out
or fails for a while is waited for politely; garbage gives a clear error and no record; secrets
and member ids stay out of logs and messages.

Payer APIs are unreachable from a test, so ``responses`` stands in for them with recorded-shape
answers (``tests/fixtures/payer_portals/``); the clock is a fake that records every wait.
"""

from __future__ import annotations

import json
import logging
import shutil
from datetime import date, datetime, timezone
from email.utils import format_datetime
from importlib import resources
from pathlib import Path

import pytest
import requests
import responses
from responses import matchers

import bhhub.plugins.payer_portals.fhir_coverage as fhir_coverage
import bhhub.plugins.payer_portals.generic_json as generic_json
from conftest import FIXTURES
from bhhub.eligibility.x271 import read_271
from bhhub.errors import ConfigError, InputError, MappingError, RetriableError
from bhhub.model import Address, Coverage, Patient, Payer, PersonName
from bhhub.testing import payer_portal
from bhhub.testing.network import no_network
from bhhub.testing.payer_portal import PayerPortalPluginContract, sample_request
from bhhub.connectors.http_api.client import (
    PortalAnswerUnreadable,
    PortalCredentialsError,
    PortalRefusedRequest,
    PortalUnavailable,
)
from bhhub.connectors.http_api.registry import PortalFiles

JSON_PAYER, FHIR_PAYER = "EXAMPLE-PORTAL-00000", "EXAMPLE-FHIR-00000"
JSON_BASE, FHIR_BASE = "https://portal.example.invalid/api/v2", "https://fhir.example.invalid/r4"
JSON_URL, FHIR_URL = JSON_BASE + "/eligibility", FHIR_BASE + "/CoverageEligibilityRequest/$submit"
JSON_TOKEN, FHIR_TOKEN = "https://portal.example.invalid/oauth2/token", "https://fhir.example.invalid/oauth2/token"
MEMBER_ID, SECRET, ACCESS_TOKEN = "ZQX10000101", "s3cr3t-client-value", "at-0123456789abcdef"
ASKED = ("A6", "MH", "30")  # the 271 fixture's EB*1 covers 30, MH and A6
PACKAGED = Path(str(resources.files("bhhub.mappings").joinpath("payer_portals")))
ANSWERS = FIXTURES / "payer_portals"


class FakeClock:
    """Monotonic time that only moves when slept; every wait is recorded, none is real."""

    def __init__(self):
        self.now, self.sleeps = 1000.0, []
        self.epoch = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc).timestamp()

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds

    def wall(self) -> float:
        return self.epoch + (self.now - 1000.0)


def patient() -> Patient:
    return Patient(name=PersonName("Doe", "Jane"), birth_date=date(1985, 2, 14), gender="F",
                   address=Address("1 Main St", "Albany", "NY", "12207"), key="test:patient:1")


def coverage(payer_id: str) -> Coverage:
    return Coverage(order=1, payer=Payer(payer_id, "ACME HEALTH PLAN"), member_id=MEMBER_ID)


@pytest.fixture
def clock(monkeypatch):
    """Both plugins read bhhub's packaged (example) portal files, with a fake clock and
    credentials in the environment, as a practice would set them."""
    for prefix in ("BHHUB_EXAMPLE_PORTAL", "BHHUB_EXAMPLE_FHIR"):
        monkeypatch.setenv(f"{prefix}_CLIENT_ID", "bhhub-practice")
        monkeypatch.setenv(f"{prefix}_CLIENT_SECRET", SECRET)
    fake = FakeClock()
    use_portals(monkeypatch, fake, json_dir=PACKAGED)
    return fake


def use_portals(monkeypatch, fake, *, json_dir: Path = PACKAGED, fhir_dir: Path = PACKAGED / "fhir"):
    options = {"clock": fake, "jitter": lambda: 1.0}  # jitter 1.0: the full backoff, so waits are known
    monkeypatch.setattr(generic_json, "_files", PortalFiles("payer_portals", generic_json.mapping.build_portal,
                                                            directories=[json_dir]))
    monkeypatch.setattr(generic_json, "_client_options", options)
    monkeypatch.setattr(fhir_coverage, "_files", PortalFiles("payer_portals/fhir", fhir_coverage.mapping.build_portal,
                                                             directories=[fhir_dir]))
    monkeypatch.setattr(fhir_coverage, "_client_options", options)


def token(mock: responses.RequestsMock, url: str = JSON_TOKEN, *, expires_in: int = 3600, value: str = ACCESS_TOKEN):
    return mock.post(url, json={"access_token": value, "token_type": "Bearer", "expires_in": expires_in})


def answer(name: str) -> dict:
    return json.loads((ANSWERS / name).read_text())


def ask_json(service_types=ASKED):
    return generic_json.bhhub_check_eligibility(patient(), coverage(JSON_PAYER), date(2026, 11, 2), service_types)


def ask_fhir(service_types=ASKED):
    return fhir_coverage.bhhub_check_eligibility(patient(), coverage(FHIR_PAYER), date(2026, 11, 2), service_types)


@pytest.fixture
def from_271():
    (response,) = read_271((FIXTURES / "x12" / "271" / "commercial-psychotherapy.x12").read_bytes())
    return response


def _values(benefits) -> dict:
    """What a biller reads from one service type, in and out of network (Decimals compare by value:
    a portal's 30.00 is the 271's 30)."""
    values = {"active": benefits.active, "non_covered": benefits.non_covered, "in_network": benefits.in_network,
              "plan_descriptions": benefits.plan_descriptions, "auth_required": benefits.auth_required,
              "carve_out": benefits.carve_out, "messages": benefits.messages, "procedures": benefits.procedures}
    for network in ("in", "out"):
        values |= {f"{name} {network}": value for name, value in {
            "copay": benefits.copay(network), "coinsurance": benefits.coinsurance(network),
            "deductible": benefits.deductible(network),
            "deductible remaining": benefits.deductible(network, remaining=True),
            "out of pocket": benefits.out_of_pocket(network),
            "out of pocket remaining": benefits.out_of_pocket(network, remaining=True),
            "visits allowed": benefits.visits_allowed(network), "visits remaining": benefits.visits_remaining(network),
        }.items()}
    return values


def _per_service_type(response) -> dict:
    return {stc: _values(b) | {p: _values(b.for_procedure(p)) for p in b.procedures}
            for stc, b in response.benefits.items()}


# --- the same record as the 271 ------------------------------------------------------------


def test_generic_json_portal_gives_the_same_record_as_the_271(clock, from_271):
    with responses.RequestsMock() as mock:
        token(mock)
        mock.post(JSON_URL, json=answer("generic-json-commercial-psychotherapy.json"))
        portal = ask_json()
    assert portal.mental_health_summary() == from_271.mental_health_summary()
    assert _per_service_type(portal) == _per_service_type(from_271)
    assert set(portal.benefits) == set(from_271.benefits) == {"30", "MH", "A6", "CF"}
    assert (portal.active, portal.plan_number, portal.group_number, portal.group_name, portal.plan_description) == (
        from_271.active, from_271.plan_number, from_271.group_number, from_271.group_name, from_271.plan_description)
    assert portal.member_id == from_271.member_id and portal.payer_id == JSON_PAYER
    summary = portal.mental_health_summary()
    assert (summary.copay, summary.visits_remaining, summary.deductible_remaining) == (30, 8, 750)


def test_fhir_portal_gives_the_same_record_as_the_271(clock, from_271):
    with responses.RequestsMock() as mock:
        token(mock, FHIR_TOKEN)
        mock.post(FHIR_URL, json=answer("fhir-commercial-psychotherapy.json"))
        portal = ask_fhir()
    assert portal.mental_health_summary() == from_271.mental_health_summary()
    assert _per_service_type(portal) == _per_service_type(from_271)
    assert (portal.plan_number, portal.group_number, portal.group_name, portal.plan_description) == (
        "PPO-GOLD-2026", "GRP-88001", "RIVERSIDE SCHOOLS", "GOLD PPO")
    assert portal.benefits["A6"].for_procedure("HC:90837").copay() == 50


def test_the_fhir_request_asks_for_mental_health_benefits_on_the_date_of_service(clock):
    with responses.RequestsMock() as mock:
        token(mock, FHIR_TOKEN)
        sent = mock.post(FHIR_URL, json=answer("fhir-commercial-psychotherapy.json"))
        ask_fhir(("MH", "A6"))
        body = json.loads(sent.calls[0].request.body)
        headers = sent.calls[0].request.headers
    assert headers["Content-Type"] == "application/fhir+json" and headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert body["resourceType"] == "CoverageEligibilityRequest" and body["purpose"] == ["benefits"]
    assert body["servicedDate"] == "2026-11-02"
    assert [i["category"]["coding"][0] for i in body["item"]] == [
        {"system": "https://codesystem.x12.org/005010/1365", "code": "MH"},
        {"system": "https://codesystem.x12.org/005010/1365", "code": "A6"}]
    contained = {r["resourceType"]: r for r in body["contained"]}
    assert contained["Coverage"]["subscriberId"] == MEMBER_ID
    assert contained["Patient"]["birthDate"] == "1985-02-14"
    assert contained["Organization"]["identifier"][0]["value"] == FHIR_PAYER


def test_a_dependents_fhir_request_names_the_subscriber_and_the_record_says_dependent(clock):
    from bhhub.model import Person

    child = Coverage(order=1, payer=Payer(FHIR_PAYER, "ACME HEALTH PLAN"), member_id=MEMBER_ID, relationship="19",
                     subscriber=Person(PersonName("Doe", "John"), birth_date=date(1980, 5, 1), gender="M"))
    with responses.RequestsMock() as mock:
        token(mock, FHIR_TOKEN)
        sent = mock.post(FHIR_URL, json=answer("fhir-commercial-psychotherapy.json"))
        response = fhir_coverage.bhhub_check_eligibility(patient(), child, date(2026, 11, 2), ASKED)
        body = json.loads(sent.calls[0].request.body)
    contained = {r["resourceType"]: r for r in body["contained"]}
    assert contained["Coverage"]["subscriber"] == {"reference": "#subscriber"}
    assert contained["Coverage"]["relationship"]["coding"][0]["code"] == "child"
    assert contained["RelatedPerson"]["birthDate"] == "1980-05-01"
    assert response.patient == "dependent" and response.member_id == MEMBER_ID


def test_the_json_request_body_is_the_mappings_template_filled(clock):
    with responses.RequestsMock() as mock:
        token(mock)
        sent = mock.post(JSON_URL, json=answer("generic-json-commercial-psychotherapy.json"))
        ask_json(("MH",))
        body = json.loads(sent.calls[0].request.body)
    assert body == {"payerId": JSON_PAYER, "memberId": MEMBER_ID, "serviceDate": "2026-11-02", "serviceTypes": ["MH"],
                    "patient": {"firstName": "Jane", "lastName": "Doe", "birthDate": "1985-02-14"}}


def test_a_payer_that_does_not_know_the_member_gives_a_record_with_the_rejection(clock):
    with responses.RequestsMock() as mock:
        token(mock)
        mock.post(JSON_URL, status=404, json={"errors": [{"code": "MEMBER_NOT_FOUND", "message": "not found"}]})
        token(mock, FHIR_TOKEN)
        mock.post(FHIR_URL, json={"resourceType": "CoverageEligibilityResponse", "status": "active",
                                  "purpose": ["benefits"], "patient": {"reference": "#p"},
                                  "created": "2026-11-29", "request": {"reference": "#r"}, "outcome": "error",
                                  "insurer": {"display": "X"},
                                  "error": [{"code": {"coding": [{"code": "member-not-found"}]}}]})
        for response in (ask_json(), ask_fhir()):
            assert response.rejected and [r.code for r in response.rejections] == ["75"]
            assert response.active is None and response.benefits == {}


def test_mental_health_carved_out_to_another_payer_reads_as_the_271_does(clock):
    (from_271,) = read_271((FIXTURES / "x12" / "271" / "carve-out.x12").read_bytes())
    carved = {"administeredBy": {"payerId": "77321", "name": "NORTHSTAR BEHAVIORAL HEALTH"},
              "notes": "BEHAVIORAL HEALTH ADMINISTERED BY NORTHSTAR BEHAVIORAL"}
    reply = {"coverage": {"status": "ACTIVE", "planName": "ACME CHOICE HMO", "productType": "HM"},
             "benefits": [{"serviceType": "98", "network": "IN", "level": "INDIVIDUAL", "copay": 20},
                          *({"serviceType": stc, "level": "INDIVIDUAL", **carved} for stc in ("MH", "A6", "CF"))]}
    with responses.RequestsMock() as mock:
        token(mock)
        mock.post(JSON_URL, json=reply)
        portal = ask_json(("30",))
    assert portal.mental_health_summary() == from_271.mental_health_summary()
    assert _per_service_type(portal) == _per_service_type(from_271)
    assert portal.mental_health_summary().carve_out.payer_id == "77321"


# --- a portal that throttles, times out, fails for a while -----------------------------------


@pytest.mark.parametrize("ask, token_url, url, payload", [
    (ask_json, JSON_TOKEN, JSON_URL, "generic-json-commercial-psychotherapy.json"),
    (ask_fhir, FHIR_TOKEN, FHIR_URL, "fhir-commercial-psychotherapy.json"),
], ids=["json", "fhir"])
def test_throttled_then_timed_out_then_unavailable_then_answered_gives_one_record(clock, from_271, ask, token_url,
                                                                                  url, payload):
    with responses.RequestsMock() as mock:
        token(mock, token_url)
        mock.post(url, status=429, headers={"Retry-After": "7"}, body="slow down")
        mock.post(url, body=requests.exceptions.ReadTimeout("read timed out"))
        mock.post(url, status=503, body="")
        mock.post(url, json=answer(payload))
        response = ask()
        assert len(mock.calls) == 5  # the token, then four attempts
    assert clock.sleeps == [7, 2.0, 4.0]  # Retry-After honoured; then backoff 1 * 2**(n-1) at full jitter
    assert response.mental_health_summary() == from_271.mental_health_summary()


def test_retry_after_as_an_http_date_is_waited_until_that_moment(clock):
    when = datetime.fromtimestamp(clock.wall() + 12, tz=timezone.utc)
    with responses.RequestsMock() as mock:
        token(mock)
        mock.post(JSON_URL, status=503, headers={"Retry-After": format_datetime(when, usegmt=True)})
        mock.post(JSON_URL, json=answer("generic-json-commercial-psychotherapy.json"))
        assert ask_json().active is True
    assert clock.sleeps == [12]


def test_a_retry_after_longer_than_allowed_ends_the_check_without_asking_again(clock):
    with responses.RequestsMock() as mock:
        token(mock)
        mock.post(JSON_URL, status=429, headers={"Retry-After": "3600"})
        with pytest.raises(PortalUnavailable, match="asked to wait 3600 s, more than the 60 s allowed") as caught:
            ask_json()
        assert len(mock.calls) == 2
    assert isinstance(caught.value, RetriableError) and caught.value.retry_after == 3600 and clock.sleeps == []


def test_a_portal_down_on_every_attempt_is_retriable_and_names_the_payer(clock):
    with responses.RequestsMock() as mock:
        token(mock)
        mock.post(JSON_URL, status=502)
        with pytest.raises(PortalUnavailable) as caught:
            ask_json()
        assert len([c for c in mock.calls if c.request.url == JSON_URL]) == 4  # limits.max_attempts
    message = str(caught.value)
    assert "example-json-portal" in message and JSON_PAYER in message and "4 attempts" in message
    assert clock.sleeps == [1.0, 2.0, 4.0]  # backoff_seconds 1, doubled per attempt


def test_connection_errors_are_retried_within_the_checks_deadline(clock, tmp_path, monkeypatch):
    _portal_file(tmp_path, "limits", {"deadline_seconds": 5, "max_attempts": 10})
    use_portals(monkeypatch, clock, json_dir=tmp_path)
    with responses.RequestsMock() as mock:
        token(mock)
        mock.post(JSON_URL, body=requests.exceptions.ConnectionError("refused"))
        with pytest.raises(PortalUnavailable, match="would pass the check's deadline"):
            ask_json()
    assert sum(clock.sleeps) <= 5


def test_a_server_error_that_is_not_transient_is_not_retried(clock):
    with responses.RequestsMock() as mock:
        token(mock)
        mock.post(JSON_URL, status=500, body="oops")
        with pytest.raises(PortalUnavailable, match="HTTP 500"):
            ask_json()
        assert len(mock.calls) == 2


# --- OAuth2 client credentials ---------------------------------------------------------------


def test_a_401_refreshes_the_token_once_and_the_check_succeeds(clock):
    tokens = iter(["revoked-token", "fresh-token"])
    with responses.RequestsMock() as mock:
        issued = mock.add_callback(responses.POST, JSON_TOKEN, callback=lambda request: (
            200, {}, json.dumps({"access_token": next(tokens), "expires_in": 3600})))
        mock.post(JSON_URL, status=401, match=[matchers.header_matcher({"Authorization": "Bearer revoked-token"})])
        mock.post(JSON_URL, json=answer("generic-json-commercial-psychotherapy.json"),
                  match=[matchers.header_matcher({"Authorization": "Bearer fresh-token"})])
        assert ask_json().active is True
        assert issued.call_count == 2 and len(mock.calls) == 4
    assert clock.sleeps == []  # a refresh is not a retry: no backoff


def test_a_second_401_is_a_credentials_error_after_one_refresh(clock):
    with responses.RequestsMock() as mock:
        refreshes = token(mock)
        mock.post(JSON_URL, status=401)
        with pytest.raises(PortalCredentialsError, match="even after a new access token") as caught:
            ask_json()
        assert refreshes.call_count == 2 and len(mock.calls) == 4
    assert isinstance(caught.value, ConfigError)


def test_the_token_is_sent_as_client_credentials_and_kept_until_shortly_before_it_expires(clock):
    with responses.RequestsMock() as mock:
        issued = token(mock, expires_in=600)
        mock.post(JSON_URL, json=answer("generic-json-commercial-psychotherapy.json"))
        ask_json()
        ask_json()
        assert issued.call_count == 1
        clock.now += 600 - 60  # within the last minute of its life: fetched again
        ask_json()
        assert issued.call_count == 2
        form = issued.calls[0].request.body
        assert "grant_type=client_credentials" in form and "scope=eligibility.read" in form
        assert issued.calls[0].request.headers["Authorization"].startswith("Basic ")  # the id and secret


def test_credentials_come_from_a_file_named_in_the_mapping(clock, tmp_path, monkeypatch):
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    _portal_file(tmp_path, "auth", {"client_secret_file": str(secret_file)})
    use_portals(monkeypatch, clock, json_dir=tmp_path)
    monkeypatch.delenv("BHHUB_EXAMPLE_PORTAL_CLIENT_SECRET")
    with responses.RequestsMock() as mock:
        issued = token(mock)
        mock.post(JSON_URL, json=answer("generic-json-commercial-psychotherapy.json"))
        ask_json()
        expected = requests.auth._basic_auth_str("bhhub-practice", SECRET)
        assert issued.calls[0].request.headers["Authorization"] == expected


def test_an_api_key_portal_sends_its_key_from_the_environment(clock, tmp_path, monkeypatch):
    import tomllib

    table = tomllib.loads((PACKAGED / "example_json_portal.toml").read_text())
    table["auth"] = {"type": "api_key", "api_key_header": "X-Portal-Key", "api_key_env": "BHHUB_TEST_PORTAL_KEY"}
    (tmp_path / "keyed.toml").write_text(_toml(table))
    use_portals(monkeypatch, clock, json_dir=tmp_path)
    monkeypatch.setenv("BHHUB_TEST_PORTAL_KEY", SECRET)
    with responses.RequestsMock() as mock:
        sent = mock.post(JSON_URL, json=answer("generic-json-commercial-psychotherapy.json"),
                         match=[matchers.header_matcher({"X-Portal-Key": SECRET})])
        assert ask_json().active is True and sent.call_count == 1


def test_a_secret_file_inside_bhhubs_tree_is_refused():
    import tomllib

    table = tomllib.loads((PACKAGED / "example_json_portal.toml").read_text())
    table["auth"]["client_secret_file"] = str(PACKAGED / "secret.txt")
    with pytest.raises(MappingError, match="client_secret_file points inside bhhub's own tree"):
        generic_json.validate_mapping(table)


def test_without_credentials_the_portal_is_not_asked(clock, monkeypatch):
    monkeypatch.delenv("BHHUB_EXAMPLE_PORTAL_CLIENT_SECRET")
    with responses.RequestsMock() as mock:
        with pytest.raises(ConfigError, match="set the environment variable BHHUB_EXAMPLE_PORTAL_CLIENT_SECRET"):
            ask_json()
        assert len(mock.calls) == 0


# --- the rate limit --------------------------------------------------------------------------


def test_the_rate_limit_spaces_checks_against_one_portal(clock, tmp_path, monkeypatch):
    _portal_file(tmp_path, "limits", {"requests_per_second": 1, "requests_per_minute": 3})
    use_portals(monkeypatch, clock, json_dir=tmp_path)
    asked_at = []

    def eligibility(request):
        asked_at.append(round(clock.now - 1000, 3))
        return 200, {}, (ANSWERS / "generic-json-commercial-psychotherapy.json").read_text()

    with responses.RequestsMock() as mock:
        token(mock)
        mock.add_callback(responses.POST, JSON_URL, callback=eligibility)
        for _ in range(4):
            ask_json()
    # one a second; the fourth waits until the minute's bucket (3 a minute) has a request again
    assert asked_at == [0, 1.0, 2.0, 20.0]
    assert clock.sleeps == [1.0, 1.0, 18.0]


# --- garbage gives a clear error and no record ----------------------------------------------


GARBAGE = [
    ("an HTML error page", dict(status=200, body="<html><body>Service Temporarily Unavailable</body></html>",
                                content_type="text/html"), "web page, not JSON"),
    ("truncated JSON", dict(status=200, body='{"coverage": {"status": "ACT', content_type="application/json"),
     "cut short"),
    ("JSON of another shape", dict(status=200, json={"hello": "world"}), "no coverage status, benefits or errors"),
    ("a list where an object was expected", dict(status=200, json={"coverage": ["ACTIVE"], "benefits": []}),
     "not shaped as the mapping says"),
    ("a copay that is not a number", dict(status=200, json={"benefits": [{"serviceType": "A6", "copay": "thirty"}]}),
     r"benefits\[0\].copay is not a number"),
    ("a network word the mapping does not know",
     dict(status=200, json={"benefits": [{"serviceType": "A6", "network": "PARTNER"}]}), r"\[values.network\]"),
]


@pytest.mark.parametrize("what, reply, says", GARBAGE, ids=[g[0] for g in GARBAGE])
def test_a_json_portal_answering_garbage_gives_a_clear_error_and_no_record(clock, caplog, what, reply, says):
    caplog.set_level(logging.DEBUG)
    with responses.RequestsMock() as mock:
        token(mock)
        mock.post(JSON_URL, **reply)
        with pytest.raises(InputError, match=says) as caught:
            ask_json()
    assert isinstance(caught.value, PortalAnswerUnreadable) and caught.value.fix
    assert MEMBER_ID not in str(caught.value) and "Temporarily" not in str(caught.value)


FHIR_GARBAGE = [
    ("an HTML error page", dict(status=200, body="<!DOCTYPE html><title>502</title>", content_type="text/html"),
     "web page, not JSON"),
    ("truncated JSON", dict(status=200, body='{"resourceType": "CoverageEligibilityResponse", "insur',
                            content_type="application/fhir+json"), "cut short"),
    ("another resource", dict(status=200, json={"resourceType": "Patient", "id": "x"}),
     "a Patient, not a CoverageEligibilityResponse"),
    ("invalid FHIR", dict(status=200, json={"resourceType": "CoverageEligibilityResponse", "insurance": "lots"}),
     "not valid FHIR"),
]


@pytest.mark.parametrize("what, reply, says", FHIR_GARBAGE, ids=[g[0] for g in FHIR_GARBAGE])
def test_a_fhir_portal_answering_garbage_gives_a_clear_error_and_no_record(clock, what, reply, says):
    with responses.RequestsMock() as mock:
        token(mock, FHIR_TOKEN)
        mock.post(FHIR_URL, **reply)
        with pytest.raises(PortalAnswerUnreadable, match=says) as caught:
            ask_fhir()
    assert "lots" not in str(caught.value) and caught.value.fix


def test_a_refusal_the_mapping_cannot_read_is_a_refused_request(clock):
    with responses.RequestsMock() as mock:
        token(mock)
        mock.post(JSON_URL, status=400, body="bad request")
        with pytest.raises(PortalRefusedRequest, match="HTTP 400"):
            ask_json()
        token(mock, FHIR_TOKEN)
        mock.post(FHIR_URL, status=422, json={"resourceType": "OperationOutcome",
                                              "issue": [{"severity": "error", "code": "invalid",
                                                         "diagnostics": f"member {MEMBER_ID} unknown"}]})
        with pytest.raises(PortalRefusedRequest, match="issue invalid") as caught:
            ask_fhir()
    assert MEMBER_ID not in str(caught.value)


# --- not my payer; no secrets or member ids anywhere ---------------------------------------


def test_a_payer_no_portal_file_lists_gets_none_without_the_network(clock):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock, no_network() as attempts:
        for plugin in (generic_json, fhir_coverage):
            assert plugin.bhhub_check_eligibility(patient(), coverage("60054"), date(2026, 11, 2), ASKED) is None
        assert len(mock.calls) == 0
    assert attempts == []


def test_no_secret_token_or_member_id_reaches_logs_or_messages(clock, caplog):
    caplog.set_level(logging.DEBUG)
    failures = []
    with responses.RequestsMock() as mock:
        token(mock)
        mock.post(JSON_URL, status=503)
        try:
            ask_json()
        except RetriableError as exc:
            failures.append(exc)
        token(mock, FHIR_TOKEN)
        mock.post(FHIR_URL, status=401)
        try:
            ask_fhir()
        except ConfigError as exc:
            failures.append(exc)
    assert len(failures) == 2 and caplog.records
    seen = caplog.text + " ".join(str(f) for f in failures)
    for private in (MEMBER_ID, SECRET, ACCESS_TOKEN, "Doe", "1985-02-14", "bhhub-practice"):
        assert private not in seen


# --- mapping files -------------------------------------------------------------------------


def _portal_file(folder: Path, section: str, changes: dict) -> Path:
    """A copy of the example JSON portal with ``changes`` laid over one section."""
    import tomllib

    text = (PACKAGED / "example_json_portal.toml").read_text()
    table = tomllib.loads(text)
    table[section].update(changes)
    path = folder / "example_json_portal.toml"
    path.write_text(_toml(table))
    return path


def _toml(table: dict, prefix: str = "") -> str:
    simple = {k: v for k, v in table.items() if not isinstance(v, dict)}
    lines = [f"[{prefix}]"] if prefix and simple else []
    lines += [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in simple.items()]
    for key, value in table.items():
        if isinstance(value, dict):
            lines.append(_toml(value, f"{prefix}.{json.dumps(key)}" if prefix else json.dumps(key)))
    return "\n".join(lines) + "\n"


def test_a_mapping_file_with_several_problems_names_them_all():
    with pytest.raises(MappingError) as caught:
        generic_json.validate_mapping({"portal": {"name": "x", "payer_ids": "60054", "base_url": "http://x"},
                                       "auth": {"type": "oauth2_client_credentials", "client_secret": "hunter2"},
                                       "request": {"path": "eligibility", "body": {"id": "{ssn}"}},
                                       "response": {"benefits": "a..b", "benefit": {}}})
    message = str(caught.value)
    for problem in ("payer_ids must be a list", "https://", "auth.client_secret: secrets are never written",
                    "token_url is required", "{ssn}", "must start with /", "'a..b' is not a JSON path",
                    "response.benefit.service_type' is missing"):
        assert problem in message
    assert "hunter2" not in message


def test_a_broken_portal_file_only_stops_the_payers_it_lists(clock, tmp_path, monkeypatch):
    shutil.copy(PACKAGED / "example_json_portal.toml", tmp_path / "good.toml")
    (tmp_path / "broken.toml").write_text('[portal]\nname = "broken"\npayer_ids = ["BROKEN-1"]\n')
    use_portals(monkeypatch, clock, json_dir=tmp_path)
    with pytest.raises(MappingError, match="broken.toml"):
        generic_json.bhhub_check_eligibility(patient(), coverage("BROKEN-1"), date(2026, 11, 2), ASKED)
    with responses.RequestsMock() as mock:
        token(mock)
        mock.post(JSON_URL, json=answer("generic-json-commercial-psychotherapy.json"))
        assert ask_json().active is True


def test_the_shipped_mappings_are_examples_serving_invented_payers_only(tmp_path, monkeypatch):
    monkeypatch.setenv("BHHUB_HOME", str(tmp_path))  # no practice files: bhhub's own only
    for folder, build in (("payer_portals", generic_json.mapping.build_portal),
                          ("payer_portals/fhir", fhir_coverage.mapping.build_portal)):
        (portal,) = PortalFiles(folder, build).portals()
        assert portal.connection.example and portal.connection.payer_ids[0].startswith("EXAMPLE-")
        assert ".invalid" in portal.connection.base_url


# --- the contract kit -----------------------------------------------------------------------


class _Contract(PayerPortalPluginContract):
    @pytest.fixture(autouse=True)
    def portal_answers(self, clock):
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            token(mock)
            mock.post(JSON_URL, json=answer("generic-json-commercial-psychotherapy.json"))
            token(mock, FHIR_TOKEN)
            mock.post(FHIR_URL, json=answer("fhir-commercial-psychotherapy.json"))
            yield


class TestGenericJsonPassesTheContractKit(_Contract):
    plugin, entry_point, service_types = generic_json, "generic_json", ASKED

    def served_request(self):
        return {**sample_request(payer_id=JSON_PAYER, payer_name="EXAMPLE PORTAL PAYER"), "service_types": ASKED}


class TestFhirCoveragePassesTheContractKit(_Contract):
    plugin, entry_point, service_types = fhir_coverage, "fhir_coverage", ASKED

    def served_request(self):
        return {**sample_request(payer_id=FHIR_PAYER, payer_name="EXAMPLE FHIR PAYER"), "service_types": ASKED}


def test_the_kit_refuses_an_answer_that_is_not_an_eligibility_response(clock, monkeypatch):
    monkeypatch.setattr(generic_json, "check", lambda *a: {"A6": {"active": True}})
    with pytest.raises(payer_portal.ContractFailure, match="not an EligibilityResponse"):
        payer_portal.check_answers(generic_json, {**sample_request(payer_id=JSON_PAYER), "service_types": ASKED})


def test_loading_the_fhir_coverage_plugin_does_not_import_fhir_resources():
    """fhir.resources costs about a second of CPU to import; `bhhub plugins` and every hook lookup
    import the plugin, so the models are imported when a payer is asked, not before."""
    import subprocess
    import sys
    from pathlib import Path

    script = ("import sys, bhhub.plugins.payer_portals.fhir_coverage, bhhub.plugins.payer_portals.fhir_coverage.exchange\n"
              "print(sorted(m for m in sys.modules if m == 'fhir' or m.startswith('fhir.')))")
    result = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parent.parent,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
