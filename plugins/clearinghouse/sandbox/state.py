"""What the sandbox remembers across restarts: its last control number and the interchanges seen.

Kept in one small JSON file, replaced atomically (written aside, fsync'd, renamed), so a crash
leaves the old state or the new one. A restarted sandbox therefore never reuses a control
number of its own, and still rejects a second copy of an interchange it already answered
(TA1 note 025), as a real clearinghouse's duplicate check does (reliability notes, section 2).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

from hub.errors import ConfigError

_LARGEST = 999_999_999  # ISA13 is nine digits


class SandboxState:
    """A control-number counter and the (sender, ISA13) pairs processed, persisted in ``path``."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._last = 0
        self._seen: dict[str, set[str]] = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self._last = int(data.get("last_control_number", 0))
                self._seen = {sender: set(numbers) for sender, numbers in data.get("interchanges", {}).items()}
            except (OSError, ValueError, TypeError, AttributeError) as exc:
                raise ConfigError(f"the sandbox state {self.path} is unreadable ({type(exc).__name__}); "
                                  f"move it away to start afresh") from exc

    @property
    def last_control_number(self) -> int:
        return self._last

    def next_control_number(self) -> int:
        """A control number never handed out before by this sandbox; saved before it is returned."""
        with self._lock:
            self._last = self._last % _LARGEST + 1
            self._save()
            return self._last

    def seen(self, sender_id: str, control_number: str) -> bool:
        with self._lock:
            return control_number in self._seen.get(sender_id, set())

    def remember(self, sender_id: str, control_number: str) -> None:
        with self._lock:
            self._seen.setdefault(sender_id, set()).add(control_number)
            self._save()

    def _save(self) -> None:
        data = {"last_control_number": self._last,
                "interchanges": {sender: sorted(numbers) for sender, numbers in sorted(self._seen.items())}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".state-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=1)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
