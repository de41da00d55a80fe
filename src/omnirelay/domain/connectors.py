"""SMPP connectors and SMS routes as the operator configures them (docs/channels.md#routes-and-connectors):
values and their rules.

A connector is one bind to one SMSC account. A route sends destinations starting with `prefix`
(E.164 digits, no '+') to a connector; the longest prefix wins and "" is the default route. With
one connector and no matching route, that connector takes the message (the SMS sender's rule).

Field names in `ValidationFailed` are the operator API's JSON names (`systemId`, ...).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from omnirelay.domain.errors import ValidationFailed

MAX_NAME = 64
MAX_HOST = 255
MAX_SYSTEM_ID = 15  # SMPP 3.4 C-Octet String limits
MAX_PASSWORD = 8
MAX_SYSTEM_TYPE = 12
MAX_PREFIX = 20
MAX_WINDOW = 1000
MAX_BINDS = 64  # binds of one connector across the cluster
NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_NAME = re.compile(NAME_PATTERN)


@dataclass(frozen=True, slots=True)
class SmppConnector:
    name: str
    host: str
    port: int
    system_id: str
    password: str = field(repr=False)  # needed in clear to bind; never returned or logged
    system_type: str = ""
    tls: bool = False
    throughput_per_s: float = 0.0  # 0 = unlimited
    window: int = 10
    enquire_link_s: float = 30.0
    response_timeout_s: float = 10.0
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    dest_addr_ton: int = 1
    dest_addr_npi: int = 1
    binds: int = 1  # for the whole cluster, at most one per node (docs/architecture.md#smpp-binds)

    def check(self) -> SmppConnector:
        """Return self when every field is valid, else raise `ValidationFailed` for the first problem."""
        check_name(self.name)
        if not self.host or len(self.host) > MAX_HOST or any(c.isspace() for c in self.host):
            raise ValidationFailed(field="host", problem=f"must be a host name or address (1 to {MAX_HOST})")
        if not 1 <= self.port <= 65535:
            raise ValidationFailed(field="port", problem="must be between 1 and 65535")
        _smpp_string("systemId", self.system_id, MAX_SYSTEM_ID, required=True)
        _smpp_string("password", self.password, MAX_PASSWORD, required=False)
        _smpp_string("systemType", self.system_type, MAX_SYSTEM_TYPE, required=False)
        _number("throughput", self.throughput_per_s, low=0.0)
        if not 1 <= self.binds <= MAX_BINDS:
            raise ValidationFailed(field="binds", problem=f"must be between 1 and {MAX_BINDS}")
        if not 1 <= self.window <= MAX_WINDOW:
            raise ValidationFailed(field="window", problem=f"must be between 1 and {MAX_WINDOW}")
        _number("enquireLinkS", self.enquire_link_s, low=1.0)
        _number("responseTimeoutS", self.response_timeout_s, low=0.1)
        _number("reconnectMinS", self.reconnect_min_s, low=0.01)
        _number("reconnectMaxS", self.reconnect_max_s, low=self.reconnect_min_s)
        for name, value in (("destTon", self.dest_addr_ton), ("destNpi", self.dest_addr_npi)):
            if not 0 <= value <= 255:
                raise ValidationFailed(field=name, problem="must be between 0 and 255")
        return self


@dataclass(frozen=True, slots=True)
class SmsRoute:
    """Destinations starting with `prefix` (E.164 digits, no '+'; "" = default) go to `connector`."""

    prefix: str
    connector: str


def check_name(name: str) -> str:
    if not name or len(name) > MAX_NAME or not _NAME.match(name):
        raise ValidationFailed(
            field="name",
            problem=f"must be 1 to {MAX_NAME} letters, digits, '.', '_' or '-' (not first)",
        )
    return name


def check_prefix(prefix: str) -> str:
    """A route prefix: digits only (a leading '+' is dropped), or "" / "default" for the default route."""
    value = prefix.strip().removeprefix("+")
    if value.lower() == "default":
        return ""
    if len(value) > MAX_PREFIX or not (value == "" or (value.isascii() and value.isdigit())):
        raise ValidationFailed(
            field="prefix", problem=f"must be up to {MAX_PREFIX} digits, or empty (default)"
        )
    return value


def _smpp_string(name: str, value: str, limit: int, *, required: bool) -> None:
    if required and not value:
        raise ValidationFailed(field=name, problem="is required")
    if len(value) > limit or not value.isascii() or any(not c.isprintable() for c in value):
        raise ValidationFailed(field=name, problem=f"must be at most {limit} printable ASCII characters")


def _number(name: str, value: float, *, low: float) -> None:
    if not math.isfinite(value) or value < low:
        raise ValidationFailed(field=name, problem=f"must be a number >= {low:g}")
