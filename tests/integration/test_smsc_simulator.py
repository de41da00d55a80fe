"""The SMSC simulator itself, over real TCP on 127.0.0.1: binds, submits, receipts, scripts.

A raw ESME (our PDU codec, no session logic) drives it PDU by PDU; the interoperability test uses
smpplib's own blocking client to prove the simulator speaks standard SMPP v3.4.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest
import smpplib.client
import smpplib.consts

from omnirelay.channels.sms import pdu
from omnirelay.sandbox.smsc import (
    SANDBOX_SUFFIX_RULES,
    Behaviour,
    MessageIds,
    Script,
    SmscSimulator,
    run_smsc,
)

USERS = {"gw": "secret", "other": "pw2"}


class RawEsme:
    """A bare SMPP client: writes PDUs and reads frames, nothing else."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.sequences = pdu.SequenceNumbers()

    @classmethod
    async def connect(cls, port: int) -> RawEsme:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def send(self, frame: bytes) -> None:
        self.writer.write(frame)

    async def read(self, timeout_s: float = 5.0) -> tuple[pdu.Header, bytes]:
        async with asyncio.timeout(timeout_s):
            frame = await pdu.read_frame(self.reader)
        return pdu.decode_header(frame), frame

    async def bind(self, system_id: str = "gw", password: str = "secret") -> int:
        self.send(pdu.bind_transceiver(self.sequences.next(), system_id=system_id, password=password))
        header, _ = await self.read()
        assert header.command_id == pdu.BIND_TRANSCEIVER_RESP
        return header.status

    def submit(self, destination: str, text: bytes = b"hello", registered_delivery: int = 1) -> int:
        sequence = self.sequences.next()
        self.send(
            pdu.submit_sm(
                sequence,
                source_addr="ACME",
                source_addr_ton=5,
                source_addr_npi=0,
                destination_addr=destination,
                dest_addr_ton=1,
                dest_addr_npi=1,
                esm_class=0,
                data_coding=0,
                short_message=text,
                registered_delivery=registered_delivery,
            )
        )
        return sequence

    async def at_eof(self) -> bool:
        async with asyncio.timeout(5):
            return await self.reader.read(1) == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


@pytest.fixture
async def smsc() -> AsyncIterator[SmscSimulator]:
    async with SmscSimulator(users=USERS, receipt_delay_s=0.0) as simulator:
        yield simulator


@pytest.fixture
async def esme(smsc: SmscSimulator) -> AsyncIterator[RawEsme]:
    client = await RawEsme.connect(smsc.port)
    yield client
    await client.close()


async def test_bind_accepts_known_credentials(smsc: SmscSimulator, esme: RawEsme) -> None:
    assert await esme.bind() == pdu.ESME_ROK
    assert smsc.binds[-1].status == pdu.ESME_ROK
    assert smsc.bound_connections == 1


@pytest.mark.parametrize(
    ("system_id", "password", "status"),
    [
        ("gw", "wrong", pdu.ESME_RINVPASWD),
        ("nobody", "secret", pdu.ESME_RINVSYSID),
        ("gw", "pw2", pdu.ESME_RINVPASWD),
    ],
)
async def test_bind_refuses_bad_credentials_and_closes(
    smsc: SmscSimulator, esme: RawEsme, system_id: str, password: str, status: int
) -> None:
    assert await esme.bind(system_id, password) == status
    assert await esme.at_eof()
    assert smsc.binds[-1].status == status


async def test_submit_before_bind_is_refused(esme: RawEsme) -> None:
    sequence = esme.submit("447700900001")
    header, _ = await esme.read()
    assert (header.command_id, header.status, header.sequence) == (
        pdu.SUBMIT_SM_RESP,
        pdu.ESME_RINVBNDSTS,
        sequence,
    )


