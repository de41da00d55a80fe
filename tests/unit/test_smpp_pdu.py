"""The hand-written codec of the hot PDUs against smpplib 2.2.4, the reference (decision 0005).

`submit_sm` and `deliver_sm_resp` must give smpplib's bytes; `decode_deliver_sm` and
`decode_message_id` smpplib's values. The reference functions below are the smpplib-based code
`pdu.py` had before. Deliberate differences, each pinned by a test of its own:

* malformed frames that smpplib misread without an error are rejected (`PduDecodeError`): a
  mandatory field cut off, a C-string without NUL, `sm_length` or a TLV past the end, a
  `message_state` TLV that is not one octet; `decode_message_id` also rejects a message_id
  without NUL;
* frames smpplib misread although their TLVs are well-formed: tags smpplib knows but not for that
  PDU (it raised `KeyError`), smpplib's integer TLVs with another length than their nominal size
  (it read the nominal size, then the rest misaligned), a `receipted_message_id` without NUL (it
  dropped the last octet). We skip such TLVs by their length and keep the id whole;
* `decode_deliver_sm` and `decode_message_id` of another command id raise `PduDecodeError`
  (smpplib: `AttributeError`, or another PDU's field);
* `submit_sm` refuses a C-string too long for its field (`ValueError`); smpplib cut it to fit.

The fuzz tests state this with a strict parser of the v3.4 layout written here (`_layout`): a frame
it rejects must raise; a frame it accepts must decode to smpplib's value for the same frame with
the TLVs smpplib misreads removed or NUL-terminated (`_as_smpplib_reads_it`).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from smpplib import command as smpp_command
from smpplib import consts as smpp_consts

from omnirelay.channels.sms import pdu
from omnirelay.channels.sms.sender import relative_validity_period
from omnirelay.domain.sms_text import encode_sms

# -- the reference: smpplib, as pdu.py used it -----------------------------------------------------


# smpplib's own encoder, as pdu.py still uses it for every other PDU
ref_generate = pdu._generate


def ref_submit_sm(sequence: int, **fields: Any) -> bytes:
    return ref_generate(
        "submit_sm",
        sequence,
        service_type="",
        protocol_id=0,
        priority_flag=0,
        schedule_delivery_time="",
        replace_if_present_flag=0,
        sm_default_msg_id=0,
        **fields,
    )


# smpplib's parser and text conversion, as pdu.py still uses them for every other PDU
ref_parse = pdu._parse
_ref_text = pdu._text


def ref_decode_message_id(frame: bytes) -> str:
    if len(frame) <= pdu.HEADER_LENGTH:
        return ""
    return _ref_text(ref_parse(frame).message_id) or ""


def ref_decode_deliver_sm(frame: bytes) -> pdu.DeliverSm:
    parsed = ref_parse(frame)
    state = parsed.message_state
    network_error = parsed.network_error_code
    short_message = parsed.short_message or b""
    if not short_message and parsed.message_payload:
        short_message = parsed.message_payload
    return pdu.DeliverSm(
        sequence=int(parsed.sequence),
        source_addr=_ref_text(parsed.source_addr) or "",
        destination_addr=_ref_text(parsed.destination_addr) or "",
        esm_class=int(parsed.esm_class or 0),
        data_coding=int(parsed.data_coding or 0),
        short_message=bytes(short_message),
        receipted_message_id=_ref_text(parsed.receipted_message_id),
        message_state=int(state) if state is not None else None,
        network_error_code=bytes(network_error) if network_error else None,
    )


# -- helpers ------------------------------------------------------------------------------------------


def with_length(frame: bytes) -> bytes:
    """`frame` with its command_length set to its size (as `read_frame` hands frames over)."""
    return struct.pack(">L", len(frame)) + frame[4:]


def tlv(tag: int, value: bytes) -> bytes:
    return struct.pack(">HH", tag, len(value)) + value


def outcome(decode: Any, frame: bytes) -> object:
    """The value, or the exception's type."""
    try:
        return decode(frame)
    except Exception as exc:
        return type(exc)


SMPPLIB_TAGS = {code: name for name, code in smpp_consts.OPTIONAL_PARAMS.items()}
DELIVER_SM_PARAMS = smpp_command.DeliverSM.params
USSD_SERVICE_OP = smpp_consts.OPTIONAL_PARAMS["ussd_service_op"]  # known to smpplib, not for deliver_sm
SAR_MSG_REF_NUM = smpp_consts.OPTIONAL_PARAMS["sar_msg_ref_num"]  # a 2-octet integer for smpplib
ADDITIONAL_STATUS_INFO_TEXT = smpp_consts.OPTIONAL_PARAMS["additional_status_info_text"]
VENDOR_TAG = 0x1400  # the vendor-specific range 0x1400-0x3FFF; unknown to smpplib

