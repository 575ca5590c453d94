"""Named fault points for crash-safety and concurrency tests: inert unless the environment names one.

``BHHUB_CRASH_AT=<name>``: reaching that point kills the process at once (SIGKILL: no cleanup,
no commit), the way a power cut or an OOM kill would. The test then runs the command again and
checks that nothing was lost or done twice (SQLite's own crash-testing approach).

``BHHUB_PAUSE_AT=<name>``: reaching that point sleeps ``BHHUB_PAUSE_SECONDS`` (default 2), so a
test can run a second command while the first is inside its transaction at that very step; with
``BHHUB_PAUSE_MARK=<file>`` the file is made when the pause begins (the test waits for it rather
than guessing how long the first command takes to get there on a busy machine).

The points, by step (each a boundary where a crash or a second process could interleave):
intake ``intake:after_store_raw``, ``intake:before_commit``; batching ``batch:after_take``,
``batch:before_commit``, ``export:staged`` (the file's bytes fsynced beside ``--out``, not committed),
``export:before_file`` (committed, not yet named ``--out``), ``export:placed`` (named, not yet
known written); sending ``transmission:after_create``,
``upload:before_put``, ``upload:after_put``; pickup ``pickup:after_download``,
``pickup:before_remote_cleanup``; applying responses and posting ``apply:before_commit``; alerts
``notify:after_send`` (sent to its targets, not yet recorded: tests/test_notify.py); taking a
mailbox out ``reroute:before_commit`` (every transmission moved or released, not committed).
"""

from __future__ import annotations

import os
import signal
import time

POINTS = (
    "intake:after_store_raw", "intake:before_commit",
    "batch:after_take", "batch:before_commit", "export:staged", "export:before_file", "export:placed",
    "transmission:after_create", "upload:before_put", "upload:after_put",
    "pickup:after_download", "pickup:before_remote_cleanup",
    "apply:before_commit",
    "notify:after_send",
    "reroute:before_commit",
)


def crash_point(name: str) -> None:
    if os.environ.get("BHHUB_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("BHHUB_PAUSE_AT") == name:
        mark = os.environ.get("BHHUB_PAUSE_MARK")
        if mark:  # tell the test the pause has begun, so its second command starts inside it
            with open(mark, "w", encoding="utf-8"):
                pass
        time.sleep(float(os.environ.get("BHHUB_PAUSE_SECONDS", "2")))
