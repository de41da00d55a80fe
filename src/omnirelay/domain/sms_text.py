"""SMS text: GSM 03.38 / UCS-2 choice, segment counting and splitting, sender address kinds.

Pure functions, no I/O. The rules (docs/channels.md#encoding-and-segments):

* A text whose every character is in the GSM 03.38 basic table or its extension table is sent as
  GSM 7-bit (`data_coding` 0), one septet per octet, **unpacked** (what SMSCs expect over SMPP).
  An extension character costs two septets: the escape 0x1B, then its code.
* Any other text is sent as UCS-2 (`data_coding` 8) for the whole message, as UTF-16BE; characters
  outside the BMP (emoji) are surrogate pairs, two code units.
* One SMS holds 160 septets or 70 UCS-2 code units. Longer texts are split into parts of 153
  septets or 67 code units, each prefixed by an 8-bit-reference concatenation UDH
  (`05 00 03 ref total seq`, the reason for the smaller size). The split is greedy by character,
  so an escape pair or a surrogate pair is never cut in two.
* `message_count` is the number of parts, i.e. the number of SMS on the air interface; it is the
  report's `messageCount` and what a message is billed by. An empty text is one (empty) SMS, so
  `message_count(t) == len(encode_sms(t, ref=...).parts)` always holds (the usual sketch of this
  count gives 0; an empty submit is still one SMS).

The tables are the spec's, not smpplib's: smpplib has a backtick at 0x5F where `§` belongs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXT = {
    "\x0c": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
GSM_ESCAPE = 0x1B

DATA_CODING_GSM7 = 0x00
DATA_CODING_UCS2 = 0x08

GSM7_SINGLE_SEPTETS = 160
GSM7_PART_SEPTETS = 153
UCS2_SINGLE_UNITS = 70
UCS2_PART_UNITS = 67
MAX_PARTS = 255  # the 8-bit UDH's `total` octet
UDH_LENGTH = 6

# The escape itself is not a character a text may contain: it would desynchronise the decoder.
_BASIC_CODES: dict[str, int] = {ch: code for code, ch in enumerate(GSM_BASIC) if code != GSM_ESCAPE}
_BASIC_CHARS: dict[int, str] = {code: ch for ch, code in _BASIC_CODES.items()}
_EXT_CHARS: dict[int, str] = {code: ch for ch, code in GSM_EXT.items()}
_GSM_CHARS = frozenset(_BASIC_CODES) | frozenset(GSM_EXT)


class TextTooLong(ValueError):
    """The text needs more SMS parts than a concatenated message can have."""

    def __init__(self, *, parts: int, max_parts: int = MAX_PARTS) -> None:
        self.parts = parts
        self.max_parts = max_parts
        super().__init__(f"text needs {parts} SMS parts, at most {max_parts} are possible")


@dataclass(frozen=True, slots=True)
class SmsEncoding:
    """What to put in `submit_sm`: one `short_message` per part, the same `data_coding` for all.

    `udhi` says every part starts with a concatenation UDH (set `esm_class` bit 0x40).
    """

    data_coding: int
    parts: tuple[bytes, ...]
    udhi: bool
    message_count: int


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM 03.38 basic or extension table."""
    return all(ch in _GSM_CHARS for ch in text)


def _gsm_units(text: str) -> list[bytes]:
    out: list[bytes] = []
    for ch in text:
        code = _BASIC_CODES.get(ch)
        out.append(bytes((code,)) if code is not None else bytes((GSM_ESCAPE, GSM_EXT[ch])))
    return out


def _ucs2_units(text: str) -> list[bytes]:
    # surrogatepass: a lone surrogate in the input is sent as is rather than crashing the send.
    return [ch.encode("utf-16-be", "surrogatepass") for ch in text]


def _split(units: list[bytes], *, octets_per_unit: int, single: int, per_part: int) -> list[bytes]:
    """Greedy split of whole characters into payloads; sizes are counted in septets / code units."""
    total = sum(len(u) for u in units) // octets_per_unit
    if total <= single:
        return [b"".join(units)]
    parts: list[bytes] = []
    current: list[bytes] = []
    used = 0
    for unit in units:
        size = len(unit) // octets_per_unit
        if used + size > per_part:
            parts.append(b"".join(current))
            current, used = [], 0
        current.append(unit)
        used += size
    parts.append(b"".join(current))
    return parts


