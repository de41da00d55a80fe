"""The password an operator chooses for an account: 12 to 128 characters (docs/decisions/0009)."""

from __future__ import annotations

import pytest

from omnirelay.domain.errors import ValidationFailed
from omnirelay.services.accounts import MAX_PASSWORD, MIN_PASSWORD, new_password_hash, verify_password


@pytest.mark.parametrize("length", [0, 1, MIN_PASSWORD - 1, MAX_PASSWORD + 1])
def test_too_short_or_too_long_is_refused(length: int) -> None:
    with pytest.raises(ValidationFailed) as refused:
        new_password_hash("x" * length)
    assert refused.value.field == "password"


@pytest.mark.parametrize("length", [MIN_PASSWORD, MAX_PASSWORD])
def test_the_bounds_are_accepted_and_verify(length: int) -> None:
    assert verify_password("p" * length, new_password_hash("p" * length))
