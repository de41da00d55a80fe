"""Where the seed request/response examples are: `OMNIRELAY_SEED_EXAMPLES`, else `shared/seeds/examples`
next to the repository (the project's workspace layout), else the workspace's absolute path, so
that a clone anywhere on a project machine finds them."""

from __future__ import annotations

import os
from pathlib import Path


def _examples() -> Path:
    configured = os.environ.get("OMNIRELAY_SEED_EXAMPLES")
    if configured:
        return Path(configured)
    beside = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "examples"
    workspace = Path("/work/shared/seeds/examples")
    return beside if beside.is_dir() or not workspace.is_dir() else workspace


EXAMPLES = _examples()
