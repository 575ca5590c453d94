"""MLLP framing (HL7 v2 Minimal Lower Layer Protocol, release 1): ``<VT> message <FS><CR>``.

``FrameReader`` is fed whatever bytes the socket gave and hands back whole messages. It is
forgiving where interface engines are known to be sloppy and strict where memory is at stake:

- bytes before a start block (``<VT>``, 0x0B) are skipped, so stray line ends or garbage
  between frames cost nothing; the ``<CR>`` after ``<FS>`` is skipped the same way, so a
  sender that ends frames with ``<FS>`` alone is still answered;
- a second ``<VT>`` before the end block starts the frame over (the sender gave up on the
  first one; it was never acknowledged);
- a frame longer than ``max_bytes`` raises ``FrameTooLarge`` carrying its first bytes (enough
  for the MSH the refusal names); the connection is then closed, since where the next frame
  starts cannot be trusted.
"""

from __future__ import annotations

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c"
CARRIAGE_RETURN = b"\x0d"

HEAD_KEPT = 4096  # of an oversized frame, what is kept to read its MSH


def frame(message: bytes) -> bytes:
    """``message`` as one MLLP frame."""
    return START_BLOCK + message + END_BLOCK + CARRIAGE_RETURN


class FrameTooLarge(Exception):
    """A frame grew past the limit; ``head`` is its beginning."""

    def __init__(self, head: bytes, limit: int):
        super().__init__(f"the message is larger than the limit of {limit} bytes")
        self.head = head
        self.limit = limit


class FrameReader:
    """Turns a byte stream into MLLP messages."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._frame: bytearray | None = None  # None: between frames
        self._pending = bytearray()  # received, not yet looked at
        self.skipped = 0  # bytes outside any frame, the <CR> ending a frame not included
        self._frame_ended = False  # the next byte may be the <CR> of <FS><CR>

    @property
    def in_frame(self) -> bool:
        """True when a frame has started and not ended: a message is on its way."""
        return self._frame is not None

    def feed(self, data: bytes) -> None:
        self._pending += data

    def next_message(self) -> bytes | None:
        """The next whole message, or None until more bytes arrive. Raises FrameTooLarge."""
        while self._pending:
            if self._frame is None:
                if self._frame_ended and self._pending[:1] == CARRIAGE_RETURN:
                    del self._pending[:1]
                self._frame_ended = False
                start = self._pending.find(START_BLOCK)
                if start < 0:
                    self.skipped += len(self._pending)
                    self._pending.clear()
                    return None
                self.skipped += start
                del self._pending[: start + 1]
                self._frame = bytearray()
                continue
            end = self._pending.find(END_BLOCK)
            restart = self._pending.find(START_BLOCK, 0, end if end >= 0 else len(self._pending))
            if restart >= 0:  # a new frame began before this one ended: drop the unfinished one
                self.skipped += len(self._frame) + restart
                del self._pending[:restart]
                self._frame = None
                continue
            take = end if end >= 0 else len(self._pending)
            if len(self._frame) + take > self.max_bytes:
                head = bytes((self._frame + self._pending[:take])[:HEAD_KEPT])
                self._frame = None
                self._pending.clear()
                raise FrameTooLarge(head, self.max_bytes)
            self._frame += self._pending[:take]
            if end < 0:
                self._pending.clear()
                return None
            del self._pending[: end + 1]
            message, self._frame = bytes(self._frame), None
            self._frame_ended = True
            return message
        return None
