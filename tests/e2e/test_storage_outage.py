"""With PostgreSQL gone, sends are refused with 503 (never accepted and lost); service resumes after."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from omnirelay.config import Settings
from tests.conftest import PG_ADMIN_URL
from tests.e2e.conftest import BASIC, free_port, json_of, start_server

pytestmark = pytest.mark.postgres


async def _admin(sql: str) -> None:
    engine = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def test_storage_outage_answers_503_then_recovers(pg_database: str, tmp_path: Path):
    name = pg_database.rsplit("/", 1)[1]
    settings = Settings(
        port=free_port(), data_dir=tmp_path, database_url=SecretStr(pg_database), idle_poll_s=0.05
    )
    server, task, _app = await start_server(settings)
    body = {
        "from": "8F0792F86035A9F4290821F1EE6BC06A",
        "to": "+41793026727",
        "message": {"type": "TEXT", "text": "x"},
    }
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}", timeout=15) as client:
            assert (await client.post("/facebook/1/single", json=body, headers=BASIC)).status_code == 200
            await _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await _admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
            r = await client.post("/facebook/1/single", json=body, headers=BASIC)
            assert r.status_code == 503
            assert json_of(r)["requestError"]["serviceException"]["messageId"] == "SERVICE_UNAVAILABLE"
            assert (await client.get("/ready")).status_code == 503
            await _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            for _ in range(50):
                r = await client.post("/facebook/1/single", json=body, headers=BASIC)
                if r.status_code == 200:
                    break
                await asyncio.sleep(0.1)  # polling for a condition, under a deadline
            assert r.status_code == 200
    finally:
        await _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        server.should_exit = True
        await task