async def test_submit_gets_message_id_and_receipt_with_text_and_tlvs(
    smsc: SmscSimulator, esme: RawEsme
) -> None:
    await esme.bind()
    sequence = esme.submit("447700900001", b"hello world")
    header, frame = await esme.read()
    assert (header.command_id, header.status, header.sequence) == (pdu.SUBMIT_SM_RESP, pdu.ESME_ROK, sequence)
    message_id = pdu.decode_message_id(frame)
    assert message_id
    assert message_id == "00000001"  # a counter, as many SMSCs number messages

    header, frame = await esme.read()
    assert header.command_id == pdu.DELIVER_SM
    deliver = pdu.decode_deliver_sm(frame)
    assert deliver.esm_class == 0x04
    assert deliver.receipted_message_id == message_id
    assert deliver.message_state == 2
    assert deliver.source_addr == "447700900001"
    assert deliver.destination_addr == "ACME"
    text = deliver.short_message.decode()
    assert text.startswith(f"id:{message_id} sub:001 dlvrd:001 submit date:")
    assert "stat:DELIVRD err:000 text:hello world" in text

    esme.send(pdu.deliver_sm_resp(header.sequence))
    await smsc.wait_for(lambda: len(smsc.receipt_acks) == 1)
    assert smsc.receipt_acks[0].message_id == message_id
    assert smsc.receipt_acks[0].status == pdu.ESME_ROK

    record = smsc.submits[0]
    assert (record.destination, record.source, record.source_addr_ton, record.source_addr_npi) == (
        "447700900001",
        "ACME",
        5,
        0,
    )
    assert (record.dest_addr_ton, record.dest_addr_npi, record.data_coding, record.esm_class) == (1, 1, 0, 0)
    assert record.short_message == b"hello world"
    assert record.message_id == message_id


async def _ids_of_submits(port: int, count: int) -> list[str]:
    esme = await RawEsme.connect(port)
    try:
        await esme.bind()
        for _ in range(count):
            esme.submit("447700900001", registered_delivery=0)
        ids = []
        for _ in range(count):
            header, frame = await esme.read()
            assert header.command_id == pdu.SUBMIT_SM_RESP
            ids.append(pdu.decode_message_id(frame))
        return ids
    finally:
        await esme.close()


async def test_message_ids_count_from_one_again_after_a_restart(smsc: SmscSimulator) -> None:
    first = await _ids_of_submits(smsc.port, 20)
    assert first == [f"{i:08d}" for i in range(1, 21)]
    await smsc.stop()
    await smsc.start()
    assert await _ids_of_submits(smsc.port, 3) == ["00000001", "00000002", "00000003"]


async def test_random_message_ids_are_unique_across_restarts() -> None:
    async with SmscSimulator(users=USERS, message_ids=MessageIds.RANDOM) as smsc:
        ids = await _ids_of_submits(smsc.port, 20)
        await smsc.stop()
        await smsc.start()
        ids += await _ids_of_submits(smsc.port, 20)
    assert len(set(ids)) == 40


async def test_unreadable_response_is_ok_without_a_c_string_and_the_message_delivered(
    smsc: SmscSimulator, esme: RawEsme
) -> None:
    smsc.script_number("447700900077", Script(Behaviour.UNREADABLE_RESPONSE))
    await esme.bind()
    esme.submit("447700900077")
    header, frame = await esme.read()
    assert (header.command_id, header.status) == (pdu.SUBMIT_SM_RESP, pdu.ESME_ROK)
    with pytest.raises(pdu.PduDecodeError):
        pdu.decode_message_id(frame)
    header, frame = await esme.read()
    assert pdu.decode_deliver_sm(frame).receipted_message_id == "00000001"  # it was taken


async def test_no_receipt_without_registered_delivery(smsc: SmscSimulator, esme: RawEsme) -> None:
    await esme.bind()
    esme.submit("447700900001", registered_delivery=0)
    await esme.read()
    esme.send(pdu.enquire_link(esme.sequences.next()))
    header, _ = await esme.read()
    assert header.command_id == pdu.ENQUIRE_LINK_RESP  # no deliver_sm came first
    assert smsc.receipts_sent == 0


