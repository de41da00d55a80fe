"""Meta's webhook end to end: a sandbox server, its Graph simulator playing Meta and people, and a
customer `webhookUrl` receiver on a real socket."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

import pytest

from omnirelay import sandbox_data as sb
from omnirelay.channels.messenger.errors import find_rule
from omnirelay.sandbox.graph import GraphSimulator
from tests.e2e.conftest import BASIC, RunningServer, json_of
from tests.e2e.receiver import Receiver

pytestmark = pytest.mark.timeout(60)

HOOK = f"/webhooks/facebook/{sb.APP_KEY}"
APP = f"/facebook/1/applications/{sb.APP_KEY}"


def graph(server: RunningServer) -> GraphSimulator:
    simulator = server.gateway.graph_simulator
    assert simulator is not None
    return simulator


def sign(raw: bytes, secret: str = sb.APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def now_ms() -> int:
    return int(time.time() * 1000)


async def forward_to(server: RunningServer, url: str) -> None:
    response = await server.client.put(APP, headers=BASIC, json={"webhookUrl": url})
    assert response.status_code == 200, response.text


async def user_keys(server: RunningServer) -> list[str]:
    response = await server.client.get(f"{APP}/users?limit=1000", headers=BASIC)
    assert response.status_code == 200, response.text
    return [u["key"] for u in json_of(response)]


async def status_of(server: RunningServer, message_id: str) -> str:
    response = await server.client.get(f"/facebook/1/logs?messageId={message_id}", headers=BASIC)
    (row,) = json_of(response)["results"]
    name: str = row["status"]["name"]
    return name


async def wait_status(server: RunningServer, message_id: str, name: str, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while (current := await status_of(server, message_id)) != name:
        assert time.monotonic() < deadline, f"{message_id} is {current}, not {name}"
        await asyncio.sleep(0.05)  # polling for a condition, under a deadline


async def final_report(server: RunningServer, message_id: str, timeout_s: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = json_of(await server.client.get(f"/facebook/1/reports?messageId={message_id}", headers=BASIC))
        if rows["results"]:
            (row,) = rows["results"]
            return row  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)  # polling for a condition, under a deadline
    raise AssertionError(f"no report for {message_id}")


async def send_text(server: RunningServer, text: str = "Hello") -> str:
    response = await server.client.post(
        "/facebook/1/single",
        headers=BASIC,
        json={"from": sb.APP_KEY, "to": sb.USER_KEY, "message": {"type": "TEXT", "text": text}},
    )
    assert response.status_code == 200, response.text
    message_id: str = json_of(response)["messageId"]
    return message_id


# --- verification -------------------------------------------------------------------------------


async def test_verification_challenge_needs_the_right_token(server: RunningServer) -> None:
    ok = await server.client.get(
        HOOK,
        params={"hub.mode": "subscribe", "hub.verify_token": sb.VERIFY_TOKEN, "hub.challenge": "1158201444"},
    )
    assert ok.status_code == 200
    assert ok.text == "1158201444"
    assert ok.headers["content-type"].startswith("text/plain")
    wrong = await server.client.get(
        HOOK, params={"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1158201444"}
    )
    assert wrong.status_code == 403
    assert "1158201444" not in wrong.text
    mode = await server.client.get(
        HOOK, params={"hub.mode": "unsubscribe", "hub.verify_token": sb.VERIFY_TOKEN, "hub.challenge": "1"}
    )
    assert mode.status_code == 403
    unknown = await server.client.get(
        "/webhooks/facebook/0000000000000000000000000000DEAD",
        params={"hub.mode": "subscribe", "hub.verify_token": sb.VERIFY_TOKEN, "hub.challenge": "1"},
    )
    assert unknown.status_code == 404


# --- signatures ---------------------------------------------------------------------------------


async def test_forged_or_missing_signature_is_403_and_nothing_happens(server: RunningServer) -> None:
    async with Receiver() as receiver:
        await forward_to(server, receiver.url)
        before = await user_keys(server)
        stamp = now_ms()
        raw = json.dumps(
            {
                "object": "page",
                "entry": [
                    {
                        "id": sb.PAGE_ID,
                        "time": stamp,
                        "messaging": [
                            {
                                "sender": {"id": "7777777"},
                                "recipient": {"id": sb.PAGE_ID},
                                "timestamp": stamp,
                                "message": {"mid": "m_forged", "text": "let me in"},
                            }
                        ],
                    }
                ],
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        for signature in (sign(raw, "not-the-secret"), None, "sha1=" + "0" * 40, sign(raw + b" ")):
            extra = {"X-Hub-Signature-256": signature} if signature else {}
            response = await server.client.post(HOOK, content=raw, headers={**headers, **extra})
            assert response.status_code == 403, (signature, response.text)
            assert json_of(response)["requestError"]["serviceException"]["messageId"] == "FORBIDDEN"
        unknown = await server.client.post(
            "/webhooks/facebook/0000000000000000000000000000DEAD",
            content=raw,
            headers={**headers, "X-Hub-Signature-256": sign(raw)},
        )
        assert unknown.status_code == 404
        await server.until_idle()  # a wrongly queued forward has been posted by now
        assert receiver.attempts == 0
        assert await user_keys(server) == before
        # the genuine signature over the same bytes is accepted, and the event was not marked seen
        good = await server.client.post(
            HOOK, content=raw, headers={**headers, "X-Hub-Signature-256": sign(raw)}
        )
        assert good.status_code == 200, good.text
        results = await receiver.wait_for(2)
        assert [r["message"]["type"] for r in results] == ["REGISTRATION", "TEXT"]


async def test_signed_garbage_is_a_400(server: RunningServer) -> None:
    raw = b'{"object": "page", "entry": "nope"}'
    response = await server.client.post(HOOK, content=raw, headers={"X-Hub-Signature-256": sign(raw)})
    assert response.status_code == 400
    assert json_of(response)["requestError"]["serviceException"]["messageId"] == "BAD_REQUEST"


# --- registrations and forwarding ---------------------------------------------------------------


async def test_a_person_writing_registers_once_and_is_forwarded(server: RunningServer) -> None:
    async with Receiver() as receiver:
        await forward_to(server, receiver.url)
        before = set(await user_keys(server))
        first = await graph(server).user_sends(sb.PAGE_ID, text="Hi there")
        assert first.webhook is not None and first.webhook.http_status == 200
        registration, text = await receiver.wait_for(2)
        assert registration["message"] == {"type": "REGISTRATION"}
        assert text["message"] == {"type": "TEXT", "text": "Hi there"}
        user_key = text["from"]
        assert registration["from"] == user_key and text["to"] == sb.APP_KEY
        assert text["receivedAt"].endswith("+0000") and len(text["receivedAt"]) == 28
        assert receiver.bodies[0]["messageCount"] == 2 and receiver.bodies[0]["pendingMessageCount"] == 0
        assert set(await user_keys(server)) == before | {user_key}
        one = await server.client.get(f"{APP}/users/{user_key}", headers=BASIC)
        assert json_of(one) == {"key": user_key, "integrationType": "FACEBOOK"}

        # the same person again, with a picture: no second registration, same user key
        await graph(server).user_sends(
            sb.PAGE_ID, first.psid, text=None, attachments=[("image", "https://example.com/cat.png")]
        )
        results = await receiver.wait_for(3)
        assert results[2] == {
            "from": user_key,
            "to": sb.APP_KEY,
            "receivedAt": results[2]["receivedAt"],
            "message": {"type": "IMAGE", "url": "https://example.com/cat.png"},
            "price": {"pricePerMessage": 0, "currency": "EUR"},
        }
        assert set(await user_keys(server)) == before | {user_key}


async def test_a_chat_plugin_guest_in_a_batch_is_skipped_and_the_rest_kept(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.e2e.test_metrics import scrape, value

    counter = "omnirelay_messenger_webhook_skipped_total"
    skipped_before = value(await scrape(server), counter, kind="message")
    async with Receiver() as receiver:
        await forward_to(server, receiver.url)
        before = set(await user_keys(server))
        stamp = now_ms()
        guest = {  # Meta: a chat plugin guest's sender has a user_ref and no PSID
            "sender": {"user_ref": "guest-7f3a"},
            "recipient": {"id": sb.PAGE_ID},
            "timestamp": stamp,
            "message": {"mid": "m_guest_1", "text": "from the website"},
        }
        person = {
            "sender": {"id": "2000000000000555"},
            "recipient": {"id": sb.PAGE_ID},
            "timestamp": stamp,
            "message": {"mid": "m_person_1", "text": "from Messenger"},
        }
        record = await graph(server).post_event(sb.PAGE_ID, guest, person)
        assert record is not None and record.http_status == 200  # the batch is accepted
        registration, text = await receiver.wait_for(2)
        assert [registration["message"]["type"], text["message"]] == [
            "REGISTRATION",
            {"type": "TEXT", "text": "from Messenger"},
        ]
        assert len(set(await user_keys(server)) - before) == 1  # the person only, not the guest
    assert value(await scrape(server), counter, kind="message") == skipped_before + 1
    assert any("user_ref" in r.getMessage() and "skipped" in r.getMessage() for r in caplog.records)


async def test_a_failing_receiver_gets_the_forward_later(server: RunningServer) -> None:
    async with Receiver(fail_first=2) as receiver:
        await forward_to(server, receiver.url)
        await graph(server).user_sends(sb.PAGE_ID, sb.PSID, text="are you there?")
        (result,) = await receiver.wait_for(1, timeout_s=20)
        assert result["message"] == {"type": "TEXT", "text": "are you there?"}
        assert result["from"] == sb.USER_KEY  # the sandbox's registered user: no registration
        assert receiver.attempts == 3
        await server.until_idle()  # a wrongly queued forward has been posted by now
        assert len(receiver.bodies) == 1


async def test_meta_retrying_the_same_event_is_processed_once(server: RunningServer) -> None:
    async with Receiver() as receiver:
        await forward_to(server, receiver.url)
        before = await user_keys(server)
        event = {
            "sender": {"id": "8888888"},
            "recipient": {"id": sb.PAGE_ID},
            "timestamp": now_ms(),
            "message": {"mid": "m_dup_1", "text": "once"},
        }
        graph(server).add_user(sb.PAGE_ID, "8888888")
        for _ in range(3):
            record = await graph(server).post_event(sb.PAGE_ID, event)
            assert record is not None and record.http_status == 200
        results = await receiver.wait_for(2)
        await server.until_idle()  # a wrongly queued forward has been posted by now
        assert [r["message"]["type"] for r in receiver.results] == ["REGISTRATION", "TEXT"]
        assert len(await user_keys(server)) == len(before) + 1
        assert results[0]["from"] == results[1]["from"]


async def test_postbacks_optins_and_referrals(server: RunningServer) -> None:
    async with Receiver() as receiver:
        await forward_to(server, receiver.url)
        await graph(server).user_postback(sb.PAGE_ID, sb.PSID, title="Buy", payload="BUY_NOW")
        (postback,) = await receiver.wait_for(1)
        assert postback["message"] == {"type": "POSTBACK", "payload": "BUY_NOW"}
        assert postback["from"] == sb.USER_KEY

        started = await graph(server).user_postback(sb.PAGE_ID, title="Get Started", payload="GET_STARTED")
        registration, get_started = (await receiver.wait_for(3))[1:]
        assert registration["message"]["type"] == "REGISTRATION"
        assert get_started["message"] == {"type": "POSTBACK", "payload": "GET_STARTED"}
        keys = await user_keys(server)

        await graph(server).user_optin(sb.PAGE_ID, ref="newsletter")
        optin = (await receiver.wait_for(4))[3]
        assert optin["message"] == {"type": "REGISTRATION", "ref": "newsletter"}
        await graph(server).user_referral(
            sb.PAGE_ID, started.psid, ref="summer-ad"
        )  # known: nothing to forward
        await graph(server).user_optin(sb.PAGE_ID, user_ref="checkbox-123")  # no PSID yet: nothing
        await server.until_idle()  # a wrongly queued forward has been posted by now
        assert len(receiver.results) == 4
        assert len(await user_keys(server)) == len(keys) + 1


async def test_no_webhook_url_still_registers(server: RunningServer) -> None:
    before = await user_keys(server)
    await graph(server).user_sends(sb.PAGE_ID, text="hello?")
    assert len(await user_keys(server)) == len(before) + 1


# --- receipts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["delivery", "read"])
async def test_a_watermark_completes_waiting_messages_sent_before_it(
    server: RunningServer, kind: str
) -> None:
    simulator = graph(server)
    simulator.set_never_deliver(sb.PAGE_ID, sb.PSID)
    message_id = await send_text(server)
    await wait_status(server, message_id, "PENDING_WAITING_DELIVERY")

    def event(watermark: int) -> dict[str, Any]:
        return {
            "sender": {"id": sb.PSID},
            "recipient": {"id": sb.PAGE_ID},
            "timestamp": now_ms(),
            kind: {"watermark": watermark},
        }

    # a watermark from before the send covers nothing
    await simulator.post_event(sb.PAGE_ID, event(now_ms() - 60_000))
    await server.until_idle()
    assert await status_of(server, message_id) == "PENDING_WAITING_DELIVERY"
    # one after it delivers the message, exactly once even when Meta repeats it
    late = event(now_ms())
    await simulator.post_event(sb.PAGE_ID, late)
    await simulator.post_event(sb.PAGE_ID, late)
    report = await final_report(server, message_id)
    assert report["status"]["name"] == "DELIVERED_TO_HANDSET"
    assert report["error"]["name"] == "NO_ERROR"
    await server.until_idle()
    again = json_of(await server.client.get(f"/facebook/1/reports?messageId={message_id}", headers=BASIC))
    assert again["results"] == []


async def test_outside_the_24_hour_window_ends_with_the_mapped_failure(server: RunningServer) -> None:
    graph(server).set_outside_window(sb.PAGE_ID, sb.PSID)
    message_id = await send_text(server)
    report = await final_report(server, message_id)
    rule = find_rule(10, 2018278)
    assert rule is not None
    assert report["status"]["name"] == rule.status.name
    assert report["error"]["name"] == rule.error.name
    # the person writes again: the window reopens and the next message is delivered
    await graph(server).user_sends(sb.PAGE_ID, sb.PSID, text="back")
    second = await send_text(server)
    assert (await final_report(server, second))["status"]["name"] == "DELIVERED_TO_HANDSET"


# --- messaging_type and message tags (omnirelay extension fields) --------------------------------


def sent_bodies(server: RunningServer, metadata: str) -> list[dict[str, Any]]:
    return [
        r.body
        for r in graph(server).requests
        if r.body is not None
        and isinstance(r.body.get("message"), dict)
        and r.body["message"].get("metadata") == metadata
    ]


async def test_a_message_tag_sends_outside_the_24_hour_window(server: RunningServer) -> None:
    graph(server).set_outside_window(sb.PAGE_ID, sb.PSID)
    message = {
        "type": "TEXT",
        "text": "Your order shipped",
        "messagingType": "MESSAGE_TAG",
        "tag": "POST_PURCHASE_UPDATE",
    }
    response = await server.client.post(
        "/facebook/1/single", headers=BASIC, json={"from": sb.APP_KEY, "to": sb.USER_KEY, "message": message}
    )
    assert response.status_code == 200, response.text
    message_id = json_of(response)["messageId"]
    assert (await final_report(server, message_id))["status"]["name"] == "DELIVERED_TO_HANDSET"
    (body,) = sent_bodies(server, message_id)
    assert (body["messaging_type"], body["tag"]) == ("MESSAGE_TAG", "POST_PURCHASE_UPDATE")
    # without a tag the same message is refused by Meta outside the window
    untagged = await send_text(server, "Your order shipped")
    assert (await final_report(server, untagged))["error"]["name"] == "EC_NO_SESSION"
    (plain,) = sent_bodies(server, untagged)
    assert plain["messaging_type"] == "UPDATE" and "tag" not in plain


async def test_omni_facebook_payload_carries_messaging_type(server: RunningServer) -> None:
    body = {
        "destinations": [{"to": {"facebookUserKey": sb.USER_KEY}}],
        "facebook": {"text": "Thanks for asking", "messagingType": "RESPONSE"},
        "sms": {"text": "y"},
    }
    response = await server.client.post("/omni/1/advanced", headers=BASIC, json=body)
    assert response.status_code == 200, response.text
    (m,) = json_of(response)["messages"]
    deadline = time.monotonic() + 10
    while not (sent := sent_bodies(server, m["messageId"])):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)  # polling for a condition, under a deadline
    assert sent[0]["messaging_type"] == "RESPONSE" and "tag" not in sent[0]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"messagingType": "PROMOTION"}, "messagingType"),
        ({"messagingType": "MESSAGE_TAG"}, "tag"),
        ({"messagingType": "MESSAGE_TAG", "tag": "SHIPPING_UPDATE"}, "tag"),  # retired by Meta
        ({"tag": "ACCOUNT_UPDATE"}, "tag"),  # a tag without MESSAGE_TAG
        ({"messagingType": "UPDATE", "tag": "ACCOUNT_UPDATE"}, "tag"),
        ({"messagingType": 3}, "messagingType"),
    ],
)
async def test_bad_messaging_type_or_tag_is_a_400(
    server: RunningServer, extra: dict[str, Any], field: str
) -> None:
    requests_before = len(graph(server).requests)
    single = await server.client.post(
        "/facebook/1/single",
        headers=BASIC,
        json={"from": sb.APP_KEY, "to": sb.USER_KEY, "message": {"type": "TEXT", "text": "x", **extra}},
    )
    omni = await server.client.post(
        "/omni/1/advanced",
        headers=BASIC,
        json={"destinations": [{"to": {"facebookUserKey": sb.USER_KEY}}], "facebook": {"text": "x", **extra}},
    )
    for response in (single, omni):
        assert response.status_code == 400, response.text
        exception = json_of(response)["requestError"]["serviceException"]
        assert exception["messageId"] == "BAD_REQUEST"
        assert field in json.dumps(exception)
    assert len(graph(server).requests) == requests_before
