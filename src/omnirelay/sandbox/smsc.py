"""SMSC simulator: an SMPP v3.4 server over TCP for the sandbox and the test suite.

It speaks the standard (smpplib's blocking client binds to it, see its tests) and is scriptable so
every failover path can be driven:

* binds (`bind_transceiver`, `bind_transmitter`, `bind_receiver`) are checked against `users`
  (system_id → password): ESME_RINVSYSID / ESME_RINVPASWD, then the connection is closed; with
  `max_binds`, a bind beyond that many at once for one system_id is refused with ESME_RBINDFAIL,
  as SMSCs limit the binds of an account (`peak_binds` records the most seen at once);
* `enquire_link` and `unbind` are answered; unknown commands get `generic_nack` (RINVCMDID);
* each accepted `submit_sm` gets a message id and, when `registered_delivery & 1`, a delivery
  receipt after `receipt_delay_s`: a `deliver_sm` with `esm_class` 0x04, the usual
  `id:… stat:… err:…` text *and* the `receipted_message_id` + `message_state` TLVs. Receipts go to
  the submitting connection, or another receiver bound with the same system_id, or wait for one;
* per destination (exact number, or a suffix rule; the longest suffix wins) a `Script` picks the
  behaviour: deliver, fail with UNDELIV / REJECTD / EXPIRED (with an `err` code), never answer,
  answer throttled (0x58) or queue full (0x14), reject with RINVDSTADR or RINVSRCADR, answer
  `generic_nack`, answer with another response (`deliver_sm_resp`), or drop the connection;
* `paused = True` holds receipts until it is set back to False; `receipt_before_response` sends
  the receipt before the `submit_sm_resp` (the race real SMSCs produce); `response_delay_s`
  delays every `submit_sm_resp` (so pipelining is visible in `max_outstanding`);
* everything received is recorded for tests: `submits`, `binds`, `receipt_acks`.

Message ids (`message_ids`): by default, as many SMSCs number them, a decimal counter from
00000001 that starts again at every `start()` (a restart hands out the ids of before again, and
two simulators hand out the same ids: an id is unique only among one SMSC's live messages, SMPP
v3.4 §4.4.2). `MessageIds.RANDOM` gives ids unique across restarts (a random prefix per start).

It uses smpplib directly as its codec: `omnirelay.sandbox` must not import `omnirelay.channels`.
The hot path is synchronous (parse, answer, `call_later` for the receipt), so it stays responsive
well past 1,000 submits per second.

Sandbox rules (`SANDBOX_SUFFIX_RULES`, used by `run_smsc`): destinations ending in 0014 → queue
full, 0058 → throttled, 0011 → invalid destination, 0005 → UNDELIV err 001, 0003 → EXPIRED,
0008 → REJECTD err 008; everything else is delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, Final

from smpplib import exceptions as smpp_exceptions
from smpplib import smpp

from omnirelay.domain.sms_text import decode_short_message

log = logging.getLogger(__name__)

_HEADER: Final = struct.Struct(">LLLL")
_MAX_PDU_LENGTH: Final = 0x10000 + 1024
_RESPONSE_BIT: Final = 0x80000000
_GENERIC_NACK: Final = 0x80000000
_BIND_RECEIVER: Final = 0x01
_BIND_TRANSMITTER: Final = 0x02
_SUBMIT_SM: Final = 0x04
_SUBMIT_SM_RESP: Final = 0x80000004
_DELIVER_SM_RESP: Final = 0x80000005
_UNBIND: Final = 0x06
_UNBIND_RESP: Final = 0x80000006
_BIND_TRANSCEIVER: Final = 0x09
_ENQUIRE_LINK: Final = 0x15
_ENQUIRE_LINK_RESP: Final = 0x80000015
_BIND_COMMANDS: Final = {
    _BIND_RECEIVER: "bind_receiver",
    _BIND_TRANSMITTER: "bind_transmitter",
    _BIND_TRANSCEIVER: "bind_transceiver",
}

ESME_ROK: Final = 0x00
ESME_RINVCMDLEN: Final = 0x02
ESME_RINVCMDID: Final = 0x03
ESME_RINVBNDSTS: Final = 0x04
ESME_RALYBND: Final = 0x05
ESME_RINVSRCADR: Final = 0x0A
ESME_RINVDSTADR: Final = 0x0B
ESME_RBINDFAIL: Final = 0x0D
ESME_RINVPASWD: Final = 0x0E
ESME_RINVSYSID: Final = 0x0F
ESME_RMSGQFUL: Final = 0x14
ESME_RTHROTTLED: Final = 0x58
ESM_CLASS_DELIVERY_RECEIPT: Final = 0x04

_PARSE_ERRORS = (
    struct.error,
    IndexError,
    KeyError,
    ValueError,
    TypeError,
    AttributeError,
    smpp_exceptions.UnknownCommandError,
)


class Behaviour(StrEnum):
    DELIVER = "DELIVER"  # accept; receipt DELIVRD
    UNDELIVERABLE = "UNDELIV"  # accept; receipt UNDELIV
    REJECTED = "REJECTD"  # accept; receipt REJECTD
    EXPIRED = "EXPIRED"  # accept; receipt EXPIRED
    NO_RESPONSE = "NO_RESPONSE"  # never answer the submit_sm
    THROTTLED = "THROTTLED"  # submit_sm_resp ESME_RTHROTTLED (0x58)
    QUEUE_FULL = "QUEUE_FULL"  # submit_sm_resp ESME_RMSGQFUL (0x14)
    INVALID_DESTINATION = "INVALID_DESTINATION"  # submit_sm_resp ESME_RINVDSTADR (0x0B)
    INVALID_SOURCE = "INVALID_SOURCE"  # submit_sm_resp ESME_RINVSRCADR (0x0A)
    GENERIC_NACK = "GENERIC_NACK"  # generic_nack (as if the PDU could not be parsed)
    DROP_CONNECTION = "DROP_CONNECTION"  # close the TCP connection without answering
    WRONG_RESPONSE = "WRONG_RESPONSE"  # answer with a deliver_sm_resp of the submit's sequence (broken SMSC)
    # accept and deliver (receipt DELIVRD), but answer ESME_ROK with a body that is no C-string
    # (binary, no NUL): the SMSC has the message, the ESME cannot read its id
    UNREADABLE_RESPONSE = "UNREADABLE_RESPONSE"


class MessageIds(StrEnum):
    SEQUENTIAL = "sequential"  # 00000001, 00000002, ... from every start
    RANDOM = "random"  # a random 32-bit prefix per start, then a counter: unique across restarts


_REJECT_STATUS: Final = {
    Behaviour.THROTTLED: ESME_RTHROTTLED,
    Behaviour.QUEUE_FULL: ESME_RMSGQFUL,
    Behaviour.INVALID_DESTINATION: ESME_RINVDSTADR,
    Behaviour.INVALID_SOURCE: ESME_RINVSRCADR,
    Behaviour.GENERIC_NACK: ESME_RINVCMDLEN,
}
_RECEIPT_STAT: Final = {
    Behaviour.DELIVER: ("DELIVRD", 2),
    Behaviour.UNDELIVERABLE: ("UNDELIV", 5),
    Behaviour.REJECTED: ("REJECTD", 8),
    Behaviour.EXPIRED: ("EXPIRED", 3),
    Behaviour.UNREADABLE_RESPONSE: ("DELIVRD", 2),
}


@dataclass(frozen=True, slots=True)
class Script:
    behaviour: Behaviour
    err: str = "000"  # the receipt's err field (and network_error_code when numeric)


SANDBOX_SUFFIX_RULES: Final[Mapping[str, Script]] = {
    "0014": Script(Behaviour.QUEUE_FULL),
    "0058": Script(Behaviour.THROTTLED),
    "0011": Script(Behaviour.INVALID_DESTINATION),
    "0005": Script(Behaviour.UNDELIVERABLE, err="001"),
    "0003": Script(Behaviour.EXPIRED),
    "0008": Script(Behaviour.REJECTED, err="008"),
}


@dataclass(frozen=True, slots=True)
class SubmitRecord:
    """One `submit_sm` as received. `message_id` is None when it was not accepted."""

    system_id: str
    sequence: int
    destination: str
    dest_addr_ton: int
    dest_addr_npi: int
    source: str
    source_addr_ton: int
    source_addr_npi: int
    esm_class: int
    data_coding: int
    registered_delivery: int
    validity_period: str
    short_message: bytes
    behaviour: Behaviour
    status: int | None  # None: never answered
    message_id: str | None
    received_at: float = 0.0  # the event loop's time: rates per second can be counted


@dataclass(frozen=True, slots=True)
class BindRecord:
    system_id: str
    command: str
    status: int


@dataclass(frozen=True, slots=True)
class ReceiptAck:
    """A `deliver_sm_resp` the ESME sent for a receipt (or for a raw `deliver_sm` label)."""

    message_id: str
    status: int


@dataclass(slots=True)
class _Receipt:
    system_id: str
    message_id: str
    frame_fields: dict[str, Any]
    origin: _Connection | None


class _Sequence:
    def __init__(self) -> None:
        self.sequence = 0

    def next_sequence(self) -> int:
        self.sequence = 1 if self.sequence >= 0x7FFFFFFF else self.sequence + 1
        return self.sequence


class _Fixed:
    def __init__(self, sequence: int) -> None:
        self.sequence = sequence

    def next_sequence(self) -> int:
        return self.sequence


def _build(command: str, sequence: int, **fields: object) -> bytes:
    pdu = smpp.make_pdu(command, client=_Fixed(sequence), **fields)
    pdu.sequence = sequence
    raw: bytes = pdu.generate()
    return raw


def _parse(frame: bytes) -> Any:
    return smpp.parse_pdu(frame, client=_Fixed(0), allow_unknown_opt_params=True)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return "" if value is None else str(value)


@dataclass(eq=False, slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    sequences: _Sequence = field(default_factory=_Sequence)
    command: str | None = None  # bind command once bound
    system_id: str = ""
    closing: bool = False
    outstanding: int = 0
    acks_expected: dict[int, str] = field(default_factory=dict)  # deliver_sm sequence → message id
    unacked: dict[int, _Receipt] = field(default_factory=dict)  # receipts to redeliver if never acked

    @property
    def receives(self) -> bool:
        return self.command in ("bind_transceiver", "bind_receiver") and not self.closing

    @property
    def transmits(self) -> bool:
        return self.command in ("bind_transceiver", "bind_transmitter")

    def write(self, frame: bytes) -> None:
        if not self.writer.transport.is_closing():
            self.writer.write(frame)


class SmscSimulator:
    """An SMPP v3.4 SMSC on `host:port` (port 0 = ephemeral; read `port` after `start()`)."""

    def __init__(
        self,
        *,
        users: Mapping[str, str],
        host: str = "127.0.0.1",
        port: int = 0,
        system_id: str = "OMNISMSC",
        receipt_delay_s: float = 0.05,
        response_delay_s: float = 0.0,
        suffix_rules: Mapping[str, Script] | None = None,
        receipt_before_response: bool = False,
        message_ids: MessageIds = MessageIds.SEQUENTIAL,
        max_binds: int | None = None,
    ) -> None:
        for user, password in users.items():
            if len(user) > 15 or len(password) > 8:
                raise ValueError("SMPP 3.4 allows system_id up to 15 and password up to 8 characters")
        self.host = host
        self._requested_port = port
        self.users = dict(users)
        self.system_id = system_id
        self.receipt_delay_s = receipt_delay_s
        self.response_delay_s = response_delay_s
        self.receipt_before_response = receipt_before_response
        self._numbers: dict[str, Script] = {}
        self._suffixes: dict[str, Script] = dict(suffix_rules or {})
        self._paused = False
        self._held: list[_Receipt] = []
        self._undelivered: list[_Receipt] = []
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        self.message_ids = message_ids
        self.max_binds = max_binds  # binds at once per system_id; more are refused (ESME_RBINDFAIL)
        self.peak_binds: dict[str, int] = {}  # the most binds at once, per system_id
        self._id_prefix = 0
        self._id_counter = 0
        self._stopped = False
        self._scheduled = 0  # receipts and responses waiting for their timer
        self.submits: list[SubmitRecord] = []
        self.binds: list[BindRecord] = []
        self.receipt_acks: list[ReceiptAck] = []
        self.receipts_sent = 0
        self.enquire_link_resps = 0
        self.enquire_links_received = 0
        self.unbinds_received = 0
        self.unbind_resps = 0
        self.max_outstanding = 0
        self.connections_total = 0

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the simulator is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._stopped = False
        self._id_counter = 0  # a restarted SMSC counts from 1 again
        self._id_prefix = random.getrandbits(32)
        self._server = await asyncio.start_server(self._serve, self.host, self._requested_port)

    async def stop(self) -> None:
        self._stopped = True
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.writer.transport.abort()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> SmscSimulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- scripting and control ------------------------------------------------------------------

    def script_number(self, number: str, script: Script) -> None:
        self._numbers[number] = script

    def script_suffix(self, suffix: str, script: Script) -> None:
        self._suffixes[suffix] = script

    def clear_scripts(self) -> None:
        self._numbers.clear()
        self._suffixes.clear()

    def script_for(self, destination: str) -> Script:
        exact = self._numbers.get(destination)
        if exact is not None:
            return exact
        best: tuple[int, Script] | None = None
        for suffix, script in self._suffixes.items():
            if destination.endswith(suffix) and (best is None or len(suffix) > best[0]):
                best = (len(suffix), script)
        return best[1] if best is not None else Script(Behaviour.DELIVER)

    @property
    def paused(self) -> bool:
        return self._paused

    @paused.setter
    def paused(self, value: bool) -> None:
        self._paused = value
        if not value:
            held, self._held = self._held, []
            for receipt in held:
                self._emit_receipt(receipt)

    @property
    def pending(self) -> int:
        """Receipts and responses still to send (on their timer, or waiting for the ESME to bind)
        and `deliver_sm` not yet answered; 0 once stopped. Receipts held while `paused` are not
        counted: they wait for the test, not for time (tests: `Gateway.until_idle`)."""
        if self._stopped:
            return 0
        answers = sum(len(c.acks_expected) for c in self._connections)
        return self._scheduled + len(self._undelivered) + answers

    def _later(self, delay_s: float, callback: Callable[..., None], *args: Any) -> None:
        self._scheduled += 1

        def fire() -> None:
            self._scheduled -= 1
            callback(*args)

        asyncio.get_running_loop().call_later(delay_s, fire)

    @property
    def bound_connections(self) -> int:
        return sum(1 for c in self._connections if c.command is not None and not c.closing)

    def drop_all(self) -> None:
        """Abort every TCP connection at once (no unbind): the ESME must notice and reconnect."""
        for connection in list(self._connections):
            connection.closing = True
            connection.writer.transport.abort()

    def unbind_all(self) -> None:
        """Send `unbind` to every bound ESME (SMSC-initiated orderly close)."""
        for connection in list(self._connections):
            if connection.command is not None and not connection.closing:
                connection.write(_build("unbind", connection.sequences.next_sequence()))

    def enquire_link_all(self) -> None:
        for connection in list(self._connections):
            if connection.command is not None and not connection.closing:
                connection.write(_build("enquire_link", connection.sequences.next_sequence()))

    def deliver_raw(
        self,
        label: str,
        *,
        short_message: bytes,
        esm_class: int = ESM_CLASS_DELIVERY_RECEIPT,
        receipted_message_id: str | None = None,
        message_state: int | None = None,
        source_addr: str = "447700900000",
        destination_addr: str = "TEST",
    ) -> int:
        """Send a hand-made `deliver_sm` to every receiving ESME; acks are recorded under `label`."""
        fields: dict[str, Any] = {
            "source_addr": source_addr,
            "destination_addr": destination_addr,
            "esm_class": esm_class,
            "data_coding": 0,
            "short_message": short_message,
        }
        if receipted_message_id is not None:
            fields["receipted_message_id"] = receipted_message_id
        if message_state is not None:
            fields["message_state"] = message_state
        sent = 0
        for connection in list(self._connections):
            if connection.receives:
                self._write_deliver_sm(connection, label, fields)
                sent += 1
        return sent

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
        """Wait until `predicate()` holds, re-checked whenever the simulator records something."""
        async with asyncio.timeout(timeout_s):
            while not predicate():
                event = self._changed
                await event.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- protocol -------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        connection = _Connection(reader, writer)
        self._connections.add(connection)
        self.connections_total += 1
        self._notify()
        try:
            while not connection.closing:
                head = await reader.readexactly(4)
                (length,) = struct.unpack(">L", head)
                if not 16 <= length <= _MAX_PDU_LENGTH:
                    connection.write(_build("generic_nack", 0, status=ESME_RINVCMDLEN))
                    break
                frame = head + await reader.readexactly(length - 4)
                self._handle(connection, frame)
        except (asyncio.IncompleteReadError, OSError):
            pass
        finally:
            connection.closing = True
            self._connections.discard(connection)
            # Like a real SMSC: receipts the ESME never acknowledged are delivered again on its next bind.
            unacked, connection.unacked = list(connection.unacked.values()), {}
            for receipt in unacked:
                self._emit_receipt(
                    _Receipt(receipt.system_id, receipt.message_id, receipt.frame_fields, None)
                )
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            if task is not None:
                self._handlers.discard(task)
            self._notify()

    def _handle(self, connection: _Connection, frame: bytes) -> None:
        _, command_id, status, sequence = _HEADER.unpack_from(frame)
        if command_id == _SUBMIT_SM:
            self._submit(connection, sequence, frame)
        elif command_id == _DELIVER_SM_RESP:
            message_id = connection.acks_expected.pop(sequence, None)
            unacked = connection.unacked.pop(sequence, None)
            if unacked is not None and status != ESME_ROK:  # the ESME could not take it now: redeliver later
                self._later(1.0, self._emit_receipt, unacked)
            if message_id is not None:
                self.receipt_acks.append(ReceiptAck(message_id, status))
                self._notify()
        elif command_id in _BIND_COMMANDS:
            self._bind(connection, command_id, sequence, frame)
        elif command_id == _ENQUIRE_LINK:
            self.enquire_links_received += 1
            connection.write(_build("enquire_link_resp", sequence))
            self._notify()
        elif command_id == _ENQUIRE_LINK_RESP:
            self.enquire_link_resps += 1
            self._notify()
        elif command_id == _UNBIND:
            self.unbinds_received += 1
            connection.write(_build("unbind_resp", sequence))
            connection.closing = True
            self._notify()
        elif command_id == _UNBIND_RESP:
            self.unbind_resps += 1
            connection.closing = True
            self._notify()
        elif command_id == _GENERIC_NACK or command_id & _RESPONSE_BIT:
            log.info("smsc: ESME sent 0x%08x status 0x%02x", command_id, status)
        else:
            connection.write(_build("generic_nack", sequence, status=ESME_RINVCMDID))

    def bound_now(self, system_id: str) -> int:
        """Connections bound with this system_id now (not unbinding, not closed)."""
        return sum(
            1
            for c in self._connections
            if c.command is not None and c.system_id == system_id and not c.closing
        )

    def _bind(self, connection: _Connection, command_id: int, sequence: int, frame: bytes) -> None:
        command = _BIND_COMMANDS[command_id]
        try:
            request = _parse(frame)
        except _PARSE_ERRORS:
            connection.write(_build("generic_nack", sequence, status=ESME_RINVCMDLEN))
            return
        system_id = _text(request.system_id)
        password = _text(request.password)
        if connection.command is not None:
            status = ESME_RALYBND
        elif system_id not in self.users:
            status = ESME_RINVSYSID
        elif self.users[system_id] != password:
            status = ESME_RINVPASWD
        elif self.max_binds is not None and self.bound_now(system_id) >= self.max_binds:
            status = ESME_RBINDFAIL  # as an SMSC refuses binds beyond the account's allowance
        else:
            status = ESME_ROK
        self.binds.append(BindRecord(system_id, command, status))
        if status == ESME_ROK:
            connection.write(_build(f"{command}_resp", sequence, system_id=self.system_id))
            connection.command = command
            connection.system_id = system_id
            self.peak_binds[system_id] = max(self.peak_binds.get(system_id, 0), self.bound_now(system_id))
            if connection.receives:
                waiting = [r for r in self._undelivered if r.system_id == system_id]
                self._undelivered = [r for r in self._undelivered if r.system_id != system_id]
                for receipt in waiting:
                    self._emit_receipt(receipt)
        else:
            connection.write(_build(f"{command}_resp", sequence, status=status))
            if status != ESME_RALYBND:
                connection.closing = True
        self._notify()

    def _submit(self, connection: _Connection, sequence: int, frame: bytes) -> None:
        if not connection.transmits:
            connection.write(_build("submit_sm_resp", sequence, status=ESME_RINVBNDSTS))
            return
        try:
            request = _parse(frame)
        except _PARSE_ERRORS:
            connection.write(_build("generic_nack", sequence, status=ESME_RINVCMDLEN))
            return
        destination = _text(request.destination_addr)
        script = self.script_for(destination)
        behaviour = script.behaviour
        status: int | None = None
        message_id: str | None = None
        if behaviour in _REJECT_STATUS:
            status = _REJECT_STATUS[behaviour]
        elif behaviour is Behaviour.WRONG_RESPONSE:
            status = ESME_ROK
        elif behaviour in _RECEIPT_STAT:
            status = ESME_ROK
            message_id = self._next_message_id()
        short_message = bytes(request.short_message or b"")
        record = SubmitRecord(
            system_id=connection.system_id,
            sequence=sequence,
            destination=destination,
            dest_addr_ton=int(request.dest_addr_ton or 0),
            dest_addr_npi=int(request.dest_addr_npi or 0),
            source=_text(request.source_addr),
            source_addr_ton=int(request.source_addr_ton or 0),
            source_addr_npi=int(request.source_addr_npi or 0),
            esm_class=int(request.esm_class or 0),
            data_coding=int(request.data_coding or 0),
            registered_delivery=int(request.registered_delivery or 0),
            validity_period=_text(request.validity_period),
            short_message=short_message,
            behaviour=behaviour,
            status=status,
            message_id=message_id,
            received_at=asyncio.get_running_loop().time(),
        )
        self.submits.append(record)
        self._notify()
        if behaviour is Behaviour.DROP_CONNECTION:
            connection.closing = True
            connection.writer.transport.abort()
            return
        if status is None:
            return  # NO_RESPONSE
        response = _submit_response(sequence, behaviour, status, message_id)
        receipt = self._receipt_for(connection, record, script) if message_id is not None else None
        if receipt is not None and self.receipt_before_response:
            self._emit_receipt(receipt)
            receipt = None
        if self.response_delay_s > 0:
            connection.outstanding += 1
            self.max_outstanding = max(self.max_outstanding, connection.outstanding)
            self._later(self.response_delay_s, self._respond_later, connection, response)
        else:
            self.max_outstanding = max(self.max_outstanding, 1)
            connection.write(response)
        if receipt is not None:
            self._later(self.receipt_delay_s, self._emit_receipt, receipt)

    def _next_message_id(self) -> str:
        self._id_counter += 1
        if self.message_ids is MessageIds.RANDOM:
            return f"{self._id_prefix:08x}{self._id_counter:08x}"
        return f"{self._id_counter:08d}"

    def _respond_later(self, connection: _Connection, response: bytes) -> None:
        connection.outstanding -= 1
        if not self._stopped:
            connection.write(response)

    def _receipt_for(self, connection: _Connection, record: SubmitRecord, script: Script) -> _Receipt | None:
        if not record.registered_delivery & 1 or record.message_id is None:
            return None
        stat, state = _RECEIPT_STAT[script.behaviour]
        now = datetime.now(UTC).strftime("%y%m%d%H%M")
        try:
            text = decode_short_message(
                record.short_message, data_coding=record.data_coding, udhi=bool(record.esm_class & 0x40)
            )
        except (UnicodeDecodeError, IndexError):
            text = ""
        err = "000" if stat == "DELIVRD" else script.err
        body = (
            f"id:{record.message_id} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'} "
            f"submit date:{now} done date:{now} stat:{stat} err:{err} text:{text[:20]}"
        )
        fields: dict[str, Any] = {
            "source_addr_ton": record.dest_addr_ton,
            "source_addr_npi": record.dest_addr_npi,
            "source_addr": record.destination,
            "dest_addr_ton": record.source_addr_ton,
            "dest_addr_npi": record.source_addr_npi,
            "destination_addr": record.source,
            "esm_class": ESM_CLASS_DELIVERY_RECEIPT,
            "data_coding": 0,
            "short_message": body.encode("ascii", "replace"),
            "receipted_message_id": record.message_id,
            "message_state": state,
        }
        if stat != "DELIVRD" and err.isdigit():
            code = int(err) & 0xFFFF
            fields["network_error_code"] = bytes((3, code >> 8, code & 0xFF))  # 3 = GSM
        return _Receipt(connection.system_id, record.message_id, fields, connection)

    def _emit_receipt(self, receipt: _Receipt) -> None:
        if self._stopped:
            return
        if self._paused:
            self._held.append(receipt)
            return
        target = receipt.origin if receipt.origin is not None and receipt.origin.receives else None
        if target is None or target not in self._connections:
            target = next(
                (c for c in self._connections if c.receives and c.system_id == receipt.system_id), None
            )
        if target is None:
            self._undelivered.append(receipt)
            return
        sequence = self._write_deliver_sm(target, receipt.message_id, receipt.frame_fields)
        target.unacked[sequence] = receipt
        self.receipts_sent += 1

    def _write_deliver_sm(self, connection: _Connection, label: str, fields: dict[str, Any]) -> int:
        sequence = connection.sequences.next_sequence()
        connection.acks_expected[sequence] = label
        connection.write(_build("deliver_sm", sequence, **fields))
        return sequence


def _submit_response(sequence: int, behaviour: Behaviour, status: int, message_id: str | None) -> bytes:
    if message_id is not None and behaviour is Behaviour.UNREADABLE_RESPONSE:
        body = b"\xff\xfe" + message_id.encode("ascii")  # no C-string: no NUL, not text
        return _HEADER.pack(16 + len(body), _SUBMIT_SM_RESP, ESME_ROK, sequence) + body
    if message_id is not None:
        return _build("submit_sm_resp", sequence, message_id=message_id)
    if behaviour is Behaviour.GENERIC_NACK:
        return _build("generic_nack", sequence, status=status)
    if behaviour is Behaviour.WRONG_RESPONSE:
        return _build("deliver_sm_resp", sequence, message_id="not-a-submit-answer")
    return _build("submit_sm_resp", sequence, status=status)


async def run_smsc(
    host: str,
    port: int,
    system_id: str,
    password: str,
    *,
    receipt_delay_s: float = 0.05,
    message_ids: MessageIds = MessageIds.SEQUENTIAL,
) -> None:
    """Serve the simulator (with `SANDBOX_SUFFIX_RULES`) until cancelled; delivery receipts go out
    `receipt_delay_s` after each `submit_sm`."""
    async with SmscSimulator(
        users={system_id: password},
        host=host,
        port=port,
        suffix_rules=SANDBOX_SUFFIX_RULES,
        receipt_delay_s=receipt_delay_s,
        message_ids=message_ids,
    ) as smsc:
        log.warning(
            "SANDBOX SMSC simulator listening on %s:%d (system_id %r); it delivers nothing to real phones",
            host,
            smsc.port,
            system_id,
        )
        await asyncio.Event().wait()