# service_type, ton, npi, source_addr, ton, npi, destination_addr, esm_class, protocol_id,
# priority_flag, schedule_delivery_time, validity_period, registered_delivery, replace_if_present_flag,
# data_coding, sm_default_msg_id, sm_length: each C-string is "[^\0]*\0", each integer one octet.
_MANDATORY = re.compile(rb"(?s)[^\0]*\0..[^\0]*\0..[^\0]*\0...[^\0]*\0[^\0]*\0....(?P<sm_length>.)")


@dataclass(frozen=True)
class Layout:
    mandatory_end: int
    tlvs: tuple[tuple[int, int, bytes], ...]  # (offset, tag, value)


def _tlvs(frame: bytes, pos: int) -> tuple[tuple[int, int, bytes], ...] | None:
    found: list[tuple[int, int, bytes]] = []
    while pos < len(frame):
        if pos + 4 > len(frame):
            return None
        tag, length = struct.unpack_from(">HH", frame, pos)
        if pos + 4 + length > len(frame):
            return None
        found.append((pos, tag, frame[pos + 4 : pos + 4 + length]))
        pos += 4 + length
    return tuple(found)


def _layout(frame: bytes) -> Layout | None:
    """A well-formed v3.4 deliver_sm's fields and TLVs, or None."""
    if len(frame) < 16 or pdu.HEADER.unpack_from(frame)[1] != pdu.DELIVER_SM:
        return None
    match = _MANDATORY.match(frame, 16)
    if match is None:
        return None
    end = match.end() + match["sm_length"][0]
    if end > len(frame):
        return None
    tlvs = _tlvs(frame, end)
    if tlvs is None or any(tag == pdu.TAG_MESSAGE_STATE and len(value) != 1 for _, tag, value in tlvs):
        return None
    return Layout(mandatory_end=end, tlvs=tlvs)


def _as_smpplib_reads_it(frame: bytes, layout: Layout) -> bytes:
    """`frame` without the TLVs smpplib misreads (same values for us), receipted_message_id ended."""
    kept = []
    for _, tag, value in layout.tlvs:
        name = SMPPLIB_TAGS.get(tag)
        if name is not None and name not in DELIVER_SM_PARAMS:
            continue  # smpplib: KeyError
        param = DELIVER_SM_PARAMS.get(name) if name else None
        if param is not None and param.type is int and len(value) != param.size:
            continue  # smpplib reads param.size octets, then the rest is misaligned
        if tag == pdu.TAG_RECEIPTED_MESSAGE_ID and value and not value.endswith(b"\0"):
            kept.append(tlv(tag, value + b"\0"))  # smpplib drops the last octet
        else:
            kept.append(tlv(tag, value))
    return with_length(frame[: layout.mandatory_end] + b"".join(kept))


def check_deliver_sm(frame: bytes) -> pdu.DeliverSm | None:
    """The relation of `decode_deliver_sm` to smpplib on any frame (see the module docstring)."""
    layout = _layout(frame)
    if layout is None:
        with pytest.raises(pdu.PduDecodeError):
            pdu.decode_deliver_sm(frame)
        return None
    ours = pdu.decode_deliver_sm(frame)
    assert ours == ref_decode_deliver_sm(_as_smpplib_reads_it(frame, layout))
    return ours


def check_message_id(frame: bytes) -> None:
    """The relation of `decode_message_id` to smpplib on any frame of at least a header."""
    if pdu.HEADER.unpack_from(frame)[1] != pdu.SUBMIT_SM_RESP:  # not an answer to a submit_sm
        with pytest.raises(pdu.PduDecodeError, match="not a submit_sm_resp"):
            pdu.decode_message_id(frame)
        return
    nul = frame.find(0, 16)
    tlvs = _tlvs(frame, nul + 1) if nul >= 0 else None
    if len(frame) == 16:
        assert pdu.decode_message_id(frame) == ref_decode_message_id(frame) == ""
    elif tlvs is None:
        with pytest.raises(pdu.PduDecodeError):
            pdu.decode_message_id(frame)
    else:  # smpplib raised on the TLVs whose tags it knows; we ignore every TLV
        assert pdu.decode_message_id(frame) == ref_decode_message_id(with_length(frame[: nul + 1]))


# -- strategies -----------------------------------------------------------------------------------

