"""SMPP v3.4 PDU codec: smpplib 2.2.4 used only to encode and decode bytes, behind typed functions.

Why a wrapper (docs/channels.md#pdu-codec): smpplib is untyped and has traps this module keeps in one place.

* Its request classes take their sequence number from a `client` object's `next_sequence()`; with
  `client=None` the number silently stays 0, and a `sequence=` keyword is ignored. We hand it a
  tiny object that answers the number the session allocated, and set `pdu.sequence` as well.
* Parsing fails on unknown vendor TLVs unless `allow_unknown_opt_params=True`.
* Parsed C-strings come back as `bytes`; we return `str` (latin-1, never failing).
* Any parse failure (short body, unknown command id, bad TLV) becomes `PduDecodeError`.

The 16-octet header is read with `struct` directly: it is needed for every frame, including
command ids smpplib does not know (which we must answer with `generic_nack`).

The four PDUs of every message (`submit_sm`, `submit_sm_resp`, `deliver_sm`, `deliver_sm_resp`) are
encoded and decoded here with `struct` and bytes slicing (decision 0005): smpplib's generic classes
cost ~245 µs of them per message. `tests/unit/test_smpp_pdu.py` pins them to smpplib: the same bytes
out, the same values in. Where they differ on purpose (malformed frames rejected; over-long fields
refused instead of truncated) the function's docstring says so. Every other PDU stays with smpplib.
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

# Optional parameters (TLVs) decode_deliver_sm reads; every other tag is skipped.
TAG_RECEIPTED_MESSAGE_ID: Final = 0x001E
TAG_NETWORK_ERROR_CODE: Final = 0x0423
TAG_MESSAGE_PAYLOAD: Final = 0x0424
TAG_MESSAGE_STATE: Final = 0x0427

# Longest C-string values, without the NUL (SMPP v3.4 §5.2: source_addr and destination_addr
# are at most 21 octets with it, validity_period 17).
MAX_ADDR_LENGTH: Final = 20
MAX_TIME_LENGTH: Final = 16

_TLV_HEAD: Final = struct.Struct(">HH")
_TWO_OCTETS: Final = struct.Struct(">BB")
_FOUR_OCTETS: Final = struct.Struct(">BBBB")
_FIVE_OCTETS: Final = struct.Struct(">BBBBB")
_COMMAND_ID: Final = struct.Struct(">L")
_HEADER_AND_NUL: Final = struct.Struct(">LLLLx")

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
    """`message_id` of a `submit_sm_resp` (empty when the body is absent, as on errors).

    The C-string after the header, latin-1. Anything after its NUL must be whole TLVs (none is
    defined for v3.4; SMPP 5.0 adds some), which are ignored. `PduDecodeError` when the NUL is
    missing or a TLV runs past the end. smpplib returned the id minus its last octet for some
    frames without a NUL, and raised on the TLVs whose tags it knows.
    A frame of another command id (an SMSC answering a submit with another response) is a
    `PduDecodeError` too: smpplib gave the `AttributeError` of a PDU without a message_id.
    """
    if len(frame) < HEADER_LENGTH:  # `read_frame` never gives one
        raise PduDecodeError(command_id=0, reason="shorter than a PDU header")
    (command_id,) = _COMMAND_ID.unpack_from(frame, 4)
    if command_id != SUBMIT_SM_RESP:
        raise PduDecodeError(
            command_id=command_id, reason=f"command 0x{command_id:08x} is not a submit_sm_resp"
        )
    end = len(frame)
    if end <= HEADER_LENGTH:
        return ""
    nul = frame.find(0, HEADER_LENGTH)
    if nul < 0:
        raise PduDecodeError(command_id=command_id, reason="message_id has no NUL terminator")
    pos = nul + 1
    while pos < end:
        if end - pos < 4:
            raise PduDecodeError(command_id=command_id, reason=f"truncated TLV header at octet {pos}")
        tag, length = _TLV_HEAD.unpack_from(frame, pos)
        pos += 4 + length
        if pos > end:
            raise PduDecodeError(command_id=command_id, reason=f"TLV 0x{tag:04x} runs past the end")
    return frame[HEADER_LENGTH:nul].decode("latin-1")


def decode_system_id(frame: bytes) -> str:
    """`system_id` of a bind response."""
    if len(frame) <= HEADER_LENGTH:
        return ""
    return _text(_parse(frame).system_id) or ""


def decode_deliver_sm(frame: bytes) -> DeliverSm:
    """The fields of a `deliver_sm` we use: mandatory part, then its TLVs.

    Same values as smpplib for well-formed frames. `PduDecodeError` when a mandatory field is
    missing or its C-string has no NUL, `sm_length` or a TLV value runs past the end,
    `message_state` is not one octet (smpplib returned defaults or misread values for these), a
    TLV header is cut, or the command id is not deliver_sm's (smpplib raised as well).
    Differences on frames smpplib misread: TLVs other than the four we read are skipped by their
    length (smpplib raised on the tags it knows but not for deliver_sm, and read its integer TLVs
    by their nominal size), and a `receipted_message_id` without a NUL is kept whole (smpplib
    dropped its last octet).
    """
    _, command_id, _, sequence = HEADER.unpack_from(frame)
    if command_id != DELIVER_SM:
        raise PduDecodeError(command_id=command_id, reason="not a deliver_sm")
    end = len(frame)
    find = frame.find
    # service_type, then source_addr_ton and _npi, then source_addr.
    service_end = find(0, HEADER_LENGTH)
    source_start = service_end + 3
    source_end = find(0, source_start) if service_end >= 0 else -1
    # dest_addr_ton, dest_addr_npi, destination_addr.
    dest_start = source_end + 3
    dest_end = find(0, dest_start) if source_end >= 0 else -1
    # esm_class, protocol_id, priority_flag, schedule_delivery_time, validity_period.
    schedule_end = find(0, dest_end + 4) if dest_end >= 0 else -1
    validity_end = find(0, schedule_end + 1) if schedule_end >= 0 else -1
    if validity_end < 0:
        raise PduDecodeError(
            command_id=command_id, reason="mandatory fields cut short, or a C-string without NUL"
        )
    # registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id, sm_length.
    sm_start = validity_end + 6
    if sm_start > end:
        raise PduDecodeError(command_id=command_id, reason="mandatory fields cut short")
    pos = sm_start + frame[sm_start - 1]
    if pos > end:
        raise PduDecodeError(command_id=command_id, reason="sm_length runs past the end")
    short_message = frame[sm_start:pos]

    receipted_message_id: str | None = None
    message_state: int | None = None
    network_error_code: bytes | None = None
    message_payload = b""
    while pos < end:
        if end - pos < 4:
            raise PduDecodeError(command_id=command_id, reason=f"truncated TLV header at octet {pos}")
        tag, length = _TLV_HEAD.unpack_from(frame, pos)
        pos += 4
        stop = pos + length
        if stop > end:
            raise PduDecodeError(command_id=command_id, reason=f"TLV 0x{tag:04x} runs past the end")
        if tag == TAG_RECEIPTED_MESSAGE_ID:
            value_end = stop - 1 if length and frame[stop - 1] == 0 else stop
            receipted_message_id = frame[pos:value_end].decode("latin-1")
        elif tag == TAG_MESSAGE_STATE:
            if length != 1:
                raise PduDecodeError(command_id=command_id, reason=f"message_state of {length} octets")
            message_state = frame[pos]
        elif tag == TAG_NETWORK_ERROR_CODE:
            network_error_code = frame[pos:stop] or None
        elif tag == TAG_MESSAGE_PAYLOAD:
            message_payload = frame[pos:stop]
        pos = stop

    return DeliverSm(
        sequence=sequence,
        source_addr=frame[source_start:source_end].decode("latin-1"),
        destination_addr=frame[dest_start:dest_end].decode("latin-1"),
        esm_class=frame[dest_end + 1],
        data_coding=frame[validity_end + 3],
        short_message=short_message or message_payload,
        receipted_message_id=receipted_message_id,
        message_state=message_state,
        network_error_code=network_error_code,
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
    """The bytes smpplib generates for these fields (service_type, protocol_id, priority_flag,
    schedule_delivery_time, replace_if_present_flag and sm_default_msg_id empty or 0; no TLVs).

    Unlike smpplib, a C-string longer than its field (20 octets for the addresses, 16 for
    validity_period) raises `ValueError`: smpplib cut it to fit, which would send to another
    number (the sender never passes one). As with smpplib: a NUL inside a C-string is written as
    is, a character outside latin-1 raises `UnicodeEncodeError`, an integer outside 0..255 or a
    `short_message` over 255 octets raises `struct.error`.
    """
    source = source_addr.encode("latin-1")
    destination = destination_addr.encode("latin-1")
    validity = validity_period.encode("latin-1")
    if len(source) > MAX_ADDR_LENGTH:
        raise ValueError(f"source_addr {source_addr!r}: at most {MAX_ADDR_LENGTH} octets")
    if len(destination) > MAX_ADDR_LENGTH:
        raise ValueError(f"destination_addr {destination_addr!r}: at most {MAX_ADDR_LENGTH} octets")
    if len(validity) > MAX_TIME_LENGTH:
        raise ValueError(f"validity_period {validity_period!r}: at most {MAX_TIME_LENGTH} octets")
    body = b"".join(
        (
            b"\x00",  # service_type ""
            _TWO_OCTETS.pack(source_addr_ton, source_addr_npi),
            source,
            b"\x00",
            _TWO_OCTETS.pack(dest_addr_ton, dest_addr_npi),
            destination,
            b"\x00",
            # esm_class, protocol_id, priority_flag, schedule_delivery_time ""
            _FOUR_OCTETS.pack(esm_class, 0, 0, 0),
            validity,
            b"\x00",
            # registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id, sm_length
            _FIVE_OCTETS.pack(registered_delivery, 0, data_coding, 0, len(short_message)),
            short_message,
        )
    )
    return HEADER.pack(HEADER_LENGTH + len(body), SUBMIT_SM, ESME_ROK, sequence) + body


def enquire_link(sequence: int) -> bytes:
    return _generate("enquire_link", sequence)


def enquire_link_resp(sequence: int) -> bytes:
    return _generate("enquire_link_resp", sequence)


def unbind(sequence: int) -> bytes:
    return _generate("unbind", sequence)


def unbind_resp(sequence: int) -> bytes:
    return _generate("unbind_resp", sequence)


def deliver_sm_resp(sequence: int, status: int = ESME_ROK) -> bytes:
    """Header and an empty message_id (one NUL), as smpplib writes it."""
    return _HEADER_AND_NUL.pack(HEADER_LENGTH + 1, DELIVER_SM_RESP, status, sequence)


def generic_nack(sequence: int, status: int) -> bytes:
    return _generate("generic_nack", sequence, status=status)
