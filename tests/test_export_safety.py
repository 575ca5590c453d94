"""`bhhub export-837` never loses a batch, and never writes over one.

A batch is the claims' move to ``batched``, the authorization visits they use, the control
numbers and the bytes, committed together; the file takes its ``--out`` name only after that
commit. So:

- what can go wrong with the file is found before any claim changes state: ``--out`` naming a
  folder, a device, a FIFO, a socket or a symbolic link (even with ``--force``), a file already
  there (without ``--force``), a file that cannot be written;
- killed with SIGKILL at any step, the export leaves either no batch (every claim still ready,
  no visit used) or a committed batch whose exact bytes `bhhub batch write ID --out FILE`
  writes again; never a claim ``batched`` without its batch, never a batch without its bytes;
- the next export writes a batch a kill cut off, but never over a file that is not that batch;
- two exports at once, to the same file or beside an exchange, bill each claim once.

Each test runs on SQLite and PostgreSQL; the kills and the pairs run `bhhub` in real processes.
"""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import stat
from datetime import date

import pytest
from sqlalchemy import func, select

from fault_support import Practice, _claims_in, sandbox
from bhhub.ledger import authorizations as ledger
from bhhub.store import schema


@pytest.fixture
def practice(tmp_path, database_url):
    """A practice whose visits are in (claims ready) and whose members each have one authorized visit."""
    practice = Practice(tmp_path, database_url)
    assert practice.here("intake", str(practice.exports)).returncode == 0
    with practice.hub() as hub, hub.store.session() as session:
        pairs = session.execute(select(schema.Payer.payer_id, schema.Coverage.member_id).distinct()
                                .join(schema.Coverage, schema.Coverage.payer_id == schema.Payer.id)).all()
        for payer_id, member_id in pairs:
            ledger.add(session, payer_id=payer_id, member_id=member_id, number=f"A-{member_id}", quantity=1,
                       start=date(2000, 1, 1), end=date(2100, 1, 1))
        session.commit()
    practice.ready = {c.patient_control_number for c in practice.claims() if c.status == "ready"}
    assert len(practice.ready) >= 3
    return practice


def uses(practice) -> int:
    with practice.hub() as hub, hub.store.session() as session:
        return session.scalar(select(func.count()).select_from(schema.AuthorizationUse))


def nothing_changed(practice) -> None:
    """No batch, every claim still ready, no authorization visit used."""
    assert practice.batches() == []
    assert {c.patient_control_number for c in practice.claims() if c.status == "ready"} == practice.ready
    assert uses(practice) == 0


def sound(practice) -> None:
    """Every batched claim is in a stored batch whose bytes are whole and carry exactly its claims."""
    batches = {b.id: b for b in practice.batches()}
    members: dict[int, set[str]] = {}
    for claim in practice.claims():
        if claim.status == "batched" or claim.batch_id is not None:
            assert claim.batch_id in batches, f"claim {claim.patient_control_number} batched with no batch"
            members.setdefault(claim.batch_id, set()).add(claim.patient_control_number)
    for batch in batches.values():
        assert hashlib.sha256(batch.content).hexdigest() == batch.sha256, f"batch {batch.id} without its bytes"
        assert set(_claims_in(batch.content)) == members.get(batch.id, set())
    practice.invariants()


def staged_files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial")) if folder.exists() else []


# --- refused before anything changes ------------------------------------------------------------


@pytest.mark.parametrize("how", ["an existing folder", "a path ending in a slash"])
def test_out_naming_a_folder_is_refused_before_any_claim_changes_state(practice, tmp_path, how):
    folder = tmp_path / "exports-out"
    if how == "an existing folder":
        folder.mkdir()
        out = str(folder)
    else:
        out = str(folder) + os.sep
    run = practice.here("export-837", "--out", out)
    assert run.returncode == 2, run.stderr
    assert "is a folder" in run.stderr and "Traceback" not in run.stderr
    nothing_changed(practice)
    assert not folder.exists() or list(folder.iterdir()) == []


def _not_a_file(tmp_path, kind: str):
    """(path, what is there) for ``kind``; the device is a copy of /dev/null made here (mknod), so
    a rename over it harms nothing even if the refusal ever broke."""
    path = tmp_path / "out.x12"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "link to a file":
        (tmp_path / "earlier.x12").write_bytes(b"an earlier batch")
        path.symlink_to(tmp_path / "earlier.x12")
    elif kind == "dangling link":
        path.symlink_to(tmp_path / "nowhere" / "x.x12")
    elif kind == "character device":
        try:
            os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))
        except (PermissionError, OSError):
            pytest.skip("making a device needs root (CAP_MKNOD)")
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()
    return path, os.lstat(path)


