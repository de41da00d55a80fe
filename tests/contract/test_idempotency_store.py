"""Idempotency keys (docs/api.md#idempotency) against SQLite and PostgreSQL: a key and its answer are kept
in the
transaction that commits the request's messages, so all are committed together or not at all."""

from __future__ import annotations

import asyncio
import hashlib

import msgspec
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.http.errors import Answer
from omnirelay.http.idempotency import idempotent
from omnirelay.ports import IdempotencyClaim, IdempotentRequest, KeyClaimed
from omnirelay.store.engine import make_engine
from omnirelay.store.idempotency import SqlIdempotencyStore
from omnirelay.store.messages import SqlMessageStore
from omnirelay.store.migrate import migrate
from omnirelay.store.tables import messages, metadata
from omnirelay.store.writer import Writer
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


async def _until_waiting_on_a_lock(engine: AsyncEngine, task: asyncio.Task[Answer]) -> None:
    """Until another backend waits on a lock (node B's insert of the key), or `task` ends first."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    async with asyncio.timeout(10):
        while not task.done():
            async with engine.connect() as conn:
                if (await conn.execute(query)).scalar_one():
                    return
            await asyncio.sleep(0.01)


@pytest.mark.postgres
async def test_two_nodes_given_one_key_at_once_keep_one_message_and_one_answer(pg_database: str) -> None:
    """Node A has taken the key and written its message, uncommitted, when node B (its own engine
    and writer) gets the same key with the same body: B waits for A's transaction, then replays A's
    answer. It used to insert its own message, then fail on the key's unique index: a 500."""
    engines = [make_engine(pg_database) for _ in range(2)]
    await migrate(engines[0])
    writers = [Writer(e) for e in engines]
    for w in writers:
        await w.start()
    clock = FakeClock()
    body = b'{"destinations":[{"to":{"phoneNumber":"41793026727"}}]}'
    digest = hashlib.sha256(body).hexdigest()
    try:
        async with engines[0].begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
        node_a, node_b = (SqlMessageStore(e, w) for e, w in zip(engines, writers, strict=True))

        async def b_handler(request: IdempotentRequest) -> bytes:
            await node_b.insert_messages(
                [new_message(clock, "from-b")], IdempotencyClaim(request, lambda _: b"b")
            )
            return b"b"

        async with engines[0].connect() as a:
            transaction = await a.begin()
            # node A's group commit, held open: the key taken, its message and answer written
            a_claim = IdempotencyClaim(IdempotentRequest(1, "k", digest, clock.now()), lambda _: b"a")
            assert await node_a._insert_requests(a, [([new_message(clock, "from-a")], a_claim)]) == [[True]]
            b = asyncio.create_task(
                idempotent(
                    SqlIdempotencyStore(engines[1]), clock, account_id=1, key="k", raw=body, handler=b_handler
                )
            )
            await _until_waiting_on_a_lock(engines[0], b)
            assert not b.done()
            await transaction.commit()
        answer = await b
        assert (answer.status, answer.body) == (200, b"a")  # A's answer, replayed
        async with engines[0].connect() as conn:
            ids = (await conn.execute(select(messages.c.message_id))).scalars().all()
        assert ids == ["from-a"]
    finally:
        for w in writers:
            await w.stop()
        for e in engines:
            await e.dispose()
