"""The `omnirelay` command: serve, config, db, accounts, sandbox.

Imports are lazy: `omnirelay --help` and the commands that do not serve load what they use only
(tests/e2e/test_cli_startup.py). Output is plain text, never wrapped to the terminal's width, so
that what is meant to be copied (an API key, the database URL) copies whole.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

T = TypeVar("T")

if TYPE_CHECKING:
    from omnirelay.config import Settings
    from omnirelay.storage import Storage

# rich_markup_mode=None: Click's plain help (Typer's rich panels show "<bool>" beside every flag and
# cost the import of rich on every start).
app = typer.Typer(
    no_args_is_help=True, add_completion=False, rich_markup_mode=None, help="omnirelay messaging gateway"
)
config_app = typer.Typer(no_args_is_help=True, help="Effective settings")
db_app = typer.Typer(no_args_is_help=True, help="Database schema")
accounts_app = typer.Typer(no_args_is_help=True, help="Accounts and API keys")
sandbox_app = typer.Typer(no_args_is_help=True, help="Channel simulators")
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")
app.add_typer(sandbox_app, name="sandbox")


def say(line: str) -> None:
    typer.echo(line)


def complain(line: str) -> None:
    typer.echo(line, err=True)


def show(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """Columns on stdout, as wide as their content (never folded to the terminal's width)."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        say("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _settings(**overrides: object) -> Settings:
    from omnirelay.config import Settings

    return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]


def _managed() -> Settings:
    """The settings of the commands that manage data (accounts, connectors, routes, prices, db):
    production's database unless OMNIRELAY_SANDBOX=true says the sandbox's. What an operator
    configures is meant for the server that serves it; the sandbox provisions its own data."""
    settings = _settings()
    if "sandbox" not in settings.model_fields_set:
        settings = settings.model_copy(update={"sandbox": False})
    return settings


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    import asyncio

    return asyncio.run(coroutine)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="SQLite file and sandbox state")] = None,
    sandbox: Annotated[bool | None, typer.Option("--sandbox/--no-sandbox", help="simulated channels")] = None,
    workers: Annotated[
        int | None, typer.Option(help="node processes on this host, one port (PostgreSQL only)")
    ] = None,
) -> None:
    """Start the gateway (sandbox mode on SQLite unless configured otherwise)."""
    from omnirelay import logs
    from omnirelay.bootstrap import SANDBOX_LOGIN_PROBLEM, build_app, run_server, run_workers

    settings = _settings(host=host, port=port, data_dir=data_dir, sandbox=sandbox, workers=workers)
    workers_problem = settings.workers_problem()
    if workers_problem is not None:
        complain(f"refusing to start: {workers_problem}")
        raise typer.Exit(2)
    problems = [] if settings.sandbox else settings.production_problems()
    if not problems and not settings.sandbox:
        # Checked here too (`Gateway.start` refuses as well) so that the refusal is one line, not
        # a traceback from the server's start-up.
        async def sandbox_login() -> bool:
            from omnirelay.storage import opened, sandbox_login_present

            async with opened(settings) as storage:
                return await sandbox_login_present(storage.accounts)

        if _run(sandbox_login()):
            problems = [SANDBOX_LOGIN_PROBLEM]
    if problems:  # production refuses default secrets: docs/api.md#production-mode
        for problem in problems:
            complain(f"refusing to start in production mode: {problem}")
        raise typer.Exit(2)
    logs.configure(settings.log_level, settings.log_json)
    if settings.workers > 1:
        # each worker reads its settings as this command did: the options become the environment
        options = {"HOST": host, "PORT": port, "DATA_DIR": data_dir, "SANDBOX": sandbox, "WORKERS": workers}
        os.environ.update({f"OMNIRELAY_{k}": str(v) for k, v in options.items() if v is not None})
        run_workers(settings)
        return
    run_server(build_app(settings), settings.host, settings.port, grace_s=settings.shutdown_grace_s)


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings, secrets masked (one `name = value` a line, never cut)."""
    settings = _settings().masked()
    width = max(len(key) for key in settings)
    for key, value in settings.items():
        say(f"{key.ljust(width)} = {value}")


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply schema migrations."""
    _operate(lambda _storage: _done())
    say("schema up to date")


