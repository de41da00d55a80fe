"""The Graph API simulator itself, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import socket
from collections.abc import AsyncIterator, Generator
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from omnirelay.sandbox.graph import GraphSimulator, SimulatedPage, SimulatedUser, run_graph

PAGE = "104857600000001"
TOKEN = "EAAB-page-token-simulated"
SECRET = "simulated-app-secret"
OTHER_PAGE = "104857600000002"
OTHER_TOKEN = "EAAB-other-token"
PSID = "6001000000000001"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Receiver:
    """A small webhook endpoint: records what arrives, can fail the first N posts."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail_next = 0
        self.failed = 0
        self.url = ""
        app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])
        self._server = _Server(
            uvicorn.Config(app, log_config=None, lifespan="off", ws="none", access_log=False)
        )
        self._task: asyncio.Task[None] | None = None

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        if self.fail_next > 0:
            self.fail_next -= 1
            self.failed += 1
            return PlainTextResponse("down", status_code=503)
        self.received.append((dict(request.headers), body))
        return PlainTextResponse("EVENT_RECEIVED")

    async def start(self) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.005)  # polling for a condition, under a deadline

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for _, raw in self.received]

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [m for b in self.bodies() for e in b["entry"] for m in e["messaging"] if kind in m]


# One simulator, receiver and client for the module (starting and stopping uvicorn costs ~0.2 s);
# each test gets them reset.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as c:
        yield c


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def shared_receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def shared_graph(client: httpx.AsyncClient) -> AsyncIterator[GraphSimulator]:
    async with GraphSimulator(
        client, delivery_delay_s=0.01, read_delay_s=0.01, webhook_retry_delays_s=(0.02, 0.05)
    ) as g:
        yield g


@pytest_asyncio.fixture(loop_scope="module")
async def receiver(shared_receiver: Receiver) -> Receiver:
    shared_receiver.received.clear()
    shared_receiver.fail_next = shared_receiver.failed = 0
    return shared_receiver


@pytest_asyncio.fixture(loop_scope="module")
async def graph(shared_graph: GraphSimulator, receiver: Receiver) -> AsyncIterator[GraphSimulator]:
    await shared_graph.reset()
    shared_graph.add_page(PAGE, TOKEN, SECRET, receiver.url)
    shared_graph.add_page(OTHER_PAGE, OTHER_TOKEN, "other-secret")
    shared_graph.add_user(PAGE, PSID, phone_number="+41 79 302 67 27")
    yield shared_graph
    await shared_graph.reset()


def text_body(recipient: dict[str, str], text: str = "Hello", **extra: Any) -> dict[str, Any]:
    return {
        "recipient": recipient,
        "messaging_type": "UPDATE",
        "message": {"text": text, "metadata": "gw-1"},
        **extra,
    }


async def send(
    client: httpx.AsyncClient,
    graph: GraphSimulator,
    body: dict[str, Any],
    *,
    token: str | None = TOKEN,
    node: str = PAGE,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await client.post(
        f"{graph.base_url}/v25.0/{node}/messages", json=body, headers=headers, params=params
    )


def error_of(response: httpx.Response) -> tuple[int, int | None]:
    error = response.json()["error"]
    assert error["fbtrace_id"] and error["message"] and error["type"]
    return error["code"], error.get("error_subcode")


def signed_by(secret: str, headers: dict[str, str], raw: bytes) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["x-hub-signature-256"], expected)


# --- Send API ----------------------------------------------------------------------------------


async def test_send_to_known_psid_is_answered_and_recorded(
    client: httpx.AsyncClient, graph: GraphSimulator
) -> None:
    response = await send(client, graph, text_body({"id": PSID}))
    assert response.status_code == 200
    answer = response.json()
    assert answer["recipient_id"] == PSID
    assert answer["message_id"].startswith("m_")
    (record,) = graph.requests
    assert (record.page_id, record.recipient, record.http_status) == (PAGE, {"id": PSID}, 200)
    assert record.body is not None and record.body["message"]["text"] == "Hello"
    second = await send(client, graph, text_body({"id": PSID}))
    assert second.json()["message_id"] != answer["message_id"]


async def test_me_path_and_token_in_query(client: httpx.AsyncClient, graph: GraphSimulator) -> None:
    response = await send(
        client, graph, text_body({"id": PSID}), token=None, node="me", params={"access_token": TOKEN}
    )
    assert response.status_code == 200
    assert graph.requests[0].page_id == PAGE


