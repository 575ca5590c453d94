"""The sandbox clearinghouse, over real SFTP: an 837P written by the hub's own writer goes in,
valid TA1, 999, 277CA and 835 files come out, with the answers its rules table promises.

The claims (example of domain reference 5.6, varied per payer) and what the packaged
``mappings/clearinghouses/sandbox_rules.toml`` answers for each:

    PCN-COMMERCIAL   87726, auth on file        paid: 80% allowed, $25 copay (PR-3)
    PCN-BADNPI       rendering NPI bad digit    277CA A7:562:82, not in the 835
    PCN-BADMEMBER    member id "AB 12/34"       277CA A7:164:IL
    PCN-NOPAYER      payer 99999 (unknown)      277CA A3:116
    PCN-NOAUTH       77027 needs auth, no G1    835 CLP02 4, CO-197
    PCN-AUTHOK       77027 with REF*G1          paid the Medicaid fee
    PCN-MEDICARE     00431                      90834 paid less 20% (PR-2); 90849 CO-204 + N130
"""

from __future__ import annotations

import argparse
import re
import stat
import threading
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

import bhhub.plugins.clearinghouse.sandbox as sandbox_plugin
from bhhub.connectors.sftp.client import SftpClient
from bhhub.connectors.sftp.settings import SftpSettings
from bhhub.model import Address, Claim, Coverage, Patient, Payer, PersonName, Provider, ServiceLine
from bhhub.runtime.plugin_host import build_plugin_host
from bhhub.claims.claim837p import write_837p
from bhhub.x12.envelope import ControlNumbers, Envelope
from bhhub.x12.tokens import segments
from bhhub.x12.validate import validate_x12
from bhhub.plugins.clearinghouse.sandbox import SandboxClearinghouse
from bhhub.plugins.clearinghouse.sandbox.clearinghouse import answer_upload
from bhhub.plugins.clearinghouse.sandbox.command import COMMAND
from bhhub.plugins.clearinghouse.sandbox.rules import load_rules
from bhhub.plugins.clearinghouse.sandbox.state import SandboxState

pytest.importorskip("pyx12")

TODAY = date(2026, 11, 30)
SENDER = "BHHUBPRACTICE"
OUTBOUND, INBOUND = "/to-clearinghouse", "/from-clearinghouse"
PASSWORD_VARIABLE = "BHHUB_SANDBOX_TEST_PASSWORD"

ENVELOPE = Envelope(
    sender_id=SENDER, receiver_id="BHHUBSANDBOX",
    submitter_name="Sample Behavioral Health PLLC", submitter_id=SENDER,
    submitter_contact_name="Billing Office", submitter_phone="(555) 555-0100",
    receiver_name="bhhub sandbox clearinghouse", receiver_id_code="BHHUBSANDBOX",
    acknowledgment_requested=True,
)
GROUP_PRACTICE = Provider(
    npi="1234567893", organization_name="Sample Behavioral Health PLLC", tin="123456789",
    taxonomy="261QM0801X", address=Address("100 Main St", "Springfield", "IL", "62701-0001"),
)
LCSW = Provider(npi="1999999984", name=PersonName("Smith", "Jane"), taxonomy="1041C0700X")
COMMERCIAL = Payer("87726", "Sample Commercial Health Plan", "CI")
MEDICAID = Payer("77027", "Sample Medicaid MCO", "MC")
MEDICARE = Payer("00431", "Sample Medicare Part B", "MB")
UNKNOWN_PAYER = Payer("99999", "Plan The Sandbox Does Not Know", "CI")
SERVICE_DATE = date(2026, 11, 2)


def claim(pcn: str, payer: Payer, *lines: tuple[str, str], member_id: str = "MEMBER123",
          rendering: Provider = LCSW, authorization: str | None = "AUTH12345") -> Claim:
    return Claim(
        patient_control_number=pcn,
        patient=Patient(name=PersonName("Doe", "John"), birth_date=date(1980, 1, 1), gender="M",
                        address=Address("200 Oak Ave", "Springfield", "IL", "62702"), key=f"test:{pcn}"),
        coverage=Coverage(order=1, payer=payer, member_id=member_id, group_number="GRP001"),
        billing_provider=GROUP_PRACTICE, rendering_provider=rendering, diagnoses=("F33.1",),
        lines=tuple(ServiceLine(code, SERVICE_DATE, (), Decimal(charge), control_number=f"{pcn}-{n}")
                    for n, (code, charge) in enumerate(lines, start=1)),
        place_of_service="11", prior_authorization=authorization,
    )


