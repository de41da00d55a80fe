"""`phones.normalise` remembers verdicts per number: it must give `phonenumbers`' verdict, always."""

from __future__ import annotations

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from omnirelay.domain import phones


def reference(raw: str) -> str | None:
    """The check as written against `phonenumbers` directly, with no cache."""
    digits = raw.strip().removeprefix("+").replace(" ", "")
    if not digits.isdigit() or not 6 <= len(digits) <= 15:
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
