"""Structured logs: every line about a message carries its `message_id`."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import msgspec


class _Defaults(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "message_id"):
            record.message_id = "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message_id": getattr(record, "message_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return msgspec.json.encode(out).decode()


def configure(level: str = "INFO", json: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Defaults())
    if json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(message_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Third-party loggers stay quiet even at DEBUG: aiosqlite and SQLAlchemy would print statement
    # parameters, which include stored secrets (page tokens, SMPP passwords).
    for noisy in ("httpx", "httpcore", "aiohttp", "uvicorn.access", "aiosqlite", "alembic", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