CLAIMS = [
    claim("PCN-COMMERCIAL", COMMERCIAL, ("90837", "180.00"), ("90785", "20.00")),
    claim("PCN-BADNPI", COMMERCIAL, ("90834", "150.00"), rendering=replace(LCSW, npi="1999999985")),
    claim("PCN-BADMEMBER", COMMERCIAL, ("90834", "150.00"), member_id="AB 12/34"),
    claim("PCN-NOPAYER", UNKNOWN_PAYER, ("90834", "150.00")),
    claim("PCN-NOAUTH", MEDICAID, ("90834", "150.00"), authorization=None),
    claim("PCN-AUTHOK", MEDICAID, ("90834", "150.00")),
    claim("PCN-MEDICARE", MEDICARE, ("90834", "150.00"), ("90849", "70.00")),
]
ACCEPTED = {"PCN-COMMERCIAL", "PCN-NOAUTH", "PCN-AUTHOK", "PCN-MEDICARE"}


def batch_837p(claims=CLAIMS, interchange: int = 1) -> bytes:
    return write_837p(claims, ENVELOPE, ControlNumbers(interchange, interchange, interchange),
                      datetime(2026, 11, 29, 9, 30))


# --- reading what comes back ----------------------------------------------------------------------


def parsed(content: bytes) -> list[list[str]]:
    return [list(s.elements) for s in segments(content)]


def sets_of(content: bytes) -> list[list[list[str]]]:
    """The transaction sets of an interchange, each a list of segments from ST to SE."""
    found, current = [], None
    for segment in parsed(content):
        if segment[0] == "ST":
            current = []
        if current is not None:
            current.append(segment)
        if segment[0] == "SE":
            found.append(current)
            current = None
    return found


def money(value: str) -> Decimal:
    return Decimal(value or "0")


def claim_payments(content: bytes) -> dict[str, dict]:
    """Per CLP01: the CLP, and each line's SVC with its CAS adjustments and LQ remarks."""
    claims: dict[str, dict] = {}
    current = line = None
    for segment in parsed(content):
        if segment[0] == "CLP":
            current = claims[segment[1]] = {"clp": segment, "lines": []}
            line = None
        elif segment[0] == "SVC" and current is not None:
            line = {"svc": segment, "cas": [], "lq": []}
            current["lines"].append(line)
        elif segment[0] == "CAS" and line is not None:
            triplets = segment[2:]
            line["cas"] += [(segment[1], triplets[i], money(triplets[i + 1])) for i in range(0, len(triplets), 3)]
        elif segment[0] == "LQ" and line is not None:
            line["lq"].append(segment[2])
        elif segment[0] in ("SE", "LX"):
            current = line = None
    return claims


def claim_statuses(content: bytes) -> dict[str, dict]:
    """Per 2200D TRN02 (the CLM01): its STC composites and action codes, and its REF*1K."""
    statuses: dict[str, dict] = {}
    current = None
    for segment in parsed(content):
        if segment[0] == "TRN" and segment[1] == "2" and current is None and segment[2].startswith("PCN"):
            current = statuses[segment[2]] = {"stc": [], "ref_1k": None}
        elif segment[0] == "STC" and current is not None:
            current["stc"].append((segment[1], segment[3]))
        elif segment[0] == "REF" and segment[1] == "1K" and current is not None:
            current["ref_1k"] = segment[2]
        elif segment[0] in ("HL", "SE"):
            current = None
    return statuses


# --- the sandbox and a client ---------------------------------------------------------------------


def connect(sandbox: SandboxClearinghouse, **password) -> SftpClient:
    settings = SftpSettings(host=sandbox.host, port=sandbox.port, username=sandbox.username,
                            known_hosts=(sandbox.known_hosts_line,), connect_timeout=5.0, operation_timeout=10.0,
                            **(password or {"password_env": PASSWORD_VARIABLE}))
    return SftpClient(settings)


def upload(client: SftpClient, content: bytes, name: str | None = None, **options) -> str:
    name = name or f"{SENDER}_{content[90:99].decode()}.837"  # as the sandbox profile names uploads
    client.upload(content, OUTBOUND, name, **options)
    return name


def download_all(client: SftpClient, spool: Path) -> dict[str, bytes]:
    spool.mkdir(parents=True, exist_ok=True)
    return {f.name: client.download(f"{INBOUND}/{f.name}", spool).path.read_bytes()
            for f in client.listdir(INBOUND)}


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    with SandboxClearinghouse(tmp_path / "sandbox", today=TODAY) as running:
        monkeypatch.setenv(PASSWORD_VARIABLE, running.password)
        yield running


