"""The database a process works on, opened and closed as one: engine, schema, the group-commit
writer and the stores and services of the operator's data (accounts, applications, connectors
and routes, prices).

`Gateway` builds on it; the CLI's data commands use it alone, without the channels and the HTTP
stack, so that they start in a fraction of a second (docs/decisions/0009-newcomer-and-packaging.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay import sandbox_data as sandbox
from omnirelay.clock import SystemClock
from omnirelay.config import Settings
from omnirelay.services.accounts import verify_password
from omnirelay.services.connectors import SmsConnectors
from omnirelay.services.prices import PriceBook
from omnirelay.store.accounts import SqlAccountStore
from omnirelay.store.applications import SqlApplicationStore
from omnirelay.store.connectors import SqlConnectorStore
from omnirelay.store.engine import make_engine
from omnirelay.store.migrate import migrate
from omnirelay.store.prices import SqlPriceStore
from omnirelay.store.writer import Writer


@dataclass
class Storage:
    """The opened database. `writer.serve()` must run (as a task) for anything to be written."""

    engine: AsyncEngine
    writer: Writer
    clock: SystemClock
    accounts: SqlAccountStore
    applications: SqlApplicationStore
    connectors: SmsConnectors  # operator-managed SMPP connectors and routes
    prices: PriceBook  # the price list

    @classmethod
    async def open(cls, settings: Settings, clock: SystemClock | None = None) -> Storage:
        """Create the data directory, bring the schema up to date and open the writer's intake."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.effective_database_url())
        try:
            await migrate(engine)
        except BaseException:
            await engine.dispose()
            raise
        writer = Writer(engine, max_queue=settings.write_queue_max)
        writer.open()
        clock = clock or SystemClock()
        return cls(
            engine=engine,
            writer=writer,
            clock=clock,
            accounts=SqlAccountStore(engine, writer),
            applications=SqlApplicationStore(engine, writer),
            connectors=SmsConnectors(SqlConnectorStore(engine, writer), clock),
            prices=PriceBook(SqlPriceStore(engine, writer)),
        )

    async def close(self) -> None:
        """Stop the writer (what it holds is written first), then the engine's connections."""
        await self.writer.stop()
        await self.engine.dispose()


async def sandbox_login_present(accounts: SqlAccountStore) -> bool:
    """Whether the database holds the sandbox's account with its public password."""
    found = await accounts.account_by_username(sandbox.USERNAME)
    return found is not None and verify_password(sandbox.PASSWORD, found[1])


@contextlib.asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[Storage]:
    """Storage with its writer serving, for a command that works on the data and exits."""
    storage = await Storage.open(settings)
    await storage.writer.start()
    try:
        yield storage
    finally:
        await storage.close()
