"""Message ids: UUID version 7 (RFC 9562), time-ordered.

The API's message ids are opaque strings; the ones omnirelay makes up are UUIDs. Version 7 puts the
creation time (Unix milliseconds) in the first 48 bits and 74 random bits after it, so ids made one
after another sort close together: the `(account_id, message_id)` unique index takes them near its
right edge instead of at random pages of a large table. The random bits come from `os.urandom`,
drawn 8 KiB at a time (one system call per ~800 ids, where `uuid.uuid4` makes one per id).
The buffer is not locked: ids are made on the event loop's thread (the send services), and two
threads drawing at once could take the same bytes.
"""

from __future__ import annotations

import os

_RANDOM_BYTES = 10  # 12 bits rand_a + 62 bits rand_b, from 80 drawn
_DRAW = 8192 - 8192 % _RANDOM_BYTES
_VERSION_7 = 0x7 << 76
_VARIANT = 0b10 << 62
_MS_MASK = (1 << 48) - 1
_RAND_B_MASK = (1 << 62) - 1


class _Randomness:
    __slots__ = ("buffer", "offset")

    def __init__(self) -> None:
        self.buffer = b""
        self.offset = 0

    def take(self) -> int:
        if self.offset >= len(self.buffer):
            self.buffer, self.offset = os.urandom(_DRAW), 0
        start = self.offset
        self.offset = start + _RANDOM_BYTES
        return int.from_bytes(self.buffer[start : start + _RANDOM_BYTES])


_random = _Randomness()


def uuid7(unix_ms: int) -> str:
    """A UUID version 7 for this moment, in the canonical 8-4-4-4-12 lower-case form."""
    r = _random.take()
    value = (unix_ms & _MS_MASK) << 80 | _VERSION_7 | (r >> 68) << 64 | _VARIANT | r & _RAND_B_MASK
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def reset_after_fork() -> None:
    """A forked child must not reuse its parent's unread random bytes."""
    _random.buffer, _random.offset = b"", 0


os.register_at_fork(after_in_child=reset_after_fork)