@pytest.fixture(scope="module")
def exchanged(tmp_path_factory) -> dict[str, bytes]:
    """The main batch uploaded once, and every file the sandbox put in /from-clearinghouse."""
    root = tmp_path_factory.mktemp("exchange")
    with SandboxClearinghouse(root / "sandbox", today=TODAY) as sandbox:
        # The password file the sandbox writes is what a hub mailbox points at.
        with connect(sandbox, password_file=str(sandbox.password_path)) as client:
            upload(client, batch_837p())
            # No waiting: the answer was written inside the rename.
            return download_all(client, root / "spool")


# --- the happy path ---------------------------------------------------------------------------------


def test_an_upload_is_answered_with_a_ta1_999_277ca_and_835_before_its_rename_returns(exchanged):
    assert sorted(exchanged) == ["000000001.277", "000000001.835", "000000001.999", "000000001.ta1"]


@pytest.mark.parametrize("kind", ["ta1", "999", "277", "835"])
def test_every_file_the_sandbox_writes_passes_pyx12(exchanged, kind):
    content = exchanged[f"000000001.{kind}"]
    assert validate_x12(content) == []
    gs = [s for s in parsed(content) if s[0] == "GS"]
    expected_guide = {"ta1": None, "999": "005010X231A1", "277": "005010X214", "835": "005010X221A1"}[kind]
    assert (gs[0][8] if gs else None) == expected_guide


def test_the_ta1_accepts_the_interchange_that_asked_for_one(exchanged):
    ta1 = [s for s in parsed(exchanged["000000001.ta1"]) if s[0] == "TA1"]
    assert ta1 == [["TA1", "000000001", "261129", "0930", "A", "000"]]


def test_the_999_accepts_the_transaction_set(exchanged):
    segments_999 = parsed(exchanged["000000001.999"])
    assert ["AK1", "HC", "1", "005010X222A1"] in segments_999
    assert ["AK2", "837", "0001", "005010X222A1"] in segments_999
    assert ["IK5", "A"] in segments_999
    assert ["AK9", "A", "1", "1", "1"] in segments_999


def test_the_277ca_accepts_good_claims_and_rejects_bad_npi_member_id_and_payer(exchanged):
    statuses = claim_statuses(exchanged["000000001.277"])
    assert set(statuses) == {c.patient_control_number for c in CLAIMS}  # TRN02 = CLM01, one per claim
    for pcn in ACCEPTED:
        assert statuses[pcn]["stc"] == [("A2:20", "WQ")]
        assert statuses[pcn]["ref_1k"]
    assert statuses["PCN-BADNPI"] == {"stc": [("A7:562:82", "U")], "ref_1k": None}
    assert statuses["PCN-BADMEMBER"] == {"stc": [("A7:164:IL", "U")], "ref_1k": None}
    assert statuses["PCN-NOPAYER"] == {"stc": [("A3:116", "U")], "ref_1k": None}
    receiver_trace = [s for s in parsed(exchanged["000000001.277"]) if s[:2] == ["TRN", "2"]][0]
    assert receiver_trace[2] == "BATCH0001"  # 2200B TRN02 echoes the 837's BHT03


def test_the_835_remits_exactly_the_claims_the_277ca_accepted_under_the_same_payer_claim_numbers(exchanged):
    payments = claim_payments(exchanged["000000001.835"])
    assert set(payments) == ACCEPTED
    statuses = claim_statuses(exchanged["000000001.277"])
    for pcn, payment in payments.items():
        assert payment["clp"][7] == statuses[pcn]["ref_1k"]  # CLP07 = 277CA REF*1K


def test_the_835_balances_per_line_per_claim_and_per_payment(exchanged):
    remittance = exchanged["000000001.835"]
    for transaction in sets_of(remittance):
        paid_in_set = Decimal(0)
        for segment in transaction:
            if segment[0] == "CLP":
                paid_in_set += money(segment[4])
        bpr = next(s for s in transaction if s[0] == "BPR")
        assert money(bpr[2]) == paid_in_set  # BPR02 = sum of CLP04 (no PLB)
    for pcn, payment in claim_payments(remittance).items():
        clp = payment["clp"]
        adjustments = Decimal(0)
        patient = Decimal(0)
        for line in payment["lines"]:
            line_adjustments = sum(amount for _, _, amount in line["cas"])
            assert money(line["svc"][2]) - line_adjustments == money(line["svc"][3]), pcn
            adjustments += line_adjustments
            patient += sum(amount for group, _, amount in line["cas"] if group == "PR")
        assert money(clp[3]) - adjustments == money(clp[4]), pcn  # CLP03 - CAS = CLP04
        assert money(clp[5]) == patient, pcn  # CLP05 = every PR adjustment
        assert money(clp[3]) == sum(money(line["svc"][2]) for line in payment["lines"])


