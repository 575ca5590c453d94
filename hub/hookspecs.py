"""Every hook a bhhub plugin can implement, grouped by the stage of the billing flow.

A plugin is a module (or object) with functions decorated ``@hub.hookimpl`` whose names match a
spec here; it is found through the entry-point group ``bhhub``. Only the hub calls hooks, through
``bhhub.runtime.plugin_host.Hooks``. Arguments are canonical model objects (``bhhub.model``) and plain values,
never database sessions or rows.

Two kinds of hook:

* registration hooks (``bhhub_register_*``) return a list of small frozen records from
  ``bhhub.types``; the hub owns the registry and refuses a duplicate name;
* event and question hooks: "everyone contributes" hooks collect each plugin's answer, and
  ``firstresult`` hooks ("who handles this") stop at the first answer that is not ``None``.

A failing implementation of a broadcast or registration hook is reported with the plugin's name
and the other plugins still run.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

from bhhub import hookspec

if TYPE_CHECKING:
    from bhhub.eligibility.benefits import EligibilityResponse
    from bhhub.model import Coverage, Encounter, Patient
    from bhhub.notify import AlertNotice
    from bhhub.types import ClaimCheck, Command, IntakeFormat, Job, Transport, X12Transaction

# --- intake -------------------------------------------------------------------------------


@hookspec
def bhhub_register_intake_formats() -> list[IntakeFormat]:
    """Declare the input formats this plugin reads (FHIR R4 bundles, HL7 v2 messages, ...).

    Called once when the hub starts. Return a list of ``bhhub.types.IntakeFormat``; an empty list
    (or ``None``) means the plugin reads nothing. For each payload, the hub asks every format's
    ``recognizes(content)`` and hands the bytes to the single format that says yes.
    """


@hookspec
def bhhub_encounters_received(encounters: Sequence[Encounter], source_name: str) -> None:
    """Tell plugins that encounters were committed from one inbox item.

    Called after the payload's encounters and claims are committed. ``encounters`` are the
    canonical records the intake format returned; ``source_name`` is the file or channel they
    came from. Return value is ignored. Use it to feed other systems; never to change claims.
    """


# --- eligibility --------------------------------------------------------------------------


@hookspec(firstresult=True)
def bhhub_check_eligibility(
    patient: Patient, coverage: Coverage, service_date: date, service_types: Sequence[str]
) -> EligibilityResponse | None:
    """Ask a payer (a payer portal's API) about ``coverage`` for ``patient`` on ``service_date``.

    Called when the hub checks eligibility in real time (``bhhub eligibility check``, the sweep
    before appointments and before claims are batched). ``patient`` is the patient (a
    ``bhhub.model.Patient``: name and birth date, for the portal's matching); ``coverage`` the
    coverage asked about (payer id, member id, subscriber and relationship when the patient is
    a dependent); ``service_date`` the date of service; ``service_types`` X12 service type
    codes (``MH``, ``A6``, ``30``...).

    Return a ``bhhub.eligibility.benefits.EligibilityResponse``, the record ``read_271`` makes, so
    an answer is stored and judged the same whichever path it came by: ``benefits`` with an
    entry per service type the payer answered about, or ``rejections`` when it refused the
    question (member not found: AAA reject reasons). Return ``None`` for a payer the plugin
    does not serve ("not my payer"), decided from its mapping files without the network; the
    next plugin is then asked. Raise ``bhhub.errors`` only: ``RetriableError`` when the portal is
    unavailable (after the plugin's own retries), ``InputError`` when it answered something
    unreadable (no record is made), ``ConfigError`` for missing or refused credentials. Messages
    name the payer, never the patient.
    """


# --- coding and scrubbing -----------------------------------------------------------------


@hookspec
def bhhub_register_claim_checks() -> list[ClaimCheck]:
    """Declare scrubbing rule sets.

    Called once when the hub starts. Return a list of ``bhhub.types.ClaimCheck``. Each check is
    run on every claim not yet sent; its findings with severity ``error`` keep the claim out of
    batches (status ``needs_attention``), ``warning`` findings are shown and do not block.
    """


@hookspec(firstresult=True)
def bhhub_code_encounter(encounter: Encounter) -> Encounter | None:
    """Replace the hub's own coding of an encounter (rarely needed).

    Called before the hub derives codes, charges, place of service and telehealth modifiers
    for ``encounter``, the canonical record an intake format produced. Return a new ``Encounter`` whose ``as_billed`` is true to take over coding entirely, or
    ``None`` to let the hub code it from the tables in ``mappings/``.
    """


# --- submission ---------------------------------------------------------------------------


@hookspec
def bhhub_batch_written(batch_id: int, path: str, claim_count: int) -> None:
    """Tell plugins an 837P batch was written and recorded.

    Called after the batch's bytes and control numbers are committed. ``batch_id`` is the
    stored batch, ``path`` where the file was written, ``claim_count`` how many claims it
    carries. Return value is ignored.
    """


@hookspec
def bhhub_register_transports() -> list[Transport]:
    """Declare ways to reach clearinghouse mailboxes (SFTP, and what vendors add).

    Called once when the hub starts. Return a list of ``bhhub.types.Transport``; a mailbox in
    ``bhhub.toml`` names one by ``transport`` (default ``"sftp"``). An empty list means none.
    """


@hookspec(firstresult=True)
def bhhub_submit_batch(batch_id: int, content: bytes, payer_ids: Sequence[str]) -> str | None:
    """Send an 837P batch to a clearinghouse.

    ``batch_id`` is the stored batch; ``content`` its X12 bytes (send them unchanged); ``payer_ids`` the payers it
    carries, for routing. The plugin that serves this route uploads it and returns the remote
    file name; ``None`` means "not mine". Raise ``bhhub.errors.RetriableError`` when the upload's
    outcome is unknown, so the hub reconciles before sending again.
    """


# --- acknowledgment -----------------------------------------------------------------------


@hookspec
def bhhub_register_x12_transactions() -> list[X12Transaction]:
    """Declare the inbound X12 transactions this plugin reads and applies (a 278 response, a
    payer's proprietary acknowledgment); bhhub's own TA1, 999, 277CA, 835, 271 and 277 come
    through this hook too.

    Called once when the hub starts. Return a list of ``bhhub.types.X12Transaction``; an empty list
    (or ``None``) means none. Each inbound X12 payload (``bhhub intake``, a mailbox pickup) is
    matched by its ST01 and GS08 to one registration, read with its ``read`` and applied with its
    ``apply`` in the transaction that marks the inbox item processed. A second registration of
    a name, or of a transaction set and guide another plugin claims, is refused and reported by
    ``bhhub plugins`` naming both plugins; a payload no registration matches is quarantined.
    """



@hookspec
def bhhub_acknowledgment_received(
    kind: str, interchange_control_number: str, accepted: bool, claim_control_numbers: Sequence[str]
) -> None:
    """Tell plugins a TA1, 999 or 277CA was applied.

    ``kind`` is ``"TA1"``, ``"999"`` or ``"277CA"``; ``interchange_control_number`` the ISA13 of
    the 837 it answers; ``accepted`` whether the file (TA1/999) or the listed claims (277CA)
    were accepted; ``claim_control_numbers`` the patient control numbers it names. Ignored
    return value.
    """


# --- remittance ---------------------------------------------------------------------------


@hookspec
def bhhub_remittance_posted(payer_id: str, trace_number: str, claim_control_numbers: Sequence[str]) -> None:
    """Tell plugins an 835 payment was posted.

    Called after the payment identified by ``payer_id`` and ``trace_number`` (TRN02) is
    committed; ``claim_control_numbers`` are the patient control numbers it paid, adjusted or
    denied. Return value is ignored.
    """


@hookspec(firstresult=True)
def bhhub_classify_denial(group_code: str, reason_code: str, remark_codes: Sequence[str]) -> str | None:
    """Name the denial category for a CAS adjustment on an 835.

    ``group_code`` is the CAS group (CO, OA, PI, PR), ``reason_code`` the CARC and
    ``remark_codes`` the RARCs that came with it. Return a category (``authorization``, ``eligibility``, ``coding``, ...) to override the
    hub's table in ``mappings/``, or ``None`` to use the table.
    """


# --- jobs ---------------------------------------------------------------------------------


@hookspec
def bhhub_register_jobs() -> list[Job]:
    """Declare scheduled tasks for ``bhhub run``.

    Called when the runner starts. Return a list of ``bhhub.types.Job``; each job takes the hub
    and must be idempotent (the runner may call it again after a crash).
    """


@hookspec
def bhhub_alert_raised(alert: AlertNotice) -> None:
    """An alert people must know about has been raised.

    Called by ``bhhub run`` once per alert (again on a later tick if this raised, up to
    ``bhhub.notify.MAX_ATTEMPTS``; at least once: a crash may repeat it). ``alert`` is a
    ``bhhub.notify.AlertNotice`` (id, key, kind, message, raised_at): forward it to a pager, a
    chat, a ticket system. The message names mailboxes, files and claims' control numbers,
    never patients. The return value is ignored; raise to have it tried again. Do not block
    for long (use a timeout on any network call): it is called in a worker thread, and a call
    still running after ``[notify] deadline`` (30 s by default) counts as failed and is tried
    again on a later tick.
    """


# --- CLI ----------------------------------------------------------------------------------


@hookspec
def bhhub_register_commands() -> list[Command]:
    """Add sub-commands to ``bhhub``.

    Called when the command line is built. Return a list of ``bhhub.types.Command``; a name the
    hub or another plugin already uses is refused and reported by ``bhhub plugins``.
    """
