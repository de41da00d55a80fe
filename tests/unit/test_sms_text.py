"""GSM 03.38 / UCS-2 choice, segment counting and splitting (docs/channels.md#encoding-and-segments)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omnirelay.domain.sms_text import (
    DATA_CODING_GSM7,
    DATA_CODING_UCS2,
    GSM_BASIC,
    GSM_EXT,
    Npi,
    TextTooLong,
    Ton,
    decode_short_message,
    encode_sms,
    message_count,
    sender_address,
)

GSM_CHARS = "".join(ch for ch in GSM_BASIC if ch != "\x1b") + "".join(GSM_EXT)


def reassemble(text: str, ref: int = 42) -> str:
    encoding = encode_sms(text, ref=ref)
    return "".join(
        decode_short_message(part, data_coding=encoding.data_coding, udhi=encoding.udhi)
        for part in encoding.parts
    )


def test_section_sign_is_gsm_0x5f_and_backtick_is_not_gsm() -> None:
    section = encode_sms("§", ref=0)
    assert section.data_coding == DATA_CODING_GSM7
    assert section.parts == (b"\x5f",)
    backtick = encode_sms("`", ref=0)
    assert backtick.data_coding == DATA_CODING_UCS2
    assert backtick.parts == ("`".encode("utf-16-be"),)


def test_basic_table_positions() -> None:
    assert encode_sms("@$¤£", ref=0).parts == (bytes([0x00, 0x02, 0x24, 0x01]),)
    assert encode_sms("\n\r", ref=0).parts == (bytes([0x0A, 0x0D]),)


def test_escape_character_itself_forces_ucs2() -> None:
    assert encode_sms("a\x1bb", ref=0).data_coding == DATA_CODING_UCS2


def test_euro_is_two_septets() -> None:
    encoding = encode_sms("€", ref=0)
    assert encoding.data_coding == DATA_CODING_GSM7
    assert encoding.parts == (bytes([0x1B, 0x65]),)
    assert message_count("€" * 80) == 1  # 160 septets
    assert message_count("€" * 80 + "a") == 2


def test_euro_never_split_across_parts() -> None:
    # 152 septets of 'a' then a euro: 154 septets do not fit a 153-septet part, so the euro moves on.
    text = "a" * 152 + "€" + "b" * 10
    encoding = encode_sms(text, ref=7)
    assert encoding.udhi
    first = encoding.parts[0][6:]
    assert first == b"a" * 152  # 152 septets; the escape is not left dangling at the end
    assert encoding.parts[1][6:8] == bytes([0x1B, 0x65])
    assert reassemble(text) == text


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("ж" * 70, 1),
        ("ж" * 71, 2),
        ("ж" * 134, 2),
        ("ж" * 135, 3),
    ],
)
def test_message_count_boundaries(text: str, count: int) -> None:
    assert message_count(text) == count
    assert encode_sms(text, ref=1).message_count == count


def test_single_part_has_no_udh() -> None:
    encoding = encode_sms("a" * 160, ref=9)
    assert not encoding.udhi
    assert encoding.parts == (b"a" * 160,)


def test_multipart_udh_header() -> None:
    encoding = encode_sms("ж" * 71, ref=0xAB)
    assert encoding.udhi
    assert encoding.data_coding == DATA_CODING_UCS2
    assert [part[:6] for part in encoding.parts] == [
        bytes([5, 0, 3, 0xAB, 2, 1]),
        bytes([5, 0, 3, 0xAB, 2, 2]),
    ]
    assert len(encoding.parts[0]) == 6 + 134
    assert len(encoding.parts[1]) == 6 + 8


def test_emoji_is_a_surrogate_pair_and_never_split() -> None:
    assert message_count("😀" * 35) == 1  # 70 code units
    assert message_count("😀" * 35 + "a") == 2
    text = "a" * 66 + "😀" + "b" * 5  # 73 units; 66 + 2 > 67: the emoji starts part two
    encoding = encode_sms(text, ref=3)
    assert encoding.parts[0][6:] == ("a" * 66).encode("utf-16-be")
    assert encoding.parts[1][6:].startswith("😀".encode("utf-16-be"))
    assert reassemble(text) == text


def test_too_long_text_raises() -> None:
    with pytest.raises(TextTooLong) as caught:
        encode_sms("a" * (153 * 255 + 1), ref=0)
    assert caught.value.parts == 256
    assert encode_sms("a" * (153 * 255), ref=0).message_count == 255


def test_ref_out_of_range() -> None:
    with pytest.raises(ValueError, match="ref"):
        encode_sms("hi", ref=256)


@pytest.mark.parametrize(
    ("sender", "address", "ton", "npi"),
    [
        ("InfoSMS", "InfoSMS", Ton.ALPHANUMERIC, Npi.UNKNOWN),
        ("ACME 2", "ACME 2", Ton.ALPHANUMERIC, Npi.UNKNOWN),
        ("+41793026727", "41793026727", Ton.INTERNATIONAL, Npi.ISDN),
        ("41793026727", "41793026727", Ton.INTERNATIONAL, Npi.ISDN),
        ("12345678", "12345678", Ton.NETWORK_SPECIFIC, Npi.UNKNOWN),
        ("123456789", "123456789", Ton.INTERNATIONAL, Npi.ISDN),
        ("1234", "1234", Ton.NETWORK_SPECIFIC, Npi.UNKNOWN),
    ],
)
def test_sender_address(sender: str, address: str, ton: Ton, npi: Npi) -> None:
    classified = sender_address(sender)
    assert (classified.address, classified.ton, classified.npi) == (address, ton, npi)


gsm_texts = st.text(alphabet=GSM_CHARS, max_size=800)
any_texts = st.text(max_size=500)


@settings(max_examples=200)
@given(st.one_of(gsm_texts, any_texts), st.integers(min_value=0, max_value=255))
def test_parts_reassemble_within_limits(text: str, ref: int) -> None:
    encoding = encode_sms(text, ref=ref)
    assert encoding.message_count == len(encoding.parts) == message_count(text)
    assert reassemble(text, ref) == text
    total = len(encoding.parts)
    for seq, part in enumerate(encoding.parts, start=1):
        if encoding.udhi:
            assert part[:6] == bytes([5, 0, 3, ref, total, seq])
            payload = part[6:]
            limit = 153 if encoding.data_coding == DATA_CODING_GSM7 else 134
        else:
            payload = part
            limit = 160 if encoding.data_coding == DATA_CODING_GSM7 else 140
        assert len(payload) <= limit
        assert len(part) <= (160 if encoding.data_coding == DATA_CODING_GSM7 else 140)
        if encoding.data_coding == DATA_CODING_GSM7:
            assert not payload.endswith(b"\x1b")  # no escape left dangling at the end of a part
        else:
            assert len(payload) % 2 == 0
            if payload:
                last_unit = int.from_bytes(payload[-2:], "big")
                assert not 0xD800 <= last_unit <= 0xDBFF  # no high surrogate left at the end


@given(gsm_texts)
def test_gsm_texts_stay_gsm(text: str) -> None:
    assert encode_sms(text, ref=0).data_coding == DATA_CODING_GSM7
