"""What the sandbox remembers across restarts: its last control number, the interchanges seen,
and what became of each claim it was sent (for the 277s that answer claim status inquiries).

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

from bhhub.errors import ConfigError

_LARGEST = 999_999_999  # ISA13 is nine digits


class SandboxState:
    """A control-number counter, the (sender, ISA13) pairs processed and each claim's outcome
    (by sender and CLM01: its latest copy wins), persisted in ``path``."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._last = 0
        self._seen: dict[str, set[str]] = {}
        self._claims: dict[str, dict[str, dict]] = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self._last = int(data.get("last_control_number", 0))
                self._seen = {sender: set(numbers) for sender, numbers in data.get("interchanges", {}).items()}
                self._claims = {sender: dict(claims) for sender, claims in data.get("claims", {}).items()}
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

    def record_claims(self, sender_id: str, outcomes: dict[str, dict]) -> None:
        """What became of claims (CLM01 -> outcome: ids, codes, amounts as text); saved at once."""
        if not outcomes:
            return
        with self._lock:
            self._claims.setdefault(sender_id, {}).update(outcomes)
            self._save()

    def claim(self, sender_id: str, patient_control_number: str) -> dict | None:
        """The outcome recorded for a claim this sender sent, or None when it never arrived."""
        with self._lock:
            found = self._claims.get(sender_id, {}).get(patient_control_number)
            return dict(found) if found is not None else None

    def _save(self) -> None:
        data = {"last_control_number": self._last,
                "interchanges": {sender: sorted(numbers) for sender, numbers in sorted(self._seen.items())},
                "claims": {sender: dict(sorted(claims.items())) for sender, claims in sorted(self._claims.items())}}
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