def test_the_commercial_payer_allows_80_percent_and_takes_its_copay(exchanged):
    payment = claim_payments(exchanged["000000001.835"])["PCN-COMMERCIAL"]
    assert payment["clp"][1:6] == ["PCN-COMMERCIAL", "1", "200", "135", "25"]
    first, second = payment["lines"]
    assert first["cas"] == [("CO", "45", Decimal("36")), ("PR", "3", Decimal("25"))]
    assert second["cas"] == [("CO", "45", Decimal("4"))]


def test_an_auth_required_payer_denies_a_claim_without_ref_g1_with_co_197(exchanged):
    payments = claim_payments(exchanged["000000001.835"])
    denied = payments["PCN-NOAUTH"]
    assert denied["clp"][2] == "4" and money(denied["clp"][4]) == 0
    assert denied["lines"][0]["cas"] == [("CO", "197", Decimal("150"))]
    authorized = payments["PCN-AUTHOK"]
    assert authorized["clp"][2] == "1" and money(authorized["clp"][4]) == Decimal("64")


def test_a_non_covered_code_is_denied_with_its_remark_and_coinsurance_is_patient_responsibility(exchanged):
    medicare = claim_payments(exchanged["000000001.835"])["PCN-MEDICARE"]
    psychotherapy, family_group = medicare["lines"]
    assert psychotherapy["cas"] == [("CO", "45", Decimal("43.18")), ("PR", "2", Decimal("21.36"))]
    assert family_group["cas"] == [("CO", "204", Decimal("70"))] and family_group["lq"] == ["N130"]


# --- what a real clearinghouse refuses --------------------------------------------------------------


def test_a_second_copy_of_the_same_interchange_gets_only_a_ta1_025(sandbox, tmp_path):
    content = batch_837p()
    with connect(sandbox) as client:
        upload(client, content)
        first = set(download_all(client, tmp_path / "first"))
        upload(client, content)  # the same bytes and ISA13, as the hub re-sends after a lost answer
        after = download_all(client, tmp_path / "after")
    new = {name: data for name, data in after.items() if name not in first}
    assert list(new) == ["000000001-2.ta1"]
    assert [s for s in parsed(new["000000001-2.ta1"]) if s[0] == "TA1"][0][4:] == ["R", "025"]
    assert validate_x12(new["000000001-2.ta1"]) == []
    assert [h.outcome for h in sandbox.processed] == ["answered", "duplicate"]


def test_an_837_pyx12_rejects_gets_a_999_with_r_and_its_errors_and_no_277ca_or_835(sandbox, tmp_path):
    good = batch_837p(CLAIMS[:2]).decode()
    bad_date = "DTP*472*D8*20261302"  # month 13
    broken = good.replace("DTP*472*D8*20261102", bad_date).encode()
    with connect(sandbox) as client:
        upload(client, broken)
        replies = download_all(client, tmp_path / "spool")
    assert sorted(replies) == ["000000001.999", "000000001.ta1"]
    answer = replies["000000001.999"]
    assert validate_x12(answer) == []
    in_set = [s for s in parsed(broken) if s[0] not in ("ISA", "GS", "GE", "IEA")]
    positions = [n for n, s in enumerate(in_set, start=1) if "*".join(s) == bad_date]  # ST = 1
    segments_999 = parsed(answer)
    ik3 = [s for s in segments_999 if s[0] == "IK3"]
    assert [(s[1], int(s[2]), s[4]) for s in ik3] == [("DTP", p, "8") for p in positions]
    assert ["IK4", "3", "1251", "8", "20261302"] in segments_999  # DTP03 (element 1251): invalid date
    assert ["CTX", "CLM01:PCN-COMMERCIAL"] in segments_999
    assert ["IK5", "R", "5"] in segments_999 and ["AK9", "R", "1", "1", "0"] in segments_999


def test_part_files_are_never_processed(sandbox, tmp_path):
    with connect(sandbox) as client:
        upload(client, batch_837p(), name="batch.837.part", method="direct")  # closed, never renamed
        assert client.listdir(INBOUND) == []
        assert [f.name for f in client.listdir(OUTBOUND)] == ["batch.837.part"]
        upload(client, batch_837p(interchange=2))  # written as .part, then renamed
    assert [h.upload for h in sandbox.processed] == [f"{SENDER}_000000002.837"]


