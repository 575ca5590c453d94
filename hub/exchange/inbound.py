"""Picking up a mailbox's response files: stable first, committed locally before removed remotely.

A file is taken only when it has stopped changing: unchanged in size and mtime across two
listings, or last modified longer ago than the profile's ``stable_seconds``. It is downloaded to
the spool, stored raw in the inbox (sha256) and processed, and only after that commit is it
deleted or archived on the server. If the remote delete fails, the next poll downloads it again
and the inbox recognises the duplicate: nothing is applied twice, nothing is lost.

Which files are taken is the profile's ``pickup.patterns`` (TA1, 999, 277CA and 835 for claims;
271 and 277 answering eligibility and claim status inquiries): the inbox tells them apart by
content, never by name.

A file the server lists but cannot serve (refused, gone, unreadable, changing while read, larger
than the transport's limit: the transport raises ``RemoteFileError``) is skipped and the other
files are taken. It is one alert per file (``remote_file_skipped:MAILBOX:NAME``), counted at each
try and cleared once the file is picked up or leaves the server; it is tried again every
exchange. A failed connection is not a file's fault: it stops the pickup, as before.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import posixpath
import time
from dataclasses import dataclass, field

from sqlalchemy import select

from bhhub.intake import inbox as intake
from bhhub.runtime.crashpoints import crash_point
from bhhub.errors import HubError, RemoteFileError
from bhhub.exchange.alerts import clear_alert, raise_alert
from bhhub.store import schema
from bhhub.store.schema import utcnow

log = logging.getLogger(__name__)
SKIPPED = "remote_file_skipped"
_COLUMN_MAX = 2 ** 31 - 1  # remote_files_seen.size and .mtime are 32-bit: a listing may say anything


@dataclass(frozen=True)
class PickedUp:
    name: str
    outcome: str  # imported, duplicate, quarantined, pending, deferred (not stable yet), skipped (not fetched)
    inbox_item_id: int | None = None
    reason: str | None = None  # why it was quarantined, or what it did
    updated: dict = field(default_factory=dict)  # patient control number -> status it set


def pick_up(hub, mailbox, connection) -> list[PickedUp]:
    profile = mailbox.profile
    listing = [f for f in connection.listdir(profile.inbound_dir) if _wanted(f.name, profile.patterns)]
    # In the order of the profile's patterns (TA1 and 999 before 277CA before 835), then oldest
    # first: a claim's acknowledgment is applied before its adjudication.
    listing.sort(key=lambda f: (_rank(f.name, profile.patterns), f.mtime, f.name))
    _clear_skips_of_files_gone(hub, mailbox.name, {f.name for f in listing})
    results = []
    for remote in listing:
        if not _stable(hub, mailbox.name, remote, profile.stable_seconds):
            results.append(PickedUp(remote.name, "deferred", reason="still changing"))
            continue
        try:
            results.append(_take(hub, mailbox, connection, remote))
        except RemoteFileError as exc:  # this file's trouble only: the connection goes on
            results.append(_skip(hub, mailbox.name, remote.name, exc))
    return results


def file_alert_key(kind: str, mailbox_name: str, name: str) -> str:
    """``KIND:MAILBOX:FILE``, the key of an alert about one remote file; a name too long for the
    key's 200 characters is cut and told apart by its hash."""
    key = f"{kind}:{mailbox_name}:{name}"
    return key if len(key) <= 200 else f"{key[:150]}~{hashlib.sha256(name.encode()).hexdigest()[:16]}"


def _skip(hub, mailbox_name: str, name: str, exc: RemoteFileError) -> PickedUp:
    with hub.store.session() as session:
        new = raise_alert(session, file_alert_key(SKIPPED, mailbox_name, name), SKIPPED,
                          f"mailbox {mailbox_name}: {name} is on the server but could not be fetched ({exc}); the "
                          f"other files are still picked up, and it is tried again at every exchange")
        session.commit()
    # the file's name, never its content; loud once, then quiet while the alert stays open
    log.log(logging.WARNING if new else logging.INFO, "mailbox %s: %s skipped, not fetched: %s", mailbox_name,
            name, exc)
    return PickedUp(name, "skipped", reason=f"not fetched ({exc}); tried again at the next exchange")


