"""`SmppSender`: the `ChannelSender` for SMS over SMPP v3.4 (docs/channels.md#smpp).

One `SmppSession` per configured connector; a destination goes to the connector of the longest
matching route prefix (an empty prefix is the default route; with one connector and no matching
route, that connector). Text is encoded and split by `domain.sms_text` (GSM 7-bit unpacked or
UCS-2, 8-bit-ref UDH concatenation); every part is its own `submit_sm` with
`registered_delivery=1`, and all parts go out concurrently within the connector's window. The refs
returned are the SMSC's ids scoped by connector (`receipt.scoped_ref`), as receipts name them.

`submit_sm_resp` statuses (Kannel's classification, docs/channels.md#submit-statuses):

* throttling, queue full, system error, temporary app error, wrong bind state, not bound,
  timeouts and dropped connections → `ChannelUnavailable` (the dispatcher retries, spending a try
  of the message: a message answered with throttling backs off, so one the SMSC keeps throttling
  cannot keep the bind paused; the sends held back by that pause spend none, see the session);
* ESME_ROK whose body cannot be read → accepted (the SMSC has it; never resubmitted), without a
  ref for that part: a message none of whose parts has a ref cannot be matched to a receipt and
  ends at once as DELIVERED_TO_OPERATOR (2/2: the SMSC took it; no handset receipt can follow);
* ESME_RINVDSTADR → REJECTED_DESTINATION (5/52), ESME_RINVSRCADR → REJECTED_SOURCE (5/11);
* `generic_nack` and PDU-format statuses (RINVMSGLEN, RINVESMCLASS, TLV errors, bad schedule or
  expiry) → UNDELIVERABLE_REJECTED_OPERATOR (2/4) with EC_INVALID_PDU_FORMAT;
* every other status → UNDELIVERABLE_REJECTED_OPERATOR (2/4), EC_SMS_REJECTED_BY_MOBILE_OPERATOR.

Multipart outcomes: a permanent rejection of any part raises `MessageRejected` even when other
parts were accepted (they may still reach the handset as a fragment; the message fails over).
Otherwise a transient failure of any part raises `ChannelUnavailable`, and the retry resends
every part: with the at-least-once rule of the session, parts may arrive twice.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Mapping, Sequence
from datetime import timedelta

from omnirelay.channels.sms import pdu
from omnirelay.channels.sms.config import SmppConnectorConfig, SmsRoute
from omnirelay.channels.sms.receipt import normalise_ref, scoped_ref
from omnirelay.channels.sms.session import THROTTLING, SmppSession, SubmitResponse
from omnirelay.domain.errors import ChannelUnavailable, MessageRejected
from omnirelay.domain.messages import Channel, Outbound, SmsContent
from omnirelay.domain.sms_text import TextTooLong, Ton, encode_sms, sender_address
from omnirelay.domain.statuses import (
    DELIVERED_TO_OPERATOR,
    EC_INVALID_DESTINATION_ADDRESS,
    EC_INVALID_PDU_FORMAT,
    EC_INVALID_SOURCE_ADDRESS,
    EC_MSG_TEXT_TOO_LONG,
    EC_NOTSUBMITTEDTOSMPPCHANNEL,
    EC_SMS_REJECTED_BY_MOBILE_OPERATOR,
    PENDING_ENROUTE,
    REJECTED_DESTINATION,
    REJECTED_MESSAGE_TOO_LONG,
    REJECTED_ROUTE_NOT_AVAILABLE,
    REJECTED_SOURCE,
    UNDELIVERABLE_NOT_SENT,
    UNDELIVERABLE_REJECTED_OPERATOR,
)
from omnirelay.ports import Accepted, Clock, ReceiptSink, SmppConnectorState

log = logging.getLogger(__name__)

TRANSIENT = frozenset({pdu.ESME_RSYSERR, pdu.ESME_RX_T_APPN, pdu.ESME_RINVBNDSTS}) | THROTTLING
PDU_FORMAT_ERRORS = frozenset(
    {
        pdu.ESME_RINVMSGLEN,
        pdu.ESME_RINVCMDLEN,
        pdu.ESME_RINVCMDID,
        0x43,
        0x61,
        0x62,
        0xC0,
        0xC1,
        0xC2,
        0xC3,
        0xC4,
    }
)
MAX_ADDRESS_LENGTH = 20
MAX_ALPHANUMERIC_SENDER = 11
MAX_RELATIVE_VALIDITY = timedelta(days=30)


def relative_validity_period(remaining: timedelta) -> str:
    """SMPP relative time `YYMMDDhhmmss000R` for the time left (clamped to 0 .. 30 days)."""
    remaining = min(max(remaining, timedelta(0)), MAX_RELATIVE_VALIDITY)
    total_s = int(remaining.total_seconds())
    days, rest = divmod(total_s, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"0000{days:02d}{hours:02d}{minutes:02d}{seconds:02d}000R"


def submit_error(response: SubmitResponse, connector: str) -> ChannelUnavailable | MessageRejected | None:
    """The exception a `submit_sm_resp` status stands for, or None when it was accepted."""
    status = response.status
    if response.generic_nack:
        return MessageRejected(
            status=UNDELIVERABLE_REJECTED_OPERATOR,
            error=EC_INVALID_PDU_FORMAT,
            reason=f"connector {connector}: generic_nack 0x{status:02x} ({pdu.status_name(status)})",
        )
    if status == pdu.ESME_ROK:
        return None
    reason = f"connector {connector}: submit_sm_resp 0x{status:02x} ({pdu.status_name(status)})"
    if status in TRANSIENT:
        return ChannelUnavailable(reason=reason, retry_after_s=response.retry_after_s)
    if status == pdu.ESME_RINVDSTADR:
        return MessageRejected(
            status=REJECTED_DESTINATION, error=EC_INVALID_DESTINATION_ADDRESS, reason=reason
        )
    if status == pdu.ESME_RINVSRCADR:
        return MessageRejected(status=REJECTED_SOURCE, error=EC_INVALID_SOURCE_ADDRESS, reason=reason)
    if status in PDU_FORMAT_ERRORS:
        return MessageRejected(
            status=UNDELIVERABLE_REJECTED_OPERATOR, error=EC_INVALID_PDU_FORMAT, reason=reason
        )
    return MessageRejected(
        status=UNDELIVERABLE_REJECTED_OPERATOR, error=EC_SMS_REJECTED_BY_MOBILE_OPERATOR, reason=reason
    )


def _check_configuration(connectors: Sequence[SmppConnectorConfig], routes: Sequence[SmsRoute]) -> None:
    names = [c.name for c in connectors]
    if len(set(names)) != len(names):
        raise ValueError(f"connector names must be unique: {names}")
    unknown = {r.connector for r in routes} - set(names)
    if unknown:
        raise ValueError(f"routes name unknown connectors: {sorted(unknown)}")


class SmppSender:
    """Sends SMS through SMPP connectors; receipts go to `receipts` as they arrive."""

    channel: Channel = Channel.SMS

    def __init__(
        self,
        connectors: Sequence[SmppConnectorConfig],
        routes: Sequence[SmsRoute],
        receipts: ReceiptSink,
        clock: Clock,
        *,
        rng: random.Random | None = None,
        held: Mapping[str, int] | None = None,
    ) -> None:
        """`held`: the connectors this node may bind, with their binds for the cluster
        (docs/architecture.md#smpp-binds); None binds every connector (one node alone)."""
        _check_configuration(connectors, routes)
        self._held = None if held is None else dict(held)
        self._clock = clock
        self._receipts = receipts
        self._rng = rng or random.Random()  # noqa: S311 - concatenation refs and jitter
        self._sessions = {
            c.name: SmppSession(c, receipts=receipts, clock=clock, rng=self._rng) for c in connectors
        }
        self._routes = sorted(routes, key=lambda route: len(route.prefix), reverse=True)
        self._ref = self._rng.randrange(256)
        self._started = False

    async def start(self) -> None:
        """Start connecting and binding every connector in the background (returns at once)."""
        self._started = True
        for name, session in self._sessions.items():
            if self._holds(name):
                session.start()

    async def reconfigure(
        self, connectors: Sequence[SmppConnectorConfig], routes: Sequence[SmsRoute]
    ) -> None:
        """Apply a new configuration without a restart.

        Unchanged connectors keep their bind. New ones start binding; a changed one gets a new
        session and its old bind is closed once new sends go to the new one (a submit still in
        flight on the old bind that loses its answer raises `ChannelUnavailable` and is retried);
        removed ones are closed. Routes are swapped at once.
        """
        _check_configuration(connectors, routes)
        old = self._sessions
        sessions: dict[str, SmppSession] = {}
        fresh: list[SmppSession] = []
        for config in connectors:
            current = old.get(config.name)
            if current is not None and current.config == config:
                sessions[config.name] = current
            else:
                session = SmppSession(config, receipts=self._receipts, clock=self._clock, rng=self._rng)
                session.scale(self._share_of(config.name))
                sessions[config.name] = session
                fresh.append(session)
        retired = [s for name, s in old.items() if sessions.get(name) is not s]
        self._sessions = sessions
        self._routes = sorted(routes, key=lambda route: len(route.prefix), reverse=True)
        if self._started:
            for session in fresh:
                if self._holds(session.name):
                    session.start()
        await asyncio.gather(*(s.close() for s in retired))

    def _share_of(self, name: str) -> float:
        """The part of a connector's throughput this node's bind sends at: 1/binds."""
        return 1.0 / self._held[name] if self._held is not None and name in self._held else 1.0

    def _holds(self, name: str) -> bool:
        return self._held is None or name in self._held

    async def hold(self, held: Mapping[str, int]) -> None:
        """Bind exactly these connectors (this node's bind slots), each at its share of the
        connector's throughput: 1/binds. The others are unbound; their messages are another node's."""
        self._held = dict(held)
        closing = []
        for name, session in self._sessions.items():
            if name in held:
                session.scale(self._share_of(name))
                if self._started and not session.running:
                    session.start()
            elif session.running:
                closing.append(session.close())
        await asyncio.gather(*closing)

    async def wait_bound(self, timeout_s: float) -> bool:
        """True when every connector is bound within `timeout_s`."""
        results = await asyncio.gather(*(s.wait_bound(timeout_s) for s in self._sessions.values()))
        return all(results)

    async def stop(self) -> None:
        """Unbind and close every connector."""
        await asyncio.gather(*(s.close() for s in self._sessions.values()))

    def bound(self) -> dict[str, bool]:
        """Readiness: connector name → bound, of the connectors this node binds."""
        return {name: session.bound for name, session in self._sessions.items() if self._holds(name)}

    def binds_any(self) -> bool:
        """Whether this node binds at least one connector (else it leaves SMS to other nodes)."""
        return self._held is None or bool(self._held)

    def states(self) -> list[SmppConnectorState]:
        """Every connector's session now (the console's channels page)."""
        return [
            SmppConnectorState(
                name=name,
                host=s.config.host,
                port=s.config.port,
                bound=s.bound,
                binds_attempted=s.binds_attempted,
                window=s.config.window,
                window_in_use=s.window_in_use,
                throughput_per_s=s.config.throughput_per_s,
                paused=s.paused,
                last_error=s.last_error[1] if s.last_error is not None else None,
                last_error_at=s.last_error[0] if s.last_error is not None else None,
            )
            for name, s in self._sessions.items()
        ]

    def session(self, name: str) -> SmppSession:
        return self._sessions[name]

    def connector_for(self, destination: str) -> SmppSession | None:
        for route in self._routes:
            if destination.startswith(route.prefix):
                return self._sessions[route.connector]
        if len(self._sessions) == 1:
            return next(iter(self._sessions.values()))
        return None

    def _next_ref(self) -> int:
        self._ref = (self._ref + 1) & 0xFF
        return self._ref

    async def send(self, outbound: Outbound) -> Accepted:
        content = outbound.content
        if outbound.channel is not Channel.SMS or not isinstance(content, SmsContent):
            raise MessageRejected(
                status=UNDELIVERABLE_NOT_SENT,
                error=EC_NOTSUBMITTEDTOSMPPCHANNEL,
                reason="the SMS sender only sends SMS content",
            )
        destination = outbound.to.strip().removeprefix("+")
        if not (destination.isascii() and destination.isdigit() and len(destination) <= MAX_ADDRESS_LENGTH):
            raise MessageRejected(
                status=REJECTED_DESTINATION,
                error=EC_INVALID_DESTINATION_ADDRESS,
                reason=f"not an E.164 number: {outbound.to!r}",
            )
        source = sender_address(outbound.sender)
        limit = MAX_ALPHANUMERIC_SENDER if source.ton is Ton.ALPHANUMERIC else MAX_ADDRESS_LENGTH
        address = source.address
        # printable: a NUL would end the C-string early, and a control character is no sender id
        if not address or not address.isascii() or not address.isprintable() or len(address) > limit:
            raise MessageRejected(
                status=REJECTED_SOURCE,
                error=EC_INVALID_SOURCE_ADDRESS,
                reason=f"invalid sender {outbound.sender!r}",
            )
        session = self.connector_for(destination)
        if session is None:
            raise MessageRejected(
                status=REJECTED_ROUTE_NOT_AVAILABLE,
                error=EC_NOTSUBMITTEDTOSMPPCHANNEL,
                reason=f"no SMS route for {destination}",
            )
        if not self._holds(session.name):
            # another node holds its binds: the message waits for one of them, its tries untouched
            raise ChannelUnavailable(
                reason=f"connector {session.name} is bound by another node", retry_after_s=0.5, paused=True
            )
        if not session.bound:
            raise ChannelUnavailable(reason=f"connector {session.name} not bound")
        try:
            encoding = encode_sms(content.text, ref=self._next_ref())
        except TextTooLong as exc:
            raise MessageRejected(
                status=REJECTED_MESSAGE_TOO_LONG, error=EC_MSG_TEXT_TOO_LONG, reason=str(exc)
            ) from exc

        config = session.config
        validity_period = relative_validity_period(outbound.expires_at - self._clock.now())
        builders = [
            functools.partial(
                pdu.submit_sm,
                source_addr=source.address,
                source_addr_ton=int(source.ton),
                source_addr_npi=int(source.npi),
                destination_addr=destination,
                dest_addr_ton=config.dest_addr_ton,
                dest_addr_npi=config.dest_addr_npi,
                esm_class=pdu.ESM_CLASS_UDHI if encoding.udhi else 0,
                data_coding=encoding.data_coding,
                short_message=part,
                registered_delivery=1,
                validity_period=validity_period,
            )
            for part in encoding.parts
        ]
        if len(builders) == 1:
            results: list[SubmitResponse | BaseException] = [await session.submit(builders[0])]
        else:
            results = list(
                await asyncio.gather(*(session.submit(b) for b in builders), return_exceptions=True)
            )

        refs, unreadable = _accepted_parts(results, session.name, outbound.message_id)
        if unreadable and not refs:
            # accepted, and no receipt can ever be matched: resubmitting would send it again
            return Accepted(refs=(), status=DELIVERED_TO_OPERATOR, message_count=encoding.message_count)
        return Accepted(refs=tuple(refs), status=PENDING_ENROUTE, message_count=encoding.message_count)


def _accepted_parts(
    results: Sequence[SubmitResponse | BaseException], connector: str, message_id: str
) -> tuple[list[str], int]:
    """The refs of the parts accepted and how many were accepted without a readable id; raises the
    rejection, else the unavailability, of any part."""
    refs: list[str] = []
    unreadable = 0
    rejection: MessageRejected | None = None
    unavailable: ChannelUnavailable | None = None
    for result in results:
        if isinstance(result, BaseException):
            if not isinstance(result, ChannelUnavailable):
                raise result
            unavailable = unavailable or result
            continue
        error = submit_error(result, connector)
        if isinstance(error, MessageRejected):
            rejection = rejection or error
        elif isinstance(error, ChannelUnavailable):
            unavailable = unavailable or error
        elif result.unreadable is not None:
            unreadable += 1
        else:
            if not result.message_id:
                log.warning("connector %s: submit_sm_resp without message_id", connector)
            refs.append(scoped_ref(connector, normalise_ref(result.message_id)))
    if rejection is not None:
        if refs:
            log.warning(
                "message %s: %d of %d parts accepted, another rejected (%s); reporting the rejection",
                message_id,
                len(refs),
                len(results),
                rejection.reason,
            )
        raise rejection
    if unavailable is not None:
        raise unavailable
    return refs, unreadable