octets = st.integers(0, 0xFF)
sequences = st.integers(0, 0xFFFFFFFF)
LATIN1_NO_NUL = st.characters(min_codepoint=1, max_codepoint=0xFF)
ASCII_NO_NUL = st.characters(min_codepoint=1, max_codepoint=0x7F)


def c_text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(LATIN1_NO_NUL, max_size=max_size)


# YYMMDDhhmmsstnnp: absolute ('+'/'-') or relative ('R').
smpp_times = st.builds(
    lambda digits, p: digits + p, st.text("0123456789", min_size=15, max_size=15), st.sampled_from("+-R")
)
validity_periods = st.just("") | smpp_times


def submit_field_values(characters: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "source_addr": st.text(characters, max_size=20),
            "source_addr_ton": octets,
            "source_addr_npi": octets,
            "destination_addr": st.text(characters, max_size=20),
            "dest_addr_ton": octets,
            "dest_addr_npi": octets,
            "esm_class": octets,
            "data_coding": octets,
            "short_message": st.binary(max_size=254),
            "registered_delivery": octets,
            "validity_period": validity_periods,
        }
    )


submit_fields = submit_field_values(LATIN1_NO_NUL)
# Any latin-1 character, NUL included: smpplib writes it as is (and cannot read such a frame back).
submit_fields_any_latin1 = submit_field_values(st.characters(max_codepoint=0xFF))


@st.composite
def deliver_sm_frames(draw: st.DrawFn) -> bytes:
    """deliver_sm frames smpplib generates, with or without each TLV, maybe a vendor TLV."""
    mandatory: dict[str, Any] = {
        "service_type": draw(c_text(5)),
        "source_addr_ton": draw(octets),
        "source_addr_npi": draw(octets),
        "source_addr": draw(c_text(20)),
        "dest_addr_ton": draw(octets),
        "dest_addr_npi": draw(octets),
        "destination_addr": draw(c_text(20)),
        "esm_class": draw(octets),
        "protocol_id": draw(octets),
        "priority_flag": draw(octets),
        "schedule_delivery_time": draw(validity_periods),
        "validity_period": draw(validity_periods),
        "registered_delivery": draw(octets),
        "replace_if_present_flag": draw(octets),
        "data_coding": draw(octets),
        "sm_default_msg_id": draw(octets),
    }
    sequence = draw(st.integers(0, pdu.MAX_SEQUENCE))
    options: dict[str, Any] = {}
    if draw(st.booleans()):
        short_message = b""
        options["message_payload"] = draw(st.binary(min_size=1, max_size=300))
    else:
        short_message = draw(st.binary(max_size=254))
    if draw(st.booleans()):  # smpplib encodes this str TLV as UTF-8 but counts characters: ASCII
        options["receipted_message_id"] = draw(st.text(ASCII_NO_NUL, min_size=1, max_size=64))
    if draw(st.booleans()):
        options["message_state"] = draw(octets)
    if draw(st.booleans()):
        options["network_error_code"] = draw(st.binary(min_size=3, max_size=3))
    frame = ref_generate("deliver_sm", sequence, short_message=short_message, **mandatory, **options)
    where = draw(st.sampled_from(["none", "first", "last"]))
    if where == "none":
        return frame
    vendor = tlv(draw(st.integers(0x1400, 0x3FFF)), draw(st.binary(max_size=20)))
    if where == "last":
        return with_length(frame + vendor)
    mandatory_end = len(ref_generate("deliver_sm", sequence, short_message=short_message, **mandatory))
    return with_length(frame[:mandatory_end] + vendor + frame[mandatory_end:])


@st.composite
def submit_sm_resp_frames(draw: st.DrawFn) -> bytes:
    frame = ref_generate(
        "submit_sm_resp",
        draw(sequences),
        status=draw(st.sampled_from([pdu.ESME_ROK, pdu.ESME_RSYSERR])),
        message_id=draw(st.text(ASCII_NO_NUL, max_size=64)),
    )
    extra = draw(
        st.lists(
            st.builds(tlv, st.sampled_from([VENDOR_TAG, ADDITIONAL_STATUS_INFO_TEXT]), st.binary(max_size=8)),
            max_size=2,
        )
    )
    return with_length(frame + b"".join(extra))


flips = st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 0xFF)), min_size=1, max_size=4)


def flipped(frame: bytes, changes: list[tuple[int, int]], keep_length: bool) -> bytes:
    data = bytearray(frame)
    for where, xor in changes:
        data[where % len(data)] ^= xor
    return bytes(data) if keep_length else with_length(bytes(data))


