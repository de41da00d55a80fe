"""The one error tree of omnirelay.

    OmnirelayError
    ├── RequestError                 a client's request cannot be served (mapped to HTTP by http/errors.py)
    │   ├── ValidationFailed         400: a field has a problem (field, problem)
    │   ├── Unauthorized             401: missing or invalid credentials
    │   ├── Forbidden                403
    │   ├── NotFound                 404: the thing does not exist in this account
    │   ├── Conflict                 409: e.g. an Idempotency-Key reused with another body
    │   └── RateLimited              429
    ├── StorageUnavailable           503: refuse rather than accept and lose
    │   └── StorageBusy              503 with Retry-After: storage is slower than intake; try again soon
    └── ChannelError                 raised only by channel adapters
        ├── ChannelUnavailable       retryable: timeouts, 5xx, throttling, not bound
        └── MessageRejected          permanent for this message: carries the mapped Infobip status and error

Each class's docstring is its default message; fields are keyword-only and named.
"""

from __future__ import annotations

from omnirelay.domain.statuses import ErrorCode, Status


class OmnirelayError(Exception):
    """Something went wrong."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        super().__init__(self.message)


class RequestError(OmnirelayError):
    """Bad request."""


class ValidationFailed(RequestError):
    """Bad request."""

    def __init__(self, *, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)


class Unauthorized(RequestError):
    """Invalid login details"""


class Forbidden(RequestError):
    """Forbidden"""


class NotFound(RequestError):
    """Not found"""


class Conflict(RequestError):
    """Conflict"""


class RateLimited(RequestError):
    """Too many requests"""

    def __init__(self, *, retry_after_s: float = 1.0) -> None:
        self.retry_after_s = retry_after_s
        super().__init__()


class StorageUnavailable(OmnirelayError):
    """Storage is unavailable, request not accepted"""


class StorageBusy(StorageUnavailable):
    """Storage is busy, request not accepted; retry later"""

    def __init__(self, *, retry_after_s: float = 1.0) -> None:
        self.retry_after_s = retry_after_s
        super().__init__()


class ChannelError(OmnirelayError):
    """The channel failed."""


class ChannelUnavailable(ChannelError):
    """The channel is temporarily unavailable; the send may be retried."""

    def __init__(self, *, reason: str, retry_after_s: float | None = None, paused: bool = False) -> None:
        self.reason = reason
        self.retry_after_s = retry_after_s
        # True when the sender as a whole is paused (an SMPP bind after throttling): the message
        # did nothing wrong, so the retry at `retry_after_s` does not spend one of its tries.
        self.paused = paused
        super().__init__(reason)


class MessageRejected(ChannelError):
    """The channel permanently refused this message."""

    def __init__(self, *, status: Status, error: ErrorCode, reason: str, pause_channel: bool = False) -> None:
        self.status = status
        self.error = error
        self.reason = reason
        # True for channel-wide problems (bad token, missing permission): the adapter pauses
        # the sender (page or bind) and alerts; the message itself fails over like any rejection.
        self.pause_channel = pause_channel
        super().__init__(reason)