def _payloads(text: str) -> tuple[int, list[bytes]]:
    if is_gsm7(text):
        units = _gsm_units(text)
        return DATA_CODING_GSM7, _split(
            units, octets_per_unit=1, single=GSM7_SINGLE_SEPTETS, per_part=GSM7_PART_SEPTETS
        )
    units = _ucs2_units(text)
    return DATA_CODING_UCS2, _split(
        units, octets_per_unit=2, single=UCS2_SINGLE_UNITS, per_part=UCS2_PART_UNITS
    )


def message_count(text: str) -> int:
    """How many SMS (segments) the text takes: 160/153 septets in GSM 7-bit, 70/67 UCS-2 units."""
    return len(_payloads(text)[1])


def encode_sms(text: str, *, ref: int) -> SmsEncoding:
    """Encode and split `text`; `ref` (0-255) is the concatenation reference shared by all parts.

    Raises `TextTooLong` past 255 parts.
    """
    if not 0 <= ref <= 0xFF:
        raise ValueError(f"concatenation ref must be 0..255, got {ref}")
    data_coding, payloads = _payloads(text)
    total = len(payloads)
    if total == 1:
        return SmsEncoding(data_coding, (payloads[0],), udhi=False, message_count=1)
    if total > MAX_PARTS:
        raise TextTooLong(parts=total)
    parts = tuple(
        bytes((0x05, 0x00, 0x03, ref, total, seq)) + payload for seq, payload in enumerate(payloads, start=1)
    )
    return SmsEncoding(data_coding, parts, udhi=True, message_count=total)


def strip_udh(short_message: bytes) -> bytes:
    """The payload after a UDH (when `esm_class` has UDHI): skip UDHL + 1 octets."""
    if not short_message:
        return short_message
    return short_message[short_message[0] + 1 :]


def decode_gsm7(septets: bytes) -> str:
    """Unpacked GSM 03.38 septets back to text; unknown codes become '?'."""
    out: list[str] = []
    escaped = False
    for code in septets:
        if escaped:
            out.append(_EXT_CHARS.get(code, "?"))
            escaped = False
        elif code == GSM_ESCAPE:
            escaped = True
        else:
            out.append(_BASIC_CHARS.get(code, "?"))
    return "".join(out)


def decode_short_message(short_message: bytes, *, data_coding: int, udhi: bool) -> str:
    """Text of one part as sent by `encode_sms` (GSM 7-bit unpacked, or UCS-2), UDH removed."""
    payload = strip_udh(short_message) if udhi else short_message
    if data_coding == DATA_CODING_UCS2:
        return payload.decode("utf-16-be", "surrogatepass")
    if data_coding == DATA_CODING_GSM7:
        return decode_gsm7(payload)
    return payload.decode("latin-1")


class Ton(IntEnum):
    """SMPP type of number (the ones omnirelay sets)."""

    UNKNOWN = 0
    INTERNATIONAL = 1
    NATIONAL = 2
    NETWORK_SPECIFIC = 3
    ALPHANUMERIC = 5


class Npi(IntEnum):
    """SMPP numbering plan indicator (the ones omnirelay sets)."""

    UNKNOWN = 0
    ISDN = 1


SHORT_CODE_MAX_DIGITS = 8


@dataclass(frozen=True, slots=True)
class SenderAddress:
    """`source_addr` with its TON/NPI, per docs/channels.md#sender-addresses."""

    address: str
    ton: Ton
    npi: Npi


def sender_address(sender: str) -> SenderAddress:
    """Classify an SMS sender id.

    Digits (an optional leading '+' is dropped): up to 8 digits is a short code (TON 3, NPI 0),
    longer an international number (TON 1, NPI 1). Anything else is alphanumeric (TON 5, NPI 0).
    """
    stripped = sender.strip()
    digits = stripped.removeprefix("+")
    if digits and digits.isascii() and digits.isdigit():
        if len(digits) <= SHORT_CODE_MAX_DIGITS:
            return SenderAddress(digits, Ton.NETWORK_SPECIFIC, Npi.UNKNOWN)
        return SenderAddress(digits, Ton.INTERNATIONAL, Npi.ISDN)
    return SenderAddress(stripped, Ton.ALPHANUMERIC, Npi.UNKNOWN)