def test_an_upload_that_is_not_x12_is_set_aside_and_the_sandbox_keeps_answering(sandbox, tmp_path):
    with connect(sandbox) as client:
        upload(client, b"this is not an interchange\n", name="notes.837")
        assert client.listdir(INBOUND) == []
        upload(client, batch_837p())
        assert len(client.listdir(INBOUND)) == 4
    assert [h.outcome for h in sandbox.processed] == ["unreadable", "answered"]
    assert (sandbox.root / ".sandbox" / "rejected" / "notes.837").is_file()


def test_an_interchange_for_another_receiver_is_rejected_with_a_ta1(sandbox, tmp_path):
    content = write_837p(CLAIMS[:1], replace(ENVELOPE, receiver_id="SOMEONEELSE"), ControlNumbers(7, 7, 7),
                         datetime(2026, 11, 29, 9, 30))
    with connect(sandbox) as client:
        upload(client, content)
        replies = download_all(client, tmp_path / "spool")
    assert list(replies) == ["000000007.ta1"]
    assert [s for s in parsed(replies["000000007.ta1"]) if s[0] == "TA1"][0][4:] == ["R", "009"]


# --- the sandbox itself -----------------------------------------------------------------------------


def test_a_restarted_sandbox_keeps_its_host_key_and_never_repeats_a_control_number(tmp_path, monkeypatch):
    root = tmp_path / "sandbox"
    control_numbers = []
    lines = []
    for interchange in (1, 2):
        with SandboxClearinghouse(root, today=TODAY) as sandbox:
            monkeypatch.setenv(PASSWORD_VARIABLE, sandbox.password)
            lines.append(sandbox.known_hosts_line.split(" ", 1)[1])
            with connect(sandbox) as client:
                upload(client, batch_837p(interchange=interchange))
                for name, data in download_all(client, tmp_path / f"spool{interchange}").items():
                    control_numbers += [s[13] for s in parsed(data) if s[0] == "ISA"]
                    client.rename(f"{INBOUND}/{name}", f"/picked-up/{name}")  # as the hub archives them
    assert lines[0] == lines[1]
    assert len(control_numbers) == 8 and len(set(control_numbers)) == 8
    for secret in (root / ".sandbox" / "host_key", root / ".sandbox" / "password"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_the_sandbox_keeps_its_own_files_out_of_reach_of_sftp_clients(sandbox):
    with connect(sandbox) as client:
        assert client.stat(OUTBOUND) is not None
        assert client.stat("/.sandbox") is None
        assert client.stat("/.sandbox/password") is None
    assert (sandbox.root / ".sandbox" / "password").read_text().strip() == sandbox.password


def test_the_same_upload_gets_the_same_answers_byte_for_byte(tmp_path):
    rules = load_rules()
    answers = [answer_upload(batch_837p(), rules, SandboxState(tmp_path / f"state{n}.json"),
                             datetime(2026, 11, 30, 12, 0)) for n in (1, 2)]
    assert answers[0].replies == answers[1].replies


def test_sandbox_serve_prints_what_a_mailbox_needs_but_never_the_password(tmp_path):
    host = build_plugin_host(entry_points=[], extra=[("sandbox", sandbox_plugin)])
    assert host.infos["sandbox"].hooks == ("bhhub_register_commands",)
    assert [c.name for c in host.hooks.commands()] == ["sandbox"]
    printed: list[str] = []
    stop = threading.Event()
    args = argparse.Namespace(port=0, root=str(tmp_path / "sandbox"), rules=None, today="2026-11-30")
    hub = SimpleNamespace(settings=SimpleNamespace(home=tmp_path), mappings=None)
    serving = threading.Thread(target=COMMAND.run, args=(args, hub), kwargs={"stop": stop, "out": printed.append})
    serving.start()
    try:
        for _ in range(200):
            if printed and printed[-1] == "Ctrl-C stops it.":
                break
            threading.Event().wait(0.02)
    finally:
        stop.set()
        serving.join(timeout=10)
    output = "\n".join(printed)
    password_file = tmp_path / "sandbox" / ".sandbox" / "password"
    assert str(password_file) in output
    assert password_file.read_text().strip() not in output
    assert re.search(r"known_hosts = \[\"\[127\.0\.0\.1\]:\d+ ssh-ed25519 AAAA\S+\"\]", output)
    assert not serving.is_alive()