def _clear_skips_of_files_gone(hub, mailbox_name: str, listed: set[str]) -> None:
    """A skipped file that is no longer on the server is no longer an incident."""
    prefix = f"{SKIPPED}:{mailbox_name}:"
    still_there = {file_alert_key(SKIPPED, mailbox_name, name) for name in listed}
    with hub.store.session() as session:
        open_keys = session.scalars(select(schema.Alert.key).where(
            schema.Alert.kind == SKIPPED, schema.Alert.cleared_at.is_(None),
            schema.Alert.key.startswith(prefix, autoescape=True))).all()
        gone = [key for key in open_keys if key not in still_there]
        for key in gone:
            clear_alert(session, key)
        if gone:
            session.commit()


def _wanted(name: str, patterns: tuple[str, ...]) -> bool:
    lowered = name.lower()
    return not name.startswith(".") and any(fnmatch.fnmatch(lowered, p.lower()) for p in patterns)


def _rank(name: str, patterns: tuple[str, ...]) -> int:
    lowered = name.lower()
    return next(i for i, p in enumerate(patterns) if fnmatch.fnmatch(lowered, p.lower()))


def _stable(hub, mailbox_name: str, remote, stable_seconds: int) -> bool:
    """Record this listing; True when the file may be taken now."""
    # What the server lists is kept within the columns' range (a hostile or broken listing may
    # say 3 GB or the year 2106); a file that large is refused by the transport anyway.
    size, mtime = (max(0, min(int(v), _COLUMN_MAX)) for v in (remote.size, remote.mtime))
    with hub.store.session() as session:
        seen = session.scalar(select(schema.RemoteFileSeen).where(
            schema.RemoteFileSeen.mailbox == mailbox_name, schema.RemoteFileSeen.name == remote.name))
        unchanged = seen is not None and seen.size == size and seen.mtime == mtime
        if seen is None:
            seen = schema.RemoteFileSeen(mailbox=mailbox_name, name=remote.name, size=size, mtime=mtime)
            session.add(seen)
        else:
            seen.size, seen.mtime, seen.last_seen_at = size, mtime, utcnow()
        session.commit()
    old_enough = remote.mtime <= time.time() - stable_seconds
    return unchanged or old_enough


def _take(hub, mailbox, connection, remote) -> PickedUp:
    profile = mailbox.profile
    path = posixpath.join(profile.inbound_dir, remote.name)
    spool = hub.settings.home / "spool" / mailbox.name
    spool.mkdir(parents=True, exist_ok=True)
    downloaded = connection.download(path, spool)
    crash_point("pickup:after_download")
    try:
        result = intake.receive(hub, downloaded.path.read_bytes(), f"{mailbox.name}:{remote.name}")
    finally:
        downloaded.path.unlink(missing_ok=True)
    with hub.store.session() as session:
        seen = session.scalar(select(schema.RemoteFileSeen).where(
            schema.RemoteFileSeen.mailbox == mailbox.name, schema.RemoteFileSeen.name == remote.name))
        if seen is not None:
            seen.taken_at, seen.inbox_item_id = utcnow(), result.item_id
        clear_alert(session, file_alert_key(SKIPPED, mailbox.name, remote.name))  # skipped before: fetched now
        session.commit()
    # The content is committed locally: only now may the server's copy go.
    crash_point("pickup:before_remote_cleanup")
    _clean_up(hub, mailbox, connection, path, remote.name)
    log.info("mailbox %s: %s picked up as inbox item %s (%s)", mailbox.name, remote.name, result.item_id,
             result.outcome)
    return PickedUp(remote.name, result.outcome, result.item_id, result.reason or result.summary,
                    dict(result.updated))


def _clean_up(hub, mailbox, connection, path: str, name: str) -> None:
    profile = mailbox.profile
    key = file_alert_key("remote_cleanup", mailbox.name, name)
    try:
        if profile.pickup_after == "delete":
            connection.remove(path)
        elif profile.pickup_after == "archive":
            connection.makedirs(profile.archive_dir)
            target = posixpath.join(profile.archive_dir, name)
            if connection.stat(target) is not None:
                target = posixpath.join(profile.archive_dir, f"{name}.{int(time.time())}")
            connection.rename(path, target)
    except HubError as exc:
        with hub.store.session() as session:
            raise_alert(session, key, "remote_cleanup_failed",
                        f"mailbox {mailbox.name}: picked up {name} but could not {profile.pickup_after} it on the "
                        f"server ({exc}); it will be downloaded again and recognised as a duplicate")
            session.commit()
        return
    with hub.store.session() as session:
        if clear_alert(session, key):
            session.commit()
