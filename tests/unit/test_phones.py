"""`phones.normalise` remembers verdicts per number: it must give `phonenumbers`' verdict, always,
whether its fast path decides or `parse` does."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omnirelay.domain import phones


def reference(raw: str) -> str | None:
    """The check as written against `phonenumbers` directly, with no cache."""
    digits = raw.strip().removeprefix("+").replace(" ", "")
    if not digits.isascii() or not digits.isdigit() or not 6 <= len(digits) <= 15:
        return None
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return None
    return digits if phonenumbers.is_possible_number(number) else None


country_codes = st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE))
numbers = st.one_of(
    st.text(alphabet="0123456789", min_size=0, max_size=17),
    st.builds(lambda cc, rest: f"{cc}{rest}", country_codes, st.text(alphabet="0123456789", max_size=14)),
    st.builds(
        lambda plus, cc, rest, pad: f"{pad}{plus}{cc} {rest}{pad}",
        st.sampled_from(["", "+"]),
        country_codes,
        st.text(alphabet="0123456789", max_size=12),
        st.sampled_from(["", " "]),
    ),
    st.text(max_size=16),
)


@settings(max_examples=2000)
@given(numbers)
def test_normalise_gives_phonenumbers_verdict_cached_or_not(raw: str) -> None:
    expected = reference(raw)
    assert phones.normalise(raw) == expected  # first time: computed
    assert phones.normalise(raw) == expected  # second time: remembered


def test_known_numbers() -> None:
    assert phones.normalise("41793026727") == "41793026727"
    assert phones.normalise("+41 793026727") == "41793026727"
    assert phones.normalise("123") is None
    assert phones.normalise("999999999999") is None  # no such country code
    assert phones.normalise("٤١٧٩٣٠٢٦٧٢٧") is None  # Arabic-Indic digits: not the API's digits


def parsed(digits: str) -> bool:
    """`phonenumbers`' verdict on digits, with no cache and no fast path."""
    try:
        return bool(phonenumbers.is_possible_number(phonenumbers.parse("+" + digits, None)))
    except phonenumbers.NumberParseException:
        return False


def national_parts(rng: random.Random, length: int) -> set[str]:
    """A few national numbers of a length: all zeros, two leading zeros, each digit first, random."""

    def rand(n: int) -> str:
        return "".join(rng.choice("0123456789") for _ in range(n))

    parts = {"0" * length, rand(length)}
    if length >= 1:
        parts |= {f"{first}{rand(length - 1)}" for first in "0123456789"}
    if length >= 2:
        parts.add(f"00{rand(length - 2)}")
    return parts


def test_fast_path_gives_phonenumbers_verdict_for_every_country_code_and_length() -> None:
    rng = random.Random(1234)
    decided = 0
    for cc in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE):
        for length in range(15 - len(str(cc)) + 1):
            for national in sorted(national_parts(rng, length)):
                digits = f"{cc}{national}"
                expected = parsed(digits)
                fast = phones._fast_verdict(digits)
                assert fast in (None, expected), digits
                assert phones._possible.__wrapped__(digits) == expected, digits
                decided += fast is not None
    # The fast path must decide most of these, or this test would prove nothing.
    assert decided > 25_000


@pytest.mark.parametrize("digits", ["0", "00", "012", "0041793026727", "1", "12", "999", "99912345678"])
def test_fast_path_on_no_country_code_and_too_few_digits(digits: str) -> None:
    assert phones._fast_verdict(digits) in (None, parsed(digits))
    assert phones._possible.__wrapped__(digits) == parsed(digits)


@pytest.mark.parametrize(
    "digits",
    [
        "41793026727",  # CH mobile
        "447911123456",  # GB mobile
        "12125551234",  # US
        "4915112345678",  # DE mobile
        "33612345678",  # FR mobile
        "390612345678",  # IT fixed line: its leading 0 is not a national prefix, and is kept
        "79161234567",  # RU mobile
        "8613812345678",  # CN mobile
        "919812345678",  # IN mobile
        "2348031234567",  # NG mobile
        "385911234567",  # HR mobile
        "4179302672",  # too short for CH: False, still without parse
    ],
)
def test_fast_path_decides_common_numbers(digits: str) -> None:
    assert phones._fast_verdict(digits) is not None
    assert phones._fast_verdict(digits) == parsed(digits)


@pytest.mark.parametrize(
    "digits",
    [
        "410793026727",  # CH national prefix 0 after the country code
        "4407911123456",  # GB
        "112125551234",  # US national prefix 1
        "78121234567",  # RU national prefix 8 (here a St Petersburg area code)
        "5491123456789",  # AR: its national prefix pattern also matches the empty string
        "٤١٧٩٣٠٢٦٧٢٧",  # Arabic-Indic digits: parse normalises them, the fast path does not
    ],
)
def test_parse_decides_where_a_national_prefix_may_be_stripped(digits: str) -> None:
    assert phones._fast_verdict(digits) is None
    assert phones._possible.__wrapped__(digits) == parsed(digits)
    assert phones.normalise(digits) == reference(digits)
