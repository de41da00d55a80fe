"""SMS through the whole server in production mode (sandbox off): an SMSC simulator started by the
test, a connector created through the operator API, SMS-only scenarios created through
`/omni/1/scenarios`, reports pulled from `/omni/1/reports`. Real TCP on 127.0.0.1 throughout."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from omnirelay.cli import app as cli
from omnirelay.config import Settings
from omnirelay.domain.sms_text import decode_short_message
from omnirelay.ports import MessengerApplication
from omnirelay.sandbox.graph import GraphSimulator
from omnirelay.sandbox.smsc import Behaviour, Script, SmscSimulator
from omnirelay.services.accounts import hash_password
from omnirelay.store.tables import attempts, messages
from tests.e2e.conftest import RunningServer, free_port, json_of, start_server
from tests.waiting import until

TOKEN = "e2e-operator-token-0123456789"
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}
USER = ("Sinbad", "seven seas")
SMSC_USERS = {"gw": "secret"}
CH = "41793026727"
DE = "4915112345678"


def connector_body(smsc: SmscSimulator, name: str = "smsc1", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "host": "127.0.0.1",
        "port": smsc.port,
        "systemId": "gw",
        "password": "secret",
        "window": 50,
        "reconnectMinS": 0.05,
        "reconnectMaxS": 0.3,
        "responseTimeoutS": 5,
        **extra,
    }


@dataclass
class Production:
    server: RunningServer
    auth: tuple[str, str]

    @property
    def client(self) -> httpx.AsyncClient:
        return self.server.client

    async def send(self, destinations: list[str], text: str, **extra: Any) -> list[str]:
        body = {"destinations": [{"to": {"phoneNumber": d}} for d in destinations], "sms": {"text": text}}
        r = await self.client.post("/omni/1/advanced", json={**body, **extra}, auth=self.auth, timeout=30)
        out = json_of(r)
        assert r.status_code == 200, out
        assert {m["status"]["name"] for m in out["messages"]} == {"MESSAGE_ACCEPTED"}
        return [m["messageId"] for m in out["messages"]]

    async def reports(self, message_ids: set[str], timeout_s: float = 20.0) -> dict[str, dict[str, Any]]:
        """Pull until every message has its final report; fail on a report handed out twice."""
        found: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout_s
        while not message_ids <= set(found):
            assert time.monotonic() < deadline, f"no final report for {len(message_ids - set(found))}"
            r = await self.client.get("/omni/1/reports?limit=1000", auth=self.auth)
            for report in json_of(r)["results"]:
                assert report["messageId"] not in found, "two reports for one message"
                found[report["messageId"]] = report
            await asyncio.sleep(0.05)  # polling for a condition, under a deadline
        return found

    async def no_more_reports(self, *smscs: SmscSimulator) -> None:
        """Once nothing is due or under way, in the server or at these SMSCs, no report is left."""
        await self.server.until_idle(10.0, *smscs)
        r = await self.client.get("/omni/1/reports?limit=1000", auth=self.auth)
        assert json_of(r)["results"] == []

    async def wait_bound(self, name: str = "smsc1", timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            checks = json_of(await self.client.get("/ready"))["checks"]
            if checks.get(f"smpp:{name}"):
                return
            assert time.monotonic() < deadline, checks
            await asyncio.sleep(0.02)  # polling for a condition, under a deadline


def production_settings(tmp_path: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": free_port(),
        "data_dir": tmp_path / "data",
        "sandbox": False,
        "operator_token": TOKEN,
        "idle_poll_s": 0.05,
        "config_poll_s": 0.2,
        "graph_base_url": "http://127.0.0.1:9",  # unused unless a test starts a Graph simulator
    }
    return Settings(**{**values, **extra})


@pytest.fixture
async def smsc() -> AsyncIterator[SmscSimulator]:
    async with SmscSimulator(users=SMSC_USERS, receipt_delay_s=0.05) as simulator:
        yield simulator


@pytest.fixture
async def production(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start omnirelay in production mode (settings overridable); an account and SMS-only scenario."""
    running: list[tuple[Any, asyncio.Task[None], httpx.AsyncClient]] = []

    async def start(**extra: Any) -> Production:
        settings = production_settings(tmp_path, **extra)
        srv, task, app = await start_server(settings)
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}", timeout=10)
        running.append((srv, task, client))
        server = RunningServer(f"http://127.0.0.1:{settings.port}", app, settings, client)
        gw = server.gateway
        assert gw.accounts is not None
        if await gw.accounts.account_by_username(USER[0]) is None:
            await gw.accounts.create_account(USER[0], hash_password(USER[1]), gw.clock.now())
        prod = Production(server, USER)
        r = await client.post(
            "/omni/1/scenarios",
            json={"name": "SMS only", "flow": [{"from": "InfoSMS", "channel": "SMS"}], "default": True},
            auth=USER,
        )
        assert r.status_code == 200, r.text
        return prod

    yield start
    for srv, task, client in running:
        await client.aclose()
        srv.should_exit = True
        await task


