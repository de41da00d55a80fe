"""A customer's HTTP endpoint for tests: records every POST; can fail the first N with 500."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.e2e.conftest import free_port


class Receiver:
    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.bodies: list[Any] = []
        self.attempts = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._arrived = asyncio.Event()
        app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])
        self._server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_config=None, lifespan="off", loop="asyncio"
            )
        )
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._task: asyncio.Task[None] | None = None

    async def _hook(self, request: Request) -> Response:
        self.attempts += 1
        if self.attempts <= self.fail_first:
            return Response(status_code=500)
        self.bodies.append(json.loads(await request.body()))
        self._arrived.set()
        return Response(status_code=200)

    @property
    def results(self) -> list[dict[str, Any]]:
        return [r for body in self.bodies for r in body["results"]]

    async def wait_for(self, count: int, timeout_s: float = 20) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout_s):
            while len(self.results) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.results

    async def __aenter__(self) -> Receiver:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:  # noqa: ASYNC110 - uvicorn has no started event to wait on
            await asyncio.sleep(0.01)  # polling for a condition, under a deadline
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
