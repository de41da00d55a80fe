"""Even at DEBUG, no log line shows a stored secret (page tokens, app secrets)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from omnirelay import logs
from omnirelay.ports import MessengerApplication
from omnirelay.store.applications import SqlApplicationStore
from omnirelay.store.engine import make_engine
from omnirelay.store.migrate import migrate
from omnirelay.store.writer import Writer

SECRET = "page-token-that-must-not-leak-4711"


async def test_debug_logs_never_show_stored_secrets(tmp_path: Path):
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage() + repr(record.args))

    logs.configure("DEBUG")
    root.addHandler(Keep())
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    writer = Writer(engine)
    try:
        await migrate(engine)
        await writer.start()
        store = SqlApplicationStore(engine, writer)
        app = MessengerApplication("A" * 32, 1, "shop", "1", SECRET, SECRET + "-app", "verify")
        await store.create_application(app, datetime.now(UTC))
        assert (await store.application("A" * 32)) == app
    finally:
        await writer.stop()
        await engine.dispose()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name in ("sqlalchemy", "aiosqlite", "httpx", "httpcore", "uvicorn.access", "alembic"):
            logging.getLogger(name).setLevel(logging.NOTSET)
    assert not [line for line in lines if SECRET in line]