async def test_long_ucs2_sms_is_delivered_reported_and_priced(production: Any, smsc: SmscSimulator):
    prod: Production = await production()
    c = prod.client
    assert json_of(await c.post("/admin/1/connectors", json=connector_body(smsc), headers=OPERATOR))
    for price in (
        {"channel": "SMS", "country": "CH", "pricePerMessage": 0.05, "currency": "CHF"},
        {"channel": "SMS", "pricePerMessage": 0.07, "currency": "EUR"},
    ):
        assert (await c.post("/admin/1/prices", json=price, headers=OPERATOR)).status_code == 200
    await prod.wait_bound()

    text = "Привет, мир! " * 14  # 182 Cyrillic-script characters: UCS-2, 67 per segment -> 3 segments
    (ch_id,) = await prod.send([CH], text, callbackData="cb-1")
    (de_id,) = await prod.send([DE], "plain GSM text")
    reports = await prod.reports({ch_id, de_id})

    ch = reports[ch_id]
    assert ch["channel"] == "SMS" and ch["to"] == CH and ch["callbackData"] == "cb-1"
    assert ch["status"]["name"] == "DELIVERED_TO_HANDSET" and ch["error"]["name"] == "NO_ERROR"
    assert ch["messageCount"] == 3
    assert ch["price"] == {"pricePerMessage": 0.05, "currency": "CHF"}  # per segment: 3 x 0.05 CHF
    de = reports[de_id]
    assert de["messageCount"] == 1 and de["price"] == {"pricePerMessage": 0.07, "currency": "EUR"}
    await prod.no_more_reports(smsc)
    (row,) = json_of(await c.get(f"/omni/1/logs?messageId={ch_id}", auth=prod.auth))["results"]
    assert row["messageCount"] == 3 and row["price"] == {"pricePerMessage": 0.05, "currency": "CHF"}

    parts = [s for s in smsc.submits if s.destination == CH]
    assert len(parts) == 3 and {p.data_coding for p in parts} == {8}
    joined = "".join(decode_short_message(p.short_message, data_coding=8, udhi=True) for p in parts)
    assert joined == text


async def test_connection_dropped_mid_batch_every_message_ends_once(production: Any):
    async with SmscSimulator(users=SMSC_USERS, receipt_delay_s=0.05, response_delay_s=0.15) as smsc:
        prod: Production = await production()
        await prod.client.post("/admin/1/connectors", json=connector_body(smsc), headers=OPERATOR)
        await prod.wait_bound()
        numbers = [f"4179{i:07d}" for i in range(200)]
        ids = await prod.send(numbers, "batch")
        await smsc.wait_for(lambda: len(smsc.submits) >= 30)  # submits are in flight (answers delayed)
        smsc.drop_all()
        reports = await prod.reports(set(ids), timeout_s=40)
        assert len(reports) == 200
        assert {r["status"]["name"] for r in reports.values()} == {"DELIVERED_TO_HANDSET"}
        assert smsc.connections_total >= 2  # the sender reconnected
        # submits whose answers were lost with the link were sent again (at least once, never lost)
        assert len(smsc.submits) > 200, len(smsc.submits)
        await prod.no_more_reports(smsc)