# -- submit_sm ------------------------------------------------------------------------------------


@settings(max_examples=300)
@given(sequence=sequences, fields=submit_fields_any_latin1)
def test_submit_sm_is_smpplibs_bytes(sequence: int, fields: dict[str, Any]) -> None:
    assert pdu.submit_sm(sequence, **fields) == ref_submit_sm(sequence, **fields)


@given(sequence=sequences, fields=submit_fields)
def test_smpplib_reads_back_our_submit_sm(sequence: int, fields: dict[str, Any]) -> None:
    frame = pdu.submit_sm(sequence, **fields)
    parsed = ref_parse(frame)
    assert parsed.command == "submit_sm"
    assert (parsed.length, parsed.sequence, parsed.status) == (len(frame), sequence, 0)
    for name in ("source_addr", "destination_addr", "validity_period"):
        assert (getattr(parsed, name) or b"").decode("latin-1") == fields[name]
    for name in ("service_type", "schedule_delivery_time"):
        assert not getattr(parsed, name)
    for name in (
        "source_addr_ton",
        "source_addr_npi",
        "dest_addr_ton",
        "dest_addr_npi",
        "esm_class",
        "data_coding",
        "registered_delivery",
    ):
        assert getattr(parsed, name) == fields[name]
    assert (parsed.protocol_id, parsed.priority_flag, parsed.replace_if_present_flag) == (0, 0, 0)
    assert parsed.sm_default_msg_id == 0
    assert parsed.sm_length == len(fields["short_message"])
    assert (parsed.short_message or b"") == fields["short_message"]


SUBMIT_BASE: dict[str, Any] = {
    "source_addr": "OmniRelay",
    "source_addr_ton": 5,
    "source_addr_npi": 0,
    "destination_addr": "41791234567",
    "dest_addr_ton": 1,
    "dest_addr_npi": 1,
    "esm_class": 0,
    "data_coding": 0,
    "short_message": b"hello",
    "registered_delivery": 1,
    "validity_period": "000001000000000R",
}


def test_submit_sm_as_the_sender_builds_it() -> None:
    encoding = encode_sms("Привет " * 30, ref=0x2A)  # UCS-2, 4 parts with a UDH
    assert len(encoding.parts) > 1
    for number, part in enumerate(encoding.parts, start=1):
        fields: dict[str, Any] = {
            **SUBMIT_BASE,
            "esm_class": pdu.ESM_CLASS_UDHI,
            "data_coding": encoding.data_coding,
            "short_message": part,
            "validity_period": relative_validity_period(timedelta(hours=number)),
        }
        assert pdu.submit_sm(number, **fields) == ref_submit_sm(number, **fields)


def test_submit_sm_defaults_are_smpplibs() -> None:
    fields = {k: v for k, v in SUBMIT_BASE.items() if k not in ("registered_delivery", "validity_period")}
    assert pdu.submit_sm(9, **fields) == ref_submit_sm(9, registered_delivery=1, validity_period="", **fields)


@pytest.mark.parametrize(
    ("name", "limit"), [("source_addr", 20), ("destination_addr", 20), ("validity_period", 16)]
)
@pytest.mark.parametrize("extra", [1, 2, 30])
def test_submit_sm_refuses_what_smpplib_would_cut(name: str, limit: int, extra: int) -> None:
    too_long = "1" * limit + "9" * extra
    fields = {**SUBMIT_BASE, name: too_long}
    # smpplib sends the value cut to its field's size: another number, for an address.
    assert ref_submit_sm(1, **fields) == ref_submit_sm(1, **{**fields, name: too_long[:limit]})
    with pytest.raises(ValueError, match=name):
        pdu.submit_sm(1, **fields)
    assert pdu.submit_sm(1, **{**fields, name: too_long[:limit]}) == ref_submit_sm(
        1, **{**fields, name: too_long[:limit]}
    )


@pytest.mark.parametrize("name", ["source_addr", "destination_addr", "validity_period"])
def test_submit_sm_nul_inside_a_c_string_is_written_as_smpplib_does(name: str) -> None:
    # Not a valid C-string, but refusing it here would make the dispatcher retry the send.
    fields = {**SUBMIT_BASE, name: "12\x0034"}
    assert pdu.submit_sm(1, **fields) == ref_submit_sm(1, **fields)