async def _done() -> None:
    return None


@accounts_app.command("create")
def accounts_create(
    username: str,
    password: Annotated[
        str,
        typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="at least 12 characters"),
    ],
) -> None:
    """Create an account (its password is stored as a scrypt hash)."""
    from omnirelay.services.accounts import new_password_hash

    async def create(storage: Storage) -> int:
        return await storage.accounts.create_account(
            username, new_password_hash(password), storage.clock.now()
        )

    say(f"account {username} created (id {_operate(create)})")


@accounts_app.command("api-key")
def accounts_api_key(
    username: str, name: Annotated[str, typer.Option(help="a label for the key")] = "default"
) -> None:
    """Create an API key for an account and print its Authorization header (one line, shown once;
    only a digest is stored)."""
    from omnirelay.domain.errors import NotFound
    from omnirelay.services.accounts import digest, new_api_key

    async def create(storage: Storage) -> str:
        found = await storage.accounts.account_by_username(username)
        if found is None:
            raise NotFound(f"no account {username}")
        key = new_api_key()
        await storage.accounts.add_api_key(found[0], name, digest(key), storage.clock.now())
        return key

    say(f"Authorization: App {_operate(create)}")


# --- operator data: SMPP connectors, SMS routes, prices (docs/api.md#operator-api) --------------------------
# These write to the database; a running server picks changes up within `config_poll_s`.

connectors_app = typer.Typer(no_args_is_help=True, help="SMPP connectors (SMSC binds)")
routes_app = typer.Typer(no_args_is_help=True, help="SMS routes: destination prefix -> connector")
prices_app = typer.Typer(no_args_is_help=True, help="Price list per channel and country")
app.add_typer(connectors_app, name="connectors")
app.add_typer(routes_app, name="routes")
app.add_typer(prices_app, name="prices")


def _operate(action: Callable[[Storage], Awaitable[T]]) -> T:
    """Run `action` against the configured database; request errors exit 1 with their message."""
    from omnirelay.domain.errors import RequestError
    from omnirelay.storage import opened

    async def run() -> T:
        async with opened(_managed()) as storage:
            return await action(storage)

    try:
        return _run(run())
    except RequestError as exc:
        complain(f"error: {exc.message}")
        raise typer.Exit(1) from None


@app.command("nodes")
def nodes() -> None:
    """List the gateway nodes on this database and whether each is live (its heartbeat fresh)."""
    from omnirelay.domain.times import format_time
    from omnirelay.services.membership import members
    from omnirelay.store.nodes import SqlNodeStore

    stale_s = _managed().node_stale_s
    found, live = _operate(lambda st: members(SqlNodeStore(st.engine, st.writer), stale_s))
    header = ("node", "state", "host", "pid", "version", "started", "last heartbeat")
    show(
        header,
        [
            (
                n.node_id,
                state.value,
                n.host,
                str(n.pid),
                n.version,
                format_time(n.started_at),
                format_time(n.heartbeat_at),
            )
            for n, state in found
        ],
    )
    say(f"{live} live")


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
    binds: Annotated[int, typer.Option(help="binds for the whole cluster, at most one per node")] = 1,
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
        binds=binds,
    )
    _operate(lambda st: st.connectors.add(connector))
    say(f"connector {name} added")


@connectors_app.command("list")
def connectors_list() -> None:
    """List connectors (passwords masked)."""
    found = _operate(lambda st: st.connectors.list_connectors())
    header = ("name", "host", "port", "system_id", "password", "tls", "throughput/s", "window", "binds")
    rows = [
        (
            c.name,
            c.host,
            str(c.port),
            c.system_id,
            "********" if c.password else "",
            "yes" if c.tls else "no",
            f"{c.throughput_per_s:g}",
            str(c.window),
            str(c.binds),
        )
        for c in found
    ]
    show(header, rows)


