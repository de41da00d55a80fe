"""The only place that builds concrete adapters from `Settings` and wires them to services."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from omnirelay import __version__
from omnirelay import sandbox_data as sandbox
from omnirelay.channels.messenger.graph import GraphSender, open_graph_session
from omnirelay.channels.messenger.webhook import MetaWebhookCodec
from omnirelay.channels.sms.config import SmppConnectorConfig, SmsRoute, connector_config
from omnirelay.channels.sms.sender import SmppSender
from omnirelay.channels.webhooks import HttpWebhookPoster
from omnirelay.clock import SystemClock
from omnirelay.config import Settings
from omnirelay.domain.connectors import SmppConnector
from omnirelay.domain.errors import NotFound, StorageUnavailable
from omnirelay.domain.failover import RetryPolicy
from omnirelay.domain.messages import Channel
from omnirelay.domain.nodes import NodeState
from omnirelay.http.app import create_app
from omnirelay.http.context import Services
from omnirelay.metrics import PrometheusMetrics
from omnirelay.ports import ChannelSender, ChannelStates, Retention
from omnirelay.sandbox.graph import GraphSimulator
from omnirelay.sandbox.smsc import SANDBOX_SUFFIX_RULES, SmscSimulator
from omnirelay.services.accounts import Authenticator, hash_password
from omnirelay.services.binds import BindHolder
from omnirelay.services.connectors import SmsConnectors
from omnirelay.services.console_sessions import ConsoleSessions
from omnirelay.services.dispatcher import Dispatcher
from omnirelay.services.echoes import EchoReconciler
from omnirelay.services.facebook import FacebookSingle
from omnirelay.services.forwarding import Forwarder, ForwardPolicy
from omnirelay.services.housekeeping import Janitor
from omnirelay.services.membership import Membership
from omnirelay.services.messenger_inbound import MessengerInbound
from omnirelay.services.messenger_users import MessengerApplications
from omnirelay.services.notifier import Notifier, PushPolicy
from omnirelay.services.omni import OmniSend
from omnirelay.services.operator import OperatorGuard
from omnirelay.services.page_throttles import SharedThrottles
from omnirelay.services.prices import PriceBook
from omnirelay.services.ratelimit import RateLimiter
from omnirelay.services.receipts import ReceiptProcessor
from omnirelay.services.scenarios import Scenarios
from omnirelay.services.supervisor import Supervisor
from omnirelay.storage import Storage, sandbox_login_present
from omnirelay.store.accounts import SqlAccountStore
from omnirelay.store.applications import SqlApplicationStore
from omnirelay.store.backlog import SqlBacklog
from omnirelay.store.binds import SqlBindSlots
from omnirelay.store.connectors import SqlConnectorStore
from omnirelay.store.console import SqlConsoleStore
from omnirelay.store.engine import reachable
from omnirelay.store.forwards import SqlForwardStore
from omnirelay.store.housekeeping import SqlHousekeeping
from omnirelay.store.idempotency import SqlIdempotencyStore
from omnirelay.store.inbound import SqlInboundStore
from omnirelay.store.logs import SqlLogStore
from omnirelay.store.messages import SqlMessageStore
from omnirelay.store.nodes import SqlNodeStore
from omnirelay.store.operator_sessions import SqlOperatorSessions
from omnirelay.store.page_throttles import SqlPageThrottles
from omnirelay.store.pushes import SqlPushStore
from omnirelay.store.scenarios import SqlScenarioStore
from omnirelay.store.wakeups import PgWakeups
from omnirelay.store.writer import Writer

log = logging.getLogger(__name__)


class Simulated(Protocol):
    """A simulated peer that schedules traffic of its own (sandbox.graph, sandbox.smsc)."""

    @property
    def pending(self) -> int: ...


class RefusedToStart(RuntimeError):
    """The settings are unsafe for the requested mode (docs/api.md#production-mode: production with a
    default token)."""


SANDBOX_LOGIN_PROBLEM = (
    f"the database holds the sandbox's demo account {sandbox.USERNAME}, whose password is public; "
    "production needs a database of its own (OMNIRELAY_DATABASE_URL, or the default SQLite file, "
    "omnirelay.sqlite3 in OMNIRELAY_DATA_DIR, which the sandbox no longer uses: move an old one "
    "away)"
)


@dataclass
class Gateway:
    """Everything a running omnirelay process owns, started and stopped together."""

    settings: Settings
    senders: dict[Channel, ChannelSender] = field(default_factory=dict)
    clock: SystemClock = field(default_factory=SystemClock)
    engine: AsyncEngine | None = None
    writer: Writer | None = None
    supervisor: Supervisor = field(default_factory=Supervisor)
    closers: list[Any] = field(default_factory=list)
    services: Services | None = None
    dispatcher: Dispatcher | None = None
    receipts: ReceiptProcessor | None = None
    accounts: SqlAccountStore | None = None
    applications: SqlApplicationStore | None = None
    messages: SqlMessageStore | None = None
    sms_sender: SmppSender | None = None
    connectors: SmsConnectors | None = None  # operator-managed SMPP connectors and routes
    prices: PriceBook | None = None  # the price list, in memory
    notifier: Notifier | None = None
    forwarder: Forwarder | None = None
    graph_simulator: GraphSimulator | None = None
    smsc_simulator: SmscSimulator | None = None
    metrics: PrometheusMetrics = field(default_factory=PrometheusMetrics)
    backlog: SqlBacklog | None = None
    membership: Membership | None = None
    bind_holder: BindHolder | None = None
    wakeups: PgWakeups | None = None

    async def open_storage(self) -> None:
        storage = await Storage.open(self.settings, self.clock)
        self.engine, self.writer = storage.engine, storage.writer
        self.supervisor.spawn("writer", self.writer.serve)  # first started, last stopped
        self.accounts, self.applications = storage.accounts, storage.applications
        self.messages = SqlMessageStore(self.engine, self.writer)
        self.connectors, self.prices = storage.connectors, storage.prices

    async def start(self) -> None:
        s = self.settings
        problems = [] if s.sandbox else s.production_problems()
        if problems:
            raise RefusedToStart("refusing to start in production mode: " + "; ".join(problems))
        await self.open_storage()
        if not s.sandbox and await self.sandbox_login_present():
            await self.stop()
            raise RefusedToStart("refusing to start in production mode: " + SANDBOX_LOGIN_PROBLEM)
        assert self.prices is not None and self.engine is not None and self.writer is not None
        await self.prices.load()
        if not s.sandbox:  # production: the stored connectors drive the SMS sender, changes apply live
            self.connectors = SmsConnectors(
                SqlConnectorStore(self.engine, self.writer), self.clock, apply=self.apply_sms
            )
        assert self.messages is not None and self.accounts is not None and self.applications is not None
        assert self.engine is not None and self.writer is not None
        owner = self.node_name()
        await self.join_cluster(owner)
        self.backlog = SqlBacklog(self.engine)
        self.receipts = ReceiptProcessor(
            self.messages, self.clock, lease_s=min(s.lease_s, 10.0), prices=self.prices, metrics=self.metrics
        )
        self.dispatcher = Dispatcher(
            self.messages,
            self.senders,
            self.clock,
            owner=owner,
            policy=RetryPolicy(base_s=s.retry_base_s),
            lease_s=s.lease_s,
            batch=s.dispatch_batch,
            concurrency=s.dispatch_concurrency,
            idle_poll_s=s.idle_poll_s,
            max_claims=s.max_claims,
            prices=self.prices,
            metrics=self.metrics,
            skip_channels=self.channels_elsewhere,
        )
        scenarios = Scenarios(SqlScenarioStore(self.engine, self.writer), self.applications, self.clock)
        auth = Authenticator(
            self.accounts, self.clock, cache_s=s.auth_cache_s, session_idle_s=s.session_idle_s
        )
        self.services = Services(
            auth=auth,
            facebook=FacebookSingle(
                self.messages, self.applications, self.clock, self.wake_work, self.metrics
            ),
            scenarios=scenarios,
            omni=OmniSend(self.messages, scenarios, self.clock, self.wake_work, self.metrics),
            store=self.messages,
            logs=SqlLogStore(self.engine),
            clock=self.clock,
            idempotency=SqlIdempotencyStore(self.engine),
            limiter=RateLimiter(s.rate_limit_per_s, s.rate_limit_burst) if s.rate_limit_per_s > 0 else None,
            ready=self.ready,
            metrics=self.scrape,
            max_body_bytes=s.max_body_bytes,
            operator=OperatorGuard(s.operator_token.get_secret_value()),
            connectors=self.connectors,
            prices=self.prices,
            membership=self.membership,
            console=SqlConsoleStore(self.engine),
        )
        self.attach_console(auth)
        # Messenger management API, Meta webhook and the inbound forwarding outbox
        self.forwarder = Forwarder(
            SqlForwardStore(self.engine, self.writer),
            HttpWebhookPoster(await self.http_client()),
            self.clock,
            ForwardPolicy(give_up_after_s=s.push_retry_period_h * 3600),
            idle_poll_s=s.idle_poll_s,
        )
        self.services.messenger = MessengerApplications(self.applications, self.clock)
        self.services.messenger_inbound = MessengerInbound(
            self.applications,
            SqlInboundStore(self.engine, self.writer),
            MetaWebhookCodec(),
            self.receipts,
            self.clock,
            on_forward=self.forwarder.wake,
            on_echo=EchoReconciler(self.messages, self.clock, prices=self.prices).echo,
            metrics=self.metrics,
        )
        if s.sandbox:
            await self.provision_sandbox()
            await self.start_sandbox_channels()
        else:
            await self.start_production_channels(owner)
        self.notifier = Notifier(
            SqlPushStore(self.engine, self.writer),
            HttpWebhookPoster(await self.http_client()),
            self.clock,
            PushPolicy(
                base_s=s.push_retry_base_s,
                step_s=s.push_retry_step_s,
                give_up_after_s=s.push_retry_period_h * 3600,
            ),
            idle_poll_s=s.idle_poll_s,
            metrics=self.metrics,
        )
        retention = Retention(report_s=s.report_retention_h * 3600, log_s=s.log_retention_days * 86400)
        janitor = Janitor(
            SqlHousekeeping(self.writer), self.clock, retention, interval_s=s.housekeeping_interval_s
        )
        self.share_budgets()
        sup = self.supervisor
        prices = self.prices
        sup.spawn("prices", lambda: prices.run(s.config_poll_s))
        if not s.sandbox:
            connectors = self.connectors
            assert connectors is not None
            sup.spawn("connectors", lambda: connectors.run(s.config_poll_s))
        sup.spawn("retention", janitor.run)
        if self.bind_holder is not None:
            sup.spawn("binds", self.bind_holder.run, self.bind_holder)  # stopped after the dispatcher
        sup.spawn("receipts", self.receipts.run, self.receipts)
        sup.spawn("forwarder", self.forwarder.run, self.forwarder)
        sup.spawn("notifier", self.notifier.run, self.notifier)
        sup.spawn("dispatcher", self.dispatcher.run, self.dispatcher)  # last started, first stopped
        log.info("omnirelay started (node %s)", owner)

    def node_name(self) -> str:
        """This node's name in the cluster and on its claims (docs/architecture.md#cluster-membership)."""
        s = self.settings
        if s.node_id and s.workers > 1:  # one name given to the host's workers: each its own
            return f"{s.node_id}-{os.getpid()}"
        return s.node_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"

    async def join_cluster(self, owner: str) -> None:
        """Register this node (docs/architecture.md#cluster-membership) before it takes any work."""
        assert self.engine is not None and self.writer is not None
        self.membership = Membership(
            SqlNodeStore(self.engine, self.writer),
            node_id=owner,
            host=socket.gethostname(),
            pid=os.getpid(),
            version=__version__,
            heartbeat_s=self.settings.heartbeat_s,
            stale_s=self.settings.node_stale_s,
        )
        await self.membership.join()
        # the first loops started after the writer: of the loops, the last stopped
        self.supervisor.spawn("membership", self.membership.run, self.membership)
        if self.engine.dialect.name == "postgresql":
            self.wakeups = PgWakeups(self.engine, owner, on_wake=self.wake_dispatcher)
            self.supervisor.spawn("wakeups", self.wakeups.run, self.wakeups)

    def wake_work(self) -> None:
        """New messages were committed: this node's dispatcher looks now, and so do the others'
        (docs/architecture.md#wake-ups)."""
        self.wake_dispatcher()
        if self.wakeups is not None:
            self.wakeups.notify()

    def wake_dispatcher(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.wake()

    async def start_production_channels(self, owner: str) -> None:
        """The channels as configured in the database; one node or many, a connector is bound by
        the nodes holding its bind slots (docs/architecture.md#smpp-binds)."""
        assert self.engine is not None and self.writer is not None
        s = self.settings
        self.bind_holder = BindHolder(
            SqlBindSlots(self.engine, self.writer),
            node_id=owner,
            heartbeat_s=s.heartbeat_s,
            lease_s=s.node_stale_s,
            apply=self.hold_binds,
        )
        await self.start_channels()  # takes this node's binds (`apply_sms`) before it claims a message

    def attach_console(self, auth: Authenticator) -> None:
        """`/console` (docs/console.md): its sessions and the live state of the channels."""
        assert self.services is not None
        assert self.engine is not None and self.writer is not None
        self.services.console_sessions = ConsoleSessions(
            auth,
            self.services.operator,
            SqlOperatorSessions(self.engine, self.writer),
            self.clock,
            idle_s=self.settings.session_idle_s,
        )
        self.services.channel_states = self.channel_states

    def share_budgets(self) -> None:
        """The account rate limit and Meta's per-Page pacing are cluster-wide: this node keeps to
        its share of each, and Meta's throttling of a Page holds on every node
        (docs/architecture.md#cluster-wide-budgets)."""
        assert self.membership is not None and self.services is not None
        if self.services.limiter is not None:
            self.membership.on_share(self.services.limiter.scale)
        graph = self.senders.get(Channel.FACEBOOK)
        if isinstance(graph, GraphSender):
            self.membership.on_share(graph.scale)
            assert self.engine is not None and self.writer is not None
            throttles = SharedThrottles(
                SqlPageThrottles(self.engine, self.writer), graph, interval_s=self.settings.heartbeat_s
            )
            self.supervisor.spawn("page-throttles", throttles.run, throttles)
        # an SMPP connector's throughput is shared by its bind slots instead (SmppSender.hold)

    def channels_elsewhere(self) -> tuple[Channel, ...]:
        """The channels this node leaves to other nodes: SMS while connectors are configured and
        this node binds none of them. With none configured anywhere, SMS steps are claimed here
        as everywhere, and end as having no route."""
        holder, sms = self.bind_holder, self.sms_sender
        if holder is not None and holder.configured and sms is not None and not sms.binds_any():
            return (Channel.SMS,)
        return ()

    async def hold_binds(self, held: Mapping[str, int]) -> None:
        assert self.sms_sender is not None
        await self.sms_sender.hold(held)

    async def sandbox_login_present(self) -> bool:
        """Whether the database holds the sandbox's account with its public password (after open_storage)."""
        assert self.accounts is not None
        return await sandbox_login_present(self.accounts)

    async def provision_sandbox(self) -> None:
        """docs/api.md#sandbox: the demo data that lets every documented example run verbatim."""
        assert self.accounts is not None and self.applications is not None and self.services is not None
        now = self.clock.now()
        found = await self.accounts.account_by_username(sandbox.USERNAME)
        if found is None:
            account_id = await self.accounts.create_account(
                sandbox.USERNAME, hash_password(sandbox.PASSWORD), now
            )
        else:
            account_id = found[0]
        for app in sandbox.applications(account_id):
            if await self.applications.application(app.key) is None:
                await self.applications.create_application(app, now)
        await self.applications.add_user(sandbox.USER, now)
        await self.applications.add_user(sandbox.USER_UNREAD, now)
        scenarios = self.services.scenarios
        try:
            await scenarios.get(account_id, sandbox.SCENARIO_KEY)
        except NotFound:
            await scenarios.create(account_id, sandbox.SCENARIO, key=sandbox.SCENARIO_KEY)
        log.warning(
            "SANDBOX MODE: simulated channels and demo data (account %s / %s). Not for production.",
            sandbox.USERNAME,
            sandbox.PASSWORD,
        )

    def public_url(self) -> str:
        s = self.settings
        if s.public_url:
            return s.public_url.rstrip("/")
        host = "127.0.0.1" if s.host in ("0.0.0.0", "::", "") else s.host  # noqa: S104 - comparing, not binding
        return f"http://{host}:{s.port}"

    async def http_client(self) -> httpx.AsyncClient:
        client = httpx.AsyncClient(timeout=httpx.Timeout(10.0), limits=httpx.Limits(max_connections=200))
        self.closers.append(client.aclose)
        return client

    async def graph_session(self, base_url: str) -> aiohttp.ClientSession:
        """The Graph Send API's client (aiohttp: docs/decisions/0004-graph-client.md), closed at stop."""
        session = open_graph_session(base_url)
        self.closers.append(session.close)
        return session

    async def start_sandbox_channels(self) -> None:
        """docs/channels.md#simulators: the Graph API and SMSC simulators, in this process, over real local
        sockets."""
        assert self.applications is not None and self.receipts is not None
        graph = GraphSimulator(
            await self.http_client(), delivery_delay_s=0.2, send_echoes=True, send_reads=True
        )
        for app in sandbox.applications(0):
            graph.add_page(
                app.page_id,
                app.page_access_token,
                app.app_secret,
                f"{self.public_url()}/webhooks/facebook/{app.key}",
            )
        graph.add_user(sandbox.PAGE_ID, sandbox.PSID)
        graph.add_user(sandbox.PAGE_ID, sandbox.PSID_UNREAD, never_read=True)  # docs/api.md#sandbox
        await graph.start()
        self.closers.append(graph.stop)
        self.graph_simulator = graph
        smsc = SmscSimulator(
            users={sandbox.SMSC_SYSTEM_ID: sandbox.SMSC_PASSWORD},
            suffix_rules=SANDBOX_SUFFIX_RULES,
            receipt_delay_s=0.2,
        )
        await smsc.start()
        self.closers.append(smsc.stop)
        self.smsc_simulator = smsc
        log.warning(
            "SANDBOX: Graph API simulator on %s, SMSC simulator on 127.0.0.1:%d", graph.base_url, smsc.port
        )
        self.senders[Channel.FACEBOOK] = GraphSender(
            await self.graph_session(graph.base_url),
            self.applications,
            base_url=graph.base_url,
            api_version=self.settings.graph_api_version,
            clock=self.clock,
            timeout_s=self.settings.graph_timeout_s,
        )
        connector = SmppConnectorConfig(
            name="sandbox",
            host="127.0.0.1",
            port=smsc.port,
            system_id=sandbox.SMSC_SYSTEM_ID,
            password=sandbox.SMSC_PASSWORD,
            window=50,
            reconnect_min_s=0.2,
            reconnect_max_s=5.0,
        )
        await self.start_sms([connector], [SmsRoute("", "sandbox")])

    async def start_channels(self) -> None:
        assert self.applications is not None
        self.senders[Channel.FACEBOOK] = GraphSender(
            await self.graph_session(self.settings.graph_base_url),
            self.applications,
            base_url=self.settings.graph_base_url,
            api_version=self.settings.graph_api_version,
            clock=self.clock,
            timeout_s=self.settings.graph_timeout_s,
        )
        assert self.connectors is not None
        await self.connectors.reload()  # starts the SMS sender with the stored connectors and routes
        if self.sms_sender is None:
            await self.apply_sms([], [])

    async def apply_sms(self, connectors: list[SmppConnector], routes: list[SmsRoute]) -> None:
        """Run the SMS sender with this configuration: started the first time, then reconfigured
        in place (unchanged binds stay up), so operator changes apply without a restart."""
        configs = [connector_config(c) for c in connectors]
        if self.bind_holder is not None:
            self.bind_holder.configure({c.name: c.binds for c in connectors})
        if self.sms_sender is None:
            await self.start_sms(configs, routes)
        else:
            await self.sms_sender.reconfigure(configs, routes)
        if self.bind_holder is not None:
            await self.bind_holder.hold()  # a connector added or changed is bound here at once

    async def start_sms(self, connectors: list[SmppConnectorConfig], routes: list[SmsRoute]) -> None:
        assert self.receipts is not None
        # with bind slots, nothing is bound until the slots are taken (BindHolder.hold)
        held = None if self.bind_holder is None else self.bind_holder.held
        sms = SmppSender(connectors, routes, self.receipts, self.clock, held=held)
        await sms.start()
        self.closers.append(sms.stop)
        self.senders[Channel.SMS] = sms
        self.sms_sender = sms

    def channel_states(self) -> ChannelStates:
        """The SMPP connectors' sessions and the Messenger Pages' pauses, now (the console)."""
        graph = self.senders.get(Channel.FACEBOOK)
        return ChannelStates(
            smpp=tuple(self.sms_sender.states()) if self.sms_sender is not None else (),
            pages=tuple(graph.page_states()) if isinstance(graph, GraphSender) else (),
        )

    async def ready(self) -> dict[str, bool]:
        assert self.engine is not None
        checks = {"storage": await reachable(self.engine)}
        checks.update({f"task:{name}": False for name in self.supervisor.down()})
        if self.writer is not None and not self.writer.serving:
            checks["task:writer"] = False
        if self.sms_sender is not None:
            checks.update({f"smpp:{name}": bound for name, bound in self.sms_sender.bound().items()})
        return checks

    async def scrape(self) -> bytes:
        """`/metrics`: the counters, and the gauges sampled now (no backlog gauges without storage)."""
        backlog = None
        if self.backlog is not None:
            try:
                backlog = await self.backlog.backlog(self.clock.now())
            except StorageUnavailable:
                log.warning("metrics: storage unavailable; backlog gauges left out")
        nodes = None
        if self.membership is not None:
            try:
                members, _ = await self.membership.members()
                nodes = {state.value: 0 for state in NodeState}
                for _, state in members:
                    nodes[state.value] += 1
            except StorageUnavailable:
                log.warning("metrics: storage unavailable; cluster gauges left out")
        self.metrics.observe(backlog, self.sms_sender.bound() if self.sms_sender is not None else {}, nodes)
        return self.metrics.render()

    async def until_idle(self, timeout_s: float = 10.0, *, simulators: Iterable[Simulated] = ()) -> None:
        """Return once nothing is due or under way: no claim or send in the dispatcher, no round
        under way in the receipts, push or forward loops, nothing due now in storage (a message, a
        receipt in the inbox, a push, a forward), and nothing still to come from the sandbox's
        Graph and SMSC simulators or from `simulators` (webhooks and receipts scheduled or not yet
        answered). What is scheduled for later (a retry, a `sendAt`, a step's deadline) does not
        count. For tests and tools that must know that what was going to happen has happened, so
        that they can then assert that nothing more did; serving never calls it, and it reads
        without changing anything. Raises `TimeoutError` when work keeps coming for `timeout_s`.

        The workers' readings (`activity`) are taken before and after storage is read: equal, with
        nothing under way either time, no worker did anything meanwhile, so what storage said is
        the whole picture."""
        assert self.backlog is not None, "the gateway is not started"
        peers: list[Simulated] = [p for p in (self.graph_simulator, self.smsc_simulator) if p is not None]
        peers.extend(simulators)
        async with asyncio.timeout(timeout_s):
            while True:
                before = self._activity(peers)
                if before is not None:
                    due = await self.backlog.next_due_at()
                    if (due is None or due > self.clock.now()) and self._activity(peers) == before:
                        return
                await asyncio.sleep(0.005)  # polling the condition above, under the deadline

    def _activity(self, peers: list[Simulated]) -> tuple[int, ...] | None:
        """The workers' counts of changes; None while any worker or peer has something under way."""
        workers = (self.dispatcher, self.receipts, self.notifier, self.forwarder)
        readings = [w.activity for w in workers if w is not None]
        if any(busy for busy, _ in readings) or any(p.pending for p in peers):
            return None
        return tuple(changes for _, changes in readings)

    async def stop(self) -> None:
        """Stop in reverse order of starting (docs/architecture.md, "Stopping"): the dispatcher
        claims nothing more and its sends under way write their outcomes; the other loops finish
        their round; then the channels close (no send is under way any more), and the writer,
        which every loop above wrote through, stops last."""
        grace_s = self.settings.shutdown_grace_s
        writer_task = [] if self.writer is None else ["writer"]
        loops = [name for name in self.supervisor.names() if name not in writer_task]
        await self.supervisor.stop(*loops, grace_s=grace_s)
        for closer in reversed(self.closers):
            try:
                await closer()
            except Exception:
                log.exception("error while stopping")
        await self.supervisor.stop(grace_s=grace_s)
        if self.writer is not None:
            await self.writer.stop()
        if self.engine is not None:
            await self.engine.dispose()


# The cyclic GC's generation thresholds while serving (youngest first); see `build_app`.
GC_THRESHOLDS = (10_000, 10, 10)


def build_app(
    settings: Settings, after_start: Callable[[Gateway], Awaitable[None]] | None = None
) -> Starlette:
    """The app `omnirelay serve` runs; `after_start` runs once the gateway is up (the bench's set-ups)."""
    gateway = Gateway(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        app.state.services = gateway.services
        app.state.gateway = gateway
        if after_start is not None:
            await after_start(gateway)
        # What start-up built lives as long as the server: frozen, the cyclic GC stops walking it on
        # every full collection (those walks cost 13 % of the intake's CPU and its p99; bench/README.md).
        gc.collect()
        gc.freeze()
        # A message allocates many short-lived containers (records, transitions, rows, futures): with
        # the default thresholds (700, 10, 10) collections took ~13 % of the gateway's CPU end to end
        # (2.7 s for 10,000 messages; 0.9 s with these) and ~130 ms of a 10,000-destination request.
        thresholds = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            yield
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()
            await gateway.stop()

    return create_app(None, lifespan, gateway.metrics.count_requests)


def run_server(app: Any, host: str, port: int, *, grace_s: int) -> None:
    """Serve `app` (an ASGI app or an import string) as `omnirelay serve` does, until interrupted:
    uvicorn with uvloop and httptools, one worker, lifespan on, no access log (the bench serves its
    ceiling the same way); requests still running `grace_s` after the interrupt are cancelled
    (uvicorn logs how many), then the gateway stops."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=grace_s,
    )
    uvicorn.Server(config).run()


def worker_app() -> Starlette:
    """The app of one of `omnirelay serve --workers N`'s processes, settings from the environment."""
    from omnirelay import logs

    settings = Settings()
    logs.configure(settings.log_level, settings.log_json)
    return build_app(settings)


def run_workers(settings: Settings) -> None:
    """`omnirelay serve --workers N` (docs/architecture.md#several-nodes-on-one-host): N node
    processes on one listening socket, each a cluster node of its own; uvicorn's supervisor starts
    them, restarts one that dies, and stops them all on SIGINT or SIGTERM."""
    import uvicorn

    uvicorn.run(
        "omnirelay.bootstrap:worker_app",
        factory=True,
        workers=settings.workers,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=settings.shutdown_grace_s,
    )


__all__ = ["Gateway", "StorageUnavailable", "build_app", "run_server", "run_workers", "worker_app"]
