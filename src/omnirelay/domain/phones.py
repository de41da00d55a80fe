"""Phone numbers: international digits without '+' (the API's form), checked with phonenumbers.

`_possible` gives exactly `phonenumbers`' verdict (`parse("+" + digits, None)`, then
`is_possible_number`; False when `parse` raises). `parse` is most of the cost of a large request
(tens of µs a number), so `_fast_verdict` reaches the same verdict from what `parse` and
`is_possible_number` actually look at, for plain ASCII digits:

- the country code is the first of digits[:1], [:2], [:3] that is a known calling code; a leading
  '0' or no known code means `parse` raises, so the verdict is False;
- the rest is the national number, unchanged, unless the country's `national_prefix_for_parsing`
  pattern matches at its start (`re.match`, as `parse` does; a pattern may match the empty
  string), in which case `parse` may strip a national prefix or carrier code;
- `is_possible_number` then only compares the length of the national significant number (which
  keeps the national number's leading zeros, so its length is the national number's) with the
  country's possible lengths: we ask `is_possible_number` itself once per country and length.

It falls back to `parse` (returns None) for anything else: non-ASCII digits, fewer than 3 digits,
a national number shorter than 2 or longer than 17 digits, no metadata, or a national prefix match.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

_MIN_NSN, _MAX_NSN = 2, 17  # phonenumberutil's _MIN_LENGTH_FOR_NSN and _MAX_LENGTH_FOR_NSN
_COUNTRY_CODES = {str(cc): cc for cc in COUNTRY_CODE_TO_REGION_CODE}  # str(cc) never starts with 0


def normalise(raw: str) -> str | None:
    """The digits of a possible international number (no '+', no spaces), or None if it is not one."""
    digits = raw.strip().removeprefix("+").replace(" ", "")
    # ASCII only: `isdigit` alone takes other scripts' digits (which `parse` would accept), and the
    # digits are what channels are given (an SMPP address is ASCII).
    if not digits.isascii() or not digits.isdigit() or not 6 <= len(digits) <= 15:
        return None
    return digits if _possible(digits) else None


@functools.lru_cache(maxsize=65_536)
def _possible(digits: str) -> bool:
    """`phonenumbers`' verdict, remembered per number: the same recipients come back request after
    request. A pure function of the digits; `parse` only where the fast path cannot decide."""
    verdict = _fast_verdict(digits)
    return _parsed_verdict(digits) if verdict is None else verdict


def _parsed_verdict(digits: str) -> bool:
    """The verdict as `phonenumbers` computes it (~20-70 µs a number, mostly `parse`)."""
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_possible_number(number))


@dataclass(frozen=True, slots=True)
class _Country:
    national_prefix: re.Pattern[str] | None  # `national_prefix_for_parsing`, compiled as parse does
    possible_lengths: frozenset[int]  # national lengths that is_possible_number accepts


_COUNTRIES: dict[int, _Country | None] = {}


def _fast_verdict(digits: str) -> bool | None:
    """`_parsed_verdict(digits)` in a few µs, or None where that is not provably the same (see the
    module docstring)."""
    if len(digits) < 3 or not digits.isascii() or not digits.isdigit():
        return None
    if digits[0] == "0":
        return False  # no country code starts with 0: parse raises INVALID_COUNTRY_CODE
    for size in (1, 2, 3):
        if digits[:size] in _COUNTRY_CODES:
            break
    else:
        return False  # no known country code: parse raises INVALID_COUNTRY_CODE
    cc, national = _COUNTRY_CODES[digits[:size]], digits[size:]
    if not _MIN_NSN <= len(national) <= _MAX_NSN:
        return None
    country = _COUNTRIES[cc] if cc in _COUNTRIES else _country(cc)
    if country is None or (country.national_prefix is not None and country.national_prefix.match(national)):
        return None
    return len(national) in country.possible_lengths


def _country(cc: int) -> _Country | None:
    """What `_fast_verdict` needs of a country code, from the metadata both `parse` and
    `is_possible_number` use; computed once."""
    region = phonenumbers.region_code_for_country_code(cc)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(cc, region)
    country = None
    if metadata is not None:
        pattern = metadata.national_prefix_for_parsing
        lengths = frozenset(
            n
            for n in range(_MIN_NSN, _MAX_NSN + 1)
            if phonenumbers.is_possible_number(
                phonenumbers.PhoneNumber(country_code=cc, national_number=int("1" * n))
            )
        )
        country = _Country(re.compile(pattern) if pattern else None, lengths)
    _COUNTRIES[cc] = country
    return country


@functools.lru_cache(maxsize=65_536)
def region(digits: str) -> str | None:
    """ISO country of an international number, when known (for the price list; every final report
    asks, ~20 µs of `parse` a number). A pure function of the digits."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse("+" + digits, None)) or None
    except phonenumbers.NumberParseException:
        return None
