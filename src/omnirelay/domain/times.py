"""Infobip time format: `yyyy-MM-dd'T'HH:mm:ss.SSSZ`, e.g. 2016-02-23T17:41:11.833+0000
(docs/api.md#times)."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime

_OFFSET_NO_COLON = re.compile(r"([+-]\d{2})(\d{2})$")


# Reports written together share their times (a request's rejected destinations, a batch of
# receipts): strftime was a fifth of a 10,000-destination rejection's CPU.
@functools.lru_cache(maxsize=1024)
def format_time(dt: datetime) -> str:
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


def parse_time(text: str) -> datetime:
    """Accept the Infobip form and ISO-8601 (offset with or without a colon, or Z)."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    value = _OFFSET_NO_COLON.sub(r"\1:\2", value)
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        raise ValueError("a time zone offset is required")
    try:
        return dt.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise ValueError("out of the range of dates") from None


def to_ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
