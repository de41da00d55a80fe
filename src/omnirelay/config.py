"""Process settings: one typed `Settings`, read once at start from OMNIRELAY_* variables.

Operational data (accounts, applications, scenarios, connectors, prices) lives in the database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_OPERATOR_TOKEN = "sandbox-operator-token"  # noqa: S105 - the sandbox's public default
MIN_OPERATOR_TOKEN = 16
SANDBOX_SQLITE = "sandbox.sqlite3"
PRODUCTION_SQLITE = "omnirelay.sqlite3"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OMNIRELAY_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("./data")
    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL; default: a SQLite file in data_dir, sandbox.sqlite3 in sandbox mode "
        "and omnirelay.sqlite3 in production",
    )
    sandbox: bool = Field(default=True, description="run the channel simulators and provision demo data")
    operator_token: SecretStr = SecretStr(DEFAULT_OPERATOR_TOKEN)
    config_poll_s: float = Field(
        default=5.0, description="how often connectors and prices changed elsewhere are picked up"
    )
    public_url: str | None = Field(default=None, description="base URL Meta and simulators call back")
    # On shutdown uvicorn waits for the requests in progress, then the gateway stops. Unbounded, it
    # waited as long as any connection kept a request open (headers sent, body never, say).
    shutdown_grace_s: int = Field(
        default=10,
        ge=0,
        description="on SIGINT/SIGTERM, seconds running requests get before they are cancelled, "
        "then seconds the sends under way get to finish and write their outcomes",
    )
    write_queue_max: int = Field(
        default=20_000,
        ge=0,
        description="writes waiting for storage beyond which sends are refused with 503 and Retry-After",
    )

    max_body_bytes: int = 1024 * 1024
    rate_limit_per_s: float = Field(default=0.0, description="per-account request rate; 0 = unlimited")
    rate_limit_burst: int = 1000
    session_idle_s: int = 3600
    auth_cache_s: float = 60.0

    node_id: str | None = None
    workers: int = Field(
        default=1, ge=1, le=64, description="node processes `omnirelay serve` runs on this host (PostgreSQL)"
    )
    heartbeat_s: float = Field(
        default=2.0, gt=0.0, description="how often a node records that it is alive (database time)"
    )
    node_stale_s: float = Field(
        default=10.0, gt=0.0, description="a node whose heartbeat is older than this is listed STALE"
    )
    lease_s: float = Field(
        default=60.0, gt=1.0, description="how long a claim holds a message (database time)"
    )
    max_claims: int = Field(
        default=5, ge=1, description="claims without an outcome written after which a message is parked"
    )
    dispatch_batch: int = 500
    dispatch_concurrency: int = 1000
    idle_poll_s: float = 0.25

    report_retention_h: float = 48.0
    log_retention_days: float = 30.0
    housekeeping_interval_s: float = 300.0
    push_retry_period_h: float = 24.0
    push_retry_base_s: float = Field(default=60.0, description="first retry after base + step × n²")
    push_retry_step_s: float = 60.0

    graph_base_url: str = "https://graph.facebook.com"
    graph_api_version: str = "v25.0"
    graph_timeout_s: float = 10.0
    retry_base_s: float = Field(default=1.0, description="first retry of a transient failure; doubles")

    log_level: str = "INFO"
    log_json: bool = False

    def production_problems(self) -> list[str]:
        """docs/api.md#production-mode: why production mode (sandbox off) must refuse to start; empty when
        it may."""
        token = self.operator_token.get_secret_value()
        if token == DEFAULT_OPERATOR_TOKEN:
            return ["OMNIRELAY_OPERATOR_TOKEN is the sandbox default; set a secret of your own"]
        if len(token) < MIN_OPERATOR_TOKEN:
            return [f"OMNIRELAY_OPERATOR_TOKEN must be at least {MIN_OPERATOR_TOKEN} characters"]
        return []

    def workers_problem(self) -> str | None:
        """Why `workers` > 1 cannot run here (docs/architecture.md#several-nodes-on-one-host);
        None when it can."""
        if self.workers == 1:
            return None
        if self.sandbox:
            return "--workers needs production mode: the sandbox's simulators live in one process"
        if self.effective_database_url().startswith("sqlite"):
            return (
                "--workers needs PostgreSQL (OMNIRELAY_DATABASE_URL=postgresql+asyncpg://...): SQLite takes "
                "one writer at a time, so one process serves it fully"
            )
        return None

    def effective_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        # The sandbox's demo data (a public login) never lands in the file production serves
        # (docs/decisions/0009-newcomer-and-packaging.md).
        name = SANDBOX_SQLITE if self.sandbox else PRODUCTION_SQLITE
        return f"sqlite+aiosqlite:///{(self.data_dir / name).resolve()}"

    def masked(self) -> dict[str, Any]:
        """The effective settings with every secret masked, for `omnirelay config show`."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                out[name] = "**********"
            elif isinstance(value, Path):
                out[name] = str(value)
            else:
                out[name] = value
        url = self.effective_database_url()
        out["effective_database_url"] = _mask_url_password(url)
        return out


def _mask_url_password(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":**********@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