async def test_throttling_slows_down_without_failing(production: Any, smsc: SmscSimulator):
    prod: Production = await production()
    await prod.client.post("/admin/1/connectors", json=connector_body(smsc), headers=OPERATOR)
    await prod.wait_bound()
    smsc.script_suffix("", Script(Behaviour.THROTTLED))  # every destination: ESME_RTHROTTLED
    ids = await prod.send([f"4179302{i:04d}" for i in range(20)], "slow down")
    await smsc.wait_for(lambda: any(s.behaviour is Behaviour.THROTTLED for s in smsc.submits))
    await asyncio.sleep(0.5)  # the SMSC keeps throttling for a while: the peer's behaviour under test
    smsc.clear_scripts()
    reports = await prod.reports(set(ids), timeout_s=30)
    assert {r["status"]["name"] for r in reports.values()} == {"DELIVERED_TO_HANDSET"}
    throttled = {s.destination for s in smsc.submits if s.behaviour is Behaviour.THROTTLED}
    assert throttled  # they were throttled first, and still delivered


async def test_receipt_before_submit_response_still_completes(production: Any):
    async with SmscSimulator(users=SMSC_USERS, receipt_before_response=True) as smsc:
        prod: Production = await production()
        await prod.client.post("/admin/1/connectors", json=connector_body(smsc), headers=OPERATOR)
        await prod.wait_bound()
        ids = await prod.send([CH, DE], "racing receipts")
        reports = await prod.reports(set(ids))
        assert {r["status"]["name"] for r in reports.values()} == {"DELIVERED_TO_HANDSET"}
        assert smsc.receipts_sent >= 2


async def test_undeliverable_sms_after_messenger_failure_is_the_final_report(
    production: Any, smsc: SmscSimulator
):
    async with httpx.AsyncClient() as http, GraphSimulator(http) as graph:
        graph.add_page("200000000000001", "page-token", "app-secret")
        prod: Production = await production(graph_base_url=graph.base_url)
        gw = prod.server.gateway
        assert gw.applications is not None and gw.accounts is not None
        found = await gw.accounts.account_by_username(USER[0])
        assert found is not None
        app_key = "A" * 32
        await gw.applications.create_application(
            MessengerApplication(
                app_key, found[0], "app", "200000000000001", "page-token", "app-secret", "v"
            ),
            gw.clock.now(),
        )
        r = await prod.client.post(
            "/omni/1/scenarios",
            json={
                "name": "Messenger then SMS",
                "flow": [{"from": app_key, "channel": "FACEBOOK"}, {"from": "InfoSMS", "channel": "SMS"}],
                "default": True,
            },
            auth=USER,
        )
        assert r.status_code == 200, r.text
        await prod.client.post("/admin/1/connectors", json=connector_body(smsc), headers=OPERATOR)
        await prod.wait_bound()
        smsc.script_number(CH, Script(Behaviour.UNDELIVERABLE, err="001"))
        body = {
            "destinations": [{"to": {"phoneNumber": CH}}],
            "facebook": {"text": "hi"},
            "sms": {"text": "hi by SMS"},
        }
        r = await prod.client.post("/omni/1/advanced", json=body, auth=USER)
        (message_id,) = [m["messageId"] for m in json_of(r)["messages"]]
        report = (await prod.reports({message_id}))[message_id]
        assert report["channel"] == "SMS" and report["to"] == CH
        assert report["status"]["groupName"] == "UNDELIVERABLE"
        assert report["status"]["name"] == "UNDELIVERABLE_NOT_DELIVERED"
        assert graph.requests, "Messenger was tried first"
        assert [s.destination for s in smsc.submits] == [CH]


async def test_smsc_down_at_start_messages_wait_then_go_out(production: Any):
    port = free_port()
    prod: Production = await production()
    body = {
        "name": "smsc1",
        "host": "127.0.0.1",
        "port": port,
        "systemId": "gw",
        "password": "secret",
        "reconnectMinS": 0.05,
        "reconnectMaxS": 0.3,
    }
    assert (await prod.client.post("/admin/1/connectors", json=body, headers=OPERATOR)).status_code == 200
    ready = await prod.client.get("/ready")
    assert ready.status_code == 503 and json_of(ready)["checks"]["smpp:smsc1"] is False
    ids = await prod.send([CH, DE], "patience", sms={"text": "patience", "validityPeriod": 5})
    await prod.server.until_idle()  # each was tried and found the connector down
    r = await prod.client.get("/omni/1/reports", auth=prod.auth)
    assert json_of(r)["results"] == []  # waiting, not failed
    async with SmscSimulator(users=SMSC_USERS, port=port, receipt_delay_s=0.05) as smsc:
        reports = await prod.reports(set(ids), timeout_s=30)
        assert {r["status"]["name"] for r in reports.values()} == {"DELIVERED_TO_HANDSET"}
        assert {s.destination for s in smsc.submits} == {CH, DE}


