"""The Graph API error classification table: every row of docs/messenger-errors.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnirelay.channels.messenger.errors import (
    EC_FREQUENCY_CAPPING,
    RULES,
    Action,
    classify,
)
from omnirelay.domain import statuses as s

RETRY, FAIL, PAUSE = Action.RETRY, Action.FAIL_OVER, Action.FAIL_OVER_AND_PAUSE
PAUSE_PHONE = Action.FAIL_OVER_AND_PAUSE_PHONE

# (http_status, code, subcode) -> (action, status, error, rate_limit)
TABLE = [
    # the person cannot be reached: fail over now
    ((400, 551, None), FAIL, s.UNDELIVERABLE_NOT_DELIVERED, s.EC_BLOCKED_USER, False),
    ((400, 551, 1545041), FAIL, s.UNDELIVERABLE_NOT_DELIVERED, s.EC_BLOCKED_USER, False),
    ((400, 10, 2018278), FAIL, s.UNDELIVERABLE_NOT_DELIVERED, s.EC_NO_SESSION, False),
    ((400, 10, 2018065), FAIL, s.UNDELIVERABLE_NOT_DELIVERED, s.EC_NO_SESSION, False),
    ((400, 10, 2018108), FAIL, s.UNDELIVERABLE_NOT_DELIVERED, s.EC_ABSENT_SUBSCRIBER_SM, False),
    ((400, 200, 1545041), FAIL, s.UNDELIVERABLE_NOT_DELIVERED, s.EC_BLOCKED_USER, False),
    ((400, 100, 2018001), FAIL, s.REJECTED_DESTINATION_NOT_REGISTERED, s.EC_UNKNOWN_USER, False),
    # our request is wrong / this payload: fail over now
    ((400, 100, None), FAIL, s.UNDELIVERABLE_REJECTED_OPERATOR, s.EC_BAD_REQUEST, False),
    ((400, 100, 2018032), FAIL, s.UNDELIVERABLE_REJECTED_OPERATOR, s.EC_BAD_REQUEST, False),
    ((400, 100, 2018034), FAIL, s.UNDELIVERABLE_REJECTED_OPERATOR, s.EC_BAD_REQUEST, False),
    ((400, 100, 2018109), FAIL, s.UNDELIVERABLE_REJECTED_OPERATOR, s.EC_MEDIA_UNSUPPORTED, False),
    ((400, 4, 2018354), FAIL, s.UNDELIVERABLE_REJECTED_OPERATOR, EC_FREQUENCY_CAPPING, False),
    ((400, 9, 2018352), FAIL, s.UNDELIVERABLE_REJECTED_OPERATOR, EC_FREQUENCY_CAPPING, False),
    # (4, 2018352) and (4, 9) are not Meta's: a rate limit of code 4 whatever the subcode
    ((400, 4, 2018352), RETRY, s.PENDING_WAITING_DELIVERY, s.EC_TOO_MANY_REQUESTS, True),
    ((400, 4, 9), RETRY, s.PENDING_WAITING_DELIVERY, s.EC_TOO_MANY_REQUESTS, True),
    ((400, 10, 1234567), FAIL, s.UNDELIVERABLE_REJECTED_OPERATOR, s.EC_FORBIDDEN_ACCESS, False),
    # channel-wide: fail over and pause the page
    ((400, 190, None), PAUSE, s.UNDELIVERABLE_NOT_SENT, s.EC_UNAUTHORIZED_ACCESS, False),
    ((401, 190, 463), PAUSE, s.UNDELIVERABLE_NOT_SENT, s.EC_UNAUTHORIZED_ACCESS, False),
    ((403, 200, 2018028), PAUSE, s.UNDELIVERABLE_NOT_SENT, s.EC_FORBIDDEN_ACCESS, False),
    ((403, 200, 2018027), PAUSE_PHONE, s.UNDELIVERABLE_NOT_SENT, s.EC_PHONE_MATCHING_DISABLED, False),
    ((403, 200, 2018021), PAUSE_PHONE, s.UNDELIVERABLE_NOT_SENT, s.EC_PHONE_MATCHING_DISABLED, False),
    ((403, 200, None), PAUSE, s.UNDELIVERABLE_NOT_SENT, s.EC_FORBIDDEN_ACCESS, False),
    ((400, 10, None), PAUSE, s.UNDELIVERABLE_NOT_SENT, s.EC_FORBIDDEN_ACCESS, False),
    ((400, 1, 99), PAUSE, s.UNDELIVERABLE_NOT_SENT, s.EC_FORBIDDEN_ACCESS, False),
    ((400, 10, 1893063), PAUSE, s.UNDELIVERABLE_NOT_SENT, s.EC_ACCOUNT_ISSUE, False),
    ((400, 2, 2018344), PAUSE, s.UNDELIVERABLE_NOT_SENT, s.EC_FORBIDDEN_ACCESS, False),
    # transient: retry
    ((400, 1200, None), RETRY, s.PENDING_WAITING_DELIVERY, s.EC_PROVIDER_INTERNAL_ERROR, False),
    ((500, 2, None), RETRY, s.PENDING_WAITING_DELIVERY, s.EC_PROVIDER_INTERNAL_ERROR, False),
    ((400, 1, None), RETRY, s.PENDING_WAITING_DELIVERY, s.EC_PROVIDER_INTERNAL_ERROR, False),
    ((400, 1, 1357046), RETRY, s.PENDING_WAITING_DELIVERY, s.EC_PROVIDER_INTERNAL_ERROR, False),
    # rate limits: retry, flagged so the page is throttled
    ((400, 4, None), RETRY, s.PENDING_WAITING_DELIVERY, s.EC_TOO_MANY_REQUESTS, True),
    ((400, 4, 2018022), RETRY, s.PENDING_WAITING_DELIVERY, s.EC_TOO_MANY_REQUESTS, True),
    ((400, 17, None), RETRY, s.PENDING_WAITING_DELIVERY, s.EC_TOO_MANY_REQUESTS, True),
    ((400, 32, None), RETRY, s.PENDING_WAITING_DELIVERY, s.EC_TOO_MANY_REQUESTS, True),
    ((400, 613, None), RETRY, s.PENDING_WAITING_DELIVERY, s.EC_TOO_MANY_REQUESTS, True),
    ((400, 80001, None), RETRY, s.PENDING_WAITING_DELIVERY, s.EC_TOO_MANY_REQUESTS, True),
    ((400, 80006, None), RETRY, s.PENDING_WAITING_DELIVERY, s.EC_TOO_MANY_REQUESTS, True),
    ((400, 80014, None), RETRY, s.PENDING_WAITING_DELIVERY, s.EC_TOO_MANY_REQUESTS, True),
    # no Graph error at all
    ((None, None, None), RETRY, s.PENDING_WAITING_DELIVERY, s.EC_PROVIDER_TIMEOUT, False),
    ((500, None, None), RETRY, s.PENDING_WAITING_DELIVERY, s.EC_PROVIDER_INTERNAL_ERROR, False),
    ((502, None, None), RETRY, s.PENDING_WAITING_DELIVERY, s.EC_PROVIDER_INTERNAL_ERROR, False),
    ((503, None, None), RETRY, s.PENDING_WAITING_DELIVERY, s.EC_PROVIDER_INTERNAL_ERROR, False),
    ((429, None, None), RETRY, s.PENDING_WAITING_DELIVERY, s.EC_TOO_MANY_REQUESTS, True),
    # unknown codes
    ((400, 987654, None), FAIL, s.UNDELIVERABLE_REJECTED_OPERATOR, s.EC_UNKNOWN_ERROR, False),
    ((500, 987654, None), RETRY, s.PENDING_WAITING_DELIVERY, s.EC_PROVIDER_INTERNAL_ERROR, False),
    ((400, None, None), FAIL, s.UNDELIVERABLE_REJECTED_OPERATOR, s.EC_UNKNOWN_ERROR, False),
]


@pytest.mark.parametrize(("key", "action", "status", "error", "rate_limit"), TABLE, ids=str)
def test_classification_row(
    key: tuple[int | None, int | None, int | None],
    action: Action,
    status: s.Status,
    error: s.ErrorCode,
    rate_limit: bool,
) -> None:
    verdict = classify(*key)
    assert (verdict.action, verdict.status, verdict.error, verdict.rate_limit) == (
        action,
        status,
        error,
        rate_limit,
    )
    assert verdict.meaning


def test_code_wins_over_http_status() -> None:
    # Meta: classify on code and subcode, never the HTTP status.
    assert classify(500, 10, 2018278).action is FAIL
    assert classify(200, 190, None).action is PAUSE


def test_unknown_code_flagged_transient_is_retried() -> None:
    assert classify(400, 987654, None, is_transient=True).action is RETRY


def test_retry_after_is_attached_to_retries_only() -> None:
    assert classify(400, 80006, None, retry_after_s=120.0).retry_after_s == 120.0
    assert classify(400, 4, None).retry_after_s is None
    assert classify(400, 551, None, retry_after_s=120.0).retry_after_s is None
    assert classify(400, 32, None, retry_after_s=-3.0).retry_after_s == 0.0


def test_rejections_carry_final_statuses_and_retries_pending() -> None:
    for rule in RULES:
        if rule.action is RETRY:
            assert not rule.status.is_final, rule
            assert not rule.error.permanent, rule
        else:
            assert rule.status.is_final and not rule.status.is_success, rule


def test_every_code_of_the_channels_table_has_a_row() -> None:
    codes = {rule.code for rule in RULES}
    assert {551, 10, 200, 100, 190, 1, 2, 4, 9, 1200, 613, 17, 32, 80001, 80006} <= codes


def test_docs_table_matches_the_code() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "messenger-errors.md").read_text()
    for rule in RULES:
        if 80002 <= rule.code <= 80014 and rule.code != 80006:
            continue  # documented as one range row
        assert f"| {rule.code} |" in doc, rule
        assert rule.error.name in doc, rule
        assert rule.status.name in doc, rule