async def test_wrong_or_missing_token(client: httpx.AsyncClient, graph: GraphSimulator) -> None:
    wrong = await send(client, graph, text_body({"id": PSID}), token="not-a-token")
    assert wrong.status_code == 400
    assert error_of(wrong) == (190, None)
    other_page = await send(client, graph, text_body({"id": PSID}), token=OTHER_TOKEN)
    assert error_of(other_page) == (190, None)
    missing = await send(client, graph, text_body({"id": PSID}), token=None)
    assert error_of(missing)[0] == 104
    assert TOKEN not in wrong.text + other_page.text


async def test_appsecret_proof(client: httpx.AsyncClient, graph: GraphSimulator) -> None:
    good = hmac.new(SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()
    ok = await send(client, graph, text_body({"id": PSID}), params={"appsecret_proof": good})
    assert ok.status_code == 200
    bad = await send(client, graph, text_body({"id": PSID}), params={"appsecret_proof": "0" * 64})
    assert error_of(bad) == (100, None)
    graph.add_page(PAGE, TOKEN, SECRET, None, require_appsecret_proof=True)
    missing = await send(client, graph, text_body({"id": PSID}))
    assert error_of(missing) == (100, None)


async def test_unknown_psid_is_no_matching_user(client: httpx.AsyncClient, graph: GraphSimulator) -> None:
    response = await send(client, graph, text_body({"id": "999"}))
    assert error_of(response) == (100, 2018001)
    assert "No matching user found" in response.json()["error"]["message"]


async def test_phone_number_recipient(client: httpx.AsyncClient, graph: GraphSimulator) -> None:
    matched = await send(client, graph, text_body({"phone_number": "+41793026727"}))
    assert matched.status_code == 200
    assert "recipient_id" not in matched.json()
    assert matched.json()["message_id"].startswith("m_")
    unmatched = await send(client, graph, text_body({"phone_number": "+41790000000"}))
    assert error_of(unmatched) == (100, 2018001)


async def test_page_without_customer_matching_refuses_phone_sends_only(
    client: httpx.AsyncClient, graph: GraphSimulator
) -> None:
    graph.set_customer_matching(PAGE, False)
    refused = await send(client, graph, text_body({"phone_number": "+41793026727"}))
    assert error_of(refused) == (200, 2018027)
    assert "Customer Matching" in refused.json()["error"]["message"]
    assert (await send(client, graph, text_body({"id": PSID}))).status_code == 200
    graph.set_customer_matching(PAGE, True)
    assert (await send(client, graph, text_body({"phone_number": "+41793026727"}))).status_code == 200


async def test_outside_the_window(client: httpx.AsyncClient, graph: GraphSimulator) -> None:
    graph.set_outside_window(PAGE, PSID)
    refused = await send(client, graph, text_body({"id": PSID}))
    assert error_of(refused) == (10, 2018278)
    tagged = await send(
        client,
        graph,
        {**text_body({"id": PSID}), "messaging_type": "MESSAGE_TAG", "tag": "ACCOUNT_UPDATE"},
    )
    assert tagged.status_code == 200
    retired = await send(
        client,
        graph,
        {**text_body({"id": PSID}), "messaging_type": "MESSAGE_TAG", "tag": "SHIPPING_UPDATE"},
    )
    assert error_of(retired) == (100, None)  # a tag Meta retired on 2020-03-04
    await graph.user_sends(PAGE, PSID, text="I'm back")  # reopens the window
    assert (await send(client, graph, text_body({"id": PSID}))).status_code == 200


@pytest.mark.parametrize(
    ("body", "subcode"),
    [
        ({"messaging_type": "UPDATE", "message": {"text": "x"}}, None),
        ({"recipient": {}, "messaging_type": "UPDATE", "message": {"text": "x"}}, None),
        ({"recipient": {"id": PSID}, "messaging_type": "UPDATE"}, None),
        ({"recipient": {"id": PSID}, "message": {"text": "x"}}, None),
        ({"recipient": {"id": PSID}, "messaging_type": "SOMETIMES", "message": {"text": "x"}}, None),
        ({"recipient": {"id": PSID}, "messaging_type": "MESSAGE_TAG", "message": {"text": "x"}}, None),
        ({"recipient": {"id": PSID}, "messaging_type": "UPDATE", "message": {}}, 2018034),
        ({"recipient": {"id": PSID}, "messaging_type": "UPDATE", "message": {"text": ""}}, 2018034),
        ({"recipient": {"id": PSID}, "messaging_type": "UPDATE", "message": {"text": "x" * 2001}}, None),
        ({"recipient": {"id": PSID}, "sender_action": "dance"}, None),
        ({"recipient": {"id": PSID}, "sender_action": "typing_on", "message": {"text": "x"}}, None),
        (
            {
                "recipient": {"id": PSID},
                "messaging_type": "UPDATE",
                "message": {"attachment": {"type": "image", "payload": {"url": "ftp://x/a.png"}}},
            },
            None,
        ),
        (
            {
                "recipient": {"id": PSID},
                "messaging_type": "UPDATE",
                "message": {
                    "attachment": {
                        "type": "template",
                        "payload": {
                            "template_type": "button",
                            "text": "t",
                            "buttons": [{"type": "web_url", "title": "t", "url": "www.example.com"}],
                        },
                    }
                },
            },
            None,
        ),
    ],
)
async def test_invalid_bodies_are_code_100(
    client: httpx.AsyncClient, graph: GraphSimulator, body: dict[str, Any], subcode: int | None
) -> None:
    response = await send(client, graph, body)
    assert response.status_code == 400
    assert error_of(response) == (100, subcode)
    assert graph.requests[-1].http_status == 400


async def test_media_and_template_bodies_are_accepted(
    client: httpx.AsyncClient, graph: GraphSimulator
) -> None:
    media = {
        "attachment": {"type": "video", "payload": {"url": "https://x.example/v.mp4", "is_reusable": True}}
    }
    answer = await send(
        client, graph, {"recipient": {"id": PSID}, "messaging_type": "UPDATE", "message": media}
    )
    assert answer.status_code == 200
    assert "attachment_id" in answer.json()
    template = {
        "attachment": {
            "type": "template",
            "payload": {
                "template_type": "button",
                "text": "What next?",
                "buttons": [
                    {"type": "web_url", "url": "https://example.com", "title": "Open"},
                    {"type": "postback", "title": "Talk to us", "payload": "TALK"},
                ],
            },
        }
    }
    ok = await send(
        client, graph, {"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": template}
    )
    assert ok.status_code == 200


async def test_scripted_error_n_times_then_success(client: httpx.AsyncClient, graph: GraphSimulator) -> None:
    graph.script_error(PAGE, PSID, code=1200, times=2, message="(#1200) Temporary send message failure")
    first = await send(client, graph, text_body({"id": PSID}))
    second = await send(client, graph, text_body({"id": PSID}))
    third = await send(client, graph, text_body({"id": PSID}))
    assert [error_of(first), error_of(second)] == [(1200, None), (1200, None)]
    assert third.status_code == 200


async def test_scripted_error_forever_with_headers_and_status(
    client: httpx.AsyncClient, graph: GraphSimulator
) -> None:
    usage = json.dumps(
        {"1": [{"type": "messenger", "call_count": 100, "estimated_time_to_regain_access": 5}]}
    )
    graph.script_error(
        PAGE,
        PSID,
        code=80006,
        http_status=429,
        headers={"X-Business-Use-Case-Usage": usage},
        is_transient=True,
    )
    for _ in range(3):
        response = await send(client, graph, text_body({"id": PSID}))
        assert response.status_code == 429
        assert error_of(response) == (80006, None)
        assert response.json()["error"]["is_transient"] is True
        assert json.loads(response.headers["x-business-use-case-usage"]) == json.loads(usage)
    graph.clear_scripts()
    assert (await send(client, graph, text_body({"id": PSID}))).status_code == 200


async def test_scripted_error_for_a_phone_number(client: httpx.AsyncClient, graph: GraphSimulator) -> None:
    graph.script_error(PAGE, "+15550001111", code=200, subcode=2018027, times=1)
    response = await send(client, graph, text_body({"phone_number": "+1 (555) 000-1111"}))
    assert error_of(response) == (200, 2018027)


async def test_slow_mode(client: httpx.AsyncClient, graph: GraphSimulator) -> None:
    graph.set_slow(2.0)
    with pytest.raises(httpx.ReadTimeout):
        await client.post(
            f"{graph.base_url}/v25.0/{PAGE}/messages",
            json=text_body({"id": PSID}),
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=0.1,
        )
    graph.set_slow(0)
    assert (await send(client, graph, text_body({"id": PSID}))).status_code == 200


async def test_server_error_mode_n_times(client: httpx.AsyncClient, graph: GraphSimulator) -> None:
    graph.fail_with_server_error(times=2)
    statuses = [(await send(client, graph, text_body({"id": PSID}))).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]


async def test_server_error_mode_for_a_while(client: httpx.AsyncClient, graph: GraphSimulator) -> None:
    graph.fail_with_server_error(duration_s=0.2, http_status=503)
    assert (await send(client, graph, text_body({"id": PSID}))).status_code == 503
    await asyncio.sleep(0.25)  # the failing spell lasts 0.2 s of real time: the behaviour under test
    assert (await send(client, graph, text_body({"id": PSID}))).status_code == 200


# --- webhooks ----------------------------------------------------------------------------------


async def test_signed_delivery_webhook_follows_a_send(
    client: httpx.AsyncClient, graph: GraphSimulator, receiver: Receiver
) -> None:
    mid = (await send(client, graph, text_body({"id": PSID}))).json()["message_id"]
    await graph.settle()
    (headers, raw) = receiver.received[0]
    assert signed_by(SECRET, headers, raw)
    body = json.loads(raw)
    assert body["object"] == "page"
    assert body["entry"][0]["id"] == PAGE
    (delivery,) = receiver.events("delivery")
    assert delivery["sender"] == {"id": PSID}
    assert delivery["recipient"] == {"id": PAGE}
    assert delivery["delivery"]["mids"] == [mid]
    assert isinstance(delivery["delivery"]["watermark"], int)
    assert receiver.events("read") == []
    assert receiver.events("message") == []


async def test_echo_and_read_webhooks_when_enabled(
    client: httpx.AsyncClient, graph: GraphSimulator, receiver: Receiver
) -> None:
    graph.send_echoes = True
    graph.send_reads = True
    mid = (await send(client, graph, text_body({"id": PSID}))).json()["message_id"]
    await graph.settle()
    kinds = [
        next(k for k in ("message", "delivery", "read") if k in m)
        for b in receiver.bodies()
        for m in b["entry"][0]["messaging"]
    ]
    assert kinds == ["message", "delivery", "read"]
    (echo,) = receiver.events("message")
    assert echo["sender"] == {"id": PAGE} and echo["recipient"] == {"id": PSID}
    assert echo["message"]["is_echo"] is True
    assert (echo["message"]["mid"], echo["message"]["metadata"]) == (mid, "gw-1")
    (read,) = receiver.events("read")
    assert read["read"]["watermark"] == receiver.events("delivery")[0]["delivery"]["watermark"]


async def test_never_deliver_sends_no_delivery(
    client: httpx.AsyncClient, graph: GraphSimulator, receiver: Receiver
) -> None:
    graph.set_never_deliver(PAGE, PSID)
    assert (await send(client, graph, text_body({"id": PSID}))).status_code == 200
    await graph.settle()  # every webhook the send scheduled has been posted
    assert graph.pending == 0
    assert receiver.received == []


async def test_sender_action_answers_recipient_only_and_sends_no_webhook(
    client: httpx.AsyncClient, graph: GraphSimulator, receiver: Receiver
) -> None:
    response = await send(client, graph, {"recipient": {"id": PSID}, "sender_action": "mark_seen"})
    assert response.json() == {"recipient_id": PSID}
    await graph.settle()
    assert receiver.received == []


async def test_sends_by_phone_number_or_user_ref_post_no_webhook(
    client: httpx.AsyncClient, graph: GraphSimulator, receiver: Receiver
) -> None:
    # Meta: since 2018-02-19 no message_deliveries / message_echoes for these recipients
    graph.send_echoes = True
    graph.send_reads = True
    by_phone = await send(client, graph, text_body({"phone_number": "+41793026727"}))
    assert by_phone.status_code == 200 and "recipient_id" not in by_phone.json()
    await graph.user_optin(PAGE, user_ref="checkbox-ref-1")
    optins = len(receiver.received)
    by_ref = await send(client, graph, text_body({"user_ref": "checkbox-ref-1"}))
    assert by_ref.status_code == 200
    assert set(by_ref.json()) == {"message_id"}
    await graph.settle()
    assert len(receiver.received) == optins == 1  # the opt-in only
    # the same person by PSID: echo, delivery and read
    assert (await send(client, graph, text_body({"id": PSID}))).status_code == 200
    await graph.settle()
    assert len(receiver.received) == 4


async def test_unknown_user_ref_is_no_matching_user(client: httpx.AsyncClient, graph: GraphSimulator) -> None:
    response = await send(client, graph, text_body({"user_ref": "never-opted-in"}))
    assert error_of(response) == (100, 2018001)


async def test_failed_webhooks_are_retried(
    client: httpx.AsyncClient, graph: GraphSimulator, receiver: Receiver
) -> None:
    receiver.fail_next = 2
    await send(client, graph, text_body({"id": PSID}))
    await graph.settle()
    assert receiver.failed == 2
    assert len(receiver.events("delivery")) == 1
    (record,) = graph.webhooks
    assert (record.attempts, record.http_status, record.delivered) == (3, 200, True)


async def test_webhooks_give_up_after_the_retries(
    client: httpx.AsyncClient, graph: GraphSimulator, receiver: Receiver
) -> None:
    receiver.fail_next = 10
    await send(client, graph, text_body({"id": PSID}))
    await graph.settle()
    (record,) = graph.webhooks
    assert (record.attempts, record.http_status, record.delivered) == (3, 503, False)


# --- scripted people ---------------------------------------------------------------------------


async def test_a_new_person_writes_to_the_page(
    client: httpx.AsyncClient, graph: GraphSimulator, receiver: Receiver
) -> None:
    inbound = await graph.user_sends(PAGE, text="Hi there", phone_number="+385 91 000 0000")
    assert inbound.psid and inbound.psid != PSID
    assert inbound.webhook is not None and inbound.webhook.delivered
    (headers, raw) = receiver.received[0]
    assert signed_by(SECRET, headers, raw)
    (message,) = receiver.events("message")
    assert message["sender"] == {"id": inbound.psid}
    assert message["message"] == {"mid": inbound.mid, "text": "Hi there"}
    # now Meta knows the person, by PSID and by phone number
    assert (await send(client, graph, text_body({"id": inbound.psid}))).status_code == 200
    by_phone = await send(client, graph, text_body({"phone_number": "+385910000000"}))
    assert by_phone.status_code == 200


async def test_attachments_postback_optin_and_referral(graph: GraphSimulator, receiver: Receiver) -> None:
    await graph.user_sends(PAGE, PSID, text=None, attachments=[("image", "https://cdn.example/p.png")])
    postback = await graph.user_postback(
        PAGE, title="Get Started", payload="GET_STARTED", referral_ref="ad-1"
    )
    checkbox = await graph.user_optin(PAGE, ref="order-7", user_ref="uref-42")
    plugin = await graph.user_optin(PAGE, PSID, ref="data-ref")
    await graph.user_referral(PAGE, PSID, ref="summer")
    (message,) = receiver.events("message")
    assert message["message"]["attachments"] == [
        {"type": "image", "payload": {"url": "https://cdn.example/p.png"}}
    ]
    (pb,) = receiver.events("postback")
    assert pb["sender"] == {"id": postback.psid}
    assert pb["postback"]["payload"] == "GET_STARTED"
    assert pb["postback"]["referral"]["ref"] == "ad-1"
    optins = receiver.events("optin")
    assert checkbox.psid is None and "sender" not in optins[0]
    assert optins[0]["optin"] == {"ref": "order-7", "user_ref": "uref-42"}
    assert optins[1]["sender"] == {"id": plugin.psid} and plugin.psid == PSID
    (referral,) = receiver.events("referral")
    assert referral["referral"]["ref"] == "summer"
    for headers, raw in receiver.received:
        assert signed_by(SECRET, headers, raw)


async def test_pages_without_webhook_url_post_nothing(
    client: httpx.AsyncClient, graph: GraphSimulator
) -> None:
    graph.add_user(OTHER_PAGE, "42")
    assert (
        await send(client, graph, text_body({"id": "42"}), token=OTHER_TOKEN, node=OTHER_PAGE)
    ).status_code == 200
    await graph.settle()
    assert graph.webhooks == []
    assert (await graph.user_sends(OTHER_PAGE, "42")).webhook is None


async def test_run_graph_standalone(client: httpx.AsyncClient) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    task = asyncio.create_task(
        run_graph(
            "127.0.0.1",
            port,
            pages=[SimulatedPage(PAGE, TOKEN, SECRET)],
            users=[SimulatedUser(PAGE, PSID)],
        )
    )
    try:
        for _ in range(200):
            try:
                response = await client.post(
                    f"http://127.0.0.1:{port}/v25.0/me/messages",
                    json=text_body({"id": PSID}),
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.01)  # polling for a condition, under a deadline
        assert response.status_code == 200
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