async def test_connector_change_applies_without_restart(
    production: Any, smsc: SmscSimulator, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG, logger="omnirelay")
    prod: Production = await production()
    c = prod.client
    await c.post("/admin/1/connectors", json=connector_body(smsc), headers=OPERATOR)
    await prod.wait_bound()
    (first,) = await prod.send([CH], "via the first SMSC")
    await prod.reports({first})
    async with SmscSimulator(users={"gw2": "secret2"}, receipt_delay_s=0.05) as other:
        r = await c.put(
            "/admin/1/connectors/smsc1",
            json={"port": other.port, "systemId": "gw2", "password": "secret2"},
            headers=OPERATOR,
        )
        assert r.status_code == 200 and json_of(r)["port"] == other.port
        await other.wait_for(lambda: other.bound_connections == 1)
        await smsc.wait_for(lambda: smsc.bound_connections == 0)
        (second,) = await prod.send([CH], "via the second SMSC")
        report = (await prod.reports({second}))[second]
        assert report["status"]["name"] == "DELIVERED_TO_HANDSET"
        assert [s.destination for s in other.submits] == [CH]
        assert len(smsc.submits) == 1
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("omnirelay")]
    assert any("SMS configuration applied" in m for m in logged)
    assert not [m for m in logged if "secret" in m]  # bind passwords are never logged


async def test_route_to_a_second_connector_keeps_the_first_bind(production: Any, smsc: SmscSimulator):
    prod: Production = await production()
    c = prod.client
    await c.post("/admin/1/connectors", json=connector_body(smsc), headers=OPERATOR)
    await prod.wait_bound()
    async with SmscSimulator(users=SMSC_USERS, receipt_delay_s=0.05) as german:
        await c.post("/admin/1/connectors", json=connector_body(german, name="de"), headers=OPERATOR)
        for prefix, name in (("default", "smsc1"), ("49", "de")):
            r = await c.post("/admin/1/routes", json={"prefix": prefix, "connector": name}, headers=OPERATOR)
            assert r.status_code == 200, r.text
        await prod.wait_bound("de")
        ids = await prod.send([CH, DE], "routed")
        reports = await prod.reports(set(ids))
        assert {r["status"]["name"] for r in reports.values()} == {"DELIVERED_TO_HANDSET"}
        assert [s.destination for s in german.submits] == [DE]
        assert [s.destination for s in smsc.submits] == [CH]
        assert smsc.connections_total == 1  # adding a connector and routes did not rebind the first


async def test_cli_changes_reach_a_running_server(production: Any, smsc: SmscSimulator):
    """The CLI writes to the database; the server picks connectors and prices up within config_poll_s."""
    prod: Production = await production()
    env = {"OMNIRELAY_DATA_DIR": str(prod.server.settings.data_dir)}
    add = ["connectors", "add", "cli1", "--host", "127.0.0.1", "--port", str(smsc.port)]
    add += [
        "--system-id",
        "gw",
        "--password",
        "secret",
        "--reconnect-min-s",
        "0.05",
        "--reconnect-max-s",
        "1",
    ]
    for args in (add, ["prices", "set", "SMS", "0.09", "--currency", "USD"]):
        result = await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)
        assert result.exit_code == 0, result.output
    await prod.wait_bound("cli1")
    prices = prod.server.gateway.prices
    assert prices is not None
    await until(
        lambda: prices.for_destination("SMS", CH).price_per_message == 0.09, what="the price reloaded"
    )
    (message_id,) = await prod.send([CH], "configured from the CLI")
    report = (await prod.reports({message_id}))[message_id]
    assert report["status"]["name"] == "DELIVERED_TO_HANDSET"
    assert report["price"] == {"pricePerMessage": 0.09, "currency": "USD"}


# --- SMSCs as they behave in the world: ids that repeat, pauses, unreadable answers (issue 15) ------


async def logs_of(prod: Production, message_ids: list[str]) -> dict[str, dict[str, Any]]:
    query = "&".join(f"messageId={m}" for m in message_ids)
    rows = json_of(await prod.client.get(f"/omni/1/logs?{query}&limit=1000", auth=prod.auth))["results"]
    return {row["messageId"]: row for row in rows}


