"""SMPP v3.4 PDU codec: smpplib 2.2.4 used only to encode and decode bytes, behind typed functions.

Why a wrapper (CHANNELS §2.7): smpplib is untyped and has traps this module keeps in one place.

* Its request classes take their sequence number from a `client` object's `next_sequence()`; with
  `client=None` the number silently stays 0, and a `sequence=` keyword is ignored. We hand it a
  tiny object that answers the number the session allocated, and set `pdu.sequence` as well.
* Parsing fails on unknown vendor TLVs unless `allow_unknown_opt_params=True`.
* Parsed C-strings come back as `bytes`; we return `str` (latin-1, never failing).
* Any parse failure (short body, unknown command id, bad TLV) becomes `PduDecodeError`.

The 16-octet header is read with `struct` directly: it is needed for every frame, including
command ids smpplib does not know (which we must answer with `generic_nack`).
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from typing import Any, Final

from smpplib import consts as smpp_consts
from smpplib import exceptions as smpp_exceptions
from smpplib import smpp

HEADER: Final = struct.Struct(">LLLL")
HEADER_LENGTH: Final = 16
# message_payload may carry up to 64 KiB; anything longer is a framing error.
MAX_PDU_LENGTH: Final = 0x10000 + 1024

RESPONSE_BIT: Final = 0x80000000
GENERIC_NACK: Final = 0x80000000
BIND_RECEIVER: Final = 0x00000001
BIND_TRANSMITTER: Final = 0x00000002
SUBMIT_SM: Final = 0x00000004
SUBMIT_SM_RESP: Final = 0x80000004
DELIVER_SM: Final = 0x00000005
DELIVER_SM_RESP: Final = 0x80000005
UNBIND: Final = 0x00000006
UNBIND_RESP: Final = 0x80000006
BIND_TRANSCEIVER: Final = 0x00000009
BIND_TRANSCEIVER_RESP: Final = 0x80000009
ENQUIRE_LINK: Final = 0x00000015
ENQUIRE_LINK_RESP: Final = 0x80000015

ESME_ROK: Final = 0x00
ESME_RINVMSGLEN: Final = 0x01
ESME_RINVCMDLEN: Final = 0x02
ESME_RINVCMDID: Final = 0x03
ESME_RINVBNDSTS: Final = 0x04
ESME_RSYSERR: Final = 0x08
ESME_RINVSRCADR: Final = 0x0A
ESME_RINVDSTADR: Final = 0x0B
ESME_RBINDFAIL: Final = 0x0D
ESME_RINVPASWD: Final = 0x0E
ESME_RINVSYSID: Final = 0x0F
ESME_RMSGQFUL: Final = 0x14
ESME_RTHROTTLED: Final = 0x58
ESME_RX_T_APPN: Final = 0x64

ESM_CLASS_UDHI: Final = 0x40
ESM_CLASS_TYPE_MASK: Final = 0x3C
ESM_CLASS_DELIVERY_RECEIPT: Final = 0x04

MAX_SEQUENCE: Final = 0x7FFFFFFF

_PARSE_ERRORS = (
    struct.error,
    IndexError,
    KeyError,
    ValueError,
    TypeError,
    AttributeError,
    smpp_exceptions.UnknownCommandError,
    smpp_exceptions.PDUError,
)


def status_name(status: int) -> str:
    """smpplib's description of a command_status, e.g. 'Invalid Destination Address'."""
    return str(smpp_consts.DESCRIPTIONS.get(status, "Unknown status"))


class FrameError(Exception):
    """The peer sent a `command_length` no valid PDU has: the byte stream is out of step."""

    def __init__(self, *, command_length: int) -> None:
        self.command_length = command_length
        super().__init__(f"invalid command_length {command_length}")


class PduDecodeError(Exception):
    """A frame could not be decoded as the PDU its header names."""

    def __init__(self, *, command_id: int, reason: str) -> None:
        self.command_id = command_id
        self.reason = reason
        super().__init__(f"cannot decode PDU 0x{command_id:08x}: {reason}")


@dataclass(frozen=True, slots=True)
class Header:
    length: int
    command_id: int
    status: int
    sequence: int

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & RESPONSE_BIT)


@dataclass(frozen=True, slots=True)
class DeliverSm:
    """The fields of a `deliver_sm` omnirelay looks at (receipts and MO)."""

    sequence: int
    source_addr: str
    destination_addr: str
    esm_class: int
    data_coding: int
    short_message: bytes
    receipted_message_id: str | None
    message_state: int | None
    network_error_code: bytes | None


