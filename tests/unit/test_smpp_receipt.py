"""Delivery receipt parsing variants and stat → status mapping (docs/channels.md#delivery-receipts,
docs/channels.md#receipt-states)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omnirelay.channels.sms.receipt import (
    ReceiptUnreadable,
    is_receipt,
    normalise_ref,
    parse_receipt,
    parse_receipt_text,
)
from omnirelay.domain.messages import Channel
from omnirelay.domain.statuses import (
    DELIVERED_TO_HANDSET,
    EC_FAILED_MESSAGE_DELIVERY,
    EC_MESSAGE_EXPIRED,
    EC_SMS_REJECTED_BY_MOBILE_OPERATOR,
    EC_UNKNOWN_SUBSCRIBER,
    EXPIRED_DLR_UNKNOWN,
    EXPIRED_EXPIRED,
    NO_ERROR,
    UNDELIVERABLE_NOT_DELIVERED,
    UNDELIVERABLE_REJECTED_OPERATOR,
    ErrorCode,
    Status,
)

NOW = datetime(2026, 11, 21, 6, 23, tzinfo=UTC)


def text(stat: str, err: str = "000", message_id: str = "0A1b2C") -> bytes:
    return (
        f"id:{message_id} sub:001 dlvrd:001 submit date:2611210623 done date:2611210624 "
        f"stat:{stat} err:{err} text:hello"
    ).encode()


@pytest.mark.parametrize(
    ("esm_class", "expected"),
    [(0x04, True), (0x44, True), (0x84, True), (0x00, False), (0x20, False), (0x08, False), (0x40, False)],
)
def test_receipt_detection(esm_class: int, expected: bool) -> None:
    assert is_receipt(esm_class) is expected


def test_normalise_ref() -> None:
    assert normalise_ref("000ABC") == "abc"
    assert normalise_ref(" 00000001\x00") == "1"
    assert normalise_ref("0") == "0"
    assert normalise_ref("") == ""
    assert normalise_ref("0A1B") == normalise_ref("a1b")


def test_standard_text() -> None:
    parsed = parse_receipt(short_message=text("DELIVRD"), received_at=NOW)
    assert parsed.ref == "a1b2c"
    assert parsed.stat == "DELIVRD"
    receipt = parsed.receipt
    assert receipt is not None
    assert receipt.channel is Channel.SMS
    assert receipt.ref == "a1b2c"
    assert receipt.status == DELIVERED_TO_HANDSET
    assert receipt.error == NO_ERROR
    assert receipt.done_at == NOW
    assert receipt.detail["err"] == "000"
    assert receipt.detail["done_date"] == "2611210624"
    assert receipt.detail["smsc_message_id"] == "0A1b2C"


@pytest.mark.parametrize(
    ("stat", "status", "error"),
    [
        ("DELIVRD", DELIVERED_TO_HANDSET, NO_ERROR),
        ("UNDELIV", UNDELIVERABLE_NOT_DELIVERED, EC_FAILED_MESSAGE_DELIVERY),
        ("REJECTD", UNDELIVERABLE_REJECTED_OPERATOR, EC_SMS_REJECTED_BY_MOBILE_OPERATOR),
        ("EXPIRED", EXPIRED_EXPIRED, EC_MESSAGE_EXPIRED),
        ("DELETED", UNDELIVERABLE_NOT_DELIVERED, EC_FAILED_MESSAGE_DELIVERY),
        ("UNKNOWN", EXPIRED_DLR_UNKNOWN, None),
    ],
)
def test_stat_mapping(stat: str, status: Status, error: ErrorCode | None) -> None:
    receipt = parse_receipt(short_message=text(stat), received_at=NOW).receipt
    assert receipt is not None
    assert receipt.status == status
    assert (status.group, status.id) == {
        "DELIVRD": (3, 5),
        "UNDELIV": (2, 9),
        "REJECTD": (2, 4),
        "EXPIRED": (4, 15),
        "DELETED": (2, 9),
        "UNKNOWN": (4, 29),
    }[stat]
    if error is not None:
        assert receipt.error == error


@pytest.mark.parametrize("stat", ["ACCEPTD", "ENROUTE", "SCHEDLD"])
def test_pending_stats_give_no_receipt(stat: str) -> None:
    parsed = parse_receipt(short_message=text(stat), received_at=NOW)
    assert parsed.receipt is None
    assert parsed.stat == stat


def test_smsc_err_code_is_kept() -> None:
    receipt = parse_receipt(short_message=text("UNDELIV", err="001"), received_at=NOW).receipt
    assert receipt is not None
    assert receipt.error == EC_UNKNOWN_SUBSCRIBER  # error id 1
    assert receipt.detail["err"] == "001"
    odd = parse_receipt(short_message=text("UNDELIV", err="075"), received_at=NOW).receipt
    assert odd is not None
    assert odd.error.id == 75
    assert odd.detail["err"] == "075"


def test_non_numeric_err_falls_back_to_stat_default() -> None:
    receipt = parse_receipt(short_message=text("UNDELIV", err="X1F"), received_at=NOW).receipt
    assert receipt is not None
    assert receipt.error == EC_FAILED_MESSAGE_DELIVERY
    assert receipt.detail["err"] == "X1F"


def test_delivered_ignores_err() -> None:
    receipt = parse_receipt(short_message=text("DELIVRD", err="001"), received_at=NOW).receipt
    assert receipt is not None
    assert receipt.error == NO_ERROR


def test_case_insensitive_keys_twelve_digit_dates_and_submitdate_without_space() -> None:
    raw = (
        b"ID:00ff SUB:001 DLVRD:001 SubmitDate:261121062301 Done Date:261121062459 "
        b"Stat:delivrd Err:000 Text:stat:UNDELIV err:999"
    )
    parsed = parse_receipt(short_message=raw, received_at=NOW)
    assert parsed.ref == "ff"
    assert parsed.stat == "DELIVRD"
    assert parsed.receipt is not None
    assert parsed.receipt.detail["submit_date"] == "261121062301"
    assert parsed.receipt.detail["done_date"] == "261121062459"


def test_text_field_swallows_look_alike_keys() -> None:
    fields = parse_receipt_text("id:1 stat:DELIVRD err:000 text:id:2 stat:REJECTD")
    assert fields["id"] == "1"
    assert fields["stat"] == "DELIVRD"
    assert fields["text"] == "id:2 stat:REJECTD"


def _reference_fields(text: str) -> dict[str, str]:
    """The receipt text's fields by the rule, spelt out: each key runs to the next key (the last
    one to the end), values stripped, the first of a repeated key kept, and everything after
    `text:` is the text. Keys are found by the keys' alternation alone and normalised with a
    regular expression (the shipped parse skips positions by the keys' first letters and memoises
    the normalised keys)."""
    key_re = re.compile(r"(?<![A-Za-z])(id|sub|dlvrd|submit[ _]?date|done[ _]?date|stat|err|text)\s*:", re.I)
    found = [
        (re.sub(r"[ _]", "", m.group(1).lower()).replace("date", "_date"), m) for m in key_re.finditer(text)
    ]
    ends = [m.start() for _, m in found[1:]] + [len(text)] if found else []
    fields: dict[str, str] = {}
    for (key, match), end in zip(found, ends, strict=True):
        if key == "text":
            return fields | {"text": text[match.end() :]}
        if key not in fields:
            fields[key] = text[match.end() : end].strip()
    return fields


_PIECES = st.sampled_from(
    [
        "id",
        "ID",
        "sub",
        "Sub",
        "dlvrd",
        "submit date",
        "Submit_Date",
        "SUBMITDATE",
        "done date",
        "done_DATE",
        "stat",
        "STAT",
        "err",
        "Err",
        "text",
        "Text",
        ":",
        " : ",
        " ",
        "x",
        "3",
        "_",
        "DELIVRD",
        "\t",
        "é",
        "ſ",
        "İ",
        "ı",
        "K",
        "Ɪ",
    ]
)


@given(st.lists(_PIECES | st.text(max_size=3), max_size=30).map("".join))
def test_text_parse_matches_the_plain_alternation(text: str) -> None:
    assert parse_receipt_text(text) == _reference_fields(text)


def test_tlvs_win_over_text() -> None:
    parsed = parse_receipt(
        short_message=text("DELIVRD", message_id="111"),
        receipted_message_id="000ABC",
        message_state=5,  # UNDELIVERABLE
        received_at=NOW,
    )
    assert parsed.ref == "abc"
    assert parsed.stat == "UNDELIV"
    assert parsed.receipt is not None
    assert parsed.receipt.status == UNDELIVERABLE_NOT_DELIVERED


def test_tlvs_alone_without_text() -> None:
    parsed = parse_receipt(short_message=b"", receipted_message_id="42", message_state=2, received_at=NOW)
    assert parsed.receipt is not None
    assert parsed.receipt.ref == "42"
    assert parsed.receipt.status == DELIVERED_TO_HANDSET


def test_message_state_accepted_is_pending() -> None:
    assert (
        parse_receipt(short_message=b"", receipted_message_id="42", message_state=6, received_at=NOW).receipt
        is None
    )


def test_network_error_code_tlv_used_when_text_has_no_err() -> None:
    parsed = parse_receipt(
        short_message=b"id:7 stat:UNDELIV",
        network_error_code=bytes([3, 0x00, 0x01]),
        received_at=NOW,
    )
    assert parsed.receipt is not None
    assert parsed.receipt.error == EC_UNKNOWN_SUBSCRIBER
    assert parsed.receipt.detail["network_error_code"] == "030001"


def test_ucs2_receipt_text() -> None:
    raw = "id:abc stat:DELIVRD err:000 text:".encode("utf-16-be")
    parsed = parse_receipt(short_message=raw, data_coding=8, received_at=NOW)
    assert parsed.ref == "abc"
    assert parsed.receipt is not None


@pytest.mark.parametrize(
    ("short_message", "receipted_message_id", "message_state"),
    [
        (b"", None, None),  # nothing at all
        (b"stat:DELIVRD err:000", None, None),  # no id
        (b"id:abc err:000 text:", None, None),  # no stat
        (b"id:abc stat:WHATEVER err:000", None, None),  # unknown stat
        (b"\xff\xfe garbage", None, None),
        (b"", "abc", None),  # id from TLV, but no state anywhere
    ],
)
def test_unreadable_receipts(
    short_message: bytes, receipted_message_id: str | None, message_state: int | None
) -> None:
    with pytest.raises(ReceiptUnreadable):
        parse_receipt(
            short_message=short_message,
            receipted_message_id=receipted_message_id,
            message_state=message_state,
            received_at=NOW,
        )
