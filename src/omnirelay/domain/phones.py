"""Phone numbers: international digits without '+' (the API's form), checked with phonenumbers."""

from __future__ import annotations

import functools

import phonenumbers


def normalise(raw: str) -> str | None:
    """The digits of a possible international number (no '+', no spaces), or None if it is not one."""
    digits = raw.strip().removeprefix("+").replace(" ", "")
    if not digits.isdigit() or not 6 <= len(digits) <= 15:
        return None
    return digits if _possible(digits) else None


@functools.lru_cache(maxsize=65_536)
def _possible(digits: str) -> bool:
    """`phonenumbers`' verdict (~15-35 µs a number, mostly `parse`), remembered per number: the
    same recipients come back request after request. A pure function of the digits."""
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_possible_number(number))


@functools.lru_cache(maxsize=65_536)
def region(digits: str) -> str | None:
    """ISO country of an international number, when known (for the price list; every final report
    asks, ~20 µs of `parse` a number). A pure function of the digits."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse("+" + digits, None)) or None
    except phonenumbers.NumberParseException:
        return None