@pytest.mark.parametrize(
    ("behaviour", "err", "stat", "state"),
    [
        (Behaviour.UNDELIVERABLE, "001", "UNDELIV", 5),
        (Behaviour.REJECTED, "008", "REJECTD", 8),
        (Behaviour.EXPIRED, "000", "EXPIRED", 3),
    ],
)
async def test_failure_receipts_by_exact_number(
    smsc: SmscSimulator, esme: RawEsme, behaviour: Behaviour, err: str, stat: str, state: int
) -> None:
    smsc.script_number("447700900123", Script(behaviour, err=err))
    await esme.bind()
    esme.submit("447700900123")
    header, _ = await esme.read()
    assert header.status == pdu.ESME_ROK
    _, frame = await esme.read()
    deliver = pdu.decode_deliver_sm(frame)
    assert deliver.message_state == state
    assert f"stat:{stat} err:{err}" in deliver.short_message.decode()


@pytest.mark.parametrize(
    ("behaviour", "command_id", "status"),
    [
        (Behaviour.THROTTLED, pdu.SUBMIT_SM_RESP, pdu.ESME_RTHROTTLED),
        (Behaviour.QUEUE_FULL, pdu.SUBMIT_SM_RESP, pdu.ESME_RMSGQFUL),
        (Behaviour.INVALID_DESTINATION, pdu.SUBMIT_SM_RESP, pdu.ESME_RINVDSTADR),
        (Behaviour.INVALID_SOURCE, pdu.SUBMIT_SM_RESP, pdu.ESME_RINVSRCADR),
        (Behaviour.GENERIC_NACK, pdu.GENERIC_NACK, pdu.ESME_RINVCMDLEN),
    ],
)
async def test_error_answers_by_suffix(
    smsc: SmscSimulator, esme: RawEsme, behaviour: Behaviour, command_id: int, status: int
) -> None:
    smsc.script_suffix("77", Script(behaviour))
    await esme.bind()
    sequence = esme.submit("447700900077")
    header, _ = await esme.read()
    assert (header.command_id, header.status, header.sequence) == (command_id, status, sequence)
    assert smsc.submits[0].message_id is None


def test_script_precedence() -> None:
    smsc = SmscSimulator(users=USERS, suffix_rules={"1": Script(Behaviour.EXPIRED)})
    smsc.script_suffix("01", Script(Behaviour.THROTTLED))
    smsc.script_number("447700900001", Script(Behaviour.REJECTED))
    assert smsc.script_for("447700900001").behaviour is Behaviour.REJECTED  # exact number wins
    assert smsc.script_for("447700900101").behaviour is Behaviour.THROTTLED  # longest suffix wins
    assert smsc.script_for("447700900011").behaviour is Behaviour.EXPIRED
    assert smsc.script_for("447700900002").behaviour is Behaviour.DELIVER


async def test_never_answer(smsc: SmscSimulator, esme: RawEsme) -> None:
    smsc.script_number("447700900009", Script(Behaviour.NO_RESPONSE))
    await esme.bind()
    silent = esme.submit("447700900009")
    answered = esme.submit("447700900001", registered_delivery=0)
    header, _ = await esme.read()
    assert header.sequence == answered != silent
    assert smsc.submits[0].status is None


async def test_drop_connection_script(smsc: SmscSimulator, esme: RawEsme) -> None:
    smsc.script_number("447700900666", Script(Behaviour.DROP_CONNECTION))
    await esme.bind()
    esme.submit("447700900666")
    with pytest.raises((asyncio.IncompleteReadError, ConnectionError)):
        await esme.read()
    await smsc.wait_for(lambda: smsc.bound_connections == 0)


async def test_drop_all(smsc: SmscSimulator, esme: RawEsme) -> None:
    await esme.bind()
    smsc.drop_all()
    with pytest.raises((asyncio.IncompleteReadError, ConnectionError)):
        await esme.read()


