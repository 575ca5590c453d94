"""The store's tables (SQLAlchemy 2 typed ORM). Alembic migrations create and upgrade them.

One file, though longer than the hub's others, on purpose: it is the one declaration of the
database, read as a whole. Its tables refer to each other (foreign keys, relationships), they
share one ``Base`` and its naming convention, the Alembic migrations under ``migrations/``
mirror it table by table, and every module that touches the store imports it as ``schema``
(``schema.Claim``, ``schema.Batch``): split by capability, a migration's author would have to
gather the tables back from several modules to compare them with the database.

Every piece of work is a row with an explicit state, and natural-key unique constraints make
repeats harmless: an inbox item by its sha256, an encounter by its source key, a claim by its
patient control number and revision, a batch by its interchange control number.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    func,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.sql.expression import false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

Money = Numeric(12, 2)

# Stable constraint names, so migrations read the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class InboxItem(Base):
    """A payload exactly as received, stored before it is parsed."""

    __tablename__ = "inbox_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    source_name: Mapped[str] = mapped_column(String(500))
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    state: Mapped[str] = mapped_column(String(20), default="received", index=True)
    format: Mapped[str | None] = mapped_column(String(50))
    reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Payer(Base):
    __tablename__ = "payers"

    id: Mapped[int] = mapped_column(primary_key=True)
    payer_id: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    claim_filing_indicator: Mapped[str | None] = mapped_column(String(2))


class Provider(Base):
    """A billing or rendering provider, one row per NPI."""

    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    npi: Mapped[str] = mapped_column(String(10), unique=True)
    organization_name: Mapped[str | None] = mapped_column(String(200))
    family_name: Mapped[str | None] = mapped_column(String(100))
    given_name: Mapped[str | None] = mapped_column(String(100))
    tin: Mapped[str | None] = mapped_column(String(9))
    taxonomy: Mapped[str | None] = mapped_column(String(10))
    # SQL NULL when unknown (not JSON null), so an upsert that does not know it keeps it
    address: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))


class Patient(Base):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    family_name: Mapped[str] = mapped_column(String(100))
    given_name: Mapped[str | None] = mapped_column(String(100))
    middle_name: Mapped[str | None] = mapped_column(String(100))
    birth_date: Mapped[date | None] = mapped_column(Date)
    gender: Mapped[str] = mapped_column(String(1), default="U")
    address: Mapped[dict | None] = mapped_column(JSON)


class Coverage(Base):
    """A patient's plan with one payer, and who the subscriber is."""

    __tablename__ = "coverages"
    __table_args__ = (UniqueConstraint("patient_id", "payer_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    payer_id: Mapped[int] = mapped_column(ForeignKey("payers.id"))
    member_id: Mapped[str] = mapped_column(String(80))
    coverage_order: Mapped[int] = mapped_column(Integer, default=1)
    relationship_code: Mapped[str] = mapped_column(String(2), default="18")
    group_number: Mapped[str | None] = mapped_column(String(50))
    plan_name: Mapped[str | None] = mapped_column(String(200))
    # The subscriber when it is not the patient: name, birth date, gender, address.
    subscriber: Mapped[dict | None] = mapped_column(JSON)

    payer: Mapped[Payer] = relationship(lazy="joined")


class Encounter(Base):
    __tablename__ = "encounters"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    source_ref: Mapped[str] = mapped_column(String(300))
    inbox_item_id: Mapped[int] = mapped_column(ForeignKey("inbox_items.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    service_date: Mapped[date] = mapped_column(Date)
    minutes: Mapped[int | None] = mapped_column(Integer)
    virtual: Mapped[bool] = mapped_column(default=False)
    audio_only: Mapped[bool] = mapped_column(default=False)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Claim(Base):
    """A professional claim. ``revision`` counts replacements (frequency 7) and voids (8)."""

    __tablename__ = "claims"
    __table_args__ = (UniqueConstraint("patient_control_number", "revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_control_number: Mapped[str] = mapped_column(String(20))
    revision: Mapped[int] = mapped_column(Integer, default=0)
    frequency_code: Mapped[str] = mapped_column(String(1), default="1")
    status: Mapped[str] = mapped_column(String(20), index=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    coverage_id: Mapped[int] = mapped_column(ForeignKey("coverages.id"))
    billing_provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"))
    rendering_provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"))
    place_of_service: Mapped[str] = mapped_column(String(2))
    prior_authorization: Mapped[str | None] = mapped_column(String(50))
    payer_claim_control_number: Mapped[str | None] = mapped_column(String(50))
    service_date: Mapped[date] = mapped_column(Date, index=True)
    total_charge: Mapped[Decimal] = mapped_column(Money)
    diagnoses: Mapped[list] = mapped_column(JSON)  # ICD-10-CM with dots, principal first
    # Other coverages (2320/2330), ids of coverages rows in order.
    other_coverage_ids: Mapped[list] = mapped_column(JSON, default=list)
    # The claim's 837P segments, rendered and checked when it was built (bhhub.claims.claim837p
    # RenderedClaim); None while it needs attention.
    rendered_x12: Mapped[dict | None] = mapped_column(JSON)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    lines: Mapped[list[ServiceLine]] = relationship(
        back_populates="claim", order_by="ServiceLine.line_number", cascade="all, delete-orphan"
    )
    findings: Mapped[list[Finding]] = relationship(
        back_populates="claim", order_by="Finding.id", cascade="all, delete-orphan"
    )


class ServiceLine(Base):
    __tablename__ = "service_lines"
    __table_args__ = (UniqueConstraint("claim_id", "line_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"))
    line_number: Mapped[int] = mapped_column(Integer)
    procedure_code: Mapped[str] = mapped_column(String(5))
    modifiers: Mapped[list] = mapped_column(JSON, default=list)
    charge: Mapped[Decimal] = mapped_column(Money)
    units: Mapped[Decimal] = mapped_column(Numeric(9, 3))
    diagnosis_pointers: Mapped[list] = mapped_column(JSON)
    service_date: Mapped[date] = mapped_column(Date)
    place_of_service: Mapped[str | None] = mapped_column(String(2))
    minutes: Mapped[int | None] = mapped_column(Integer)
    prior_authorization: Mapped[str | None] = mapped_column(String(50))
    control_number: Mapped[str] = mapped_column(String(30))

    claim: Mapped[Claim] = relationship(back_populates="lines")


class Finding(Base):
    """A scrubbing finding on a claim; an override is recorded, never deleted."""

    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    line_number: Mapped[int | None] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(80))
    severity: Mapped[str] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(Text)
    fix: Mapped[str] = mapped_column(Text, default="")
    check_name: Mapped[str] = mapped_column(String(80))

    claim: Mapped[Claim] = relationship(back_populates="findings")


class ClaimStatusEvent(Base):
    """Append-only history of a claim's status."""

    __tablename__ = "claim_status_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    reason: Mapped[str | None] = mapped_column(Text)


class Batch(Base):
    """An outbound interchange (837P, 270 or 276): bytes and control numbers stored before it
    goes anywhere. ``claim_count`` and ``total_charge`` are zero for inquiries."""

    __tablename__ = "batches"
    __table_args__ = (UniqueConstraint("sender_id", "interchange_control_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # what the interchange carries: 837P claims, or 270 eligibility / 276 status inquiries
    kind: Mapped[str] = mapped_column(String(10), default="837P", server_default="837P", index=True)
    sender_id: Mapped[str] = mapped_column(String(15))
    interchange_control_number: Mapped[str] = mapped_column(String(9))
    group_control_number: Mapped[str] = mapped_column(String(9))
    transaction_control_number: Mapped[str] = mapped_column(String(9))
    usage_indicator: Mapped[str] = mapped_column(String(1))
    claim_count: Mapped[int] = mapped_column(Integer)
    total_charge: Mapped[Decimal] = mapped_column(Money)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str | None] = mapped_column(String(1000))
    # set once the exported file (``path``) is on disk whole: a batch committed and then cut
    # off before its file was written is written again, with the same bytes, by the next export
    file_written_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # the mailbox an inquiry file was written for ([routing]); NULL: the one whose ISA ids it carries
    mailbox: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Transmission(Base):
    """One batch's journey to a clearinghouse mailbox; every state change is committed.

    ready → uploading → uploaded → acknowledged | rejected. An ``uploading`` row found after a
    crash is reconciled (look for the file, else send the same bytes again), never re-numbered.
    """

    __tablename__ = "transmissions"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), unique=True)
    mailbox: Mapped[str] = mapped_column(String(80), index=True)
    remote_name: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(20), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    uploaded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)


class TransmissionEvent(Base):
    """Append-only history of a transmission's states."""

    __tablename__ = "transmission_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    transmission_id: Mapped[int] = mapped_column(ForeignKey("transmissions.id"), index=True)
    state: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    detail: Mapped[str | None] = mapped_column(Text)


class Acknowledgment(Base):
    """What one TA1, 999 or 277CA said about a batch or a claim, kept for the biller."""

    __tablename__ = "acknowledgments"

    id: Mapped[int] = mapped_column(primary_key=True)
    inbox_item_id: Mapped[int] = mapped_column(ForeignKey("inbox_items.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # TA1, 999, 277CA
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), index=True)
    claim_id: Mapped[int | None] = mapped_column(ForeignKey("claims.id"), index=True)
    accepted: Mapped[bool]
    code: Mapped[str | None] = mapped_column(String(50))
    detail: Mapped[str | None] = mapped_column(Text)  # plain language; error locations, no data values
    payer_claim_control_number: Mapped[str | None] = mapped_column(String(50))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # What the answer means for the claim and who gave it, so a claim's status can be decided by
    # precedence over all answers to its submission, whatever order they came in
    # (bhhub.acknowledgments.precedence): received | accepted | not_found | rejected; clearinghouse | payer;
    # the date the answer speaks for (STC02, else the file's date).
    outcome: Mapped[str | None] = mapped_column(String(12))
    source: Mapped[str | None] = mapped_column(String(15))
    effective_on: Mapped[date | None] = mapped_column(Date)


class RemoteFileSeen(Base):
    """A file seen in a mailbox's inbound folder: size and mtime at the last listing, for the
    stability check (take a file only when it stopped changing)."""

    __tablename__ = "remote_files_seen"
    __table_args__ = (UniqueConstraint("mailbox", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    mtime: Mapped[int] = mapped_column(Integer)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    inbox_item_id: Mapped[int | None] = mapped_column(ForeignKey("inbox_items.id"))


class Alert(Base):
    """Something a person must know. One row per incident: raised once, cleared once."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), index=True)  # e.g. "ack_missing:transmission:7"
    kind: Mapped[str] = mapped_column(String(50))
    message: Mapped[str] = mapped_column(Text)  # ids and names of things, never PHI
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    cleared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Delivery to people (bhhub.notify): per target "sent" or why not; set once every target has it.
    notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    notify_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    notifications: Mapped[dict | None] = mapped_column(JSON)


class ControlCounter(Base):
    """Monotonic counters (ISA13, GS06, ST02, patient control numbers), never reused."""

    __tablename__ = "control_counters"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class AuditEvent(Base):
    """Append-only trail of every read or change of PHI through the hub's interfaces, and of every
    login. Rows are hash-chained (``bhhub.audit.chain``): each holds the hash of the row before
    it, so an edited or deleted row is found by ``bhhub audit verify``. Written only through
    ``Hub.audit``, which serializes appends; the unique ``prev_hash`` makes a fork impossible."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    object_type: Mapped[str] = mapped_column(String(50))
    object_ids: Mapped[list] = mapped_column(JSON)
    detail: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(100), default="cli", server_default="cli")  # "cli", or "web:<client ip>"
    outcome: Mapped[str | None] = mapped_column(String(20))  # "ok", "failed" ... where it has one
    prev_hash: Mapped[str | None] = mapped_column(String(64), unique=True)  # NULL only mid-append
    hash: Mapped[str | None] = mapped_column(String(64))  # hex sha256, bhhub.audit.chain.row_hash


# --- workspace users (bhhub.accounts) -----------------------------------------------------------


class User(Base):
    """A person who may log in to the workspace (``bhhub serve``). Secrets as hashes only."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # admin | biller | viewer (bhhub.accounts.ROLES)
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id, PHC string
    totp_secret: Mapped[str | None] = mapped_column(String(64))  # base32; NULL until enrolled
    totp_last_step: Mapped[int | None] = mapped_column(Integer)  # the last 30 s step accepted: no replay
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# 'Ann' and 'ann' would read as one person in the audit trail: a name is unique whatever its case
Index("uq_users_name_folded", func.lower(User.name), unique=True)


class WebSession(Base):
    """A logged-in browser. The cookie's token is never stored, only its sha256."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    mfa_done: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# --- remittance (835) ---------------------------------------------------------------------------


class RemitPayment(Base):
    """One 835 payment (one ST/SE): who paid, how much, and what became of each of its claims.

    A payment is "the same" only when payer, trace number, amount and date all agree (payers
    reuse trace numbers): that is its natural key, so the same payment in another file or
    envelope posts nothing the second time.
    """

    __tablename__ = "remit_payments"
    __table_args__ = (UniqueConstraint("payer_id", "trace_number", "amount", "payment_date", "credit_debit"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    inbox_item_id: Mapped[int] = mapped_column(ForeignKey("inbox_items.id"), index=True)
    payer_id: Mapped[str] = mapped_column(String(80))
    payer_name: Mapped[str] = mapped_column(String(200))
    trace_number: Mapped[str] = mapped_column(String(80))
    amount: Mapped[Decimal] = mapped_column(Money)  # BPR02
    credit_debit: Mapped[str] = mapped_column(String(1))  # BPR03
    payment_date: Mapped[date | None] = mapped_column(Date)  # BPR16
    method: Mapped[str] = mapped_column(String(10))  # BPR04
    handling: Mapped[str] = mapped_column(String(2))  # BPR01
    payee_id: Mapped[str] = mapped_column(String(80))
    transaction_control_number: Mapped[str] = mapped_column(String(9))
    claims: Mapped[int] = mapped_column(Integer, default=0)
    claims_posted: Mapped[int] = mapped_column(Integer, default=0)
    claims_unmatched: Mapped[int] = mapped_column(Integer, default=0)
    claims_quarantined: Mapped[int] = mapped_column(Integer, default=0)
    claims_repeated: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # already posted
    paid_total: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))  # sum of CLP04
    provider_adjustment_total: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))  # sum of PLB
    problems: Mapped[list] = mapped_column(JSON, default=list)
    posted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RemitClaim(Base):
    """One CLP of a payment: posted to its claim, unmatched (waiting for a biller), or quarantined.

    ``state``: posted, unmatched, quarantined (with ``reason``), or repeat (the same claim payment
    as one already posted to ``claim_id``, not posted again). A reversal (CLP02 22) is posted
    with its negative amounts and ``reverses_id`` pointing at the posting it undoes, which gets
    ``reversed_by_id``. ``fingerprint`` is the claim payment's identity whatever its envelope
    (``bhhub.remittance.identity``); ``generation`` counts the posted ones with that identity on the
    claim (a reversal makes room for one more), so one claim, fingerprint and generation is
    posted once even by two processes at once.
    """

    __tablename__ = "remit_claims"
    __table_args__ = (UniqueConstraint("claim_id", "fingerprint", "generation"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("remit_payments.id"), index=True)
    sequence: Mapped[int] = mapped_column(Integer)  # order in the payment
    claim_id: Mapped[int | None] = mapped_column(ForeignKey("claims.id"), index=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    patient_control_number: Mapped[str] = mapped_column(String(38), index=True)
    status_code: Mapped[str] = mapped_column(String(2))
    charge: Mapped[Decimal] = mapped_column(Money)
    paid: Mapped[Decimal] = mapped_column(Money)
    patient_responsibility: Mapped[Decimal] = mapped_column(Money)
    contractual: Mapped[Decimal] = mapped_column(Money)  # sum of CO adjustments
    other_adjustments: Mapped[Decimal] = mapped_column(Money)  # OA and PI
    payer_claim_control_number: Mapped[str] = mapped_column(String(50), default="")
    adjustments: Mapped[list] = mapped_column(JSON, default=list)  # [{level, line, group, reason, amount}]
    services: Mapped[list] = mapped_column(JSON, default=list)  # [{code, modifiers, charge, paid, date, ...}]
    remarks: Mapped[list] = mapped_column(JSON, default=list)
    segment_number: Mapped[int] = mapped_column(Integer)
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("remit_claims.id"))
    reversed_by_id: Mapped[int | None] = mapped_column(ForeignKey("remit_claims.id"))
    fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)
    generation: Mapped[int | None] = mapped_column(Integer)  # posted rows only
    posted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The payer forwarded the claim to the next payer itself (CLP02 19/20/21, NM1*TT, MA18/N89):
    # nothing is billed to that payer by hand; its own 835 follows (bhhub.remittance.crossovers).
    crossed_over: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    crossover_payer: Mapped[str] = mapped_column(String(80), default="", server_default="")


class ProviderAdjustment(Base):
    """A PLB amount: provider-level money (recoupments, interest), not a claim's payment."""

    __tablename__ = "remit_provider_adjustments"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("remit_payments.id"), index=True)
    provider_id: Mapped[str] = mapped_column(String(80))
    fiscal_period_end: Mapped[date | None] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(10))
    reference: Mapped[str] = mapped_column(String(80))
    amount: Mapped[Decimal] = mapped_column(Money)


class Denial(Base):
    """A denied or partly denied amount on a posted claim payment, with its next action.

    ``status``: open (on the worklist), resolved (worked: corrected, appealed, written off),
    undone (its payment was reversed).
    """

    __tablename__ = "denials"

    id: Mapped[int] = mapped_column(primary_key=True)
    remit_claim_id: Mapped[int] = mapped_column(ForeignKey("remit_claims.id"), index=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    line: Mapped[int | None] = mapped_column(Integer)  # 1-based service line of the CLP; None: claim level
    procedure_code: Mapped[str | None] = mapped_column(String(10))
    group_code: Mapped[str] = mapped_column(String(2))
    reason_code: Mapped[str] = mapped_column(String(5))
    remark_codes: Mapped[list] = mapped_column(JSON, default=list)
    amount: Mapped[Decimal] = mapped_column(Money)
    category: Mapped[str] = mapped_column(String(40), index=True)
    action: Mapped[str] = mapped_column(String(40))
    action_text: Mapped[str] = mapped_column(Text)
    deadline: Mapped[date | None] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution: Mapped[str | None] = mapped_column(Text)
    # A PR amount the patient really owes (or their next payer first); False for CO/OA/PI and for
    # a PR the hub may not bill them for: a wrong payer, or no advance notice (bhhub.remittance.responsibility).
    patient_owes: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class AdvanceNotice(Base):
    """The patient signed an advance notice (Medicare ABN, CMS-R-131, or a plan's waiver) that
    they will pay for a service the payer may not cover: recorded by a biller
    (``bhhub notice add``). Without one a PR-50/96/204 is not the patient's to pay."""

    __tablename__ = "advance_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_control_number: Mapped[str] = mapped_column(String(38), index=True)  # every revision
    procedure_code: Mapped[str | None] = mapped_column(String(10))  # None: every service on the claim
    signed_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(80))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# --- authorizations, session limits and credentialing -------------------------------------------


class Authorization(Base):
    """A payer's prior authorization for a member: which codes, how many, when, for whom.

    ``procedure_codes`` empty means any code; ``rendering_npi`` set means only that clinician.
    ``quantity`` counts ``unit_type``: visits (one per date of service on a claim) or units (the
    lines' units, for H-codes and testing hours). ``status``: active, void (entered in error).
    """

    __tablename__ = "authorizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    payer_id: Mapped[str] = mapped_column(String(80), index=True)
    member_id: Mapped[str] = mapped_column(String(80), index=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), index=True)
    number: Mapped[str] = mapped_column(String(50))
    procedure_codes: Mapped[list] = mapped_column(JSON, default=list)
    unit_type: Mapped[str] = mapped_column(String(10), default="visits")
    quantity: Mapped[Decimal] = mapped_column(Numeric(9, 3))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    rendering_npi: Mapped[str | None] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(20), default="typed")  # typed, fhir, eligibility, portal
    # when the payer issued these terms (a feed's grant): a later grant updates, an earlier never
    issued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(10), default="active", index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuthorizationUse(Base):
    """What one line of a claim that went out took from an authorization; given back (released)
    when the payer denied it for the authorization, or when a later revision replaced it."""

    __tablename__ = "authorization_uses"
    __table_args__ = (UniqueConstraint("claim_id", "line_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    authorization_id: Mapped[int] = mapped_column(ForeignKey("authorizations.id"), index=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"))
    line_number: Mapped[int] = mapped_column(Integer)
    units: Mapped[Decimal] = mapped_column(Numeric(9, 3))
    used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    release_reason: Mapped[str | None] = mapped_column(Text)


