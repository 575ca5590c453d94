"""A real-time endpoint's file: its schema, every problem at once, and the built endpoint.

One file in ``mappings/clearinghouses/realtime/*.toml`` (bhhub's, then the practice's
``<hub home>/mappings/clearinghouses/realtime/``) describes one clearinghouse account for CAQH
CORE real-time eligibility. The ``[portal]``, ``[auth]`` and ``[limits]`` tables are those of a
payer-portal file (``bhhub.connectors.http_api.connection``), so ``PortalFiles`` reads these files
and ``PortalClient`` sends the requests; the other tables are the CORE and X12 ids:

* ``[portal]``: name, payer ids served, ``base_url`` (the endpoint itself; https, or http to
  127.0.0.1/localhost for the sandbox: nothing leaves the machine there);
* ``[core]``: ``sender_id`` and ``receiver_id`` of the CORE envelope (assigned by the clearinghouse);
* ``[envelope]``: ISA05/06, ISA07/08, ISA15 of the 270;
* ``[provider]``: who asks (2100B): the practice's NPI and name, and its EIN for TRN03;
* ``[auth]``: ``core_username_password`` (the CORE ``UserName``/``Password`` fields, the
  password from ``password_env`` or ``password_file``), or a payer-portal auth type.

The keys are documented in the example, ``mappings/clearinghouses/realtime/example_realtime.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bhhub.model import Provider
from bhhub.x12.envelope import ID_QUALIFIERS, Envelope

from bhhub.connectors.http_api import connection as conn
from bhhub.connectors.http_api.connection import Connection, Secret
from bhhub.connectors.http_api.client import PortalClient
from bhhub.connectors.http_api.schema import check, raise_problems

CORE_AUTH = "core_username_password"  # CORE Phase II: UserName and Password as envelope fields
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

SCHEMA: dict[str, Any] = {
    "portal": {**conn.PORTAL_SCHEMA, "base_url": "string"},  # checked below: https, or loopback http
    "core": {"sender_id": "string", "receiver_id": "string"},
    "envelope": {"sender_qualifier": "string?", "sender_id": "string", "receiver_qualifier": "string?",
                 "receiver_id": "string", "usage_indicator": "string?"},
    "provider": {"npi": "string", "organization_name": "string", "tax_id": "string"},
    "auth": {**conn.AUTH_SCHEMA, "username": "string?", "password_env": "string?", "password_file": "string?"},
    "limits": dict(conn.LIMITS_SCHEMA),
}


@dataclass
class RealtimeEndpoint:
    """One clearinghouse account for real-time 270/271, built from a valid file; keeps its client."""

    connection: Connection  # what PortalClient needs: URL, auth (none for CORE's own fields), limits
    core_sender_id: str
    core_receiver_id: str
    envelope: Envelope
    provider: Provider
    username: str | None
    password: Secret | None
    source: str
    client: PortalClient | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.connection.name


def endpoint_problems(table: Any) -> list[str]:
    """Every problem of an endpoint table (empty when it is usable)."""
    if not isinstance(table, dict):
        return ["the file must be a table"]
    problems = check(table, SCHEMA)
    auth = table.get("auth") if isinstance(table.get("auth"), dict) else {}
    if auth.get("type") == CORE_AUTH:
        if not auth.get("username"):
            problems.append(f"auth.username is required for {CORE_AUTH}")
        if "password_env" not in auth and "password_file" not in auth:
            problems.append("auth needs password_env (an environment variable) or password_file")
        # the payer-portal checks still apply: secret files outside the tree, limits
        problems += conn.problems({**table, "auth": {**auth, "type": "none"}})
    else:
        problems += [p.replace(", none,", f", none or {CORE_AUTH},") if p.startswith("auth.type") else p
                     for p in conn.problems(table)]
    portal = table.get("portal")
    if isinstance(portal, dict) and isinstance(portal.get("base_url"), str):
        problems += _url_problems(portal["base_url"])
    envelope = table.get("envelope")
    if isinstance(envelope, dict):
        for key in ("sender_qualifier", "receiver_qualifier"):
            if key in envelope and envelope[key] not in ID_QUALIFIERS:
                problems.append(f"envelope.{key} {envelope[key]!r} is not an ISA id qualifier")
        for key in ("sender_id", "receiver_id"):
            value = envelope.get(key)
            if isinstance(value, str) and not 2 <= len(value) <= 15:
                problems.append(f"envelope.{key} must be 2-15 characters (ISA06/ISA08)")
        if envelope.get("usage_indicator", "T") not in ("T", "P"):
            problems.append("envelope.usage_indicator must be T (test) or P (production)")
    provider = table.get("provider")
    if isinstance(provider, dict):
        npi, tin = provider.get("npi"), provider.get("tax_id")
        if isinstance(npi, str) and not (len(npi) == 10 and npi.isdigit()):
            problems.append("provider.npi must be 10 digits")
        if isinstance(tin, str) and not (len(tin) == 9 and tin.isdigit()):
            problems.append("provider.tax_id must be the 9-digit EIN, no dash (TRN03 is 1 + EIN)")
    return problems


def _url_problems(url: str) -> list[str]:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return []
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return []  # the sandbox on this machine: patient data never leaves it
    return ["portal.base_url must be an https:// URL (patient data never travels unencrypted); "
            "plain http only to 127.0.0.1 or localhost (the sandbox)"]


def validate_endpoint(table: Any, source: str = "real-time clearinghouse file") -> None:
    """Raise ``MappingError`` naming every problem in ``table``."""
    raise_problems(source, endpoint_problems(table))


def build_endpoint(table: dict[str, Any], source: str) -> RealtimeEndpoint:
    validate_endpoint(table, source)
    auth = table.get("auth", {"type": "none"})
    core_auth = auth.get("type") == CORE_AUTH
    # PortalClient adds no credentials of its own for CORE's username/password: they are fields.
    connection = conn.connection({**table, "auth": {"type": "none"} if core_auth else auth})
    env, file = auth.get("password_env"), auth.get("password_file")
    envelope, provider = table["envelope"], table["provider"]
    core = table["core"]
    return RealtimeEndpoint(
        connection=connection,
        core_sender_id=core["sender_id"],
        core_receiver_id=core["receiver_id"],
        envelope=Envelope(
            sender_qualifier=envelope.get("sender_qualifier", "ZZ"), sender_id=envelope["sender_id"],
            receiver_qualifier=envelope.get("receiver_qualifier", "ZZ"), receiver_id=envelope["receiver_id"],
            usage_indicator=envelope.get("usage_indicator", "T"),
            # A 270 has no 1000A/1000B loops; Envelope asks for them because an 837P does.
            submitter_name=provider["organization_name"], submitter_id=envelope["sender_id"],
            submitter_contact_name=provider["organization_name"], submitter_phone="0000000000",
            receiver_name=connection.name, receiver_id_code=envelope["receiver_id"],
        ),
        provider=Provider(npi=provider["npi"], organization_name=provider["organization_name"],
                          tin=provider["tax_id"]),
        username=auth.get("username") if core_auth else None,
        password=Secret("CORE password", env, file) if core_auth else None,
        source=source,
    )