async def test_paused_holds_receipts_until_resumed(smsc: SmscSimulator, esme: RawEsme) -> None:
    smsc.paused = True
    await esme.bind()
    esme.submit("447700900001")
    header, frame = await esme.read()
    message_id = pdu.decode_message_id(frame)
    esme.send(pdu.enquire_link(esme.sequences.next()))
    header, _ = await esme.read()
    assert header.command_id == pdu.ENQUIRE_LINK_RESP  # no receipt before it
    assert smsc.receipts_sent == 0
    smsc.paused = False
    header, frame = await esme.read()
    assert header.command_id == pdu.DELIVER_SM
    assert pdu.decode_deliver_sm(frame).receipted_message_id == message_id


async def test_receipt_before_response_mode(smsc: SmscSimulator, esme: RawEsme) -> None:
    smsc.receipt_before_response = True
    await esme.bind()
    esme.submit("447700900001")
    first, receipt_frame = await esme.read()
    second, resp_frame = await esme.read()
    assert (first.command_id, second.command_id) == (pdu.DELIVER_SM, pdu.SUBMIT_SM_RESP)
    assert pdu.decode_deliver_sm(receipt_frame).receipted_message_id == pdu.decode_message_id(resp_frame)


async def test_response_delay_shows_pipelining(smsc: SmscSimulator, esme: RawEsme) -> None:
    smsc.response_delay_s = 0.05
    await esme.bind()
    for _ in range(5):
        esme.submit("447700900001", registered_delivery=0)
    for _ in range(5):
        header, _ = await esme.read()
        assert header.command_id == pdu.SUBMIT_SM_RESP
    assert smsc.max_outstanding == 5


async def test_receipt_waits_for_a_receiver_after_reconnect(smsc: SmscSimulator) -> None:
    smsc.receipt_delay_s = 0.05
    first = await RawEsme.connect(smsc.port)
    await first.bind()
    first.submit("447700900001")
    _, frame = await first.read()
    message_id = pdu.decode_message_id(frame)
    await first.close()
    await smsc.wait_for(lambda: smsc.bound_connections == 0)
    second = await RawEsme.connect(smsc.port)
    try:
        await second.bind()
        header, frame = await second.read()
        assert header.command_id == pdu.DELIVER_SM
        assert pdu.decode_deliver_sm(frame).receipted_message_id == message_id
    finally:
        await second.close()


async def test_enquire_link_unbind_and_unknown_commands(smsc: SmscSimulator, esme: RawEsme) -> None:
    await esme.bind()
    sequence = esme.sequences.next()
    esme.send(pdu.enquire_link(sequence))
    header, _ = await esme.read()
    assert (header.command_id, header.sequence) == (pdu.ENQUIRE_LINK_RESP, sequence)

    esme.send(pdu.HEADER.pack(16, 0x00000099, 0, 77))  # no such command
    header, _ = await esme.read()
    assert (header.command_id, header.status, header.sequence) == (pdu.GENERIC_NACK, pdu.ESME_RINVCMDID, 77)

    sequence = esme.sequences.next()
    esme.send(pdu.unbind(sequence))
    header, _ = await esme.read()
    assert (header.command_id, header.sequence) == (pdu.UNBIND_RESP, sequence)
    assert await esme.at_eof()
    assert smsc.unbinds_received == 1


async def test_smsc_initiated_enquire_link_and_unbind(smsc: SmscSimulator, esme: RawEsme) -> None:
    await esme.bind()
    smsc.enquire_link_all()
    header, _ = await esme.read()
    assert header.command_id == pdu.ENQUIRE_LINK
    esme.send(pdu.enquire_link_resp(header.sequence))
    await smsc.wait_for(lambda: smsc.enquire_link_resps == 1)
    smsc.unbind_all()
    header, _ = await esme.read()
    assert header.command_id == pdu.UNBIND
    esme.send(pdu.unbind_resp(header.sequence))
    await smsc.wait_for(lambda: smsc.unbind_resps == 1)
    assert await esme.at_eof()