def test_submit_sm_short_message_lengths_as_smpplib() -> None:
    # 254 octets is v3.4's limit; smpplib also sends 255 (sm_length is one octet) and fails past it.
    for size in (0, 1, 254, 255):
        fields = {**SUBMIT_BASE, "short_message": bytes(range(256))[:size]}
        assert pdu.submit_sm(3, **fields) == ref_submit_sm(3, **fields)
    fields = {**SUBMIT_BASE, "short_message": b"x" * 256}
    with pytest.raises(struct.error):
        ref_submit_sm(3, **fields)
    with pytest.raises(struct.error):
        pdu.submit_sm(3, **fields)


@pytest.mark.parametrize(("name", "value"), [("esm_class", 256), ("data_coding", -1), ("dest_addr_ton", 300)])
def test_submit_sm_integer_out_of_range_fails_as_in_smpplib(name: str, value: int) -> None:
    fields = {**SUBMIT_BASE, name: value}
    with pytest.raises(struct.error):
        ref_submit_sm(1, **fields)
    with pytest.raises(struct.error):
        pdu.submit_sm(1, **fields)


def test_submit_sm_non_latin1_fails_as_in_smpplib() -> None:
    fields = {**SUBMIT_BASE, "source_addr": "Omni€"}
    with pytest.raises(UnicodeEncodeError):
        ref_submit_sm(1, **fields)
    with pytest.raises(UnicodeEncodeError):
        pdu.submit_sm(1, **fields)


# -- submit_sm_resp -------------------------------------------------------------------------------


@settings(max_examples=300)
@given(
    sequence=sequences,
    status=st.integers(0, 0xFFFFFFFF),
    message_id=st.text(LATIN1_NO_NUL, max_size=64),
)
def test_message_id_is_smpplibs(sequence: int, status: int, message_id: str) -> None:
    frame = ref_generate("submit_sm_resp", sequence, status=status, message_id=message_id)
    assert pdu.decode_message_id(frame) == ref_decode_message_id(frame) == message_id


def test_message_id_of_a_bodiless_response_is_empty() -> None:
    frame = pdu.HEADER.pack(16, pdu.SUBMIT_SM_RESP, pdu.ESME_RTHROTTLED, 5)
    assert pdu.decode_message_id(frame) == ref_decode_message_id(frame) == ""


@settings(max_examples=200, deadline=None)
@given(frame=submit_sm_resp_frames(), changes=flips, keep_length=st.booleans())
def test_message_id_of_damaged_frames(
    frame: bytes, changes: list[tuple[int, int]], keep_length: bool
) -> None:
    for cut in range(16, len(frame) + 1):
        check_message_id(with_length(frame[:cut]))
    damaged = flipped(frame, changes, keep_length)
    check_message_id(damaged)
    ours, reference = outcome(pdu.decode_message_id, damaged), outcome(ref_decode_message_id, damaged)
    event(
        ("smpplib raised" if isinstance(reference, type) else "smpplib read it")
        + (", we refused it" if isinstance(ours, type) else ", we read it")
    )


def test_message_id_without_nul_is_refused() -> None:
    frame = with_length(pdu.HEADER.pack(0, pdu.SUBMIT_SM_RESP, 0, 1) + b"abcdef")
    assert ref_decode_message_id(frame) == "abcde"  # smpplib: the last octet lost, "cd" a TLV length
    with pytest.raises(pdu.PduDecodeError, match="NUL"):
        pdu.decode_message_id(frame)


@pytest.mark.parametrize("command", ["enquire_link_resp", "deliver_sm_resp", "bind_transceiver_resp"])
def test_message_id_of_another_response_is_refused(command: str) -> None:
    # an SMSC answering a submit_sm's sequence with another command: the outcome is unknown
    # (smpplib read a deliver_sm_resp's message_id as the SMSC's id of the message)
    frame = ref_generate(command, 7, **({"system_id": "smsc"} if command.startswith("bind") else {}))
    for answer in (frame, with_length(frame[:16]), with_length(frame[:16] + b"xyz\0")):
        with pytest.raises(pdu.PduDecodeError, match="not a submit_sm_resp"):
            pdu.decode_message_id(answer)


def test_message_id_of_less_than_a_header_is_refused() -> None:
    frame = pdu.HEADER.pack(16, pdu.SUBMIT_SM_RESP, 0, 1)
    for cut in range(16):
        with pytest.raises(pdu.PduDecodeError, match="shorter than a PDU header"):
            pdu.decode_message_id(frame[:cut])


def test_message_id_with_a_tlv_smpplib_knows_is_read() -> None:
    frame = with_length(
        ref_generate("submit_sm_resp", 1, message_id="abc") + tlv(ADDITIONAL_STATUS_INFO_TEXT, b"x\0")
    )
    with pytest.raises(pdu.PduDecodeError):  # smpplib: KeyError, not a field of submit_sm_resp
        ref_decode_message_id(frame)
    assert pdu.decode_message_id(frame) == "abc"


