"""The operator's console sessions (docs/console.md#sign-in-and-sessions) are shared by every node
on the database, and end after the idle time or at sign-out, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.domain.errors import Unauthorized
from omnirelay.services.accounts import Authenticator
from omnirelay.services.console_sessions import OPERATOR, ConsoleSessions
from omnirelay.services.operator import OperatorGuard
from omnirelay.store.accounts import SqlAccountStore
from omnirelay.store.operator_sessions import SqlOperatorSessions
from omnirelay.store.writer import Writer
from tests.doubles import FakeClock

TOKEN = "console-operator-token-0123456789"


def node(engine: AsyncEngine, writer: Writer, clock: FakeClock) -> ConsoleSessions:
    """One node's console sessions: its own objects, the shared database."""
    auth = Authenticator(SqlAccountStore(engine, writer), clock)
    return ConsoleSessions(auth, OperatorGuard(TOKEN), SqlOperatorSessions(engine, writer), clock, idle_s=600)


async def test_an_operator_session_opened_on_one_node_holds_on_another(
    engine: AsyncEngine, writer: Writer, clock: FakeClock
) -> None:
    a, b = node(engine, writer, clock), node(engine, writer, clock)
    with pytest.raises(Unauthorized):
        await a.sign_in_operator("not the token")
    cookie = await a.sign_in_operator(TOKEN)
    assert await b.principal(cookie) == OPERATOR
    clock.advance(500)
    assert await a.principal(cookie) == OPERATOR  # used: the idle time starts again
    clock.advance(500)
    assert await b.principal(cookie) == OPERATOR
    await b.sign_out(cookie)
    assert await a.principal(cookie) is None  # signed out on b: ended on a too
    idle = await a.sign_in_operator(TOKEN)
    clock.advance(601)
    assert await b.principal(idle) is None  # idle too long
    assert await b.principal("o.made-up") is None
