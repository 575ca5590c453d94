"""Where the hub's log lines go, and how much of them.

Every command logs warnings only, unless ``-v``. ``bhhub run`` is meant to be watched: at its
default level it writes one line per exchange cycle and one per file sent or received (logger
``hub.run``), and ``-v`` adds the hub's own progress lines. Libraries (paramiko, APScheduler)
stay at warnings either way: at their info level they write a line per connection and per tick,
which is what made ``-v`` a flood. Lines carry ids (mailboxes, transmissions, inbox items,
claims' control numbers), never PHI.

``--log-file`` writes to a file rotated by size (``--log-max-bytes``, ``--log-backups``) instead
of standard error; ``--log-format json`` writes one JSON object per line (``time`` with its
timezone, ``level``, ``logger``, ``message``, and the line's ``fields`` when it has some).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
from datetime import datetime, timezone
from pathlib import Path

from bhhub.errors import UsageError

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUPS = 5
# The loggers a watched runner shows at its default level.
WATCHED = ("hub.run",)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ``extra={"fields": {...}}`` adds machine-readable ids."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry["fields"] = fields
        if record.exc_info:
            entry["error"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        return json.dumps(entry, default=str)


class _Shown(logging.Filter):
    """Warnings from anyone; info lines from the hub's own loggers only when asked (``-v``), and
    the watched runner's lines (``hub.run``) when the command is ``bhhub run``."""

    def __init__(self, verbose: bool, watched: bool):
        super().__init__()
        self.verbose, self.watched = verbose, watched

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        if record.levelno < logging.INFO:
            return False
        top = record.name.split(".", 1)[0]
        if (self.watched or self.verbose) and any(record.name == w or record.name.startswith(w + ".") for w in WATCHED):
            return True
        return self.verbose and top == "bhhub"


def configure(*, verbose: bool = False, watched: bool = False, log_file: str | None = None,
              log_format: str = "text", max_bytes: int = DEFAULT_MAX_BYTES,
              backups: int = DEFAULT_BACKUPS) -> logging.Handler | None:
    """Set up where this process's log lines go; returns the handler installed, if any.

    ``watched``: a long-running service (``bhhub run``), whose cycle and file lines show by
    default. Like ``logging.basicConfig``, a process that has its own logging (an application
    embedding the hub, a test runner) keeps it: without ``log_file`` no handler is added then.
    A second call replaces what the first installed.
    """
    if log_format not in FORMATS:
        raise UsageError(f"--log-format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_bhhub", False)]:
        root.removeHandler(old)
        old.close()
    root.setLevel(logging.INFO if verbose or watched else logging.WARNING)
    if log_file:
        path = Path(log_file)
        if path.is_dir():
            raise UsageError(f"--log-file {log_file} is a folder; name a file in it")
        if not path.parent.is_dir():
            raise UsageError(f"--log-file {log_file}: the folder {path.parent} does not exist")
        if max_bytes < 0 or backups < 0:
            raise UsageError("--log-max-bytes and --log-backups cannot be negative")
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    elif root.handlers:
        return None
    else:
        handler = logging.StreamHandler()
    handler._bhhub = True  # type: ignore[attr-defined]
    handler.addFilter(_Shown(verbose, watched))
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    return handler