class SequenceNumbers:
    """sequence_number allocation: 1..0x7FFFFFFF, wrapping."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        self._last = 1 if self._last >= MAX_SEQUENCE else self._last + 1
        return self._last


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    """One whole PDU: `command_length` (4 octets) then the rest.

    Raises `asyncio.IncompleteReadError` when the peer closes, `FrameError` on a bad length.
    """
    head = await reader.readexactly(4)
    (length,) = struct.unpack(">L", head)
    if not HEADER_LENGTH <= length <= MAX_PDU_LENGTH:
        raise FrameError(command_length=length)
    return head + await reader.readexactly(length - 4)


def decode_header(frame: bytes) -> Header:
    length, command_id, status, sequence = HEADER.unpack_from(frame)
    return Header(length, command_id, status, sequence)


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


def _parse(frame: bytes) -> Any:
    command_id = HEADER.unpack_from(frame)[1]
    try:
        return smpp.parse_pdu(frame, client=_FixedSequence(0), allow_unknown_opt_params=True)
    except _PARSE_ERRORS as exc:
        raise PduDecodeError(command_id=command_id, reason=repr(exc)) from exc


def decode_message_id(frame: bytes) -> str:
    """`message_id` of a `submit_sm_resp` (empty when the body is absent, as on errors)."""
    if len(frame) <= HEADER_LENGTH:
        return ""
    return _text(_parse(frame).message_id) or ""


def decode_system_id(frame: bytes) -> str:
    """`system_id` of a bind response."""
    if len(frame) <= HEADER_LENGTH:
        return ""
    return _text(_parse(frame).system_id) or ""


def decode_deliver_sm(frame: bytes) -> DeliverSm:
    pdu = _parse(frame)
    state = pdu.message_state
    network_error = pdu.network_error_code
    short_message = pdu.short_message or b""
    if not short_message and pdu.message_payload:
        short_message = pdu.message_payload
    return DeliverSm(
        sequence=int(pdu.sequence),
        source_addr=_text(pdu.source_addr) or "",
        destination_addr=_text(pdu.destination_addr) or "",
        esm_class=int(pdu.esm_class or 0),
        data_coding=int(pdu.data_coding or 0),
        short_message=bytes(short_message),
        receipted_message_id=_text(pdu.receipted_message_id),
        message_state=int(state) if state is not None else None,
        network_error_code=bytes(network_error) if network_error else None,
    )


class _FixedSequence:
    """What smpplib calls a `client`: it only asks for the sequence number."""

    def __init__(self, sequence: int) -> None:
        self.sequence = sequence

    def next_sequence(self) -> int:
        return self.sequence


def _generate(command: str, sequence: int, **fields: object) -> bytes:
    pdu = smpp.make_pdu(command, client=_FixedSequence(sequence), **fields)
    pdu.sequence = sequence
    raw: bytes = pdu.generate()
    return raw


def bind_transceiver(sequence: int, *, system_id: str, password: str, system_type: str = "") -> bytes:
    return _generate(
        "bind_transceiver",
        sequence,
        system_id=system_id,
        password=password,
        system_type=system_type,
        addr_ton=0,
        addr_npi=0,
        address_range="",
    )


def submit_sm(
    sequence: int,
    *,
    source_addr: str,
    source_addr_ton: int,
    source_addr_npi: int,
    destination_addr: str,
    dest_addr_ton: int,
    dest_addr_npi: int,
    esm_class: int,
    data_coding: int,
    short_message: bytes,
    registered_delivery: int = 1,
    validity_period: str = "",
) -> bytes:
    return _generate(
        "submit_sm",
        sequence,
        service_type="",
        source_addr_ton=source_addr_ton,
        source_addr_npi=source_addr_npi,
        source_addr=source_addr,
        dest_addr_ton=dest_addr_ton,
        dest_addr_npi=dest_addr_npi,
        destination_addr=destination_addr,
        esm_class=esm_class,
        protocol_id=0,
        priority_flag=0,
        schedule_delivery_time="",
        validity_period=validity_period,
        registered_delivery=registered_delivery,
        replace_if_present_flag=0,
        data_coding=data_coding,
        sm_default_msg_id=0,
        short_message=short_message,
    )


def enquire_link(sequence: int) -> bytes:
    return _generate("enquire_link", sequence)


def enquire_link_resp(sequence: int) -> bytes:
    return _generate("enquire_link_resp", sequence)


def unbind(sequence: int) -> bytes:
    return _generate("unbind", sequence)


def unbind_resp(sequence: int) -> bytes:
    return _generate("unbind_resp", sequence)


def deliver_sm_resp(sequence: int, status: int = ESME_ROK) -> bytes:
    return _generate("deliver_sm_resp", sequence, status=status)


def generic_nack(sequence: int, status: int) -> bytes:
    return _generate("generic_nack", sequence, status=status)
