"""Meta webhook signature, verification challenge and event parsing."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from omnirelay.channels.messenger.webhook import (
    Attachment,
    DeliveryEvent,
    EchoEvent,
    MessageEvent,
    OptinEvent,
    PostbackEvent,
    ReadEvent,
    ReferralEvent,
    WebhookPayloadError,
    parse_events,
    parse_webhook,
    verify_challenge,
    verify_signature,
)

SECRET = "app-secret-123"
PAGE = "1067280970047460"
PSID = "1254477777772919"
TS = 1458692752478
TS_DT = datetime(2016, 3, 23, 0, 25, 52, 478000, tzinfo=UTC)


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_of(*messaging: dict[str, Any], page: str = PAGE, key: str = "messaging") -> bytes:
    return json.dumps({"object": "page", "entry": [{"id": page, "time": TS, key: list(messaging)}]}).encode()


def from_user(event: dict[str, Any], psid: str = PSID) -> dict[str, Any]:
    return {"sender": {"id": psid}, "recipient": {"id": PAGE}, "timestamp": TS, **event}


# --- signature ---------------------------------------------------------------------------------


def test_valid_signature_is_accepted() -> None:
    raw = body_of(from_user({"message": {"mid": "m_1", "text": "hi"}}))
    assert verify_signature(SECRET, raw, sign(raw))
    assert verify_signature(SECRET, raw, sign(raw).upper().replace("SHA256=", "sha256="))


def test_forged_signature_is_refused() -> None:
    raw = body_of(from_user({"message": {"mid": "m_1", "text": "hi"}}))
    assert not verify_signature(SECRET, raw, sign(raw, "another-secret"))
    assert not verify_signature(SECRET, raw + b" ", sign(raw))  # body changed after signing
    assert not verify_signature(SECRET, raw, "sha256=" + "0" * 64)
    assert not verify_signature(SECRET, raw, "sha256=zz\u00e9")


def test_missing_signature_is_refused() -> None:
    raw = b'{"object":"page","entry":[]}'
    assert not verify_signature(SECRET, raw, None)
    assert not verify_signature(SECRET, raw, "")
    assert not verify_signature("", raw, sign(raw, ""))


def test_wrong_prefix_is_refused() -> None:
    raw = b'{"object":"page","entry":[]}'
    digest = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert not verify_signature(SECRET, raw, digest)
    assert not verify_signature(SECRET, raw, "sha1=" + digest)
    sha1 = "sha1=" + hmac.new(SECRET.encode(), raw, hashlib.sha1).hexdigest()
    assert not verify_signature(SECRET, raw, sha1)


# --- challenge ---------------------------------------------------------------------------------


def test_challenge_answered_for_the_right_token() -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "tok", "hub.challenge": "1158201444"}
    assert verify_challenge(params, "tok") == "1158201444"


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "tok", "hub.challenge": "1"},
        {"hub.verify_token": "tok", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
    ],
)
def test_challenge_refused(params: dict[str, str]) -> None:
    assert verify_challenge(params, "tok") is None


def test_challenge_refused_when_no_token_is_configured() -> None:
    assert (
        verify_challenge({"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}, "") is None
    )


# --- parsing -----------------------------------------------------------------------------------


def test_text_message() -> None:
    raw = body_of(
        from_user({"message": {"mid": "m_abc", "text": "hello", "quick_reply": {"payload": "QR"}, "nlp": {}}})
    )
    (event,) = parse_events(raw)
    assert event == MessageEvent(
        page_id=PAGE,
        psid=PSID,
        mid="m_abc",
        text="hello",
        attachments=(),
        timestamp=TS_DT,
        dedupe_key="m_abc",
        quick_reply_payload="QR",
    )
    assert event.timestamp.tzinfo is UTC


def test_message_with_attachments() -> None:
    attachments = [
        {"type": "image", "payload": {"url": "https://cdn.example/a.png"}},
        {"type": "fallback", "payload": None, "title": "x"},
        {"type": "location"},
    ]
    (event,) = parse_events(body_of(from_user({"message": {"mid": "m_2", "attachments": attachments}})))
    assert isinstance(event, MessageEvent)
    assert event.text is None
    assert event.attachments == (
        Attachment("image", "https://cdn.example/a.png"),
        Attachment("fallback", None),
        Attachment("location", None),
    )


def test_echo() -> None:
    echo = {
        "sender": {"id": PAGE},
        "recipient": {"id": PSID},
        "timestamp": TS,
        "message": {
            "is_echo": True,
            "app_id": 1517776481860111,
            "metadata": "msg-42",
            "mid": "m_e",
            "text": "x",
        },
    }
    (event,) = parse_events(body_of(echo))
    assert event == EchoEvent(PAGE, PSID, "m_e", "msg-42", TS_DT, "m_e")


def test_delivery() -> None:
    delivery = from_user({"delivery": {"mids": ["m_1", "m_2"], "watermark": 1458668856253}})
    del delivery["timestamp"]  # Meta's documented example has none
    (event,) = parse_events(body_of(delivery))
    assert isinstance(event, DeliveryEvent)
    assert (event.page_id, event.psid, event.mids) == (PAGE, PSID, ("m_1", "m_2"))
    assert event.watermark == datetime(2016, 3, 22, 17, 47, 36, 253000, tzinfo=UTC)
    assert event.dedupe_key == f"delivery:{PSID}:1458668856253"


def test_delivery_without_mids() -> None:
    (event,) = parse_events(body_of(from_user({"delivery": {"watermark": 1458668856253}})))
    assert isinstance(event, DeliveryEvent)
    assert event.mids == ()


def test_read() -> None:
    (event,) = parse_events(body_of(from_user({"read": {"watermark": 1458668856253}})))
    assert event == ReadEvent(
        PAGE, PSID, datetime(2016, 3, 22, 17, 47, 36, 253000, tzinfo=UTC), f"read:{PSID}:1458668856253"
    )


def test_postback_with_referral() -> None:
    postback = {
        "mid": "m_pb",
        "title": "Talk to us",
        "payload": "TALK",
        "referral": {"ref": "campaign-7", "source": "SHORTLINK", "type": "OPEN_THREAD"},
    }
    (event,) = parse_events(body_of(from_user({"postback": postback})))
    assert event == PostbackEvent(PAGE, PSID, "m_pb", "Talk to us", "TALK", "campaign-7", TS_DT, "m_pb")


def test_postback_timestamp_in_seconds_and_no_mid() -> None:
    # Meta's own postback example gives the timestamp in seconds.
    raw = body_of(
        {
            **from_user({"postback": {"title": "Get Started", "payload": "GET_STARTED"}}),
            "timestamp": 1527459824,
        }
    )
    (event,) = parse_events(raw)
    assert isinstance(event, PostbackEvent)
    assert event.timestamp == datetime(2018, 5, 27, 22, 23, 44, tzinfo=UTC)
    assert event.mid is None and event.referral_ref is None
    assert event.dedupe_key.startswith("sha256:")
    assert parse_events(raw)[0].dedupe_key == event.dedupe_key


def test_checkbox_optin_has_no_psid() -> None:
    optin = {"recipient": {"id": PAGE}, "timestamp": TS, "optin": {"ref": "order-9", "user_ref": "uref-1"}}
    (event,) = parse_events(body_of(optin))
    assert isinstance(event, OptinEvent)
    assert (event.page_id, event.psid, event.user_ref, event.ref) == (PAGE, None, "uref-1", "order-9")
    assert event.timestamp == TS_DT


def test_send_to_messenger_optin() -> None:
    (event,) = parse_events(body_of(from_user({"optin": {"ref": "data-ref"}})))
    assert isinstance(event, OptinEvent)
    assert (event.psid, event.user_ref, event.ref) == (PSID, None, "data-ref")


def test_marketing_messages_optin() -> None:
    optin = {"type": "notification_messages", "notification_messages_token": "tok-1", "payload": "p"}
    (event,) = parse_events(body_of(from_user({"optin": optin})))
    assert isinstance(event, OptinEvent)
    assert (event.optin_type, event.notification_messages_token) == ("notification_messages", "tok-1")


def test_referral() -> None:
    referral = {"ref": "summer", "source": "SHORTLINK", "type": "OPEN_THREAD"}
    (event,) = parse_events(body_of(from_user({"referral": referral})))
    assert isinstance(event, ReferralEvent)
    assert (event.page_id, event.psid, event.ref, event.source, event.timestamp) == (
        PAGE,
        PSID,
        "summer",
        "SHORTLINK",
        TS_DT,
    )


def test_standby_events_are_read() -> None:
    (event,) = parse_events(body_of(from_user({"message": {"mid": "m_sb", "text": "x"}}), key="standby"))
    assert isinstance(event, MessageEvent)
    assert event.mid == "m_sb"


def test_entry_time_is_used_when_the_element_has_no_timestamp() -> None:
    item = from_user({"message": {"mid": "m_t", "text": "x"}})
    del item["timestamp"]
    (event,) = parse_events(body_of(item))
    assert isinstance(event, MessageEvent)
    assert event.timestamp == TS_DT


def test_batched_entries_and_elements_in_order() -> None:
    raw = json.dumps(
        {
            "object": "page",
            "entry": [
                {
                    "id": "111",
                    "time": TS,
                    "messaging": [
                        from_user({"message": {"mid": "m_a", "text": "a"}}),
                        from_user({"read": {"watermark": TS}}),
                    ],
                },
                {
                    "id": "222",
                    "time": TS,
                    "messaging": [from_user({"delivery": {"mids": ["m_x"], "watermark": TS}}, psid="9")],
                    "standby": [from_user({"postback": {"mid": "m_p", "payload": "P"}})],
                },
            ],
        }
    ).encode()
    events = parse_events(raw)
    assert [type(e) for e in events] == [MessageEvent, ReadEvent, DeliveryEvent, PostbackEvent]
    assert [e.page_id for e in events] == ["111", "111", "222", "222"]


def test_unknown_event_kinds_are_skipped() -> None:
    raw = body_of(
        from_user({"reaction": {"reaction": "love", "mid": "m_1", "action": "react"}}),
        from_user({"message_edit": {"mid": "m_1", "text": "y"}}),
        from_user({"message": {"mid": "m_ok", "text": "x"}}),
    )
    events = parse_events(raw)
    assert [e.dedupe_key for e in events] == ["m_ok"]


def test_other_objects_yield_nothing() -> None:
    raw = json.dumps({"object": "instagram", "entry": [{"id": "1", "messaging": []}]}).encode()
    assert parse_events(raw) == ()


def test_dedupe_keys_are_stable_across_retries_and_distinct_across_events() -> None:
    items = [
        from_user({"message": {"mid": "m_1", "text": "x"}}),
        from_user({"delivery": {"mids": ["m_1"], "watermark": TS}}),
        from_user({"read": {"watermark": TS}}),
        from_user({"referral": {"ref": "a", "source": "SHORTLINK"}}),
        from_user({"referral": {"ref": "b", "source": "SHORTLINK"}}),
        from_user({"optin": {"ref": "a"}}),
    ]
    first = [e.dedupe_key for e in parse_events(body_of(*items))]
    again = [e.dedupe_key for e in parse_events(body_of(*items))]
    assert first == again
    assert len(set(first)) == len(first)
    # a hashed key does not depend on JSON key order or whitespace
    reordered = json.dumps(
        {"object": "page", "entry": [{"id": PAGE, "messaging": [dict(reversed(list(items[3].items())))]}]},
        indent=2,
    ).encode()
    assert parse_events(reordered)[0].dedupe_key == first[3]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[]",
        b'{"entry": []}',
        b'{"object": "page"}',
        b'{"object": "page", "entry": {}}',
        b'{"object": "page", "entry": [{"messaging": []}]}',
    ],
)
def test_malformed_bodies_raise_one_error(raw: bytes) -> None:
    with pytest.raises(WebhookPayloadError) as info:
        parse_events(raw)
    assert isinstance(info.value, ValueError)
    assert info.value.problem


@pytest.mark.parametrize(
    ("element", "kind", "why"),
    [
        (b"42", "unknown", "malformed"),
        (b'{"sender": {"id": "2"}, "timestamp": 1, "message": {"text": "no mid"}}', "unknown", "mid"),
        (b'{"timestamp": 1, "message": {"mid": "m", "text": "no sender"}}', "message", "sender.id"),
        (b'{"sender": {"id": "2"}, "delivery": {"mids": []}}', "unknown", "watermark"),
        (
            b'{"sender": {"id": "2"}, "message": {"mid": "m", "text": "no time anywhere"}}',
            "message",
            "timestamp",
        ),
        # a chat plugin guest: sender.user_ref and no PSID (Meta's message, delivery and read events)
        (
            b'{"sender": {"user_ref": "guest-1"}, "recipient": {"id": "1"}, "timestamp": 1,'
            b' "message": {"mid": "m_guest", "text": "hi"}}',
            "message",
            "user_ref",
        ),
        (b'{"sender": {"user_ref": "guest-1"}, "read": {"watermark": 1}}', "read", "user_ref"),
        (b'{"sender": {"user_ref": "guest-1"}, "delivery": {"watermark": 1}}', "delivery", "user_ref"),
    ],
)
def test_an_unusable_element_is_skipped_and_the_batch_kept(element: bytes, kind: str, why: str) -> None:
    good = json.dumps(from_user({"message": {"mid": "m_ok", "text": "x"}})).encode()
    raw = b'{"object": "page", "entry": [{"id": "1", "messaging": [' + element + b", " + good + b"]}]}"
    batch = parse_webhook(raw)
    assert [e.dedupe_key for e in batch.events] == ["m_ok"]
    (skipped,) = batch.skipped
    assert (skipped.page_id, skipped.kind) == ("1", kind)
    assert why in skipped.reason
    assert parse_events(raw) == batch.events