async def test_bad_command_length_gets_generic_nack(esme: RawEsme) -> None:
    esme.send(b"\x00\x00\x00\x04")
    header, _ = await esme.read()
    assert (header.command_id, header.status) == (pdu.GENERIC_NACK, pdu.ESME_RINVCMDLEN)
    assert await esme.at_eof()


def _smpplib_session(port: int) -> tuple[list[tuple[str, object, object]], list[tuple[bytes, int, bytes]]]:
    """smpplib's own blocking client: bind, submit two messages, read their receipts, unbind."""
    client = smpplib.client.Client("127.0.0.1", port, timeout=5, allow_unknown_opt_params=True)
    sent: list[tuple[str, object, object]] = []
    receipts: list[tuple[bytes, int, bytes]] = []
    client.set_message_sent_handler(lambda pdu, **kw: sent.append(("ok", pdu.status, pdu.message_id)))
    client.set_error_pdu_handler(lambda pdu: sent.append(("error", pdu.status, None)))
    client.set_message_received_handler(
        lambda pdu, **kw: receipts.append((pdu.receipted_message_id, pdu.message_state, pdu.short_message))
    )
    client.connect()
    try:
        client.bind_transceiver(system_id="gw", password="secret")
        for destination in ("447700900001", "447700900005"):
            client.send_message(
                source_addr="ACME",
                source_addr_ton=smpplib.consts.SMPP_TON_ALNUM,
                source_addr_npi=smpplib.consts.SMPP_NPI_UNK,
                destination_addr=destination,
                dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
                data_coding=0,
                short_message=b"hello",
                registered_delivery=1,
            )
        while len(receipts) < 2:
            client.read_once(auto_send_enquire_link=False)
        client.unbind()
    finally:
        client.disconnect()
    return sent, receipts


async def test_interoperability_with_smpplib_client(smsc: SmscSimulator) -> None:
    smsc.script_suffix("0005", Script(Behaviour.UNDELIVERABLE, err="001"))
    sent, receipts = await asyncio.to_thread(_smpplib_session, smsc.port)
    delivered, failed = (record.message_id.encode() for record in smsc.submits if record.message_id)
    assert [(kind, status) for kind, status, _ in sent] == [("ok", 0), ("ok", 0)]
    assert [message_id for _, _, message_id in sent] == [delivered, failed]
    by_id = {message_id: (state, text) for message_id, state, text in receipts}
    assert set(by_id) == {delivered, failed}
    assert by_id[delivered][0] == 2
    assert b"stat:DELIVRD" in by_id[delivered][1]
    assert by_id[failed][0] == 5
    assert b"stat:UNDELIV err:001" in by_id[failed][1]
    assert [ack.status for ack in smsc.receipt_acks] == [0, 0]
    assert smsc.unbinds_received == 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_run_smsc_serves_with_sandbox_rules() -> None:
    port = _free_port()
    server = asyncio.create_task(run_smsc("127.0.0.1", port, "sandbox", "sandboxp"))
    try:
        async with asyncio.timeout(5):
            while True:
                try:
                    esme = await RawEsme.connect(port)
                    break
                except OSError:
                    await asyncio.sleep(0.02)  # polling for a condition, under a deadline
        try:
            assert await esme.bind("sandbox", "sandboxp") == pdu.ESME_ROK
            esme.submit("41790000058")  # sandbox rule: throttled
            header, _ = await esme.read()
            assert header.status == pdu.ESME_RTHROTTLED
            esme.submit("41793026727", registered_delivery=0)  # the seed's number is delivered
            header, _ = await esme.read()
            assert header.status == pdu.ESME_ROK
        finally:
            await esme.close()
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
    assert SANDBOX_SUFFIX_RULES["0058"].behaviour is Behaviour.THROTTLED


def test_credentials_longer_than_smpp_allows_are_refused() -> None:
    with pytest.raises(ValueError, match="password"):
        SmscSimulator(users={"gw": "ninechars"})
