"""UUID version 7 message ids (RFC 9562)."""

from __future__ import annotations

import os
import uuid

from hypothesis import given
from hypothesis import strategies as st

from omnirelay.domain.ids import uuid7


@given(st.integers(min_value=0, max_value=(1 << 48) - 1))
def test_layout_version_variant_and_time(ms: int):
    text = uuid7(ms)
    parsed = uuid.UUID(text)
    assert str(parsed) == text  # canonical form
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert parsed.int >> 80 == ms


def test_ids_sort_by_time_and_do_not_repeat():
    ids = [uuid7(1_700_000_000_000 + i // 100) for i in range(100_000)]
    assert len(set(ids)) == len(ids)
    assert [i[:13] for i in ids] == sorted(i[:13] for i in ids)  # the 48-bit time prefix orders them
    assert uuid7(2) > uuid7(1)


def test_a_forked_child_draws_other_random_bits():
    uuid7(0)  # the parent holds unread random bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, uuid7(0).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert child != uuid7(0)
