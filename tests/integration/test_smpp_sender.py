"""SmppSender and its SMPP session against the SMSC simulator over real TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import pytest

from omnirelay.channels.sms import pdu
from omnirelay.channels.sms.config import SmppConnectorConfig, SmsRoute
from omnirelay.channels.sms.receipt import normalise_ref, scoped_ref
from omnirelay.channels.sms.sender import SmppSender, relative_validity_period, submit_error
from omnirelay.channels.sms.session import SubmitResponse
from omnirelay.channels.sms.throughput import TokenBucket
from omnirelay.domain.errors import ChannelUnavailable, MessageRejected, StorageUnavailable
from omnirelay.domain.messages import AddressKind, Channel, Outbound, Receipt, SmsContent
from omnirelay.domain.sms_text import decode_short_message
from omnirelay.domain.statuses import (
    DELIVERED_TO_HANDSET,
    EC_INVALID_DESTINATION_ADDRESS,
    EC_INVALID_PDU_FORMAT,
    EC_INVALID_SOURCE_ADDRESS,
    EC_SMS_REJECTED_BY_MOBILE_OPERATOR,
    EC_UNKNOWN_SUBSCRIBER,
    PENDING_ENROUTE,
    REJECTED_DESTINATION,
    REJECTED_ROUTE_NOT_AVAILABLE,
    REJECTED_SOURCE,
    UNDELIVERABLE_NOT_DELIVERED,
    UNDELIVERABLE_REJECTED_OPERATOR,
)
from omnirelay.sandbox.smsc import Behaviour, Script, SmscSimulator
from tests.doubles import FakeClock

USERS = {"gw": "secret", "gw2": "secret2"}
TO = "41793026727"


class InMemoryReceiptSink:
    """A `ReceiptSink` that keeps receipts; it can be held shut or made to fail."""

    def __init__(self) -> None:
        self.receipts: list[Receipt] = []
        self.gate: asyncio.Event | None = None
        self.failing = False
        self.calls = 0
        self.entered = asyncio.Event()
        self._changed = asyncio.Event()

    async def record(self, receipts: Sequence[Receipt]) -> None:
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.failing:
            raise StorageUnavailable()
        self.receipts.extend(receipts)
        self._changed.set()
        self._changed = asyncio.Event()

    def refs(self) -> set[str]:
        return {r.ref for r in self.receipts}

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                await self._changed.wait()


SenderFactory = Callable[..., Awaitable[SmppSender]]


@pytest.fixture
async def smsc() -> AsyncIterator[SmscSimulator]:
    async with SmscSimulator(users=USERS, receipt_delay_s=0.0) as simulator:
        yield simulator


@pytest.fixture
def sink() -> InMemoryReceiptSink:
    return InMemoryReceiptSink()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def connector(port: int, **overrides: Any) -> SmppConnectorConfig:
    settings: dict[str, Any] = {
        "name": "main",
        "host": "127.0.0.1",
        "port": port,
        "system_id": "gw",
        "password": "secret",
        "response_timeout_s": 2.0,
        "reconnect_min_s": 0.02,
        "reconnect_max_s": 0.2,
        "throttle_pause_s": 0.2,
    }
    settings.update(overrides)
    return SmppConnectorConfig(**settings)


@pytest.fixture
async def make_sender(
    smsc: SmscSimulator, sink: InMemoryReceiptSink, clock: FakeClock
) -> AsyncIterator[SenderFactory]:
    senders: list[SmppSender] = []

    async def make(
        *configs: SmppConnectorConfig,
        routes: Sequence[SmsRoute] = (),
        wait_bound: bool = True,
        **overrides: Any,
    ) -> SmppSender:
        sender = SmppSender(configs or [connector(smsc.port, **overrides)], routes, sink, clock)
        senders.append(sender)
        await sender.start()
        if wait_bound:
            assert await sender.wait_bound(5)
        return sender

    yield make
    for sender in senders:
        await sender.stop()


def outbound(clock: FakeClock, text: str = "hello", to: str = TO, sender: str = "InfoSMS") -> Outbound:
    return Outbound(
        message_id="msg-1",
        account_id=1,
        channel=Channel.SMS,
        sender=sender,
        to=to,
        to_kind=AddressKind.PHONE,
        content=SmsContent(text),
        expires_at=clock.now() + timedelta(hours=1, minutes=2, seconds=3),
    )


async def test_single_gsm_message_and_its_receipt(
    smsc: SmscSimulator, sink: InMemoryReceiptSink, clock: FakeClock, make_sender: SenderFactory
) -> None:
    sender = await make_sender()
    assert sender.bound() == {"main": True}
    accepted = await sender.send(outbound(clock, "Price: 5€ {ok} §", to="+" + TO))
    assert accepted.status == PENDING_ENROUTE
    assert accepted.message_count == 1
    [record] = smsc.submits
    assert accepted.refs == (scoped_ref("main", normalise_ref(record.message_id or "")),)
    assert record.destination == TO  # '+' dropped
    assert (record.dest_addr_ton, record.dest_addr_npi) == (1, 1)
    assert (record.source, record.source_addr_ton, record.source_addr_npi) == ("InfoSMS", 5, 0)
    assert (record.data_coding, record.esm_class, record.registered_delivery) == (0, 0, 1)
    assert record.validity_period == "000000010203000R"
    assert (
        record.short_message
        == b"Price: 5\x1be {ok}".replace(b"{", b"\x1b\x28").replace(b"}", b"\x1b\x29") + b" \x5f"
    )

    await sink.wait_for(lambda: len(sink.receipts) == 1)
    [receipt] = sink.receipts
    assert receipt.ref == accepted.refs[0]
    assert receipt.status == DELIVERED_TO_HANDSET
    assert receipt.done_at == clock.now()
    await smsc.wait_for(lambda: len(smsc.receipt_acks) == 1)
    assert smsc.receipt_acks[0].status == pdu.ESME_ROK


async def test_numeric_senders_get_their_ton_npi(
    smsc: SmscSimulator, clock: FakeClock, make_sender: SenderFactory
) -> None:
    sender = await make_sender()
    await sender.send(outbound(clock, sender="+447700900999"))
    await sender.send(outbound(clock, sender="12345"))
    assert [(r.source, r.source_addr_ton, r.source_addr_npi) for r in smsc.submits] == [
        ("447700900999", 1, 1),
        ("12345", 3, 0),
    ]


async def test_multipart_ucs2_has_udh_and_one_ref_per_part(
    smsc: SmscSimulator, sink: InMemoryReceiptSink, clock: FakeClock, make_sender: SenderFactory
) -> None:
    sender = await make_sender()
    text = "Привет, мир! " * 11  # 143 UCS-2 units: 3 parts of at most 67
    accepted = await sender.send(outbound(clock, text))
    assert accepted.message_count == 3
    assert len(smsc.submits) == 3
    parts = sorted(smsc.submits, key=lambda r: r.short_message[5])
    assert {r.data_coding for r in parts} == {8}
    assert {r.esm_class for r in parts} == {0x40}
    headers = [r.short_message[:6] for r in parts]
    ref = headers[0][3]
    assert headers == [bytes([5, 0, 3, ref, 3, seq]) for seq in (1, 2, 3)]
    assert "".join(decode_short_message(r.short_message, data_coding=8, udhi=True) for r in parts) == text
    assert set(accepted.refs) == {scoped_ref("main", normalise_ref(r.message_id or "")) for r in parts}
    assert len(set(accepted.refs)) == 3
    await sink.wait_for(lambda: sink.refs() == set(accepted.refs))


async def test_window_keeps_submits_outstanding_at_once(
    smsc: SmscSimulator, clock: FakeClock, make_sender: SenderFactory
) -> None:
    smsc.response_delay_s = 0.05
    sender = await make_sender(window=5)
    results = await asyncio.gather(*(sender.send(outbound(clock, f"n{i}")) for i in range(20)))
    assert all(r.status == PENDING_ENROUTE for r in results)
    assert smsc.max_outstanding == 5  # pipelined (> 1) and never past the window


async def test_throttling_is_unavailable_and_pauses_the_connector(
    smsc: SmscSimulator, clock: FakeClock, make_sender: SenderFactory
) -> None:
    smsc.script_number("447700900058", Script(Behaviour.THROTTLED))
    sender = await make_sender(throttle_pause_s=0.2)
    with pytest.raises(ChannelUnavailable) as caught:
        await sender.send(outbound(clock, to="447700900058"))
    assert caught.value.retry_after_s == pytest.approx(0.2)
    with pytest.raises(ChannelUnavailable) as paused:
        await sender.send(outbound(clock))  # a normal number, but the connector is paused
    assert paused.value.retry_after_s is not None
    assert 0 < paused.value.retry_after_s <= 0.2
    assert len(smsc.submits) == 1  # the paused send never reached the SMSC
    await asyncio.sleep(paused.value.retry_after_s)  # the pause runs in real time: the behaviour under test
    accepted = await sender.send(outbound(clock))
    assert accepted.status == PENDING_ENROUTE


async def test_queue_full_is_unavailable(
    smsc: SmscSimulator, clock: FakeClock, make_sender: SenderFactory
) -> None:
    smsc.script_number("447700900014", Script(Behaviour.QUEUE_FULL))
    sender = await make_sender()
    with pytest.raises(ChannelUnavailable) as caught:
        await sender.send(outbound(clock, to="447700900014"))
    assert caught.value.retry_after_s is not None


async def test_another_response_to_a_submit_is_an_unknown_outcome(
    smsc: SmscSimulator, clock: FakeClock, make_sender: SenderFactory
) -> None:
    # an SMSC answering the submit_sm's sequence with a deliver_sm_resp: no message id to match a
    # receipt to, and the submit may or may not have been taken (smpplib's parse used to read the
    # deliver_sm_resp's message_id as the SMSC's id)
    smsc.script_number("447700900099", Script(Behaviour.WRONG_RESPONSE))
    sender = await make_sender()
    with pytest.raises(ChannelUnavailable, match=r"unreadable submit_sm_resp.*not a submit_sm_resp"):
        await sender.send(outbound(clock, to="447700900099"))
    # the bind is still good for the next message
    accepted = await sender.send(outbound(clock, to="447700900001"))
    assert accepted.refs


@pytest.mark.parametrize(
    ("behaviour", "status", "error"),
    [
        (Behaviour.INVALID_DESTINATION, REJECTED_DESTINATION, EC_INVALID_DESTINATION_ADDRESS),
        (Behaviour.INVALID_SOURCE, REJECTED_SOURCE, EC_INVALID_SOURCE_ADDRESS),
        (Behaviour.GENERIC_NACK, UNDELIVERABLE_REJECTED_OPERATOR, EC_INVALID_PDU_FORMAT),
    ],
)
async def test_permanent_rejections(
    smsc: SmscSimulator,
    clock: FakeClock,
    make_sender: SenderFactory,
    behaviour: Behaviour,
    status: object,
    error: object,
) -> None:
    smsc.script_number("447700900011", Script(behaviour))
    sender = await make_sender()
    with pytest.raises(MessageRejected) as caught:
        await sender.send(outbound(clock, to="447700900011"))
    assert caught.value.status == status
    assert caught.value.error == error
    assert sender.bound() == {"main": True}


def test_submit_status_mapping() -> None:
    def error(status: int, nack: bool = False) -> object:
        return submit_error(SubmitResponse(status=status, generic_nack=nack), "c")

    assert error(0) is None
    for transient in (0x58, 0x14, 0x08, 0x64, 0x04):
        assert isinstance(error(transient), ChannelUnavailable)
    for status, expected in (
        (0x0B, (REJECTED_DESTINATION, EC_INVALID_DESTINATION_ADDRESS)),
        (0x0A, (REJECTED_SOURCE, EC_INVALID_SOURCE_ADDRESS)),
        (0x01, (UNDELIVERABLE_REJECTED_OPERATOR, EC_INVALID_PDU_FORMAT)),
        (0x45, (UNDELIVERABLE_REJECTED_OPERATOR, EC_SMS_REJECTED_BY_MOBILE_OPERATOR)),
        (0x51, (UNDELIVERABLE_REJECTED_OPERATOR, EC_SMS_REJECTED_BY_MOBILE_OPERATOR)),
    ):
        rejected = error(status)
        assert isinstance(rejected, MessageRejected)
        assert (rejected.status, rejected.error) == expected
    nack = error(0x02, nack=True)
    assert isinstance(nack, MessageRejected)
    assert (nack.status, nack.error) == (UNDELIVERABLE_REJECTED_OPERATOR, EC_INVALID_PDU_FORMAT)


async def test_invalid_addresses_are_rejected_before_sending(
    smsc: SmscSimulator, clock: FakeClock, make_sender: SenderFactory
) -> None:
    sender = await make_sender()
    with pytest.raises(MessageRejected) as bad_to:
        await sender.send(outbound(clock, to="41-79-302"))
    assert bad_to.value.status == REJECTED_DESTINATION
    for bad_sender in ("TwelveLetter", "Info\x00SMS", "Info\nSMS"):
        with pytest.raises(MessageRejected) as bad_from:
            await sender.send(outbound(clock, sender=bad_sender))
        assert bad_from.value.status == REJECTED_SOURCE
    assert smsc.submits == []


async def test_connection_dropped_mid_batch_resolves_every_send_and_reconnects(
    smsc: SmscSimulator, clock: FakeClock, make_sender: SenderFactory
) -> None:
    smsc.response_delay_s = 0.5  # keep submits in flight
    sender = await make_sender(window=10, response_timeout_s=20.0)
    sends = [asyncio.create_task(sender.send(outbound(clock, f"n{i}"))) for i in range(30)]
    await smsc.wait_for(lambda: len(smsc.submits) >= 10)
    smsc.drop_all()
    async with asyncio.timeout(3):  # none hangs, none waits for its response timeout
        results = await asyncio.gather(*sends, return_exceptions=True)
    unavailable = [r for r in results if isinstance(r, ChannelUnavailable)]
    assert len(unavailable) + sum(1 for r in results if not isinstance(r, BaseException)) == 30
    assert len(unavailable) >= 10  # the ten in flight at least
    assert "outcome unknown" in unavailable[0].reason

    smsc.response_delay_s = 0.0
    assert await sender.wait_bound(5)
    assert (await sender.send(outbound(clock))).status == PENDING_ENROUTE
    assert len([b for b in smsc.binds if b.status == 0]) == 2


async def test_no_answer_is_unavailable_after_the_response_timeout(
    smsc: SmscSimulator, clock: FakeClock, make_sender: SenderFactory
) -> None:
    smsc.script_number("447700900009", Script(Behaviour.NO_RESPONSE))
    sender = await make_sender(response_timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(ChannelUnavailable) as caught:
        await sender.send(outbound(clock, to="447700900009"))
    assert time.monotonic() - started >= 0.29
    assert "outcome unknown" in caught.value.reason
    assert (await sender.send(outbound(clock))).status == PENDING_ENROUTE  # the bind is still fine


async def test_receipt_before_submit_response_still_reaches_the_sink(
    smsc: SmscSimulator, sink: InMemoryReceiptSink, clock: FakeClock, make_sender: SenderFactory
) -> None:
    smsc.receipt_before_response = True
    sender = await make_sender()
    before = clock.now()
    accepted = await sender.send(outbound(clock))
    await sink.wait_for(lambda: accepted.refs[0] in sink.refs())
    # handled once the submit_sm_resp gave the id: the receipt says its send was this one
    [receipt] = sink.receipts
    assert receipt.sent_after == before


async def test_receipts_are_scoped_by_connector_and_name_their_send(
    smsc: SmscSimulator, sink: InMemoryReceiptSink, clock: FakeClock, make_sender: SenderFactory
) -> None:
    async with SmscSimulator(users=USERS, receipt_delay_s=0.0) as other:
        first = connector(smsc.port, name="one")
        second = connector(other.port, name="two")
        sender = await make_sender(
            first,
            second,
            routes=[SmsRoute(prefix="4179", connector="one"), SmsRoute(prefix="", connector="two")],
        )
        one = await sender.send(outbound(clock, to="41791234567"))
        clock.advance(1)
        two = await sender.send(outbound(clock, to="447700900001"))
        assert (one.refs, two.refs) == (("one/1",), ("two/1",))  # both SMSCs said 00000001
        await sink.wait_for(lambda: len(sink.receipts) == 2)
        sent_after = {r.ref: r.sent_after for r in sink.receipts}
        assert sent_after == {"one/1": clock.now() - timedelta(seconds=1), "two/1": clock.now()}


async def test_receipt_acknowledged_only_after_the_sink_stored_it(
    smsc: SmscSimulator, sink: InMemoryReceiptSink, clock: FakeClock, make_sender: SenderFactory
) -> None:
    sink.gate = asyncio.Event()
    sender = await make_sender()
    await sender.send(outbound(clock))
    await smsc.wait_for(lambda: smsc.receipts_sent == 1)
    async with asyncio.timeout(5):
        await sink.entered.wait()
    assert smsc.receipt_acks == []  # the sink has not returned yet
    sink.gate.set()
    await smsc.wait_for(lambda: len(smsc.receipt_acks) == 1)
    assert smsc.receipt_acks[0].status == pdu.ESME_ROK
    assert len(sink.receipts) == 1


async def test_sink_failure_asks_the_smsc_to_redeliver(
    smsc: SmscSimulator, sink: InMemoryReceiptSink, clock: FakeClock, make_sender: SenderFactory
) -> None:
    sink.failing = True
    sender = await make_sender()
    await sender.send(outbound(clock))
    await smsc.wait_for(lambda: len(smsc.receipt_acks) == 1)
    assert smsc.receipt_acks[0].status == pdu.ESME_RX_T_APPN
    assert sender.bound() == {"main": True}


async def test_failure_receipt_keeps_the_smsc_error(
    smsc: SmscSimulator, sink: InMemoryReceiptSink, clock: FakeClock, make_sender: SenderFactory
) -> None:
    smsc.script_number("447700900005", Script(Behaviour.UNDELIVERABLE, err="001"))
    sender = await make_sender()
    accepted = await sender.send(outbound(clock, to="447700900005"))
    await sink.wait_for(lambda: len(sink.receipts) == 1)
    [receipt] = sink.receipts
    assert receipt.ref == accepted.refs[0]
    assert receipt.status == UNDELIVERABLE_NOT_DELIVERED
    assert receipt.error == EC_UNKNOWN_SUBSCRIBER
    assert receipt.detail["err"] == "001"


async def test_unknown_unreadable_and_mo_deliveries_are_acknowledged(
    smsc: SmscSimulator, sink: InMemoryReceiptSink, clock: FakeClock, make_sender: SenderFactory
) -> None:
    sender = await make_sender()
    smsc.deliver_raw(
        "ghost", short_message=b"id:0FFFF stat:DELIVRD err:000", receipted_message_id="0FFFF", message_state=2
    )
    smsc.deliver_raw("garbage", short_message=b"\x00\x01 not a receipt")
    smsc.deliver_raw("mo", short_message=b"hi there", esm_class=0)
    await smsc.wait_for(lambda: len(smsc.receipt_acks) == 3)
    assert {(a.message_id, a.status) for a in smsc.receipt_acks} == {("ghost", 0), ("garbage", 0), ("mo", 0)}
    assert [r.ref for r in sink.receipts] == ["main/ffff"]  # handed on; matching is the store's job
    assert sender.bound() == {"main": True}
    assert (await sender.send(outbound(clock))).status == PENDING_ENROUTE


async def test_wrong_password_is_not_bound_and_does_not_hot_loop(
    smsc: SmscSimulator, clock: FakeClock, make_sender: SenderFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    config = connector(smsc.port, password="nope", reconnect_min_s=0.01, reconnect_max_s=5.0)
    sender = await make_sender(config, wait_bound=False)
    await smsc.wait_for(lambda: len(smsc.binds) >= 1)
    await asyncio.sleep(0.3)  # a window to count binds in (a rate): a hot loop would bind dozens of times
    assert [b.status for b in smsc.binds] == [pdu.ESME_RINVPASWD]
    assert sender.bound() == {"main": False}
    with pytest.raises(ChannelUnavailable, match="not bound"):
        await sender.send(outbound(clock))
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors
    assert "password" in errors[0].getMessage()
    assert "nope" not in caplog.text


async def test_smsc_down_start_returns_and_sends_are_unavailable(
    clock: FakeClock, sink: InMemoryReceiptSink
) -> None:
    async with SmscSimulator(users=USERS) as gone:
        port = gone.port
    sender = SmppSender([connector(port)], [], sink, clock)
    async with asyncio.timeout(1):
        await sender.start()
    try:
        assert not await sender.wait_bound(0.1)
        assert sender.bound() == {"main": False}
        with pytest.raises(ChannelUnavailable, match="not bound"):
            await sender.send(outbound(clock))
    finally:
        await sender.stop()


async def test_smsc_unbind_is_answered_and_the_session_rebinds(
    smsc: SmscSimulator, clock: FakeClock, make_sender: SenderFactory
) -> None:
    sender = await make_sender()
    smsc.unbind_all()
    await smsc.wait_for(lambda: smsc.unbind_resps == 1)
    await smsc.wait_for(lambda: len(smsc.binds) == 2 and smsc.bound_connections == 1)
    assert await sender.wait_bound(5)
    assert (await sender.send(outbound(clock))).status == PENDING_ENROUTE


async def test_enquire_link_both_ways(smsc: SmscSimulator, make_sender: SenderFactory) -> None:
    await make_sender(enquire_link_s=0.05)
    smsc.enquire_link_all()
    await smsc.wait_for(lambda: smsc.enquire_link_resps == 1)  # we answer the SMSC's
    await smsc.wait_for(lambda: smsc.enquire_links_received >= 2)  # and keep an idle link alive


async def test_stop_unbinds(smsc: SmscSimulator, sink: InMemoryReceiptSink, clock: FakeClock) -> None:
    sender = SmppSender([connector(smsc.port)], [], sink, clock)
    await sender.start()
    assert await sender.wait_bound(5)
    await sender.stop()
    assert smsc.unbinds_received == 1
    assert sender.bound() == {"main": False}


async def test_routes_by_longest_prefix(
    smsc: SmscSimulator, clock: FakeClock, make_sender: SenderFactory
) -> None:
    swiss = connector(smsc.port, name="swiss", system_id="gw2", password="secret2")
    default = connector(smsc.port, name="default")
    sender = await make_sender(
        swiss,
        default,
        routes=[SmsRoute(prefix="4179", connector="swiss"), SmsRoute(prefix="", connector="default")],
    )
    await sender.send(outbound(clock, to="41791234567"))
    await sender.send(outbound(clock, to="447700900001"))
    assert [(r.destination, r.system_id) for r in smsc.submits] == [
        ("41791234567", "gw2"),
        ("447700900001", "gw"),
    ]


async def test_no_route_is_rejected(
    smsc: SmscSimulator, clock: FakeClock, make_sender: SenderFactory
) -> None:
    first = connector(smsc.port, name="a")
    second = connector(smsc.port, name="b", system_id="gw2", password="secret2")
    sender = await make_sender(first, second, routes=[SmsRoute(prefix="4179", connector="a")])
    with pytest.raises(MessageRejected) as caught:
        await sender.send(outbound(clock, to="447700900001"))
    assert caught.value.status == REJECTED_ROUTE_NOT_AVAILABLE


def test_relative_validity_period() -> None:
    assert relative_validity_period(timedelta(hours=1, minutes=2, seconds=3)) == "000000010203000R"
    assert relative_validity_period(timedelta(hours=48)) == "000002000000000R"
    assert relative_validity_period(timedelta(seconds=-5)) == "000000000000000R"


def test_token_bucket() -> None:
    bucket = TokenBucket(rate_per_s=10, burst=2)
    assert bucket.reserve(100.0) == 0.0
    assert bucket.reserve(100.0) == 0.0  # burst of two
    assert bucket.delay_s(100.0) == pytest.approx(0.1)
    assert bucket.reserve(100.0) == pytest.approx(0.1)
    assert bucket.reserve(100.0) == pytest.approx(0.2)
    assert bucket.delay_s(101.0) == 0.0  # refilled


async def test_throughput_limit_paces_submits(
    smsc: SmscSimulator, clock: FakeClock, make_sender: SenderFactory
) -> None:
    sender = await make_sender(throughput_per_s=50.0)  # burst of 5
    started = time.monotonic()
    await asyncio.gather(*(sender.send(outbound(clock, f"n{i}")) for i in range(10)))
    assert time.monotonic() - started >= 0.09  # 5 at once, then one per 20 ms


async def test_throughput_limit_refuses_sends_it_could_not_start_in_time(
    smsc: SmscSimulator, clock: FakeClock, make_sender: SenderFactory
) -> None:
    sender = await make_sender(throughput_per_s=10.0, response_timeout_s=0.3)
    results = await asyncio.gather(
        *(sender.send(outbound(clock, f"n{i}")) for i in range(10)), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, ChannelUnavailable)]
    assert refused
    assert all(r.retry_after_s is not None and r.retry_after_s > 0.3 for r in refused)
    assert len(smsc.submits) == 10 - len(refused)
