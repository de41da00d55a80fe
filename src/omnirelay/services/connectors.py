"""SMPP connectors and SMS routes managed by the operator (docs/channels.md#routes-and-connectors), applied
without a restart.

Every change is validated, stored, then applied: `reload()` reads the stored configuration and,
when it differs from what was last applied, hands it to `apply` (bootstrap reconfigures the SMS
sender with it). `run()` repeats `reload()` every `poll_s`, so a change made through the CLI
against a running server, or on another node, is picked up within that period.

Rules: a route must name an existing connector; a connector that routes still name cannot be
removed (remove or re-point the routes first), so traffic is never silently left without a route.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from omnirelay.domain.connectors import SmppConnector, SmsRoute, check_prefix
from omnirelay.domain.errors import Conflict, NotFound, ValidationFailed
from omnirelay.ports import Clock, ConnectorStore

log = logging.getLogger(__name__)

Apply = Callable[[list[SmppConnector], list[SmsRoute]], Awaitable[None]]
# fields an update may change (the name is the key)
UPDATABLE = frozenset(f.name for f in dataclasses.fields(SmppConnector)) - {"name"}


class SmsConnectors:
    def __init__(self, store: ConnectorStore, clock: Clock, apply: Apply | None = None) -> None:
        self._store = store
        self._clock = clock
        self._apply = apply
        self._applied: tuple[list[SmppConnector], list[SmsRoute]] | None = None
        self._lock = asyncio.Lock()

    # -- connectors -----------------------------------------------------------------------------

    async def list_connectors(self) -> list[SmppConnector]:
        return await self._store.connectors()

    async def get(self, name: str) -> SmppConnector:
        for connector in await self._store.connectors():
            if connector.name == name:
                return connector
        raise NotFound("Connector not found")

    async def add(self, connector: SmppConnector) -> SmppConnector:
        connector.check()
        if not await self._store.add_connector(connector, self._clock.now()):
            raise Conflict(f"connector {connector.name} already exists")
        await self.reload()
        return connector

    async def update(self, name: str, changes: Mapping[str, Any]) -> SmppConnector:
        """Fields left out keep their values (the password too, which is write-only)."""
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise ValidationFailed(field=sorted(unknown)[0], problem="cannot be changed")
        current = await self.get(name)
        updated = dataclasses.replace(current, **changes).check()
        if not await self._store.replace_connector(updated):
            raise NotFound("Connector not found")
        await self.reload()
        return updated

    async def remove(self, name: str) -> None:
        used = sorted(r.prefix or "default" for r in await self._store.routes() if r.connector == name)
        if used:
            raise Conflict(f"connector {name} is used by routes {', '.join(used)}; remove them first")
        if not await self._store.delete_connector(name):
            raise NotFound("Connector not found")
        await self.reload()

    # -- routes ---------------------------------------------------------------------------------

    async def routes(self) -> list[SmsRoute]:
        return await self._store.routes()

    async def set_route(self, prefix: str, connector: str) -> SmsRoute:
        route = SmsRoute(check_prefix(prefix), connector)
        if connector not in {c.name for c in await self._store.connectors()}:
            raise ValidationFailed(field="connector", problem=f"no connector named {connector}")
        await self._store.set_route(route)
        await self.reload()
        return route

    async def remove_route(self, prefix: str) -> None:
        if not await self._store.delete_route(check_prefix(prefix)):
            raise NotFound("Route not found")
        await self.reload()

    # -- applying -------------------------------------------------------------------------------

    async def reload(self) -> bool:
        """Apply the stored configuration if it changed since the last apply; True if applied."""
        async with self._lock:
            current = (await self._store.connectors(), await self._store.routes())
            if current == self._applied or self._apply is None:
                return False
            connectors, routes = current
            names = {c.name for c in connectors}
            dangling = [r for r in routes if r.connector not in names]  # edited behind our back
            if dangling:
                log.warning("ignoring routes to unknown connectors: %s", dangling)
                routes = [r for r in routes if r.connector in names]
            await self._apply(connectors, routes)
            self._applied = current
            log.info(
                "SMS configuration applied: connectors %s, %d routes",
                [c.name for c in connectors],
                len(routes),
            )
            return True

    async def run(self, poll_s: float) -> None:
        while True:
            await asyncio.sleep(poll_s)
            try:
                await self.reload()
            except Exception:
                log.exception("reloading SMS connectors failed; keeping the running configuration")