@connectors_app.command("remove")
def connectors_remove(name: str) -> None:
    """Remove a connector (routes that name it must be removed first)."""
    _operate(lambda st: st.connectors.remove(name))
    say(f"connector {name} removed")


@routes_app.command("add")
def routes_add(prefix: str, connector: str) -> None:
    """Send destinations starting with PREFIX (digits; `default` for all others) to CONNECTOR."""
    route = _operate(lambda st: st.connectors.set_route(prefix, connector))
    say(f"route {route.prefix or 'default'} -> {route.connector}")


@routes_app.command("list")
def routes_list() -> None:
    """List routes (the longest matching prefix wins)."""
    found = _operate(lambda st: st.connectors.routes())
    show(("prefix", "connector"), [(route.prefix or "default", route.connector) for route in found])


@routes_app.command("remove")
def routes_remove(prefix: str) -> None:
    """Remove the route for PREFIX (`default` for the default route)."""
    _operate(lambda st: st.connectors.remove_route(prefix))
    say(f"route {prefix} removed")


@prices_app.command("set")
def prices_set(
    channel: str,
    price: Annotated[float, typer.Argument(help="price per message (per segment for SMS)")],
    country: Annotated[str, typer.Option(help="ISO country such as CH; omitted: the channel default")] = "",
    currency: Annotated[str, typer.Option(help="ISO 4217 currency")] = "EUR",
) -> None:
    """Set the price per message of CHANNEL (for one country, or the default)."""
    saved = _operate(lambda st: st.prices.set(channel, country, price, currency))
    say(f"{saved.channel} {saved.country or 'default'}: {saved.price_per_message:g} {saved.currency}")


@prices_app.command("list")
def prices_list() -> None:
    """List the price list."""
    found = _operate(lambda st: st.prices.list_prices())
    show(
        ("channel", "country", "price per message", "currency"),
        [(p.channel, p.country or "default", f"{p.price_per_message:g}", p.currency) for p in found],
    )


@prices_app.command("remove")
def prices_remove(
    channel: str,
    country: Annotated[str, typer.Option(help="ISO country; omitted: the channel default")] = "",
) -> None:
    """Remove a price (messages then cost the channel default, or 0 EUR)."""
    _operate(lambda st: st.prices.delete(channel, country))
    say(f"price {channel} {country or 'default'} removed")


# --- simulators, standalone ----------------------------------------------------------------------


@sandbox_app.command("smsc")
def sandbox_smsc(  # noqa: PLR0917 - a Typer command takes its options as parameters
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 2775,
    system_id: Annotated[str, typer.Option(help="the system_id ESMEs bind with")] = "omnirelay",
    password: Annotated[str, typer.Option(help="the password ESMEs bind with")] = "sandbox",  # noqa: S107
    receipt_delay_s: Annotated[
        float, typer.Option(min=0, help="seconds from a submit_sm to its delivery receipt")
    ] = 0.05,
    random_ids: Annotated[
        bool,
        typer.Option(
            "--random-ids",
            help="message ids unique across restarts (default: 00000001, 00000002, ... from every start)",
        ),
    ] = False,
) -> None:
    """Run the SMSC simulator (SMPP v3.4 server with the sandbox rules) until interrupted."""
    import contextlib

    from omnirelay import logs
    from omnirelay.sandbox.smsc import MessageIds, run_smsc

    logs.configure("INFO", False)
    ids = MessageIds.RANDOM if random_ids else MessageIds.SEQUENTIAL
    with contextlib.suppress(KeyboardInterrupt):
        _run(run_smsc(host, port, system_id, password, receipt_delay_s=receipt_delay_s, message_ids=ids))


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
    import contextlib

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
        _run(run_graph(host, port, pages=simulated, users=users))


def main() -> None:
    app()
