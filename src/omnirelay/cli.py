"""The `omnirelay` command: serve, config, db, accounts, sandbox."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from omnirelay.config import Settings

if TYPE_CHECKING:
    from omnirelay.bootstrap import Gateway
    from omnirelay.services.connectors import SmsConnectors
    from omnirelay.services.prices import PriceBook

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
errors = Console(stderr=True)


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
    from omnirelay import logs
    from omnirelay.bootstrap import build_app, run_server

    settings = _settings(host=host, port=port, data_dir=data_dir, sandbox=sandbox)
    problems = [] if settings.sandbox else settings.production_problems()
    if problems:  # production refuses default secrets: docs/api.md#production-mode
        for problem in problems:
            errors.print(f"refusing to start in production mode: {problem}")
        raise typer.Exit(2)
    logs.configure(settings.log_level, settings.log_json)
    run_server(build_app(settings), settings.host, settings.port, grace_s=settings.shutdown_grace_s)


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


# --- operator data: SMPP connectors, SMS routes, prices (docs/api.md#operator-api) --------------------------
# These write to the database; a running server picks changes up within `config_poll_s`.

connectors_app = typer.Typer(no_args_is_help=True, help="SMPP connectors (SMSC binds)")
routes_app = typer.Typer(no_args_is_help=True, help="SMS routes: destination prefix -> connector")
prices_app = typer.Typer(no_args_is_help=True, help="Price list per channel and country")
app.add_typer(connectors_app, name="connectors")
app.add_typer(routes_app, name="routes")
app.add_typer(prices_app, name="prices")

T = TypeVar("T")


def _operate(action: Callable[[Gateway], Awaitable[T]]) -> T:
    """Run `action` against the configured database; request errors exit 1 with their message."""
    from omnirelay.bootstrap import Gateway
    from omnirelay.domain.errors import RequestError

    async def run() -> T:
        gateway = Gateway(_settings())
        await gateway.open_storage()
        try:
            return await action(gateway)
        finally:
            await gateway.stop()

    try:
        return asyncio.run(run())
    except RequestError as exc:
        errors.print(f"error: {exc.message}")
        raise typer.Exit(1) from None


def _sms(gateway: Gateway) -> SmsConnectors:
    assert gateway.connectors is not None
    return gateway.connectors


@connectors_app.command("add")
def connectors_add(  # noqa: PLR0917 - a Typer command takes its options as parameters
    name: str,
    host: Annotated[str, typer.Option(help="SMSC host")],
    port: Annotated[int, typer.Option(help="SMSC port")],
    system_id: Annotated[str, typer.Option(help="bind system_id (up to 15 characters)")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, help="bind password (up to 8 characters)")
    ],
    system_type: Annotated[str, typer.Option(help="bind system_type")] = "",
    tls: Annotated[bool, typer.Option("--tls/--no-tls", help="connect over TLS")] = False,
    throughput: Annotated[float, typer.Option(help="submit_sm per second; 0 = unlimited")] = 0.0,
    window: Annotated[int, typer.Option(help="submit_sm outstanding without a response")] = 10,
    enquire_link_s: Annotated[float, typer.Option(help="keep-alive after this much idle time")] = 30.0,
    reconnect_min_s: Annotated[float, typer.Option(help="first reconnect delay")] = 1.0,
    reconnect_max_s: Annotated[float, typer.Option(help="longest reconnect delay")] = 60.0,
    dest_ton: Annotated[int, typer.Option(help="dest_addr_ton")] = 1,
    dest_npi: Annotated[int, typer.Option(help="dest_addr_npi")] = 1,
) -> None:
    """Add an SMPP connector (one bind_transceiver to one SMSC account)."""
    from omnirelay.domain.connectors import SmppConnector

    connector = SmppConnector(
        name=name,
        host=host,
        port=port,
        system_id=system_id,
        password=password,
        system_type=system_type,
        tls=tls,
        throughput_per_s=throughput,
        window=window,
        enquire_link_s=enquire_link_s,
        reconnect_min_s=reconnect_min_s,
        reconnect_max_s=reconnect_max_s,
        dest_addr_ton=dest_ton,
        dest_addr_npi=dest_npi,
    )
    _operate(lambda gw: _sms(gw).add(connector))
    console.print(f"connector {name} added")


@connectors_app.command("list")
def connectors_list() -> None:
    """List connectors (passwords masked)."""
    found = _operate(lambda gw: _sms(gw).list_connectors())
    table = Table("name", "host", "port", "system_id", "password", "tls", "throughput/s", "window")
    for c in found:
        table.add_row(
            c.name,
            c.host,
            str(c.port),
            c.system_id,
            "********" if c.password else "",
            "yes" if c.tls else "no",
            f"{c.throughput_per_s:g}",
            str(c.window),
        )
    console.print(table)


@connectors_app.command("remove")
def connectors_remove(name: str) -> None:
    """Remove a connector (routes that name it must be removed first)."""
    _operate(lambda gw: _sms(gw).remove(name))
    console.print(f"connector {name} removed")


@routes_app.command("add")
def routes_add(prefix: str, connector: str) -> None:
    """Send destinations starting with PREFIX (digits; `default` for all others) to CONNECTOR."""
    route = _operate(lambda gw: _sms(gw).set_route(prefix, connector))
    console.print(f"route {route.prefix or 'default'} -> {route.connector}")


@routes_app.command("list")
def routes_list() -> None:
    """List routes (the longest matching prefix wins)."""
    table = Table("prefix", "connector")
    for route in _operate(lambda gw: _sms(gw).routes()):
        table.add_row(route.prefix or "default", route.connector)
    console.print(table)


@routes_app.command("remove")
def routes_remove(prefix: str) -> None:
    """Remove the route for PREFIX (`default` for the default route)."""
    _operate(lambda gw: _sms(gw).remove_route(prefix))
    console.print(f"route {prefix} removed")


def _price_book(gateway: Gateway) -> PriceBook:
    assert gateway.prices is not None
    return gateway.prices


@prices_app.command("set")
def prices_set(
    channel: str,
    price: Annotated[float, typer.Argument(help="price per message (per segment for SMS)")],
    country: Annotated[str, typer.Option(help="ISO country such as CH; omitted: the channel default")] = "",
    currency: Annotated[str, typer.Option(help="ISO 4217 currency")] = "EUR",
) -> None:
    """Set the price per message of CHANNEL (for one country, or the default)."""
    saved = _operate(lambda gw: _price_book(gw).set(channel, country, price, currency))
    console.print(
        f"{saved.channel} {saved.country or 'default'}: {saved.price_per_message:g} {saved.currency}"
    )


@prices_app.command("list")
def prices_list() -> None:
    """List the price list."""
    table = Table("channel", "country", "price per message", "currency")
    for p in _operate(lambda gw: _price_book(gw).list_prices()):
        table.add_row(p.channel, p.country or "default", f"{p.price_per_message:g}", p.currency)
    console.print(table)


@prices_app.command("remove")
def prices_remove(
    channel: str,
    country: Annotated[str, typer.Option(help="ISO country; omitted: the channel default")] = "",
) -> None:
    """Remove a price (messages then cost the channel default, or 0 EUR)."""
    _operate(lambda gw: _price_book(gw).delete(channel, country))
    console.print(f"price {channel} {country or 'default'} removed")


# --- simulators, standalone ----------------------------------------------------------------------


@sandbox_app.command("smsc")
def sandbox_smsc(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 2775,
    system_id: Annotated[str, typer.Option(help="the system_id ESMEs bind with")] = "omnirelay",
    password: Annotated[str, typer.Option(help="the password ESMEs bind with")] = "sandbox",  # noqa: S107
    receipt_delay_s: Annotated[
        float, typer.Option(min=0, help="seconds from a submit_sm to its delivery receipt")
    ] = 0.05,
) -> None:
    """Run the SMSC simulator (SMPP v3.4 server with the sandbox rules) until interrupted."""
    from omnirelay import logs
    from omnirelay.sandbox.smsc import run_smsc

    logs.configure("INFO", False)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_smsc(host, port, system_id, password, receipt_delay_s=receipt_delay_s))


@sandbox_app.command("graph")
def sandbox_graph(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8081,
    omnirelay_url: Annotated[
        str, typer.Option(help="where the simulated pages send their webhooks")
    ] = "http://127.0.0.1:8080",
    pages: Annotated[
        int,
        typer.Option(
            min=0,
            max=99_999,
            help="more simulated Pages, numbered 0 to N-1: Page i has id 3000000000{i:05d}, access "
            "token sim-page-token-{i:05d} and app secret sim-app-secret-{i:05d}; each has one person, "
            "PSID 4000000000{i:05d}, without a phone number, so every send by phone number is refused "
            "(no matching user); they post no webhooks, so a send to that person is never delivered",
        ),
    ] = 0,
) -> None:
    """Run the Graph API simulator with the sandbox pages and user (and `--pages` more) until
    interrupted."""
    from omnirelay import logs
    from omnirelay import sandbox_data as demo
    from omnirelay.sandbox.graph import SimulatedPage, SimulatedUser, numbered_pages, numbered_user, run_graph

    logs.configure("INFO", False)
    base = omnirelay_url.rstrip("/")
    simulated = [
        SimulatedPage(a.page_id, a.page_access_token, a.app_secret, f"{base}/webhooks/facebook/{a.key}")
        for a in demo.applications(0)
    ]
    simulated += numbered_pages(pages)
    users = [SimulatedUser(demo.PAGE_ID, demo.PSID)] + [numbered_user(i) for i in range(pages)]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_graph(host, port, pages=simulated, users=users))


def main() -> None:
    app()
