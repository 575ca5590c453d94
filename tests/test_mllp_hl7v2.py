"""The MLLP listener with the installed HL7 v2 EHR plugin: what an interface engine's feed does.

A thousand messages of the kinds a practice's EHR pushes (DFT^P03 charges in v2.3 and v2.5.1,
ADT^A04 registrations, SIU^S12 appointments), each a different patient or visit, over loopback:
a thousand ACKs, a thousand inbox items, the charges as claims ready to bill, the registrations
and appointments stored; a message the plugin refuses gets AE and the feed goes on.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from conftest import FIXTURES
from bhhub.runtime.app import Hub
from bhhub.store import schema
from test_hl7v2_intake import with_practice
from test_mllp_listener import MllpClient, err, msa

from bhhub.connectors.mllp.server import MllpListener

HL7 = FIXTURES / "hl7v2"


def variant(template: bytes, n: int) -> bytes:
    """The fixture as the n-th message: its own control id, chart number and visit number."""
    text = template.decode("latin-1").strip().replace("\n", "\r")
    for old, new in (("MSG1000", f"M{n:06d}"), ("MRN2000", f"MRN{n:06d}"), ("V2000", f"V{n:06d}"),
                     ("PL7001", f"PL{n:06d}"), ("FL7001", f"FL{n:06d}")):
        text = text.replace(old, new)
    return text.encode("latin-1")


@pytest.fixture
def feed_hub(tmp_path):
    home = with_practice(tmp_path / "home")
    with Hub.open(home) as hub:  # the installed plugins: hl7v2 reads the messages
        yield hub


def count(hub, table) -> int:
    with hub.store.session() as session:
        return session.scalar(select(func.count()).select_from(table))


def test_a_thousand_hl7v2_messages_over_mllp_are_acknowledged_stored_once_and_billed(feed_hub):
    templates = {name: (HL7 / name).read_bytes() for name in
                 ("dft-p03-v251-full.hl7", "dft-p03-v23-minimal.hl7", "adt-a04-v251.hl7", "siu-s12-v251.hl7")}
    kinds = ["dft-p03-v251-full.hl7"] * 5 + ["dft-p03-v23-minimal.hl7"] * 3 + ["adt-a04-v251.hl7", "siu-s12-v251.hl7"]
    messages = [variant(templates[kinds[n % len(kinds)]], n) for n in range(1000)]
    assert len(set(messages)) == 1000
    acks: dict[int, list[str]] = {}
    failures: list[str] = []

    with MllpListener(feed_hub, port=0, idle_timeout=30) as listener:
        def sender(numbers):
            client = MllpClient(listener.address, timeout=30)
            try:
                for n in numbers:
                    acks[n] = msa(client.call(messages[n]))
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                failures.append(repr(exc))
            finally:
                client.close()

        threads = [threading.Thread(target=sender, args=(range(k, 1000, 2),)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        # A resend after a lost ACK: acknowledged again, nothing new stored.
        client = MllpClient(listener.address)
        again = msa(client.call(messages[7]))
        client.close()

    assert not failures and len(acks) == 1000
    rejected = {n: a for n, a in acks.items() if a[0] != "AA"}
    assert not rejected, list(rejected.items())[:3]
    assert again[0] == "AA"
    assert count(feed_hub, schema.InboxItem) == 1000
    with feed_hub.store.session() as session:
        states = dict(session.execute(select(schema.InboxItem.state, func.count())
                                      .group_by(schema.InboxItem.state)).all())
        claims = dict(session.execute(select(schema.Claim.status, func.count()).group_by(schema.Claim.status)).all())
    assert states == {"processed": 1000}
    assert sum(claims.values()) == 800 and set(claims) == {"ready"}, claims
    assert count(feed_hub, schema.Appointment) == 100


def test_a_message_the_plugin_refuses_gets_ae_with_the_field_and_the_next_is_accepted(feed_hub):
    template = (HL7 / "dft-p03-v251-full.hl7").read_bytes()
    good = variant(template, 1)
    no_code = variant(template, 2).replace(b"90837^Psychotherapy 60 min^C4", b"")  # FT1-7, FT1-25, PR1-3
    with MllpListener(feed_hub, port=0) as listener:
        client = MllpClient(listener.address)
        refused = client.call(no_code)
        accepted = msa(client.call(good))
        client.close()
    code, control_id, text = msa(refused)
    assert (code, control_id) == ("AE", "M0000022")
    assert "FT1 set 1" in text and "procedure code" in err(refused)  # a reason an integrator can act on
    assert accepted[:2] == ["AA", "M0000012"]
    with feed_hub.store.session() as session:
        states = sorted(session.scalars(select(schema.InboxItem.state)))
    assert states == ["processed", "quarantined"]


def test_a_message_type_the_hub_does_not_read_gets_ae_unsupported_message_type(feed_hub):
    template = (HL7 / "adt-a04-v251.hl7").read_bytes()
    lab_result = variant(template, 3).replace(b"ADT^A04^ADT_A01", b"ORU^R01^ORU_R01", 1)
    with MllpListener(feed_hub, port=0) as listener:
        client = MllpClient(listener.address)
        ack = client.call(lab_result)
        client.close()
    assert msa(ack)[:2] == ["AE", "M0000034"]
    assert "200^Unsupported message type" in err(ack)  # HL7 table 0357: the sender learns it is the type
