"""Classification of Graph API Send API errors (docs/messenger-errors.md#the-table), as one data table.

`classify(http_status, code, error_subcode)` is pure: it looks the Meta `code` and `error_subcode`
up in `RULES` and says what the gateway does (`Action`) and which Infobip status and error a
rejection carries. Lookup order:

1. the exact `(code, subcode)` row (a row with subcode `None` means "sent without a subcode");
2. the code's wildcard row `(code, ANY)`;
3. fallbacks: no Graph error at all (network error, timeout, or an HTTP 5xx / 429 without a
   parseable body) retries; an unknown code retries when Meta flags it `is_transient` or the HTTP
   status is 5xx, and otherwise fails over as an unknown permanent error.

Meta says to classify on code and subcode, never on the message text or the HTTP status (most
errors come back as HTTP 400), so the HTTP status only matters when there is no known code.

Infobip status choice, applied consistently:

* the recipient is unknown to the Page: `REJECTED_DESTINATION_NOT_REGISTERED` + `EC_UNKNOWN_USER`
  (the same answer as an unknown user key before any HTTP call);
* the recipient exists but cannot be reached now (blocked, window closed, unavailable):
  `UNDELIVERABLE_NOT_DELIVERED` with `EC_BLOCKED_USER`, `EC_NO_SESSION` or `EC_ABSENT_SUBSCRIBER_SM`;
* Meta refused this particular message (bad parameter, attachment, frequency cap):
  `UNDELIVERABLE_REJECTED_OPERATOR` with `EC_BAD_REQUEST`, `EC_MEDIA_UNSUPPORTED`, `EC_FREQUENCY_CAPPING`;
* the Page cannot send at all (token, permissions, restriction): `UNDELIVERABLE_NOT_SENT` with
  `EC_UNAUTHORIZED_ACCESS`, `EC_FORBIDDEN_ACCESS` or `EC_ACCOUNT_ISSUE`, and the action pauses the
  Page; the Page cannot send by phone number (Customer Matching): `UNDELIVERABLE_NOT_SENT` with
  `EC_PHONE_MATCHING_DISABLED`, and the action stops only its sends by phone number;
* retries carry `EC_PROVIDER_INTERNAL_ERROR`, `EC_PROVIDER_TIMEOUT` or `EC_TOO_MANY_REQUESTS`, for
  the report written if the deadline passes while retrying.

`docs/messenger-errors.md` documents the same table for operators; keep both in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal

from omnirelay.domain.statuses import (
    EC_ABSENT_SUBSCRIBER_SM,
    EC_ACCOUNT_ISSUE,
    EC_BAD_REQUEST,
    EC_BLOCKED_USER,
    EC_FORBIDDEN_ACCESS,
    EC_MEDIA_UNSUPPORTED,
    EC_NO_SESSION,
    EC_PHONE_MATCHING_DISABLED,
    EC_PROVIDER_INTERNAL_ERROR,
    EC_PROVIDER_TIMEOUT,
    EC_TOO_MANY_REQUESTS,
    EC_UNAUTHORIZED_ACCESS,
    EC_UNKNOWN_ERROR,
    EC_UNKNOWN_USER,
    PENDING_WAITING_DELIVERY,
    REJECTED_DESTINATION_NOT_REGISTERED,
    UNDELIVERABLE_NOT_DELIVERED,
    UNDELIVERABLE_NOT_SENT,
    UNDELIVERABLE_REJECTED_OPERATOR,
    ErrorCode,
    Status,
)

# Chat-app error 7032 (docs/api.md#error-table) is not among the constants of domain/statuses.py.
EC_FREQUENCY_CAPPING: Final = ErrorCode(1, 7032, "EC_FREQUENCY_CAPPING", "Frequency Capping", True)


class Action(StrEnum):
    """What the gateway does with a failed send."""

    RETRY = "RETRY"  # ChannelUnavailable: retry with backoff inside the step's deadline
    FAIL_OVER = "FAIL_OVER"  # MessageRejected: next step at once
    FAIL_OVER_AND_PAUSE = "FAIL_OVER_AND_PAUSE"  # MessageRejected(pause_channel=True): and pause the Page
    # MessageRejected, and stop the Page's sends by phone number for a while (PSID sends go on)
    FAIL_OVER_AND_PAUSE_PHONE = "FAIL_OVER_AND_PAUSE_PHONE"


ANY: Final = "*"
"""Subcode wildcard in `Rule.subcode`: any subcode of that code, or none."""

Subcode = int | None | Literal["*"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the classification table."""

    code: int
    subcode: Subcode
    meaning: str
    action: Action
    status: Status
    error: ErrorCode
    rate_limit: bool = False