async def wait_recorded(prod: Production, message_ids: list[str], timeout_s: float = 10.0) -> None:
    """Until every message's send is recorded (its log shows it sent, waiting for its receipt)."""
    deadline = time.monotonic() + timeout_s
    while True:
        logs = await logs_of(prod, message_ids)
        if len(logs) == len(message_ids) and all(
            r["status"]["name"] == "PENDING_ENROUTE" for r in logs.values()
        ):
            return
        assert time.monotonic() < deadline, logs
        await asyncio.sleep(0.02)


async def test_smsc_restart_reusing_ids_under_load_matches_the_newest_sends(production: Any):
    """An SMSC that numbers from 00000001 again after a restart: the new sends reuse the ids of
    finished messages and of messages still waiting, and their receipts come before the
    `submit_sm_resp` (so before the send is recorded). Each new message is sent once and gets its
    own receipt; no old message is touched by them."""
    port = free_port()
    smsc = SmscSimulator(users=SMSC_USERS, port=port, receipt_delay_s=0.0)
    await smsc.start()
    try:
        prod: Production = await production()
        await prod.client.post("/admin/1/connectors", json=connector_body(smsc), headers=OPERATOR)
        await prod.wait_bound()
        finished = await prod.send([f"4179100{i:04d}" for i in range(20)], "before the restart")
        await prod.reports(set(finished))
        smsc.paused = True  # these get ids 00000021.. and wait for receipts that never come
        waiting = await prod.send([f"4179200{i:04d}" for i in range(20)], "lost in the restart")
        await wait_recorded(prod, waiting)
    finally:
        await smsc.stop()
    assert [s.message_id for s in smsc.submits[:3]] == ["00000001", "00000002", "00000003"]

    # each receipt comes 0.2 s before its submit_sm_resp: it is in the inbox before the send is recorded
    async with SmscSimulator(
        users=SMSC_USERS, port=port, receipt_before_response=True, response_delay_s=0.2
    ) as restarted:
        await prod.wait_bound()
        fresh = await prod.send([f"4179300{i:04d}" for i in range(100)], "after the restart")
        reports = await prod.reports(set(fresh), timeout_s=30)
        assert {r["status"]["name"] for r in reports.values()} == {"DELIVERED_TO_HANDSET"}
        # ids 00000001..00000100 again: the first 40 were the old messages'
        assert {s.message_id for s in restarted.submits} == {f"{i:08d}" for i in range(1, 101)}
        assert len(restarted.submits) == 100  # none sent twice
        await prod.no_more_reports(restarted)  # the waiting ones got nothing from the new receipts
    logs = await logs_of(prod, finished + waiting)
    assert {logs[m]["status"]["name"] for m in waiting} == {"PENDING_ENROUTE"}
    assert all(a.get("lateDelivery") is None for m in finished for a in logs[m]["attempts"])


async def test_two_smscs_with_overlapping_ids_each_receipt_reaches_its_own_message(production: Any):
    prod: Production = await production()
    c = prod.client
    async with (
        SmscSimulator(users=SMSC_USERS, receipt_delay_s=0.02) as swiss,
        SmscSimulator(users=SMSC_USERS, receipt_delay_s=0.02) as german,
    ):
        german.script_suffix("", Script(Behaviour.UNDELIVERABLE, err="001"))
        await c.post("/admin/1/connectors", json=connector_body(swiss), headers=OPERATOR)
        await c.post("/admin/1/connectors", json=connector_body(german, name="de"), headers=OPERATOR)
        for prefix, name in (("default", "smsc1"), ("49", "de")):
            r = await c.post("/admin/1/routes", json={"prefix": prefix, "connector": name}, headers=OPERATOR)
            assert r.status_code == 200, r.text
        await prod.wait_bound()
        await prod.wait_bound("de")
        ch_ids = await prod.send([f"4179400{i:04d}" for i in range(30)], "to Switzerland")
        de_ids = await prod.send([f"4915100{i:04d}" for i in range(30)], "to Germany")
        reports = await prod.reports(set(ch_ids + de_ids))
        assert {reports[m]["status"]["name"] for m in ch_ids} == {"DELIVERED_TO_HANDSET"}
        assert {reports[m]["status"]["name"] for m in de_ids} == {"UNDELIVERABLE_NOT_DELIVERED"}
        ids = {f"{i:08d}" for i in range(1, 31)}
        assert {s.message_id for s in swiss.submits} == ids == {s.message_id for s in german.submits}
        assert len(swiss.submits) == len(german.submits) == 30
        await prod.no_more_reports(swiss, german)


