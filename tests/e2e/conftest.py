"""A whole omnirelay server on loopback, in this test's event loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from omnirelay.bootstrap import Gateway, Simulated, build_app
from omnirelay.config import Settings

BASIC = {"Authorization": "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="}  # Aladdin / open sesame


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    base_url: str
    app: Starlette
    settings: Settings
    client: httpx.AsyncClient

    @property
    def gateway(self) -> Gateway:
        gw: Gateway = self.app.state.gateway
        return gw

    async def until_idle(self, timeout_s: float = 10.0, *simulators: Simulated) -> None:
        """Until nothing is due or under way in the gateway, its sandbox simulators and `simulators`
        (`Gateway.until_idle`): then what was going to happen has happened."""
        await self.gateway.until_idle(timeout_s, simulators=simulators)


async def start_server(settings: Settings) -> tuple[uvicorn.Server, asyncio.Task[None], Starlette]:
    app = build_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_config=None,
        loop="asyncio",
        timeout_graceful_shutdown=settings.shutdown_grace_s,
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)  # polling for a condition, under a deadline
    if task.done():
        task.result()
    assert server.started
    return server, task, app


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(host="127.0.0.1", port=free_port(), data_dir=tmp_path / "data", idle_poll_s=0.05)


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[RunningServer]:
    srv, task, app = await start_server(settings)
    base = f"http://127.0.0.1:{settings.port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        yield RunningServer(base, app, settings, client)
    srv.should_exit = True
    await task


def json_of(response: httpx.Response) -> Any:
    assert response.headers["content-type"].startswith("application/json"), response.text
    return response.json()
