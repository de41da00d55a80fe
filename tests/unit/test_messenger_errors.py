"""The Graph API error classification table: every row of docs/messenger-errors.md#the-table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from omnirelay.channels.messenger.errors import (
    ANY,
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


DOC = Path(__file__).resolve().parents[2] / "docs" / "messenger-errors.md"
UNSEEN_SUBCODE = 987_654_321  # no rule names it: the lookup falls to the code's "any" row
# the table's rows without a Graph code -> the classify() arguments they stand for
NO_CODE_ROWS = {
    "(no response)": (None, None, None),
    "(HTTP 5xx, no Graph error)": (500, None, None),
    "(HTTP 429, no Graph error)": (429, None, None),
    "(unknown code)": (400, 987654, None),
}


def doc_rows() -> list[list[str]]:
    """The cells of every row of the "The table" section of docs/messenger-errors.md."""
    section = DOC.read_text().split("## The table", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip().strip("|").split("|") for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row] for row in rows[1:] if not set(row[0].strip()) <= set("-")]


def doc_keys(code_cell: str, subcode_cell: str) -> list[tuple[int | None, int | None, int | None]]:
    """The (http_status, code, subcode) lookups one documented row stands for."""
    if code_cell in NO_CODE_ROWS:
        return [NO_CODE_ROWS[code_cell]]
    low, _, high = code_cell.partition("–")
    codes = range(int(low), int(high or low) + 1)
    subcodes: list[int | None] = []
    if subcode_cell.startswith("any"):
        subcodes.append(UNSEEN_SUBCODE)
        subcodes += [None if part == "–" else int(part) for part in re.findall(r"–|\d+", subcode_cell)]
    else:
        subcodes.append(None if subcode_cell == "–" else int(subcode_cell))
    return [(400, code, sub) for code in codes for sub in subcodes]


def test_docs_table_matches_the_code() -> None:
    """Every row of docs/messenger-errors.md#the-table is what `classify` does, and every rule has a row."""
    rows = doc_rows()
    assert len(rows) > 30
    documented: set[tuple[int, int | None]] = set()
    for code_cell, subcode_cell, _meaning, action, status, error in rows:
        for key in doc_keys(code_cell, subcode_cell):
            verdict = classify(*key)
            assert action.split()[0] == verdict.action.value, (code_cell, subcode_cell, key)
            assert status.strip("`") == verdict.status.name, (code_cell, subcode_cell, key)
            name, number = re.fullmatch(r"`(\w+)` \((\d+)\)", error).groups()  # type: ignore[union-attr]
            assert (name, int(number)) == (verdict.error.name, verdict.error.id), (code_cell, key)
            if key[1] is not None:
                documented.add((key[1], None if key[2] == UNSEEN_SUBCODE else key[2]))
    for rule in RULES:
        subcode = None if rule.subcode == ANY else rule.subcode
        assert (rule.code, subcode) in documented or (rule.code, None) in documented, rule