def test_message_id_with_a_tlv_past_the_end_is_refused() -> None:
    frame = with_length(ref_generate("submit_sm_resp", 1, message_id="abc") + tlv(VENDOR_TAG, b"xyz")[:-1])
    assert ref_decode_message_id(frame) == "abc"  # smpplib skips the unknown tag's length unchecked
    with pytest.raises(pdu.PduDecodeError, match="past the end"):
        pdu.decode_message_id(frame)


# -- deliver_sm -----------------------------------------------------------------------------------


@settings(max_examples=300)
@given(frame=deliver_sm_frames())
def test_deliver_sm_is_smpplibs(frame: bytes) -> None:
    assert pdu.decode_deliver_sm(frame) == ref_decode_deliver_sm(frame)


@settings(max_examples=100, deadline=None)
@given(frame=deliver_sm_frames())
def test_deliver_sm_cut_anywhere(frame: bytes) -> None:
    layout = _layout(frame)
    assert layout is not None
    whole_tlvs = {layout.mandatory_end} | {offset for offset, _, _ in layout.tlvs}
    for cut in range(16, len(frame)):
        shorter = with_length(frame[:cut])
        if cut in whole_tlvs:  # only whole TLVs left out: still a valid frame
            assert check_deliver_sm(shorter) == ref_decode_deliver_sm(shorter)
        else:
            with pytest.raises(pdu.PduDecodeError):
                pdu.decode_deliver_sm(shorter)
            assert check_deliver_sm(shorter) is None


@settings(max_examples=500, deadline=None)
@given(frame=deliver_sm_frames(), changes=flips, keep_length=st.booleans())
def test_deliver_sm_with_flipped_octets(
    frame: bytes, changes: list[tuple[int, int]], keep_length: bool
) -> None:
    damaged = flipped(frame, changes, keep_length)
    ours = check_deliver_sm(damaged)
    reference = outcome(ref_decode_deliver_sm, damaged)
    if isinstance(reference, pdu.DeliverSm):
        event("smpplib read it, " + ("and so did we" if ours is not None else "we refused it"))
        if ours is not None and ours != reference:
            event("both read it, differently (a TLV smpplib misreads)")
    else:
        event(f"smpplib raised {reference.__name__}, " + ("we read it" if ours else "so did we"))


