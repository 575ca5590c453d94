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

from hub.errors import UsageError

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


def configure(*, verbose: bool = False, watched: bool = False, log_file: str | None = None,
              log_format: str = "text", max_bytes: int = DEFAULT_MAX_BYTES,
              backups: int = DEFAULT_BACKUPS) -> logging.Handler:
    """Set up the root logger once for this process; returns the handler it installed.

    ``watched``: a long-running service (``bhhub run``), whose cycle and file lines show by default.
    """
    if log_format not in FORMATS:
        raise UsageError(f"--log-format must be one of {', '.join(FORMATS)}, not {log_format!r}")
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
    else:
        handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    hub_level = logging.INFO if verbose else logging.WARNING
    logging.getLogger("hub").setLevel(hub_level)
    for name in ("plugins", "connectors"):
        logging.getLogger(name).setLevel(hub_level)
    if watched or verbose:
        for name in WATCHED:
            logging.getLogger(name).setLevel(logging.INFO)
    return handler