@dataclass(frozen=True, slots=True)
class Classification:
    """The verdict on one failed Send API call.

    `status` and `error` are what the report says if this is (or, after retries, becomes) the
    step's outcome; for RETRY the status is the in-flight one. `retry_after_s` is set for RETRY
    when the wait is known (rate-limit headers).
    """

    action: Action
    status: Status
    error: ErrorCode
    meaning: str
    rate_limit: bool = False
    retry_after_s: float | None = None


_A = Action
_RETRY, _FAIL, _PAUSE = _A.RETRY, _A.FAIL_OVER, _A.FAIL_OVER_AND_PAUSE
_PAUSE_PHONE = _A.FAIL_OVER_AND_PAUSE_PHONE
_NOT_DELIVERED = UNDELIVERABLE_NOT_DELIVERED
_REJECTED = UNDELIVERABLE_REJECTED_OPERATOR
_NOT_SENT = UNDELIVERABLE_NOT_SENT
_PENDING = PENDING_WAITING_DELIVERY

_BUC_CODES = range(80001, 80015)  # Business-Use-Case rate limits; 80006 is Messenger's

RULES: Final[tuple[Rule, ...]] = (
    # --- the person cannot be reached on Messenger: fail over now
    Rule(551, ANY, "This person isn't available right now", _FAIL, _NOT_DELIVERED, EC_BLOCKED_USER),
    Rule(10, 2018278, "Message sent outside the allowed window", _FAIL, _NOT_DELIVERED, EC_NO_SESSION),
    Rule(10, 2018065, "Outside the window (subscription messaging)", _FAIL, _NOT_DELIVERED, EC_NO_SESSION),
    Rule(
        10,
        2018108,
        "This person cannot receive messages right now",
        _FAIL,
        _NOT_DELIVERED,
        EC_ABSENT_SUBSCRIBER_SM,
    ),
    Rule(
        200, 1545041, "The person isn't receiving messages from you", _FAIL, _NOT_DELIVERED, EC_BLOCKED_USER
    ),
    Rule(
        100,
        2018001,
        "No matching user found",
        _FAIL,
        REJECTED_DESTINATION_NOT_REGISTERED,
        EC_UNKNOWN_USER,
    ),
    # --- Meta refused this message: fail over now
    Rule(100, ANY, "Invalid parameter (our request is wrong)", _FAIL, _REJECTED, EC_BAD_REQUEST),
    Rule(100, 2018109, "Attachment size exceeds the limit", _FAIL, _REJECTED, EC_MEDIA_UNSUPPORTED),
    Rule(4, 2018354, "Marketing message frequency limit", _FAIL, _REJECTED, EC_FREQUENCY_CAPPING),
    Rule(9, 2018352, "User is performing too many actions", _FAIL, _REJECTED, EC_FREQUENCY_CAPPING),
    Rule(
        10,
        ANY,
        "Permission problem for this message (unknown subcode)",
        _FAIL,
        _REJECTED,
        EC_FORBIDDEN_ACCESS,
    ),
    # --- the Page cannot send: fail over and pause the Page
    Rule(190, ANY, "Invalid or expired access token", _PAUSE, _NOT_SENT, EC_UNAUTHORIZED_ACCESS),
    Rule(200, ANY, "Permission error", _PAUSE, _NOT_SENT, EC_FORBIDDEN_ACCESS),
    Rule(200, 2018028, "App not live for pages_messaging", _PAUSE, _NOT_SENT, EC_FORBIDDEN_ACCESS),
    # --- the Page cannot send by phone number (Customer Matching): sends by PSID go on
    Rule(
        200,
        2018027,
        "No Customer Matching for this Page (phone-number sends)",
        _PAUSE_PHONE,
        _NOT_SENT,
        EC_PHONE_MATCHING_DISABLED,
    ),
    Rule(
        200,
        2018021,
        "Phone-number matching fee not set up",
        _PAUSE_PHONE,
        _NOT_SENT,
        EC_PHONE_MATCHING_DISABLED,
    ),
    Rule(10, None, "Permission denied", _PAUSE, _NOT_SENT, EC_FORBIDDEN_ACCESS),
    Rule(
        1,
        99,
        "Unknown error; usually missing permissions or access level",
        _PAUSE,
        _NOT_SENT,
        EC_FORBIDDEN_ACCESS,
    ),
    Rule(10, 1893063, "Page temporarily restricted from sending", _PAUSE, _NOT_SENT, EC_ACCOUNT_ISSUE),
    Rule(
        2,
        2018344,
        "Service temporarily unavailable: the Page has not accepted the Privacy ToS",
        _PAUSE,
        _NOT_SENT,
        EC_FORBIDDEN_ACCESS,
    ),
    # --- transient: retry with backoff inside the deadline
    Rule(1200, ANY, "Temporary send message failure", _RETRY, _PENDING, EC_PROVIDER_INTERNAL_ERROR),
    Rule(2, ANY, "Unexpected error, retry later", _RETRY, _PENDING, EC_PROVIDER_INTERNAL_ERROR),
    Rule(1, ANY, "Unknown error, possibly temporary", _RETRY, _PENDING, EC_PROVIDER_INTERNAL_ERROR),
    Rule(
        1,
        1357046,
        "Invalid JSON reply; the message may have been sent (reconcile via echoes)",
        _RETRY,
        _PENDING,
        EC_PROVIDER_INTERNAL_ERROR,
    ),
    # --- rate limits: retry after the limit resets; the Page is throttled meanwhile
    Rule(4, ANY, "Application request limit reached", _RETRY, _PENDING, EC_TOO_MANY_REQUESTS, True),
    Rule(4, 2018022, "Too many sends to phone numbers", _RETRY, _PENDING, EC_TOO_MANY_REQUESTS, True),
    Rule(17, ANY, "User request limit reached", _RETRY, _PENDING, EC_TOO_MANY_REQUESTS, True),
    Rule(32, ANY, "Page request limit reached", _RETRY, _PENDING, EC_TOO_MANY_REQUESTS, True),
    Rule(
        613,
        ANY,
        "Calls to this API have exceeded the rate limit",
        _RETRY,
        _PENDING,
        EC_TOO_MANY_REQUESTS,
        True,
    ),
    *(
        Rule(code, ANY, "Business-Use-Case rate limit", _RETRY, _PENDING, EC_TOO_MANY_REQUESTS, True)
        for code in _BUC_CODES
    ),
)

