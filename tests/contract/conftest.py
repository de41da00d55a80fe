"""Fixtures shared by the store contracts (the engine and writer come from tests/conftest.py)."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.store.messages import SqlMessageStore
from omnirelay.store.writer import Writer
from tests.doubles import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(engine: AsyncEngine, writer: Writer) -> SqlMessageStore:
    return SqlMessageStore(engine, writer)
