"""The `omnirelay` command: serve, config, db, accounts, sandbox."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from omnirelay.config import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="omnirelay messaging gateway")
config_app = typer.Typer(no_args_is_help=True, help="Effective settings")
db_app = typer.Typer(no_args_is_help=True, help="Database schema")
accounts_app = typer.Typer(no_args_is_help=True, help="Accounts and API keys")
sandbox_app = typer.Typer(no_args_is_help=True, help="Channel simulators")
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")
app.add_typer(sandbox_app, name="sandbox")
console = Console()


def _settings(**overrides: object) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="SQLite file and sandbox state")] = None,
    sandbox: Annotated[bool | None, typer.Option("--sandbox/--no-sandbox", help="simulated channels")] = None,
) -> None:
    """Start the gateway (sandbox mode on SQLite unless configured otherwise)."""
    import uvicorn

    from omnirelay import logs
    from omnirelay.bootstrap import build_app

    settings = _settings(host=host, port=port, data_dir=data_dir, sandbox=sandbox)
    logs.configure(settings.log_level, settings.log_json)
    config = uvicorn.Config(
        build_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
    )
    uvicorn.Server(config).run()


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings, secrets masked."""
    table = Table("setting", "value")
    for key, value in _settings().masked().items():
        table.add_row(key, str(value))
    console.print(table)


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply schema migrations."""
    from omnirelay.bootstrap import Gateway

    async def run() -> None:
        gateway = Gateway(_settings())
        await gateway.open_storage()
        await gateway.stop()

    asyncio.run(run())
    console.print("schema up to date")


@accounts_app.command("create")
def accounts_create(
    username: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Create an account."""
    from omnirelay.bootstrap import Gateway
    from omnirelay.services.accounts import hash_password

    async def run() -> int:
        gateway = Gateway(_settings())
        await gateway.open_storage()
        try:
            assert gateway.accounts is not None
            return await gateway.accounts.create_account(
                username, hash_password(password), gateway.clock.now()
            )
        finally:
            await gateway.stop()

    console.print(f"account {username} created (id {asyncio.run(run())})")


@accounts_app.command("api-key")
def accounts_api_key(
    username: str, name: Annotated[str, typer.Option(help="a label for the key")] = "default"
) -> None:
    """Create an API key for an account; it is shown once and stored only as a digest."""
    from omnirelay.bootstrap import Gateway
    from omnirelay.services.accounts import digest, new_api_key

    async def run() -> str:
        gateway = Gateway(_settings())
        await gateway.open_storage()
        try:
            assert gateway.accounts is not None
            found = await gateway.accounts.account_by_username(username)
            if found is None:
                raise typer.BadParameter(f"no account {username}")
            key = new_api_key()
            await gateway.accounts.add_api_key(found[0], name, digest(key), gateway.clock.now())
            return key
        finally:
            await gateway.stop()

    key = asyncio.run(run())
    console.print(f"Authorization: App {key}")


def main() -> None:
    app()
