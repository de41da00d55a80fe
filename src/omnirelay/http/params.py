"""Query, path and header parameters of the routes as msgspec Structs, for the OpenAPI document.

Each field is one parameter: its name (the JSON name), its schema and description. The routes read
their parameters themselves (`context.int_param`, `logs.log_filter`, ...); these Structs only
describe them, so a field left out here is a parameter the document does not show.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType, field

from omnirelay.http import patterns

Channel = Literal["FACEBOOK", "SMS"]
StatusGroupName = Literal["ACCEPTED", "PENDING", "UNDELIVERABLE", "DELIVERED", "EXPIRED", "REJECTED"]
TIME = (
    "yyyy-MM-dd'T'HH:mm:ss.SSSZ (2015-02-22T17:42:05.390+0100) or ISO-8601 with an offset; encode '+' "
    "as %2B; empty: no bound; a date outside years 1 to 9999 once in UTC is a 400"
)
# The shape of TIME (or empty); a calendar date and the range of years are checked on parsing.
TIME_PATTERN = patterns.TIME_OR_EMPTY


class ReportsQuery(Struct):
    bulkId: Annotated[str, Meta(description="Only reports of this bulk")] | UnsetType = UNSET
    messageId: Annotated[str, Meta(description="Only the report of this message")] | UnsetType = UNSET
    channel: Annotated[Channel, Meta(description="Only reports whose final step used this channel")] | (
        UnsetType
    ) = UNSET
    limit: Annotated[int, Meta(ge=1, le=1000, description="At most this many reports")] = 50


class LogsQuery(Struct):
    from_: Annotated[str, Meta(description="Sender (application key, SMS sender)")] | UnsetType = field(
        name="from", default=UNSET
    )
    to: Annotated[str, Meta(description="Destination address")] | UnsetType = UNSET
    bulkId: (
        Annotated[list[str], Meta(description="Bulk ids: repeated, or comma-separated (also `bulkid`)")]
        | UnsetType
    ) = UNSET
    messageId: (
        Annotated[list[str], Meta(description="Message ids: repeated, or comma-separated (also `messageid`)")]
        | UnsetType
    ) = UNSET
    generalStatus: Annotated[StatusGroupName, Meta(description="Status group")] | UnsetType = UNSET
    channel: Annotated[Channel, Meta(description="Channel of the final (or current) step")] | (
        UnsetType
    ) = UNSET
    sentSince: (
        Annotated[str, Meta(description=f"Sent at or after: {TIME}", pattern=TIME_PATTERN)] | UnsetType
    ) = UNSET
    sentUntil: (
        Annotated[str, Meta(description=f"Sent at or before: {TIME}", pattern=TIME_PATTERN)] | UnsetType
    ) = UNSET
    mcc: Annotated[str, Meta(description="Mobile country code (no network is known yet: matches none)")] | (
        UnsetType
    ) = UNSET
    mnc: Annotated[str, Meta(description="Mobile network code (no network is known yet: matches none)")] | (
        UnsetType
    ) = UNSET
    limit: Annotated[int, Meta(ge=1, le=1000, description="At most this many rows, newest first")] = 50


class AnalyticsQuery(Struct):
    since: (
        Annotated[
            str,
            Meta(
                description=f"Messages accepted at or after: {TIME}; absent or empty: 24 h before `until`",
                pattern=TIME_PATTERN,
            ),
        ]
        | UnsetType
    ) = UNSET
    until: (
        Annotated[
            str,
            Meta(
                description=f"Messages accepted before: {TIME}; absent or empty: now. A `since` after "
                "`until` is an empty period",
                pattern=TIME_PATTERN,
            ),
        ]
        | UnsetType
    ) = UNSET


class ScenariosQuery(Struct):
    default: Annotated[bool, Meta(description="Only the default scenario (true) or the others")] | (
        UnsetType
    ) = UNSET
    isDefault: Annotated[bool, Meta(description="Same as `default`")] | UnsetType = UNSET
    page: Annotated[int, Meta(ge=0, le=1_000_000, description="Page number, from 0")] = 0
    limit: Annotated[int, Meta(ge=1, le=1000, description="Scenarios per page")] = 100


class UsersQuery(Struct):
    limit: Annotated[int, Meta(ge=1, le=1000, description="At most this many users")] = 100
    offset: Annotated[int, Meta(ge=0, le=1_000_000_000, description="Skip this many users")] = 0


class ChallengeQuery(Struct):
    """Meta's subscription check: answered with `hub.challenge` for the right verify token."""

    mode: Literal["subscribe"] = field(name="hub.mode")
    verify_token: Annotated[str, Meta(description="The application's `verifyToken`")] = field(
        name="hub.verify_token"
    )
    challenge: Annotated[str, Meta(description="Echoed back")] = field(name="hub.challenge")


class PathParams(Struct):
    """Every path parameter of the API; each operation shows those in its path."""

    key: Annotated[str, Meta(description="Scenario or application key")]
    userKey: Annotated[str, Meta(description="User key of a Messenger user of the application")]
    applicationKey: Annotated[str, Meta(description="Application key (in the callbackUrl)")]
    name: Annotated[str, Meta(description="SMPP connector name")]
    prefix: Annotated[
        str,
        Meta(
            pattern=patterns.PREFIX, description="Number prefix of the route; `default` for the default route"
        ),
    ]
    channel: Annotated[Channel, Meta(description="Channel of the price")]
    country: Annotated[
        str,
        Meta(
            pattern="^([A-Za-z]{2}|default)$",
            description="ISO 3166 country code; `default` for the channel's default",
        ),
    ]


class IdempotencyHeaders(Struct):
    idempotency_key: (
        Annotated[
            str,
            Meta(
                max_length=200,
                description="The same key with the same body within 24 h replays the first answer "
                "(header Idempotent-Replayed: true) and creates nothing; with another body: 409",
            ),
        ]
        | UnsetType
    ) = field(name="Idempotency-Key", default=UNSET)


class SignatureHeaders(Struct):
    signature: Annotated[
        str, Meta(description="sha256=<hex HMAC-SHA256 of the raw body with the app secret>")
    ] = field(name="X-Hub-Signature-256")