NOT_FILES = {"fifo": "a FIFO", "link to a file": "a symbolic link", "dangling link": "a symbolic link",
             "character device": "a character device", "socket": "a socket"}


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
@pytest.mark.parametrize("kind", sorted(NOT_FILES))
def test_out_naming_a_device_fifo_socket_or_link_is_refused_even_with_force_and_left_as_it_is(
        practice, tmp_path, kind, force):
    out, before = _not_a_file(tmp_path, kind)
    run = practice.here("export-837", "--out", str(out), *(["--force"] if force else []))
    assert run.returncode == 2, run.stderr
    assert NOT_FILES[kind] in run.stderr and "not a regular file" in run.stderr and run.stderr.count("\n") == 1
    nothing_changed(practice)
    after = os.lstat(out)
    assert (stat.S_IFMT(after.st_mode), after.st_ino) == (stat.S_IFMT(before.st_mode), before.st_ino)
    if kind == "link to a file":
        assert (tmp_path / "earlier.x12").read_bytes() == b"an earlier batch"
    assert staged_files(tmp_path) == []


@pytest.mark.parametrize("kind", ["fifo", "link to a file", "character device"])
def test_batch_write_refuses_a_device_fifo_or_link_even_with_force(practice, tmp_path, kind):
    assert practice.here("export-837", "--out", str(tmp_path / "batch.x12")).returncode == 0
    [batch] = practice.batches()
    out, before = _not_a_file(tmp_path, kind)
    run = practice.here("batch", "write", str(batch.id), "--out", str(out), "--force")
    assert run.returncode == 2 and NOT_FILES[kind] in run.stderr, run.stderr
    after = os.lstat(out)
    assert (stat.S_IFMT(after.st_mode), after.st_ino) == (stat.S_IFMT(before.st_mode), before.st_ino)


def test_the_rename_never_replaces_a_fifo_that_took_the_name_after_the_check(tmp_path):
    from bhhub.claims.export_file import place, stage

    out = tmp_path / "batch.x12"
    staged = stage(out, b"ISA*...")
    os.mkfifo(out)  # appeared between the command's check and the rename
    with pytest.raises(FileExistsError):
        place(staged, out, force=True)
    assert stat.S_ISFIFO(os.lstat(out).st_mode) and not staged.exists()