class Enrollment(Base):
    """A rendering provider's enrollment with a payer over a period (domain reference 11.3).

    ``status``: enrolled, pending, terminated, not_enrolled. Open dates mean "no bound". One row
    per provider, payer and effective date, so a re-enrollment after a termination is a new row.
    """

    __tablename__ = "enrollments"
    __table_args__ = (UniqueConstraint("npi", "payer_id", "effective_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    npi: Mapped[str] = mapped_column(String(10))
    payer_id: Mapped[str] = mapped_column(String(80), index=True)
    status: Mapped[str] = mapped_column(String(20))
    effective_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    in_network: Mapped[bool] = mapped_column(default=True)
    era_enrolled: Mapped[bool] = mapped_column(default=False)
    eft_enrolled: Mapped[bool] = mapped_column(default=False)
    reattestation_due: Mapped[date | None] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(20), default="typed")  # typed, csv, ...
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class FindingOverride(Base):
    """A person's decision to bill despite a finding: who, why, when. Never deleted."""

    __tablename__ = "finding_overrides"

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    code: Mapped[str] = mapped_column(String(80))
    line_number: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# --- registrations and appointments (HL7 ADT and SIU) --------------------------------------------


class Appointment(Base):
    """A scheduled visit from the EHR's scheduler (HL7 SIU), kept for eligibility sweeps.

    One row per appointment (``key``, source-scoped); a change or cancellation updates it, and
    ``message_time`` keeps an older message from undoing a newer one. ``starts_at`` is the local
    wall-clock time as sent. ``patient_id`` is set when the patient is known (``patient_key``
    always).
    """

    __tablename__ = "appointments"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    patient_key: Mapped[str] = mapped_column(String(300))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), index=True)
    service_date: Mapped[date] = mapped_column(Date, index=True)
    starts_at: Mapped[datetime | None] = mapped_column(DateTime)
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    provider_id: Mapped[str | None] = mapped_column(String(80))
    provider_npi: Mapped[str | None] = mapped_column(String(10))
    appointment_type: Mapped[str | None] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(20), index=True)
    message_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    inbox_item_id: Mapped[int] = mapped_column(ForeignKey("inbox_items.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EligibilityCheck(Base):
    """One eligibility question to a payer and its answer, kept as history (never overwritten).

    ``state``: requested (a 270 waits in a batch or a portal call is due), answered, failed.
    ``trace_number`` (270 TRN02, or the portal call's id) matches the answer to the question.
    ``source``: how it was asked (``x12`` through a clearinghouse mailbox, ``portal:NAME``).
    ``response`` is ``EligibilityResponse.to_json()``; ``active`` is copied out of it for queries.
    """

    __tablename__ = "eligibility_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    trace_number: Mapped[str] = mapped_column(String(50), unique=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), index=True)
    payer_id: Mapped[str] = mapped_column(String(80), index=True)
    member_id: Mapped[str] = mapped_column(String(80), index=True)
    service_date: Mapped[date] = mapped_column(Date)
    service_types: Mapped[list] = mapped_column(JSON, default=list)
    source: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(String(40))  # sweep, before_batch, asked
    state: Mapped[str] = mapped_column(String(20), index=True)
    active: Mapped[bool | None] = mapped_column(Boolean)
    response: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"))
    inbox_item_id: Mapped[int | None] = mapped_column(ForeignKey("inbox_items.id"))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)


class ClaimStatusCheck(Base):
    """One claim status inquiry (276, or a portal call) and its answer (277), as history."""

    __tablename__ = "claim_status_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    trace_number: Mapped[str] = mapped_column(String(50), unique=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    source: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(20), index=True)  # requested, answered, failed
    status: Mapped[str | None] = mapped_column(String(30))  # the 277's status in the hub's words
    response: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"))
    inbox_item_id: Mapped[int | None] = mapped_column(ForeignKey("inbox_items.id"))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
