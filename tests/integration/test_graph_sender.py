"""GraphSender against the Graph API simulator, over real HTTP on 127.0.0.1.

The sender runs on the aiohttp session the gateway builds (`open_graph_session`); the simulator's
webhook client is httpx, as in the gateway."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import httpx
import pytest
import pytest_asyncio

from omnirelay.channels.messenger.graph import GraphSender, open_graph_session
from omnirelay.domain import statuses as s
from omnirelay.domain.errors import ChannelUnavailable, MessageRejected
from omnirelay.domain.messages import (
    AddressKind,
    Button,
    ButtonKind,
    Channel,
    FacebookContent,
    FacebookKind,
    MessageTag,
    MessagingType,
    Outbound,
    SenderAction,
    SmsContent,
    SuccessCriterion,
)
from omnirelay.ports import Accepted, MessengerApplication, MessengerUser
from omnirelay.sandbox.graph import GraphSimulator

APP_KEY = "8F0792F86035A9F4290821F1EE6BC06A"
OTHER_APP_KEY = "FacebookApplicationKey"
PAGE = "200000000000001"
OTHER_PAGE = "200000000000002"
TOKEN = "EAAGm0PX4ZCpsBA-very-secret-page-token"
OTHER_TOKEN = "EAAGm0PX4ZCpsBA-other-page-token"
SECRET = "f3c2a1-app-secret"
USER_KEY = "9c29bd43-054b-4cfe-a1d4-0b37812b4ed3"
PSID = "6100000000000001"
PHONE_USER_PSID = "6100000000000002"
MATCHED_PSID = "6100000000000003"

pytestmark = pytest.mark.asyncio(loop_scope="module")


class InMemoryDirectory:
    """A MessengerDirectory double."""

    def __init__(self) -> None:
        self.applications: dict[str, MessengerApplication] = {}
        self.users: list[MessengerUser] = []

    async def application(self, key: str) -> MessengerApplication | None:
        return self.applications.get(key)

    async def user(self, application_key: str, user_key: str) -> MessengerUser | None:
        return next(
            (u for u in self.users if u.application_key == application_key and u.user_key == user_key), None
        )

    async def user_by_phone(self, application_key: str, phone_number: str) -> MessengerUser | None:
        return next(
            (
                u
                for u in self.users
                if u.application_key == application_key and u.phone_number == phone_number
            ),
            None,
        )


class FakeClock:
    def __init__(self) -> None:
        self.current = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def shared_graph(client: httpx.AsyncClient) -> AsyncIterator[GraphSimulator]:
    async with GraphSimulator(client) as g:
        yield g


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def session(shared_graph: GraphSimulator) -> AsyncIterator[aiohttp.ClientSession]:
    s = open_graph_session(shared_graph.base_url)
    try:
        yield s
    finally:
        await s.close()


@pytest_asyncio.fixture(loop_scope="module")
async def graph(shared_graph: GraphSimulator) -> AsyncIterator[GraphSimulator]:
    await shared_graph.reset()
    # require_appsecret_proof: every successful send proves the sender's proof is right
    shared_graph.add_page(PAGE, TOKEN, SECRET, require_appsecret_proof=True)
    shared_graph.add_page(OTHER_PAGE, OTHER_TOKEN, SECRET)
    shared_graph.add_user(PAGE, PSID)
    shared_graph.add_user(PAGE, PHONE_USER_PSID)
    shared_graph.add_user(PAGE, MATCHED_PSID, phone_number="+41793026727")
    shared_graph.add_user(OTHER_PAGE, PSID)
    yield shared_graph
    await shared_graph.reset()


@pytest.fixture
def directory() -> InMemoryDirectory:
    d = InMemoryDirectory()
    d.applications[APP_KEY] = MessengerApplication(APP_KEY, 1, "Shop", PAGE, TOKEN, SECRET, "verify")
    d.applications[OTHER_APP_KEY] = MessengerApplication(
        OTHER_APP_KEY, 1, "Other", OTHER_PAGE, OTHER_TOKEN, SECRET, "v"
    )
    d.users.append(MessengerUser(USER_KEY, APP_KEY, PSID))
    d.users.append(MessengerUser("phone-user", APP_KEY, PHONE_USER_PSID, phone_number="38591000111"))
    d.users.append(MessengerUser(USER_KEY, OTHER_APP_KEY, PSID))
    return d


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sender(
    session: aiohttp.ClientSession, graph: GraphSimulator, directory: InMemoryDirectory, clock: FakeClock
) -> GraphSender:
    return GraphSender(session, directory, base_url=graph.base_url, clock=clock, timeout_s=2)


def outbound(
    content: FacebookContent | SmsContent,
    *,
    to: str = USER_KEY,
    to_kind: AddressKind = AddressKind.USER_KEY,
    sender: str = APP_KEY,
    criterion: SuccessCriterion = SuccessCriterion.DELIVERED,
) -> Outbound:
    return Outbound(
        message_id=str(uuid.uuid4()),
        account_id=1,
        channel=Channel.FACEBOOK,
        sender=sender,
        to=to,
        to_kind=to_kind,
        content=content,
        expires_at=datetime(2026, 1, 7, tzinfo=UTC),
        criterion=criterion,
    )


TEXT = FacebookContent(FacebookKind.TEXT, text="Hello, World!")


def last_body(graph: GraphSimulator) -> dict[str, Any]:
    body = graph.requests[-1].body
    assert body is not None
    return body


# --- bodies ------------------------------------------------------------------------------------


async def test_text(sender: GraphSender, graph: GraphSimulator) -> None:
    message = outbound(TEXT)
    accepted = await sender.send(message)
    assert accepted.status == s.PENDING_WAITING_DELIVERY
    (mid,) = accepted.refs
    assert mid == graph.requests[-1].response["message_id"]  # type: ignore[index]
    assert last_body(graph) == {
        "recipient": {"id": PSID},
        "messaging_type": "UPDATE",
        "message": {"text": "Hello, World!", "metadata": message.message_id},
    }
    assert sender.channel is Channel.FACEBOOK


async def test_messaging_type_and_tag_go_as_given(sender: GraphSender, graph: GraphSimulator) -> None:
    graph.set_outside_window(PAGE, PSID)
    tagged = FacebookContent(
        FacebookKind.TEXT,
        text="Your booking",
        messaging_type=MessagingType.MESSAGE_TAG,
        tag=MessageTag.HUMAN_AGENT,
    )
    assert len((await sender.send(outbound(tagged))).refs) == 1
    body = last_body(graph)
    assert (body["messaging_type"], body["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")
    graph.set_outside_window(PAGE, PSID, False)
    await sender.send(
        outbound(FacebookContent(FacebookKind.TEXT, text="Re", messaging_type=MessagingType.RESPONSE))
    )
    assert last_body(graph)["messaging_type"] == "RESPONSE" and "tag" not in last_body(graph)


@pytest.mark.parametrize(
    ("kind", "attachment_type"),
    [
        (FacebookKind.IMAGE, "image"),
        (FacebookKind.AUDIO, "audio"),
        (FacebookKind.VIDEO, "video"),
        (FacebookKind.FILE, "file"),
    ],
)
async def test_media(
    sender: GraphSender, graph: GraphSimulator, kind: FacebookKind, attachment_type: str
) -> None:
    url = "https://petersapparel.com/img/shirt.png"
    message = outbound(FacebookContent(kind, url=url))
    accepted = await sender.send(message)
    assert len(accepted.refs) == 1
    assert last_body(graph)["message"] == {
        "attachment": {"type": attachment_type, "payload": {"url": url, "is_reusable": True}},
        "metadata": message.message_id,
    }


async def test_button_template_from_the_seed(sender: GraphSender, graph: GraphSimulator) -> None:
    content = FacebookContent(
        FacebookKind.TEMPLATE,
        text="Test",
        buttons=(
            Button(ButtonKind.POSTBACK, "title", payload="payload"),
            Button(ButtonKind.URL, "title", url="www.infobip.com"),
            Button(ButtonKind.URL, "site", url="http://example.com/x"),
        ),
    )
    await sender.send(outbound(content))
    assert last_body(graph)["message"]["attachment"] == {
        "type": "template",
        "payload": {
            "template_type": "button",
            "text": "Test",
            "buttons": [
                {"type": "postback", "title": "title", "payload": "payload"},
                {"type": "web_url", "title": "title", "url": "https://www.infobip.com"},
                {"type": "web_url", "title": "site", "url": "http://example.com/x"},
            ],
        },
    }


@pytest.mark.parametrize(
    ("action", "wire"),
    [
        (SenderAction.MARK_SEEN, "mark_seen"),
        (SenderAction.TYPING_ON, "typing_on"),
        (SenderAction.TYPING_OFF, "typing_off"),
    ],
)
async def test_sender_action_is_final_without_ref(
    sender: GraphSender, graph: GraphSimulator, action: SenderAction, wire: str
) -> None:
    accepted = await sender.send(outbound(FacebookContent(FacebookKind.SENDER_ACTION, sender_action=action)))
    assert accepted == Accepted(refs=(), status=s.DELIVERED_TO_OPERATOR)
    assert last_body(graph) == {"recipient": {"id": PSID}, "sender_action": wire}


async def test_invalid_content_is_rejected_without_a_call(sender: GraphSender, graph: GraphSimulator) -> None:
    for content in (
        FacebookContent(FacebookKind.TEXT),
        FacebookContent(FacebookKind.IMAGE),
        FacebookContent(FacebookKind.SENDER_ACTION),
        SmsContent("hi"),
    ):
        with pytest.raises(MessageRejected) as info:
            await sender.send(outbound(content))
        assert info.value.error == s.EC_BAD_REQUEST
    assert graph.requests == []


# --- recipients --------------------------------------------------------------------------------


async def test_registered_phone_uses_the_users_psid(sender: GraphSender, graph: GraphSimulator) -> None:
    await sender.send(outbound(TEXT, to="38591000111", to_kind=AddressKind.PHONE))
    assert last_body(graph)["recipient"] == {"id": PHONE_USER_PSID}


async def test_unregistered_phone_uses_customer_matching(sender: GraphSender, graph: GraphSimulator) -> None:
    accepted = await sender.send(outbound(TEXT, to="41793026727", to_kind=AddressKind.PHONE))
    assert last_body(graph)["recipient"] == {"phone_number": "+41793026727"}
    # Meta posts no delivery for a send by phone number: the step ends when Meta takes it
    assert accepted.refs == (graph.requests[-1].response["message_id"],)  # type: ignore[index]
    assert accepted.status == s.DELIVERED_TO_OPERATOR and accepted.status.is_final


async def test_registered_phone_still_waits_for_the_delivery(
    sender: GraphSender, graph: GraphSimulator
) -> None:
    accepted = await sender.send(outbound(TEXT, to="38591000111", to_kind=AddressKind.PHONE))
    assert last_body(graph)["recipient"] == {"id": PHONE_USER_PSID}
    assert accepted.status == s.PENDING_WAITING_DELIVERY


async def test_seen_by_phone_number_is_not_sent_as_meta_reports_no_read(
    sender: GraphSender, graph: GraphSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """docs/decisions/0011-success-criteria.md: the step could only expire after it was paid for."""
    with pytest.raises(MessageRejected) as info:
        await sender.send(
            outbound(TEXT, to="41793026727", to_kind=AddressKind.PHONE, criterion=SuccessCriterion.SEEN)
        )
    assert (info.value.status, info.value.error) == (s.UNDELIVERABLE_NOT_SENT, s.EC_CRITERION_NOT_REPORTED)
    assert not info.value.pause_channel and graph.requests == []
    # a registered number is sent by PSID, whose reads Meta reports: SEEN is waited for there
    accepted = await sender.send(
        outbound(TEXT, to="38591000111", to_kind=AddressKind.PHONE, criterion=SuccessCriterion.SEEN)
    )
    assert accepted.status == s.PENDING_WAITING_DELIVERY
    # DELIVERED by phone number: met at Meta's acceptance, and the log says so
    with caplog.at_level(logging.INFO, logger="omnirelay.channels.messenger.graph"):
        accepted = await sender.send(outbound(TEXT, to="41793026727", to_kind=AddressKind.PHONE))
    assert accepted.status == s.DELIVERED_TO_OPERATOR
    assert any("criterion DELIVERED met at Meta's acceptance" in r.getMessage() for r in caplog.records)


async def test_phone_unknown_to_messenger_fails_over(sender: GraphSender, graph: GraphSimulator) -> None:
    with pytest.raises(MessageRejected) as info:
        await sender.send(outbound(TEXT, to="41790000000", to_kind=AddressKind.PHONE))
    assert (info.value.status, info.value.error) == (s.REJECTED_DESTINATION_NOT_REGISTERED, s.EC_UNKNOWN_USER)
    assert not info.value.pause_channel
    assert last_body(graph)["recipient"] == {"phone_number": "+41790000000"}


async def test_unknown_application_is_rejected_source(sender: GraphSender, graph: GraphSimulator) -> None:
    with pytest.raises(MessageRejected) as info:
        await sender.send(outbound(TEXT, sender="0000DEADBEEF"))
    assert (info.value.status, info.value.error) == (s.REJECTED_SOURCE, s.EC_UNKNOWN_APPLICATION)
    assert graph.requests == []


async def test_unknown_user_key_is_not_registered(sender: GraphSender, graph: GraphSimulator) -> None:
    with pytest.raises(MessageRejected) as info:
        await sender.send(outbound(TEXT, to="no-such-user"))
    assert (info.value.status, info.value.error) == (s.REJECTED_DESTINATION_NOT_REGISTERED, s.EC_UNKNOWN_USER)
    assert graph.requests == []


# --- errors: fail over -------------------------------------------------------------------------


async def test_outside_the_window_fails_over(sender: GraphSender, graph: GraphSimulator) -> None:
    graph.set_outside_window(PAGE, PSID)
    with pytest.raises(MessageRejected) as info:
        await sender.send(outbound(TEXT))
    assert (info.value.status, info.value.error) == (s.UNDELIVERABLE_NOT_DELIVERED, s.EC_NO_SESSION)
    assert not info.value.pause_channel
    assert "2018278" in info.value.reason
    # a per-recipient rejection does not pause the page
    await sender.send(outbound(TEXT, to="38591000111", to_kind=AddressKind.PHONE))


async def test_unavailable_person_fails_over(sender: GraphSender, graph: GraphSimulator) -> None:
    graph.script_error(
        PAGE, PSID, code=551, subcode=1545041, message="This person isn't available right now."
    )
    with pytest.raises(MessageRejected) as info:
        await sender.send(outbound(TEXT))
    assert (info.value.status, info.value.error, info.value.pause_channel) == (
        s.UNDELIVERABLE_NOT_DELIVERED,
        s.EC_BLOCKED_USER,
        False,
    )


# --- errors: fail over and pause the page ------------------------------------------------------


async def test_bad_token_pauses_the_page(
    session: aiohttp.ClientSession, graph: GraphSimulator, directory: InMemoryDirectory, clock: FakeClock
) -> None:
    directory.applications[APP_KEY] = MessengerApplication(
        APP_KEY, 1, "Shop", PAGE, "EAAexpired", SECRET, "v"
    )
    sender = GraphSender(session, directory, base_url=graph.base_url, clock=clock, pause_s=60)
    with pytest.raises(MessageRejected) as first:
        await sender.send(outbound(TEXT))
    assert (first.value.status, first.value.error, first.value.pause_channel) == (
        s.UNDELIVERABLE_NOT_SENT,
        s.EC_UNAUTHORIZED_ACCESS,
        True,
    )
    calls = len(graph.requests)
    with pytest.raises(MessageRejected) as second:
        await sender.send(outbound(TEXT))
    assert len(graph.requests) == calls  # rejected without an HTTP call
    assert (second.value.status, second.value.error, second.value.pause_channel) == (
        s.UNDELIVERABLE_NOT_SENT,
        s.EC_UNAUTHORIZED_ACCESS,
        True,
    )
    # other pages are not affected
    await sender.send(outbound(TEXT, sender=OTHER_APP_KEY))
    # after the pause, the page is tried again
    directory.applications[APP_KEY] = MessengerApplication(APP_KEY, 1, "Shop", PAGE, TOKEN, SECRET, "v")
    clock.advance(59)
    with pytest.raises(MessageRejected):
        await sender.send(outbound(TEXT))
    clock.advance(2)
    assert len((await sender.send(outbound(TEXT))).refs) == 1


@pytest.mark.parametrize(
    ("code", "subcode", "error"),
    [
        (200, 2018028, s.EC_FORBIDDEN_ACCESS),
        (10, None, s.EC_FORBIDDEN_ACCESS),
        (1, 99, s.EC_FORBIDDEN_ACCESS),
        (10, 1893063, s.EC_ACCOUNT_ISSUE),
    ],
)
async def test_channel_wide_errors_pause_the_page(
    sender: GraphSender, graph: GraphSimulator, code: int, subcode: int | None, error: s.ErrorCode
) -> None:
    graph.script_error(PAGE, PSID, code=code, subcode=subcode, times=1)
    with pytest.raises(MessageRejected) as info:
        await sender.send(outbound(TEXT))
    assert (info.value.error, info.value.pause_channel) == (error, True)
    calls = len(graph.requests)
    with pytest.raises(MessageRejected):
        await sender.send(outbound(TEXT, to="38591000111", to_kind=AddressKind.PHONE))
    assert len(graph.requests) == calls


@pytest.mark.parametrize("subcode", [2018027, 2018021])
async def test_customer_matching_refusal_stops_phone_sends_only(
    session: aiohttp.ClientSession,
    graph: GraphSimulator,
    directory: InMemoryDirectory,
    clock: FakeClock,
    subcode: int,
) -> None:
    sender = GraphSender(session, directory, base_url=graph.base_url, clock=clock, phone_pause_s=600)
    if subcode == 2018027:
        graph.set_customer_matching(PAGE, False)  # Meta's refusal, for every number
    else:
        graph.script_error(PAGE, MATCHED_PSID, code=200, subcode=subcode)
    with pytest.raises(MessageRejected) as first:
        await sender.send(outbound(TEXT, to="41793026727", to_kind=AddressKind.PHONE))
    assert (first.value.status, first.value.error, first.value.pause_channel) == (
        s.UNDELIVERABLE_NOT_SENT,
        s.EC_PHONE_MATCHING_DISABLED,
        False,
    )
    calls = len(graph.requests)
    # sends by PSID go on: a user key, and a phone number registered to a user
    assert (await sender.send(outbound(TEXT))).status == s.PENDING_WAITING_DELIVERY
    assert len((await sender.send(outbound(TEXT, to="38591000111", to_kind=AddressKind.PHONE))).refs) == 1
    assert len(graph.requests) == calls + 2
    # another number of the same Page: refused without a call
    with pytest.raises(MessageRejected) as second:
        await sender.send(outbound(TEXT, to="41790000001", to_kind=AddressKind.PHONE))
    assert (second.value.error, second.value.pause_channel) == (s.EC_PHONE_MATCHING_DISABLED, False)
    assert len(graph.requests) == calls + 2
    # other Pages still send by phone number
    with pytest.raises(MessageRejected) as other:
        await sender.send(outbound(TEXT, to="41790000001", to_kind=AddressKind.PHONE, sender=OTHER_APP_KEY))
    assert other.value.error == s.EC_UNKNOWN_USER  # Meta was asked, and knows no such person
    # after the pause, Meta is asked again
    graph.set_customer_matching(PAGE, True)
    graph.clear_scripts()
    clock.advance(599)
    with pytest.raises(MessageRejected):
        await sender.send(outbound(TEXT, to="41793026727", to_kind=AddressKind.PHONE))
    clock.advance(2)
    accepted = await sender.send(outbound(TEXT, to="41793026727", to_kind=AddressKind.PHONE))
    assert accepted.status == s.DELIVERED_TO_OPERATOR


# --- errors: retry -----------------------------------------------------------------------------


async def test_temporary_failure_is_retryable(sender: GraphSender, graph: GraphSimulator) -> None:
    graph.script_error(PAGE, PSID, code=1200, times=2, message="(#1200) Temporary send message failure")
    for _ in range(2):
        with pytest.raises(ChannelUnavailable) as info:
            await sender.send(outbound(TEXT))
        assert "1200" in info.value.reason
        assert info.value.retry_after_s is None
    assert len((await sender.send(outbound(TEXT))).refs) == 1  # no pause after a transient error


async def test_server_error_is_retryable(sender: GraphSender, graph: GraphSimulator) -> None:
    graph.fail_with_server_error(times=1)
    with pytest.raises(ChannelUnavailable) as info:
        await sender.send(outbound(TEXT))
    assert "HTTP 500" in info.value.reason
    graph.script_error(PAGE, PSID, code=2, http_status=500, times=1, is_transient=True)
    with pytest.raises(ChannelUnavailable):
        await sender.send(outbound(TEXT))
    assert len((await sender.send(outbound(TEXT))).refs) == 1


async def test_timeout_is_retryable(
    session: aiohttp.ClientSession, graph: GraphSimulator, directory: InMemoryDirectory, clock: FakeClock
) -> None:
    sender = GraphSender(session, directory, base_url=graph.base_url, clock=clock, timeout_s=0.1)
    graph.set_slow(1.0)
    with pytest.raises(ChannelUnavailable) as info:
        await sender.send(outbound(TEXT))
    assert "outcome is unknown" in info.value.reason
    assert isinstance(info.value.__cause__, TimeoutError)
    graph.set_slow(0)


async def test_connection_refused_is_retryable(
    session: aiohttp.ClientSession, directory: InMemoryDirectory, clock: FakeClock
) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    sender = GraphSender(session, directory, base_url=f"http://127.0.0.1:{port}", clock=clock)
    with pytest.raises(ChannelUnavailable) as info:
        await sender.send(outbound(TEXT))
    assert "Graph API unreachable (ClientConnectorError)" in info.value.reason


@pytest.mark.parametrize("code", [4, 17, 32, 613, 80001])
async def test_rate_limit_throttles_the_page(
    sender: GraphSender, graph: GraphSimulator, clock: FakeClock, code: int
) -> None:
    graph.script_error(PAGE, PSID, code=code, times=1)
    with pytest.raises(ChannelUnavailable) as info:
        await sender.send(outbound(TEXT))
    assert info.value.retry_after_s == 10  # the default backoff when Meta gives no wait
    calls = len(graph.requests)
    with pytest.raises(ChannelUnavailable) as again:
        await sender.send(outbound(TEXT))
    assert len(graph.requests) == calls
    assert again.value.retry_after_s == pytest.approx(10)
    clock.advance(10)
    assert len((await sender.send(outbound(TEXT))).refs) == 1


async def test_rate_limit_honours_business_use_case_usage(
    sender: GraphSender, graph: GraphSimulator, clock: FakeClock
) -> None:
    usage = {"123": [{"type": "messenger", "call_count": 100, "estimated_time_to_regain_access": 2}]}
    graph.script_error(
        PAGE, PSID, code=80006, times=1, headers={"X-Business-Use-Case-Usage": json.dumps(usage)}
    )
    with pytest.raises(ChannelUnavailable) as info:
        await sender.send(outbound(TEXT))
    assert info.value.retry_after_s == 120
    clock.advance(90)
    with pytest.raises(ChannelUnavailable) as again:
        await sender.send(outbound(TEXT))
    assert again.value.retry_after_s == pytest.approx(30)
    clock.advance(30)
    await sender.send(outbound(TEXT))


async def test_usage_header_on_success_throttles_later_sends(
    sender: GraphSender, graph: GraphSimulator, clock: FakeClock
) -> None:
    usage = {"123": [{"type": "messenger", "call_count": 100, "estimated_time_to_regain_access": 1}]}
    graph.set_response_headers(PAGE, {"X-Business-Use-Case-Usage": json.dumps(usage)})
    assert len((await sender.send(outbound(TEXT))).refs) == 1
    graph.set_response_headers(PAGE, None)
    with pytest.raises(ChannelUnavailable) as info:
        await sender.send(outbound(TEXT))
    assert info.value.retry_after_s == pytest.approx(60)
    clock.advance(60)
    await sender.send(outbound(TEXT))


async def test_token_bucket_makes_sends_wait_instead_of_failing(
    session: aiohttp.ClientSession, graph: GraphSimulator, directory: InMemoryDirectory, clock: FakeClock
) -> None:
    sender = GraphSender(session, directory, base_url=graph.base_url, clock=clock, media_rate_per_s=10)
    image = FacebookContent(FacebookKind.IMAGE, url="https://x.example/a.png")
    loop = asyncio.get_running_loop()
    started = loop.time()
    results = await asyncio.gather(*(sender.send(outbound(image)) for _ in range(13)))
    elapsed = loop.time() - started
    assert all(len(r.refs) == 1 for r in results)
    assert elapsed >= 0.25  # 10 at once, then 3 more at 10/s
    # text has its own bucket: not slowed down by media
    started = loop.time()
    await sender.send(outbound(TEXT))
    assert loop.time() - started < 0.2


# --- secrets -----------------------------------------------------------------------------------


async def test_token_never_in_logs_or_exceptions(
    session: aiohttp.ClientSession,
    graph: GraphSimulator,
    directory: InMemoryDirectory,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sender = GraphSender(session, directory, base_url=graph.base_url, clock=clock, timeout_s=0.1)
    texts: list[str] = []
    await sender.send(outbound(TEXT))
    # Meta's message quoting the token must be scrubbed
    graph.script_error(PAGE, PSID, code=100, times=1, message=f"(#100) bad param near {TOKEN} / {SECRET}")
    graph.script_error(PAGE, PSID, code=1200, times=1)
    graph.script_error(PAGE, PSID, code=190, times=1, message=f"Error validating access token {TOKEN}")
    for _ in range(3):
        with pytest.raises((MessageRejected, ChannelUnavailable)) as info:
            await sender.send(outbound(TEXT))
        texts += [str(info.value), repr(info.value), info.value.reason, repr(info.value.__cause__)]
    graph.set_slow(1.0)
    with pytest.raises(ChannelUnavailable) as timeout:
        await sender.send(outbound(TEXT, sender=OTHER_APP_KEY))
    texts += [str(timeout.value), repr(timeout.value.__cause__), str(timeout.value.__cause__)]
    graph.set_slow(0)
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert any(r.name == "omnirelay.channels.messenger.graph" for r in caplog.records)
    for secret in (TOKEN, OTHER_TOKEN, SECRET):
        assert secret not in logged
        assert all(secret not in text for text in texts)
    assert "***" in texts[0]  # Meta's text is kept, scrubbed


# --- the HTTP client ---------------------------------------------------------------------------


async def test_retry_after_header_sets_the_wait(sender: GraphSender, graph: GraphSimulator) -> None:
    graph.script_error(PAGE, PSID, code=4, http_status=429, times=1, headers={"Retry-After": "7"})
    with pytest.raises(ChannelUnavailable) as info:
        await sender.send(outbound(TEXT))
    assert info.value.retry_after_s == 7


async def test_redirects_are_not_followed(sender: GraphSender, graph: GraphSimulator) -> None:
    # followed, the POST (and the Page's token) would go to another Page's edge
    location = f"{graph.base_url}/v25.0/{OTHER_PAGE}/messages"
    graph.script_error(PAGE, PSID, code=1200, http_status=307, times=1, headers={"Location": location})
    with pytest.raises(ChannelUnavailable) as info:
        await sender.send(outbound(TEXT))
    assert "code=1200" in info.value.reason
    assert len(graph.requests) == 1


async def test_proxy_of_the_environment_is_used(
    graph: GraphSimulator, directory: InMemoryDirectory, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as with httpx before: HTTP_PROXY is honoured; here the simulator serves as the proxy of a host
    # that does not resolve (`.invalid`), so only a proxied call can reach it
    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", graph.base_url)
    base_url = "http://graph.invalid"
    session = open_graph_session(base_url)
    try:
        sender = GraphSender(session, directory, base_url=base_url, clock=clock)
        assert len((await sender.send(outbound(TEXT))).refs) == 1
    finally:
        await session.close()
