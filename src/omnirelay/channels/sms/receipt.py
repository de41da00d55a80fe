"""SMPP delivery receipts (DLR): detection, tolerant parsing, stat → Infobip status.

Design (docs/channels.md#delivery-receipts, docs/channels.md#receipt-states):

* A `deliver_sm` is a receipt when `esm_class & 0x3C == 0x04`; anything else is MO.
* The TLVs `receipted_message_id` and `message_state` win over the text, which is only a de-facto
  format. The text is parsed leniently: keys in any case, `submit date` / `submitdate`, 10 or 12
  digit dates, any `err` (numeric or not), `text:` swallowing the rest. A receipt we cannot read
  raises `ReceiptUnreadable`; the session logs it and still acknowledges it, because an
  unacknowledged DLR is redelivered by the SMSC forever.
* Non-final states (ENROUTE, ACCEPTD, SCHEDLD) give no `Receipt`: the message stays pending and
  its deadline decides.
* `done_at` is the time we received the receipt (from the injected clock): SMSC dates carry no
  time zone. The raw dates, `stat`, `err` and `network_error_code` go to `Receipt.detail`.
* `normalise_ref` is the one id normalisation, applied to `submit_sm_resp` ids (the refs we
  return) and DLR ids alike: strip, lower case, strip leading zeros. `scoped_ref` puts the
  connector in front (`<connector>/<id>`): an SMSC id means something only on its own connector
  (two SMSCs hand out the same ids), and connector names cannot hold a `/`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from omnirelay.domain.messages import Channel, Receipt
from omnirelay.domain.statuses import (
    DELIVERED_TO_HANDSET,
    EC_FAILED_MESSAGE_DELIVERY,
    EC_MESSAGE_EXPIRED,
    EC_SMS_REJECTED_BY_MOBILE_OPERATOR,
    EC_UNKNOWN_ERROR,
    EXPIRED_DLR_UNKNOWN,
    EXPIRED_EXPIRED,
    NO_ERROR,
    UNDELIVERABLE_NOT_DELIVERED,
    UNDELIVERABLE_REJECTED_OPERATOR,
    ErrorCode,
    Status,
    error_for_code,
)

ESM_CLASS_TYPE_MASK = 0x3C
ESM_CLASS_DELIVERY_RECEIPT = 0x04
DATA_CODING_UCS2 = 0x08

# message_state TLV values (SMPP 3.4 §5.2.28; 0 and 9 are v5) to their `stat` words.
STATE_TO_STAT = {
    0: "SCHEDLD",
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
    9: "SKIPPED",
}
PENDING_STATS = frozenset({"SCHEDLD", "ENROUTE", "ACCEPTD"})

# stat → (status, error used when the SMSC gives no usable err code).
FINAL_STATS: dict[str, tuple[Status, ErrorCode]] = {
    "DELIVRD": (DELIVERED_TO_HANDSET, NO_ERROR),
    "UNDELIV": (UNDELIVERABLE_NOT_DELIVERED, EC_FAILED_MESSAGE_DELIVERY),
    "REJECTD": (UNDELIVERABLE_REJECTED_OPERATOR, EC_SMS_REJECTED_BY_MOBILE_OPERATOR),
    "EXPIRED": (EXPIRED_EXPIRED, EC_MESSAGE_EXPIRED),
    "DELETED": (UNDELIVERABLE_NOT_DELIVERED, EC_FAILED_MESSAGE_DELIVERY),
    "UNKNOWN": (EXPIRED_DLR_UNKNOWN, EC_UNKNOWN_ERROR),
    "SKIPPED": (UNDELIVERABLE_NOT_DELIVERED, EC_FAILED_MESSAGE_DELIVERY),
}
# Some SMSCs spell the words out.
_STAT_ALIASES = {
    "DELIVERED": "DELIVRD",
    "UNDELIVERABLE": "UNDELIV",
    "REJECTED": "REJECTD",
    "ACCEPTED": "ACCEPTD",
}

# The lookahead names the keys' first letters: the scan skips every other position at once (half
# the parse time of a receipt; it matches exactly what the alternation alone matches).
_KEY = re.compile(
    r"(?<![A-Za-z])(?=[idste])(id|sub|dlvrd|submit[ _]?date|done[ _]?date|stat|err|text)\s*:",
    re.IGNORECASE,
)


class ReceiptUnreadable(ValueError):
    """A delivery receipt without a usable message id or state."""

    def __init__(self, *, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class ParsedReceipt:
    """A read receipt. `receipt` is None while the state is not final (ENROUTE, ACCEPTD...)."""

    ref: str  # normalised
    stat: str
    receipt: Receipt | None


def normalise_ref(message_id: str) -> str:
    """The SMSC message id as stored and matched: trimmed, lower case, without leading zeros."""
    cleaned = message_id.strip().strip("\x00").strip().lower()
    return cleaned.lstrip("0") or ("0" if cleaned else "")


def scoped_ref(connector: str, normalised: str) -> str:
    """The ref stored and matched for a normalised SMSC id given on `connector`."""
    return f"{connector}/{normalised}"


def is_receipt(esm_class: int) -> bool:
    return esm_class & ESM_CLASS_TYPE_MASK == ESM_CLASS_DELIVERY_RECEIPT


def _key_name(spelt: str) -> str:
    """`Submit Date`, `submit_date`, `SUBMITDATE`… → `submit_date`."""
    key = spelt.lower().replace(" ", "").replace("_", "").replace("date", "_date")
    if len(_KEY_NAMES) < 256:  # the spellings `_KEY` matches, a few dozen in practice: bounded anyway
        _KEY_NAMES[spelt] = key
    return key


# Each receipt carries eight keys; normalising them was most of its parse time.
_KEY_NAMES: dict[str, str] = {}


def parse_receipt_text(text: str) -> dict[str, str]:
    """`id:… sub:… dlvrd:… submit date:… done date:… stat:… err:… text:…` → {key: value}.

    Keys are lower-cased and `submit date`/`done date` become `submit_date`/`done_date`.
    Everything after `text:` is the text, even if it looks like more keys.
    """
    fields: dict[str, str] = {}
    matches = list(_KEY.finditer(text))
    for index, match in enumerate(matches):
        spelt = match.group(1)
        key = _KEY_NAMES.get(spelt)
        if key is None:
            key = _key_name(spelt)
        if key == "text":
            fields[key] = text[match.end() :]
            break
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        fields.setdefault(key, text[match.end() : end].strip())
    return fields


def _decode_text(short_message: bytes, data_coding: int) -> str:
    if data_coding == DATA_CODING_UCS2:
        return short_message.decode("utf-16-be", "replace")
    return short_message.decode("latin-1")


def _error_for(stat: str, err: str | None, default: ErrorCode) -> ErrorCode:
    if stat == "DELIVRD":
        return NO_ERROR
    if err is not None and err.isdigit():
        code = int(err)
        if code != 0:
            return error_for_code(code)
    return default


def parse_receipt(
    *,
    short_message: bytes,
    data_coding: int = 0,
    receipted_message_id: str | None = None,
    message_state: int | None = None,
    network_error_code: bytes | None = None,
    received_at: datetime,
) -> ParsedReceipt:
    """Read one delivery receipt. Raises `ReceiptUnreadable` when it has no id or no state."""
    fields = parse_receipt_text(_decode_text(short_message, data_coding))

    raw_id = (receipted_message_id or "").strip("\x00").strip() or fields.get("id", "")
    ref = normalise_ref(raw_id)
    if not ref:
        raise ReceiptUnreadable(reason="no message id in receipted_message_id or text")

    if message_state is not None and message_state in STATE_TO_STAT:
        stat = STATE_TO_STAT[message_state]
    else:
        word = fields.get("stat", "").strip().upper()
        stat = _STAT_ALIASES.get(word, word)
    if not stat:
        raise ReceiptUnreadable(reason=f"receipt for {ref} has no stat and no message_state")
    if stat in PENDING_STATS:
        return ParsedReceipt(ref=ref, stat=stat, receipt=None)
    final = FINAL_STATS.get(stat)
    if final is None:
        raise ReceiptUnreadable(reason=f"receipt for {ref} has an unknown stat {stat!r}")

    err = fields.get("err")
    if (err is None or not err.isdigit()) and network_error_code and len(network_error_code) == 3:
        # network_error_code TLV: network type octet, then a 2-octet error code.
        err_from_tlv = str(int.from_bytes(network_error_code[1:], "big"))
    else:
        err_from_tlv = None
    status, default_error = final
    detail = {"stat": stat, "smsc_message_id": raw_id}
    if err is not None:
        detail["err"] = err
    if network_error_code:
        detail["network_error_code"] = network_error_code.hex()
    for key in ("sub", "dlvrd", "submit_date", "done_date"):
        if fields.get(key):
            detail[key] = fields[key]
    receipt = Receipt(
        channel=Channel.SMS,
        ref=ref,
        status=status,
        error=_error_for(stat, err_from_tlv or err, default_error),
        done_at=received_at,
        detail=detail,
    )
    return ParsedReceipt(ref=ref, stat=stat, receipt=receipt)
