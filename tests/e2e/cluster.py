"""What the cluster's end-to-end tests share: a database of their own, and the environment of a
production node on it (docs/architecture.md#cluster-membership)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text

from omnirelay.store.engine import make_engine
from omnirelay.store.migrate import migrate
from omnirelay.store.tables import metadata


async def empty_database(url: str) -> None:
    """The schema, with every table emptied: the test's nodes alone on the (shared) database."""
    engine = make_engine(url)
    try:
        await migrate(engine)
        async with engine.begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
    finally:
        await engine.dispose()


def node_env(url: str, node_id: str, data_dir: Path, token: str, **settings: str) -> dict[str, str]:
    """A production node on `url`, beating every 0.2 s and stale after 1.5 s; `settings` are
    further OMNIRELAY_* values (by their name without the prefix)."""
    return {
        **os.environ,
        "OMNIRELAY_SANDBOX": "false",
        "OMNIRELAY_DATABASE_URL": url,
        "OMNIRELAY_DATA_DIR": str(data_dir),
        "OMNIRELAY_OPERATOR_TOKEN": token,
        "OMNIRELAY_GRAPH_BASE_URL": "http://127.0.0.1:9",  # nothing is sent; never off the machine
        "OMNIRELAY_NODE_ID": node_id,
        "OMNIRELAY_HEARTBEAT_S": "0.2",
        "OMNIRELAY_NODE_STALE_S": "1.5",
        **{f"OMNIRELAY_{k.upper()}": v for k, v in settings.items()},
    }