async def test_a_paused_connector_does_not_spend_the_tries_of_the_messages_behind_it(
    production: Any, smsc: SmscSimulator
):
    prod: Production = await production()
    await prod.client.post("/admin/1/connectors", json=connector_body(smsc), headers=OPERATOR)
    await prod.wait_bound()
    slow = "41793020058"
    smsc.script_number(slow, Script(Behaviour.THROTTLED))
    (throttled,) = await prod.send([slow], "throttled")
    await smsc.wait_for(lambda: any(s.behaviour is Behaviour.THROTTLED for s in smsc.submits))
    started = time.monotonic()
    behind = await prod.send([f"4179500{i:04d}" for i in range(20)], "held back by the pause")
    reports = await prod.reports(set(behind), timeout_s=20)
    assert {r["status"]["name"] for r in reports.values()} == {"DELIVERED_TO_HANDSET"}
    assert time.monotonic() - started < 10  # pauses of 1 s, not a per-message backoff (up to 25 s)
    gw = prod.server.gateway
    assert gw.engine is not None
    async with gw.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(messages.c.message_id, attempts.c.tries).join(
                    attempts, attempts.c.message_pk == messages.c.id
                )
            )
        ).all()
        (throttled_tries,) = (
            await conn.execute(select(messages.c.tries).where(messages.c.message_id == throttled))
        ).one()
    tries = {r.message_id: r.tries for r in rows}
    assert {tries[m] for m in behind} == {1}  # held back, not tried: one try, the one that went out
    assert throttled_tries >= 1  # the throttled one itself backs off with its tries
    smsc.clear_scripts()


async def test_unreadable_submit_response_is_accepted_once_not_resubmitted(
    production: Any, smsc: SmscSimulator
):
    prod: Production = await production()
    await prod.client.post("/admin/1/connectors", json=connector_body(smsc), headers=OPERATOR)
    await prod.wait_bound()
    smsc.script_number(CH, Script(Behaviour.UNREADABLE_RESPONSE))
    (message_id,) = await prod.send([CH], "the SMSC has it")
    report = (await prod.reports({message_id}))[message_id]
    assert report["status"]["name"] == "DELIVERED_TO_OPERATOR"
    assert report["messageCount"] == 1
    await smsc.wait_for(lambda: smsc.receipts_sent == 1)  # its receipt matches nothing: acknowledged
    await smsc.wait_for(lambda: len(smsc.receipt_acks) == 1)
    await prod.no_more_reports(smsc)
    assert [s.destination for s in smsc.submits] == [CH]  # submitted once


async def test_rejected_at_submit_report_and_log_agree(production: Any, smsc: SmscSimulator):
    prod: Production = await production()
    await prod.client.post("/admin/1/connectors", json=connector_body(smsc), headers=OPERATOR)
    await prod.wait_bound()
    smsc.script_number(CH, Script(Behaviour.INVALID_DESTINATION))
    (message_id,) = await prod.send([CH], "nobody there")
    report = (await prod.reports({message_id}))[message_id]
    assert report["status"]["name"] == "REJECTED_DESTINATION"
    log = (await logs_of(prod, [message_id]))[message_id]
    fields = ("messageCount", "sentAt", "doneAt", "price")
    assert {k: log[k] for k in fields} == {k: report[k] for k in fields}
    assert report["messageCount"] == 1


async def test_with_no_connector_anywhere_an_sms_ends_without_a_route(production: Any):
    """No node binds anything because none is configured: the SMS step is still claimed, and ends
    with no route (docs/architecture.md#smpp-binds), rather than waiting for a bind that never comes."""
    prod: Production = await production()
    (message_id,) = await prod.send([CH], "nowhere to go")
    report = (await prod.reports({message_id}))[message_id]
    assert report["status"]["name"] == "REJECTED_ROUTE_NOT_AVAILABLE"
