"""Idempotency-Key (docs/api.md#idempotency) and the per-account request rate (docs/api.md#rate-limit)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from omnirelay.config import Settings
from omnirelay.domain.errors import RateLimited
from omnirelay.services.ratelimit import RateLimiter
from tests.e2e.conftest import BASIC, RunningServer, free_port, json_of, start_server

BODY = {"destinations": [{"to": {"phoneNumber": "41793026727"}}], "sms": {"text": "once"}, "bulkId": "IDEM"}


async def test_same_key_same_body_replays_and_creates_nothing(server: RunningServer):
    headers = {**BASIC, "Idempotency-Key": "k-1"}
    first = await server.client.post("/omni/1/advanced", json=BODY, headers=headers)
    second = await server.client.post("/omni/1/advanced", json=BODY, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content and second.headers["idempotent-replayed"] == "true"
    logs = json_of(await server.client.get("/omni/1/logs?bulkId=IDEM", headers=BASIC))["results"]
    assert len(logs) == 1
    conflict = await server.client.post(
        "/omni/1/advanced", json={**BODY, "sms": {"text": "other"}}, headers=headers
    )
    assert conflict.status_code == 409
    assert json_of(conflict)["requestError"]["serviceException"]["messageId"] == "CONFLICT"
    # a different key is a different request
    assert (
        await server.client.post("/omni/1/advanced", json=BODY, headers={**BASIC, "Idempotency-Key": "k-2"})
    ).status_code == 200
    assert len(json_of(await server.client.get("/omni/1/logs?bulkId=IDEM", headers=BASIC))["results"]) == 2


async def test_concurrent_requests_with_one_key_create_one_message(server: RunningServer):
    headers = {**BASIC, "Idempotency-Key": "k-race"}
    body = {**BODY, "bulkId": "RACE"}
    answers = await asyncio.gather(
        *(server.client.post("/omni/1/advanced", json=body, headers=headers) for _ in range(10))
    )
    # the first to commit answers; the others, with or after it, replay its answer
    assert [r.status_code for r in answers] == [200] * 10
    assert len({r.content for r in answers}) == 1
    assert sum("idempotent-replayed" not in r.headers for r in answers) == 1
    logs = json_of(await server.client.get("/omni/1/logs?bulkId=RACE", headers=BASIC))["results"]
    assert len(logs) == 1


async def test_a_rejected_request_does_not_burn_the_key(server: RunningServer):
    headers = {**BASIC, "Idempotency-Key": "k-bad"}
    bad = await server.client.post("/facebook/1/single", json={"from": "x"}, headers=headers)
    assert bad.status_code == 400
    good = {
        "from": "8F0792F86035A9F4290821F1EE6BC06A",
        "to": "9c29bd43-054b-4cfe-a1d4-0b37812b4ed3",
        "message": {"type": "TEXT", "text": "hi"},
    }
    assert (await server.client.post("/facebook/1/single", json=good, headers=headers)).status_code == 200


async def test_rate_limit_answers_429_and_recovers(tmp_path: Path):
    settings = Settings(port=free_port(), data_dir=tmp_path, rate_limit_per_s=5, rate_limit_burst=5)
    srv, task, _ = await start_server(settings)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}") as client:
            codes = [(await client.get("/omni/1/reports", headers=BASIC)).status_code for _ in range(12)]
            assert codes[:5] == [200] * 5 and 429 in codes
            limited = await client.get("/omni/1/reports", headers=BASIC)
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
            assert json_of(limited)["requestError"]["serviceException"]["messageId"] == "TOO_MANY_REQUESTS"
            await asyncio.sleep(
                0.5
            )  # the bucket refills in real time (5 per second): the behaviour under test
            assert (await client.get("/omni/1/reports", headers=BASIC)).status_code == 200
    finally:
        srv.should_exit = True
        await task


def test_token_bucket():
    limiter = RateLimiter(rate_per_s=2, burst=2)
    limiter.check(1, now=0.0)
    limiter.check(1, now=0.0)
    with pytest.raises(RateLimited) as exc:
        limiter.check(1, now=0.0)
    assert exc.value.retry_after_s == pytest.approx(0.5)
    limiter.check(2, now=0.0)  # accounts do not share a bucket
    limiter.check(1, now=0.5)  # one token back after half a second
