"""Infobip status and error tables (docs/api.md#statuses-and-errors), as immutable values.

A `Status` is what a send response, report or log row carries in `status`; an `ErrorCode` is
what a report carries in `error`. Only the entries omnirelay emits are named constants; the
full tables are `STATUSES` and `ERRORS`, keyed by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class StatusGroup(IntEnum):
    ACCEPTED = 0
    PENDING = 1
    UNDELIVERABLE = 2
    DELIVERED = 3
    EXPIRED = 4
    REJECTED = 5


@dataclass(frozen=True, slots=True)
class Status:
    group: StatusGroup
    id: int
    name: str
    description: str

    @property
    def is_final(self) -> bool:
        return self.group not in (StatusGroup.ACCEPTED, StatusGroup.PENDING)

    @property
    def is_success(self) -> bool:
        return self.group is StatusGroup.DELIVERED


_ERROR_GROUP_NAMES = {0: "OK", 1: "HANDSET_ERRORS", 2: "USER_ERRORS", 3: "OPERATOR_ERRORS"}


@dataclass(frozen=True, slots=True)
class ErrorCode:
    group_id: int
    id: int
    name: str
    description: str
    permanent: bool

    @property
    def group_name(self) -> str:
        return _ERROR_GROUP_NAMES.get(self.group_id, "HANDSET_ERRORS")


def _s(group: StatusGroup, id_: int, name: str, description: str) -> Status:
    return Status(group, id_, name, description)


G = StatusGroup
MESSAGE_ACCEPTED = _s(G.ACCEPTED, 0, "MESSAGE_ACCEPTED", "Message accepted")
PENDING_WAITING_DELIVERY = _s(
    G.PENDING, 3, "PENDING_WAITING_DELIVERY", "Message sent, waiting for delivery report"
)
PENDING_ENROUTE = _s(G.PENDING, 7, "PENDING_ENROUTE", "Message sent to next instance")
PENDING_ACCEPTED = _s(G.PENDING, 26, "PENDING_ACCEPTED", "Message accepted, pending for delivery")
UNDELIVERABLE_REJECTED_OPERATOR = _s(
    G.UNDELIVERABLE, 4, "UNDELIVERABLE_REJECTED_OPERATOR", "Message rejected by operator"
)
UNDELIVERABLE_NOT_DELIVERED = _s(
    G.UNDELIVERABLE, 9, "UNDELIVERABLE_NOT_DELIVERED", "Message sent not delivered"
)
UNDELIVERABLE_NOT_SENT = _s(G.UNDELIVERABLE, 31, "UNDELIVERABLE_NOT_SENT", "Message not sent")
DELIVERED_TO_OPERATOR = _s(G.DELIVERED, 2, "DELIVERED_TO_OPERATOR", "Message delivered to operator")
DELIVERED_TO_HANDSET = _s(G.DELIVERED, 5, "DELIVERED_TO_HANDSET", "Message delivered to handset")
EXPIRED_EXPIRED = _s(G.EXPIRED, 15, "EXPIRED_EXPIRED", "Message expired")
EXPIRED_DLR_UNKNOWN = _s(G.EXPIRED, 29, "EXPIRED_DLR_UNKNOWN", "Message expired, delivery status unknown")
REJECTED_NETWORK = _s(G.REJECTED, 6, "REJECTED_NETWORK", "Network is forbidden")
REJECTED_SOURCE = _s(G.REJECTED, 11, "REJECTED_SOURCE", "Invalid source address")
REJECTED_DESTINATION_NOT_REGISTERED = _s(
    G.REJECTED, 18, "REJECTED_DESTINATION_NOT_REGISTERED", "Destination not registered"
)
REJECTED_ROUTE_NOT_AVAILABLE = _s(G.REJECTED, 19, "REJECTED_ROUTE_NOT_AVAILABLE", "Route not available")
REJECTED_SYSTEM_ERROR = _s(G.REJECTED, 21, "REJECTED_SYSTEM_ERROR", "System error")
REJECTED_DUPLICATE_MESSAGE_ID = _s(G.REJECTED, 23, "REJECTED_DUPLICATE_MESSAGE_ID", "Duplicate message id")
REJECTED_MESSAGE_TOO_LONG = _s(G.REJECTED, 25, "REJECTED_MESSAGE_TOO_LONG", "Message too long")
MISSING_TO = _s(G.REJECTED, 51, "MISSING_TO", "Missing destination")
REJECTED_DESTINATION = _s(G.REJECTED, 52, "REJECTED_DESTINATION", "Invalid destination address")

STATUSES: dict[int, Status] = {
    s.id: s
    for s in (
        MESSAGE_ACCEPTED,
        PENDING_WAITING_DELIVERY,
        PENDING_ENROUTE,
        PENDING_ACCEPTED,
        UNDELIVERABLE_REJECTED_OPERATOR,
        UNDELIVERABLE_NOT_DELIVERED,
        UNDELIVERABLE_NOT_SENT,
        DELIVERED_TO_OPERATOR,
        DELIVERED_TO_HANDSET,
        EXPIRED_EXPIRED,
        EXPIRED_DLR_UNKNOWN,
        REJECTED_NETWORK,
        REJECTED_SOURCE,
        REJECTED_DESTINATION_NOT_REGISTERED,
        REJECTED_ROUTE_NOT_AVAILABLE,
        REJECTED_SYSTEM_ERROR,
        REJECTED_DUPLICATE_MESSAGE_ID,
        REJECTED_MESSAGE_TOO_LONG,
        MISSING_TO,
        REJECTED_DESTINATION,
    )
}


def _e(group_id: int, id_: int, name: str, permanent: bool, description: str = "") -> ErrorCode:
    if not description:
        description = name.removeprefix("EC_").replace("_", " ").title()
    return ErrorCode(group_id, id_, name, description, permanent)


NO_ERROR = _e(0, 0, "NO_ERROR", False, "No Error")
EC_UNKNOWN_SUBSCRIBER = _e(1, 1, "EC_UNKNOWN_SUBSCRIBER", True, "Unknown Subscriber")
EC_ABSENT_SUBSCRIBER_SM = _e(1, 6, "EC_ABSENT_SUBSCRIBER_SM", False, "Absent Subscriber")
EC_ILLEGAL_SUBSCRIBER = _e(1, 9, "EC_ILLEGAL_SUBSCRIBER", True)
EC_CALL_BARRED = _e(1, 13, "EC_CALL_BARRED", False)
EC_SYSTEM_FAILURE = _e(1, 34, "EC_SYSTEM_FAILURE", False)
EC_UNKNOWN_ERROR = _e(1, 255, "EC_UNKNOWN_ERROR", False)
EC_INVALID_DESTINATION_ADDRESS = _e(2, 351, "EC_INVALID_DESTINATION_ADDRESS", False)
EC_MSG_TEXT_TOO_LONG = _e(2, 355, "EC_MSG_TEXT_TOO_LONG", True)
EC_INVALID_SOURCE_ADDRESS = _e(2, 368, "EC_INVALID_SOURCE_ADDRESS", True)
EC_INVALID_PDU_FORMAT = _e(2, 4096, "EC_INVALID_PDU_FORMAT", True)
EC_VALIDITY_EXPIRED = _e(2, 4101, "EC_VALIDITY_EXPIRED", True)
EC_NOTSUBMITTEDTOSMPPCHANNEL = _e(2, 4102, "EC_NOTSUBMITTEDTOSMPPCHANNEL", True)
EC_SMS_REJECTED_BY_MOBILE_OPERATOR = _e(3, 632, "EC_SMS_REJECTED_BY_MOBILE_OPERATOR", True)
EC_FAILED_MESSAGE_DELIVERY = _e(3, 810, "EC_FAILED_MESSAGE_DELIVERY", True)
EC_MESSAGE_EXPIRED = _e(3, 811, "EC_MESSAGE_EXPIRED", True)
EC_MESSAGE_SUBMITTED_NOT_ACKED = _e(3, 815, "EC_MESSAGE_SUBMITTED_NOT_ACKED", True)
EC_TIME_OUT = _e(3, 2048, "EC_TIME_OUT", False)
# Chat-app errors (docs/api.md#error-table), used for FACEBOOK steps.
EC_UNKNOWN_APPLICATION = _e(1, 7001, "EC_UNKNOWN_APPLICATION", True)
EC_UNKNOWN_USER = _e(1, 7002, "EC_UNKNOWN_USER", True)
EC_BLOCKED_USER = _e(1, 7003, "EC_BLOCKED_USER", True)
EC_UNAUTHORIZED_ACCESS = _e(1, 7004, "EC_UNAUTHORIZED_ACCESS", True)
EC_FORBIDDEN_ACCESS = _e(1, 7005, "EC_FORBIDDEN_ACCESS", True)
EC_BAD_REQUEST = _e(1, 7006, "EC_BAD_REQUEST", True)
EC_NO_SESSION = _e(1, 7010, "EC_NO_SESSION", True)
EC_ACCOUNT_ISSUE = _e(1, 7011, "EC_ACCOUNT_ISSUE", True)
EC_MEDIA_UPLOAD_ERROR = _e(1, 7014, "EC_MEDIA_UPLOAD_ERROR", False)
EC_TOO_MANY_REQUESTS = _e(1, 7017, "EC_TOO_MANY_REQUESTS", False)
EC_MEDIA_UNSUPPORTED = _e(1, 7022, "EC_MEDIA_UNSUPPORTED", True)
EC_PHONE_MATCHING_DISABLED = _e(1, 7102, "EC_PHONE_MATCHING_DISABLED", True)
EC_PROVIDER_INTERNAL_ERROR = _e(2, 7050, "EC_PROVIDER_INTERNAL_ERROR", False)
EC_PROVIDER_TIMEOUT = _e(2, 7051, "EC_PROVIDER_TIMEOUT", False)
# omnirelay's own: the gateway failed on this message after claiming it again and again (a message
# it could send but not record); parked instead of being sent again every lease
EC_PROCESSING_FAILED = _e(2, 7052, "EC_PROCESSING_FAILED", True, "Message could not be processed")
# omnirelay's own: the step's success criterion cannot be reported for this address (SEEN on a
# Messenger send by phone number, which Meta never confirms): not sent, the flow moves on
EC_CRITERION_NOT_REPORTED = _e(
    2, 7053, "EC_CRITERION_NOT_REPORTED", True, "Success criterion cannot be reported for this destination"
)

ERRORS: dict[int, ErrorCode] = {
    e.id: e
    for e in (
        NO_ERROR,
        EC_UNKNOWN_SUBSCRIBER,
        EC_ABSENT_SUBSCRIBER_SM,
        EC_ILLEGAL_SUBSCRIBER,
        EC_CALL_BARRED,
        EC_SYSTEM_FAILURE,
        EC_UNKNOWN_ERROR,
        EC_INVALID_DESTINATION_ADDRESS,
        EC_MSG_TEXT_TOO_LONG,
        EC_INVALID_SOURCE_ADDRESS,
        EC_INVALID_PDU_FORMAT,
        EC_VALIDITY_EXPIRED,
        EC_NOTSUBMITTEDTOSMPPCHANNEL,
        EC_SMS_REJECTED_BY_MOBILE_OPERATOR,
        EC_FAILED_MESSAGE_DELIVERY,
        EC_MESSAGE_EXPIRED,
        EC_MESSAGE_SUBMITTED_NOT_ACKED,
        EC_TIME_OUT,
        EC_UNKNOWN_APPLICATION,
        EC_UNKNOWN_USER,
        EC_BLOCKED_USER,
        EC_UNAUTHORIZED_ACCESS,
        EC_FORBIDDEN_ACCESS,
        EC_BAD_REQUEST,
        EC_NO_SESSION,
        EC_ACCOUNT_ISSUE,
        EC_MEDIA_UPLOAD_ERROR,
        EC_TOO_MANY_REQUESTS,
        EC_MEDIA_UNSUPPORTED,
        EC_PHONE_MATCHING_DISABLED,
        EC_PROVIDER_INTERNAL_ERROR,
        EC_PROVIDER_TIMEOUT,
        EC_PROCESSING_FAILED,
        EC_CRITERION_NOT_REPORTED,
    )
}


def error_for_code(code: int) -> ErrorCode:
    """The error with this id, or an opaque permanent-unknown entry (an SMSC's own `err` code)."""
    known = ERRORS.get(code)
    if known is not None:
        return known
    return ErrorCode(1, code, "EC_UNKNOWN_ERROR", "Unknown error", False)