_BY_KEY: Final[dict[tuple[int, Subcode], Rule]] = {(rule.code, rule.subcode): rule for rule in RULES}
if len(_BY_KEY) != len(RULES):  # pragma: no cover - guards the table at import
    raise RuntimeError("duplicate (code, subcode) rows in RULES")

NETWORK_ERROR: Final = Classification(
    _RETRY, _PENDING, EC_PROVIDER_TIMEOUT, "Network error or timeout; the outcome is unknown"
)
SERVER_ERROR: Final = Classification(_RETRY, _PENDING, EC_PROVIDER_INTERNAL_ERROR, "Graph API server error")
HTTP_TOO_MANY_REQUESTS: Final = Classification(
    _RETRY, _PENDING, EC_TOO_MANY_REQUESTS, "HTTP 429 Too Many Requests", rate_limit=True
)
UNKNOWN_TRANSIENT: Final = Classification(
    _RETRY, _PENDING, EC_PROVIDER_INTERNAL_ERROR, "Unknown error flagged transient by Meta"
)
UNKNOWN_PERMANENT: Final = Classification(_FAIL, _REJECTED, EC_UNKNOWN_ERROR, "Unknown Graph API error")


def find_rule(code: int, error_subcode: int | None) -> Rule | None:
    """The table row for this code and subcode: exact first, then the code's wildcard."""
    return _BY_KEY.get((code, error_subcode)) or _BY_KEY.get((code, ANY))


def classify(
    http_status: int | None,
    code: int | None,
    error_subcode: int | None,
    *,
    is_transient: bool = False,
    retry_after_s: float | None = None,
) -> Classification:
    """Decide what to do with a failed send.

    `http_status` is None when no response arrived (network error, timeout); `code` is None when the
    response carried no parseable Graph error. `retry_after_s` (from usage headers or Retry-After)
    is attached to RETRY verdicts only.
    """
    verdict = _verdict(http_status, code, error_subcode, is_transient=is_transient)
    if verdict.action is Action.RETRY and retry_after_s is not None:
        return Classification(
            verdict.action,
            verdict.status,
            verdict.error,
            verdict.meaning,
            rate_limit=verdict.rate_limit,
            retry_after_s=max(0.0, retry_after_s),
        )
    return verdict


def _verdict(
    http_status: int | None, code: int | None, error_subcode: int | None, *, is_transient: bool
) -> Classification:
    if code is not None:
        rule = find_rule(code, error_subcode)
        if rule is not None:
            return Classification(rule.action, rule.status, rule.error, rule.meaning, rule.rate_limit)
        if is_transient or (http_status is not None and http_status >= 500):
            return UNKNOWN_TRANSIENT
        return UNKNOWN_PERMANENT
    if http_status is None:
        return NETWORK_ERROR
    if http_status == 429:
        return HTTP_TOO_MANY_REQUESTS
    if http_status >= 500 or is_transient:
        return SERVER_ERROR
    return UNKNOWN_PERMANENT