any_tlvs = st.lists(
    st.builds(
        tlv,
        st.sampled_from(
            [
                pdu.TAG_RECEIPTED_MESSAGE_ID,
                pdu.TAG_MESSAGE_STATE,
                pdu.TAG_NETWORK_ERROR_CODE,
                pdu.TAG_MESSAGE_PAYLOAD,
                USSD_SERVICE_OP,
                SAR_MSG_REF_NUM,
                VENDOR_TAG,
            ]
        ),
        st.binary(max_size=5),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(frame=deliver_sm_frames(), extra=any_tlvs)
def test_deliver_sm_with_any_tlvs(frame: bytes, extra: list[bytes]) -> None:
    """Whole TLVs of any length after smpplib's: read as smpplib, but for its misreadings."""
    check_deliver_sm(with_length(frame + b"".join(extra)))


RECEIPT: dict[str, Any] = {
    "service_type": "",
    "source_addr_ton": 1,
    "source_addr_npi": 1,
    "source_addr": "41791234567",
    "dest_addr_ton": 5,
    "dest_addr_npi": 0,
    "destination_addr": "OmniRelay",
    "esm_class": pdu.ESM_CLASS_DELIVERY_RECEIPT,
    "protocol_id": 0,
    "priority_flag": 0,
    "schedule_delivery_time": "",
    "validity_period": "",
    "registered_delivery": 0,
    "replace_if_present_flag": 0,
    "data_coding": 0,
    "sm_default_msg_id": 0,
    "short_message": b"id:0a1b2c sub:001 dlvrd:001 submit date:2611210623 done date:2611210624 stat:DELIVRD",
}
RECEIPT_FRAME = ref_generate("deliver_sm", 77, **RECEIPT)
TLV_START = len(RECEIPT_FRAME)


def test_deliver_sm_receipt_with_its_tlvs() -> None:
    frame = ref_generate(
        "deliver_sm",
        77,
        receipted_message_id="0a1b2c",
        message_state=2,
        network_error_code=b"\3\0\1",
        **RECEIPT,
    )
    assert pdu.decode_deliver_sm(frame) == ref_decode_deliver_sm(frame)
    assert pdu.decode_deliver_sm(frame) == pdu.DeliverSm(
        sequence=77,
        source_addr="41791234567",
        destination_addr="OmniRelay",
        esm_class=4,
        data_coding=0,
        short_message=RECEIPT["short_message"],
        receipted_message_id="0a1b2c",
        message_state=2,
        network_error_code=b"\3\0\1",
    )


def test_deliver_sm_message_payload_when_short_message_is_empty() -> None:
    frame = ref_generate("deliver_sm", 1, **{**RECEIPT, "short_message": b""}, message_payload=b"p" * 400)
    assert pdu.decode_deliver_sm(frame).short_message == b"p" * 400
    assert pdu.decode_deliver_sm(frame) == ref_decode_deliver_sm(frame)
    both = with_length(RECEIPT_FRAME + tlv(pdu.TAG_MESSAGE_PAYLOAD, b"payload"))
    assert pdu.decode_deliver_sm(both).short_message == RECEIPT["short_message"]
    assert pdu.decode_deliver_sm(both) == ref_decode_deliver_sm(both)


def test_deliver_sm_repeated_tlv_the_last_counts_as_in_smpplib() -> None:
    frame = with_length(
        RECEIPT_FRAME
        + tlv(pdu.TAG_MESSAGE_STATE, b"\2")
        + tlv(pdu.TAG_NETWORK_ERROR_CODE, b"\3\0\1")
        + tlv(pdu.TAG_MESSAGE_STATE, b"\5")
        + tlv(pdu.TAG_NETWORK_ERROR_CODE, b"")
        + tlv(pdu.TAG_RECEIPTED_MESSAGE_ID, b"\0")
    )
    decoded = pdu.decode_deliver_sm(frame)
    assert (decoded.message_state, decoded.network_error_code, decoded.receipted_message_id) == (5, None, "")
    assert decoded == ref_decode_deliver_sm(frame)


def test_deliver_sm_unknown_vendor_tlv_is_skipped() -> None:
    frame = with_length(RECEIPT_FRAME + tlv(VENDOR_TAG, b"vendor") + tlv(pdu.TAG_MESSAGE_STATE, b"\2"))
    assert pdu.decode_deliver_sm(frame) == ref_decode_deliver_sm(frame)
    assert pdu.decode_deliver_sm(frame).message_state == 2


# Stricter than smpplib: it returned something for each of these; we raise.


def test_deliver_sm_cut_at_a_field_boundary_is_refused() -> None:
    after_destination = RECEIPT_FRAME.index(b"OmniRelay\0") + len(b"OmniRelay\0")
    for cut in (16, after_destination, TLV_START - len(RECEIPT["short_message"]) - 1):
        frame = with_length(RECEIPT_FRAME[:cut])
        assert ref_decode_deliver_sm(frame).short_message == b""  # smpplib: missing fields are None
        with pytest.raises(pdu.PduDecodeError, match="cut short"):
            pdu.decode_deliver_sm(frame)


def test_deliver_sm_c_string_without_nul_is_refused() -> None:
    start = RECEIPT_FRAME.index(b"OmniRelay\0")
    frame = with_length(RECEIPT_FRAME[:start] + b"OmniRelay")
    assert ref_decode_deliver_sm(frame).destination_addr == "OmniRela"  # smpplib: misread
    with pytest.raises(pdu.PduDecodeError, match="without NUL"):
        pdu.decode_deliver_sm(frame)


def test_deliver_sm_sm_length_past_the_end_is_refused() -> None:
    frame = with_length(RECEIPT_FRAME + tlv(pdu.TAG_MESSAGE_STATE, b"\2"))
    sm_length_at = TLV_START - len(RECEIPT["short_message"]) - 1
    longer = frame[:sm_length_at] + bytes([frame[sm_length_at] + 6]) + frame[sm_length_at + 1 :]
    assert ref_decode_deliver_sm(longer).short_message.endswith(b"\x04\x27\x00\x01\x02")  # the TLV
    with pytest.raises(pdu.PduDecodeError, match="sm_length"):
        pdu.decode_deliver_sm(longer)


def test_deliver_sm_tlv_past_the_end_is_refused() -> None:
    frame = with_length(RECEIPT_FRAME + struct.pack(">HH", pdu.TAG_RECEIPTED_MESSAGE_ID, 40) + b"0a1b2c\0")
    assert ref_decode_deliver_sm(frame).receipted_message_id == "0a1b2c\0"
    with pytest.raises(pdu.PduDecodeError, match="past the end"):
        pdu.decode_deliver_sm(frame)


def test_deliver_sm_truncated_tlv_header_is_refused_as_in_smpplib() -> None:
    for extra in (b"\x04", b"\x04\x27", b"\x04\x27\x00"):
        frame = with_length(RECEIPT_FRAME + extra)
        with pytest.raises(pdu.PduDecodeError):
            ref_decode_deliver_sm(frame)
        with pytest.raises(pdu.PduDecodeError, match="TLV header"):
            pdu.decode_deliver_sm(frame)


@pytest.mark.parametrize("value", [b"", b"\2\0"])
def test_deliver_sm_message_state_not_one_octet_is_refused(value: bytes) -> None:
    frame = with_length(RECEIPT_FRAME + tlv(pdu.TAG_MESSAGE_STATE, value) + tlv(VENDOR_TAG, b"ab"))
    with pytest.raises(pdu.PduDecodeError, match="message_state"):
        pdu.decode_deliver_sm(frame)


def test_deliver_sm_of_another_command_id_is_a_decode_error() -> None:
    frame = pdu.submit_sm(1, **SUBMIT_BASE)
    with pytest.raises(AttributeError):  # smpplib's SubmitSM has no message_state
        ref_decode_deliver_sm(frame)
    with pytest.raises(pdu.PduDecodeError, match="not a deliver_sm"):
        pdu.decode_deliver_sm(frame)


# Well-formed TLVs smpplib misread: we read the frame.


def test_deliver_sm_tlv_smpplib_knows_for_other_pdus_is_skipped() -> None:
    frame = with_length(RECEIPT_FRAME + tlv(USSD_SERVICE_OP, b"\1") + tlv(pdu.TAG_MESSAGE_STATE, b"\2"))
    with pytest.raises(pdu.PduDecodeError, match="ussd_service_op"):
        ref_decode_deliver_sm(frame)
    assert pdu.decode_deliver_sm(frame).message_state == 2


def test_deliver_sm_integer_tlv_of_another_length_is_skipped() -> None:
    frame = with_length(RECEIPT_FRAME + tlv(SAR_MSG_REF_NUM, b"\7") + tlv(pdu.TAG_MESSAGE_STATE, b"\2"))
    # smpplib reads two octets, then a TLV 0x2700 from the middle of message_state's, and skips it.
    assert ref_decode_deliver_sm(frame).message_state is None
    assert pdu.decode_deliver_sm(frame).message_state == 2


def test_deliver_sm_receipted_message_id_without_nul_is_kept_whole() -> None:
    frame = with_length(RECEIPT_FRAME + tlv(pdu.TAG_RECEIPTED_MESSAGE_ID, b"0a1b2c"))
    assert ref_decode_deliver_sm(frame).receipted_message_id == "0a1b2"
    assert pdu.decode_deliver_sm(frame).receipted_message_id == "0a1b2c"


def test_layout_oracle_agrees_with_smpplib_on_generated_frames() -> None:
    """The test's own parser is no stricter than smpplib on what smpplib itself generates."""
    frame = ref_generate(
        "deliver_sm", 3, receipted_message_id="id", message_state=1, network_error_code=b"\0\0\0", **RECEIPT
    )
    layout = _layout(frame)
    assert layout is not None
    assert [tag for _, tag, _ in layout.tlvs] == [
        pdu.TAG_NETWORK_ERROR_CODE,
        pdu.TAG_MESSAGE_STATE,
        pdu.TAG_RECEIPTED_MESSAGE_ID,
    ]
    assert _as_smpplib_reads_it(frame, layout) == frame


# -- deliver_sm_resp ------------------------------------------------------------------------------


@settings(max_examples=300)
@given(sequence=sequences, status=st.integers(0, 0xFFFFFFFF))
def test_deliver_sm_resp_is_smpplibs(sequence: int, status: int) -> None:
    frame = pdu.deliver_sm_resp(sequence, status)
    assert frame == ref_generate("deliver_sm_resp", sequence, status=status)
    parsed = ref_parse(frame)
    assert (parsed.command, parsed.sequence, parsed.status, parsed.message_id) == (
        "deliver_sm_resp",
        sequence,
        status,
        b"",
    )


def test_deliver_sm_resp_default_status() -> None:
    assert pdu.deliver_sm_resp(12) == ref_generate("deliver_sm_resp", 12, status=pdu.ESME_ROK)
    assert pdu.deliver_sm_resp(12) == bytes.fromhex("00000011 80000005 00000000 0000000c 00")
