"""What a worker has under way, as `Gateway.until_idle` reads it between two looks at storage.

Two plain counters, nothing waits on them: how many rounds are under way, and how many times a
round took work in hand or ended having had some. Two equal readings with nothing under way in
either mean that no round did anything in between (a round that finds nothing changes nothing).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


class Activity:
    __slots__ = ("_changes", "_under_way")

    def __init__(self) -> None:
        self._under_way = 0
        self._changes = 0

    @property
    def reading(self) -> tuple[bool, int]:
        """Whether a round is under way, and the count of changes so far."""
        return self._under_way > 0, self._changes

    @contextlib.contextmanager
    def round(self) -> Iterator[Callable[[], None]]:
        """One round, under way until it ends; call what it yields once the round has work in hand
        (claimed or read), and its end is counted as a change as well."""
        found = False

        def took_work() -> None:
            nonlocal found
            found = True
            self._changes += 1

        self._under_way += 1
        try:
            yield took_work
        finally:
            self._under_way -= 1
            if found:
                self._changes += 1
