"""Idempotency keys (docs/api.md#idempotency) against SQLite and PostgreSQL: a key and its answer are kept
in the
transaction that commits the request's messages, so all are committed together or not at all."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.ports import IdempotencyClaim, IdempotentRequest, KeyClaimed
from omnirelay.store.idempotency import SqlIdempotencyStore
from omnirelay.store.messages import SqlMessageStore
from omnirelay.store.tables import messages
from tests.contract.test_message_store import new_message
from tests.doubles import FakeClock


@pytest.fixture
def keys(engine: AsyncEngine) -> SqlIdempotencyStore:
    return SqlIdempotencyStore(engine)


def claim(clock: FakeClock, key: str = "k", account_id: int = 1, digest: str = "digest") -> IdempotencyClaim:
    # the answer shows the insert's flags, as a service's rendered result would
    return IdempotencyClaim(
        IdempotentRequest(account_id, key, digest, clock.now()),
        msgspec.json.encode,
    )


async def count_messages(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(messages))).scalar_one())


async def test_the_first_request_with_a_key_inserts_and_keeps_its_answer(
    engine: AsyncEngine, store: SqlMessageStore, keys: SqlIdempotencyStore, clock: FakeClock
) -> None:
    # queued together: one batch, one transaction, in order
    first, second = await asyncio.gather(
        store.insert_messages(
            [new_message(clock, "a", client=True), new_message(clock, "a", client=True)], claim(clock)
        ),
        store.insert_messages([new_message(clock, "b"), new_message(clock, "c")], claim(clock)),
        return_exceptions=True,
    )
    assert first == [True, False]
    assert isinstance(second, KeyClaimed)
    assert await count_messages(engine) == 1
    kept = await keys.lookup(1, "k", clock.now())
    assert kept is not None
    assert (kept.status_code, kept.response, kept.body_digest) == (200, b"[true,false]", "digest")
    with pytest.raises(KeyClaimed):  # and in a later transaction
        await store.insert_messages([new_message(clock, "d")], claim(clock))
    # another account's key of the same name is another key
    assert await store.insert_messages(
        [new_message(clock, "e", account_id=2)], claim(clock, account_id=2)
    ) == [True]
    assert await count_messages(engine) == 2


async def test_a_key_is_free_again_after_24_hours(
    engine: AsyncEngine, store: SqlMessageStore, keys: SqlIdempotencyStore, clock: FakeClock
) -> None:
    await store.insert_messages([new_message(clock, "a")], claim(clock))
    clock.advance(24 * 3600 + 1)
    assert await keys.lookup(1, "k", clock.now()) is None
    assert await store.insert_messages([new_message(clock, "b")], claim(clock, digest="other")) == [True]
    kept = await keys.lookup(1, "k", clock.now())
    assert kept is not None and kept.body_digest == "other"
    assert await count_messages(engine) == 2


async def test_a_request_whose_messages_fail_to_commit_keeps_no_key(
    engine: AsyncEngine, store: SqlMessageStore, keys: SqlIdempotencyStore, clock: FakeClock
) -> None:
    broken = msgspec.structs.replace(new_message(clock, "a"), message_id=None)  # NOT NULL: the insert fails
    with pytest.raises(IntegrityError):
        await store.insert_messages([broken], claim(clock))
    assert await keys.lookup(1, "k", clock.now()) is None
    assert await store.insert_messages([new_message(clock, "a")], claim(clock)) == [True]
    assert await count_messages(engine) == 1


async def test_an_answer_that_fails_to_render_keeps_no_messages(
    engine: AsyncEngine, store: SqlMessageStore, keys: SqlIdempotencyStore, clock: FakeClock
) -> None:
    def fails(inserted: list[bool]) -> bytes:
        raise RuntimeError("render")

    bad = IdempotencyClaim(IdempotentRequest(1, "k", "digest", clock.now()), fails)
    with pytest.raises(RuntimeError):
        await store.insert_messages([new_message(clock, "a")], bad)
    assert await keys.lookup(1, "k", clock.now()) is None
    assert await count_messages(engine) == 0