def test_an_existing_file_is_kept_and_refused_without_force_and_replaced_with_it(practice, tmp_path):
    out = tmp_path / "batch.x12"
    out.write_bytes(b"an earlier batch the practice has not sent yet")
    run = practice.here("export-837", "--out", str(out))
    assert run.returncode == 2 and "already exists" in run.stderr and "--force" in run.stderr
    assert out.read_bytes() == b"an earlier batch the practice has not sent yet"
    nothing_changed(practice)

    forced = practice.here("export-837", "--out", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    [batch] = practice.batches()
    assert out.read_bytes() == batch.content
    sound(practice)


def test_re_using_an_out_path_never_overwrites_the_earlier_batch(practice, tmp_path):
    out = tmp_path / "batch.x12"
    assert practice.here("export-837", "--out", str(out), "--max-claims", "2").returncode == 0
    [first] = practice.batches()
    left = {c.patient_control_number for c in practice.claims() if c.status == "ready"}
    used = uses(practice)

    again = practice.here("export-837", "--out", str(out))
    assert again.returncode == 2 and "already exists" in again.stderr
    assert out.read_bytes() == first.content
    assert {c.patient_control_number for c in practice.claims() if c.status == "ready"} == left
    assert uses(practice) == used and len(practice.batches()) == 1

    assert practice.here("export-837", "--out", str(tmp_path / "next.x12")).returncode == 0
    assert len(practice.batches()) == 2
    sound(practice)


def test_a_file_that_cannot_be_written_rolls_the_batch_back(practice, tmp_path, monkeypatch):
    def disk_full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    out = tmp_path / "out" / "batch.x12"
    run = practice.here("export-837", "--out", str(out))
    monkeypatch.undo()
    assert run.returncode == 1, run.stderr
    assert "No space left" in run.stderr and "nothing was batched" in run.stderr
    nothing_changed(practice)
    assert not out.exists() and staged_files(out.parent) == []


# --- written again ----------------------------------------------------------------------------------


def test_batch_write_writes_a_stored_batchs_exact_bytes_and_refuses_a_taken_name(practice, tmp_path):
    out = tmp_path / "batch.x12"
    assert practice.here("export-837", "--out", str(out)).returncode == 0
    [batch] = practice.batches()
    out.unlink()  # lost: deleted, a disk replaced, sent somewhere and gone
    copy = tmp_path / "again" / "copy.x12"
    run = practice.here("batch", "write", str(batch.id), "--out", str(copy))
    assert run.returncode == 0, run.stderr
    assert copy.read_bytes() == batch.content
    assert {c.status for c in practice.claims() if c.batch_id == batch.id} == {"batched"}  # unchanged

    refused = practice.here("batch", "write", str(batch.id), "--out", str(copy))
    assert refused.returncode == 2 and "already exists" in refused.stderr
    copy.write_bytes(b"other")
    assert practice.here("batch", "write", str(batch.id), "--out", str(copy), "--force").returncode == 0
    assert copy.read_bytes() == batch.content
    unknown = practice.here("batch", "write", "999", "--out", str(tmp_path / "x.x12"))
    assert unknown.returncode == 2 and "no batch 999" in unknown.stderr


# --- killed at any step --------------------------------------------------------------------------

COMMITTED_AFTER = {"export:before_file", "export:placed"}  # the points after the batch's commit


@pytest.mark.parametrize("point", ["batch:after_take", "batch:before_commit", "export:staged", "export:before_file",
                                   "export:placed"])
def test_killed_at_any_step_an_export_leaves_no_batch_or_one_it_can_write_again(practice, tmp_path, point):
    out = tmp_path / "out" / "batch.x12"
    assert practice.bhhub("export-837", "--out", str(out), crash_at=point).killed
    sound(practice)
    if point not in COMMITTED_AFTER:
        nothing_changed(practice)
    else:
        [batch] = practice.batches()
        assert set(_claims_in(batch.content)) == practice.ready
        assert uses(practice) > 0  # the visits went with the batch, in the same commit

    again = practice.here("export-837", "--out", str(out))  # the same command, run again
    assert again.returncode == 0, again.stderr
    [batch] = practice.batches()
    assert out.read_bytes() == batch.content
    copy = tmp_path / "copy.x12"
    assert practice.here("batch", "write", str(batch.id), "--out", str(copy)).returncode == 0
    assert copy.read_bytes() == batch.content
    assert staged_files(out.parent) == []  # nothing a kill left behind (it holds PHI)
    practice.invariants(billed=True)
    sound(practice)


def test_a_batch_written_again_by_hand_is_not_written_a_second_time_by_the_next_export(practice, tmp_path):
    out = tmp_path / "batch.x12"
    assert practice.bhhub("export-837", "--out", str(out), crash_at="export:before_file").killed
    [batch] = practice.batches()
    elsewhere = tmp_path / "elsewhere.x12"
    assert practice.here("batch", "write", str(batch.id), "--out", str(elsewhere)).returncode == 0
    assert practice.here("export-837", "--out", str(tmp_path / "next.x12")).returncode == 0
    assert not out.exists() and elsewhere.read_bytes() == batch.content
    sound(practice)


def test_an_interrupted_batch_whose_name_was_taken_meanwhile_is_not_written_over_and_is_named(practice, tmp_path):
    out = tmp_path / "batch.x12"
    assert practice.bhhub("export-837", "--out", str(out), crash_at="export:before_file").killed
    [batch] = practice.batches()
    out.write_bytes(b"someone else's file")
    run = practice.bhhub("export-837", "--out", str(tmp_path / "other.x12"))
    assert run.returncode == 0 and "Traceback" not in run.stderr
    assert out.read_bytes() == b"someone else's file"
    assert f"bhhub batch write {batch.id} --out FILE" in run.stderr
    assert practice.here("batch", "write", str(batch.id), "--out", str(tmp_path / "saved.x12")).returncode == 0
    assert (tmp_path / "saved.x12").read_bytes() == batch.content


# --- two at once -------------------------------------------------------------------------------------


def test_two_exports_to_the_same_file_at_once_write_one_batch_and_refuse_the_other(practice, tmp_path):
    out = tmp_path / "batch.x12"
    a, b = practice.together(("export-837", "--out", str(out), "--max-claims", "2"),
                             ("export-837", "--out", str(out)), pause_at="export:staged")
    assert a.returncode == 0, a.stderr
    assert b.returncode == 2 and "already exists" in b.stderr and "Traceback" not in b.stderr
    [batch] = practice.batches()
    assert out.read_bytes() == batch.content and batch.claim_count == 2
    assert len([c for c in practice.claims() if c.status == "ready"]) == len(practice.ready) - 2
    sound(practice)


@pytest.fixture
def practice_with_clearinghouse(tmp_path, database_url, request):
    pytest.importorskip("pyx12")  # the sandbox validates what it receives
    practice = Practice(tmp_path, database_url, sandbox=sandbox(tmp_path, request))
    assert practice.here("intake", str(practice.exports)).returncode == 0
    return practice


def test_an_export_paused_with_its_file_staged_beside_an_exchange_bills_each_claim_once(
        practice_with_clearinghouse, tmp_path):
    practice = practice_with_clearinghouse
    out = tmp_path / "manual.x12"
    a, b = practice.together(("export-837", "--out", str(out)), ("exchange",), pause_at="export:staged")
    assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
    [batch] = practice.batches()  # the exchange found nothing left to send
    assert out.read_bytes() == batch.content
    practice.invariants(billed=True)
    sound(practice)
