"""Named crash points for crash-safety tests: inert unless BHHUB_CRASH_AT names one.

A test sets ``BHHUB_CRASH_AT=<name>`` in a child process; reaching that point kills the process
at once (SIGKILL: no cleanup, no commit), the way a power cut or an OOM kill would. The test then
restarts and checks that nothing was lost or done twice (SQLite's own crash-testing approach).
"""

from __future__ import annotations

import os
import signal


def crash_point(name: str) -> None:
    if os.environ.get("BHHUB_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
