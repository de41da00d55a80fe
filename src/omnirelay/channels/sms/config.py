"""SMPP connector settings and SMS routes, as operators configure them
(docs/channels.md#routes-and-connectors).

A connector is one bind (one TCP connection, `bind_transceiver`) to one SMSC account. Routes pick
a connector by the longest matching destination prefix; an empty prefix is the default route.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omnirelay.domain.connectors import SmppConnector, SmsRoute

MAX_SYSTEM_ID = 15
MAX_PASSWORD = 8
MAX_SYSTEM_TYPE = 12


@dataclass(frozen=True, slots=True)
class SmppConnectorConfig:
    name: str
    host: str
    port: int
    system_id: str
    password: str = field(repr=False)  # never logged
    system_type: str = ""
    tls: bool = False
    throughput_per_s: float = 0.0  # submit_sm per second; 0 = unlimited
    window: int = 10  # submit_sm outstanding without a response
    enquire_link_s: float = 30.0  # keep-alive after this much idle time
    response_timeout_s: float = 10.0  # for any response (bind, submit, enquire_link, unbind)
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    dest_addr_ton: int = 1
    dest_addr_npi: int = 1
    throttle_pause_s: float = 1.0  # pause after ESME_RTHROTTLED / ESME_RMSGQFUL (Kannel sleeps 1 s)

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"connector {self.name}: window must be >= 1")
        if self.throughput_per_s < 0:
            raise ValueError(f"connector {self.name}: throughput_per_s must be >= 0")
        if not 0 < self.reconnect_min_s <= self.reconnect_max_s:
            raise ValueError(f"connector {self.name}: need 0 < reconnect_min_s <= reconnect_max_s")
        if self.response_timeout_s <= 0 or self.enquire_link_s <= 0:
            raise ValueError(f"connector {self.name}: timeouts must be > 0")
        # SMPP 3.4 field limits: smpplib would silently truncate longer values, and the bind fail.
        if len(self.system_id) > MAX_SYSTEM_ID or len(self.password) > MAX_PASSWORD:
            raise ValueError(
                f"connector {self.name}: system_id is at most {MAX_SYSTEM_ID} and password "
                f"at most {MAX_PASSWORD} characters in SMPP 3.4"
            )
        if len(self.system_type) > MAX_SYSTEM_TYPE:
            raise ValueError(f"connector {self.name}: system_type is at most {MAX_SYSTEM_TYPE} characters")


def connector_config(connector: SmppConnector) -> SmppConnectorConfig:
    """The session settings for a connector as the operator stored it."""
    return SmppConnectorConfig(
        name=connector.name,
        host=connector.host,
        port=connector.port,
        system_id=connector.system_id,
        password=connector.password,
        system_type=connector.system_type,
        tls=connector.tls,
        throughput_per_s=connector.throughput_per_s,
        window=connector.window,
        enquire_link_s=connector.enquire_link_s,
        response_timeout_s=connector.response_timeout_s,
        reconnect_min_s=connector.reconnect_min_s,
        reconnect_max_s=connector.reconnect_max_s,
        dest_addr_ton=connector.dest_addr_ton,
        dest_addr_npi=connector.dest_addr_npi,
    )


__all__ = ["SmppConnectorConfig", "SmsRoute", "connector_config"]
