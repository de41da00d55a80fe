"""One SMPP v3.4 ESME session per connector: our own asyncio session on top of the PDU codec.

Shape (docs/channels.md#session-and-binds): one TCP connection bound as transceiver, so MT submits and
delivery
receipts share it. A supervisor task connects, binds and, when the link ends, reconnects with
jittered exponential backoff. A refused bind (wrong password or system id) is a configuration
error: logged at ERROR and retried only at `reconnect_max_s`, never in a hot loop.

Per link: a reader task reads whole frames (`command_length` first) and resolves the futures of
outstanding requests by `sequence_number` (responses may come out of order); a keep-alive task
sends `enquire_link` after `enquire_link_s` without incoming traffic and drops the link when it is
not answered; a receipts task turns `deliver_sm` into `Receipt`s.

Submits are pipelined: `asyncio.Semaphore(window)` lets up to `window` `submit_sm` be outstanding
at once. A PDU is written to the transport without awaiting `drain()`: the window bounds how much
can be buffered, and the hot path stays a write and a future.

**A missing `submit_sm_resp` means the outcome is unknown**: the SMSC may have taken the message
and only the answer was lost. We raise `ChannelUnavailable` and the dispatcher retries, so SMS
delivery is *at least once*: a timeout, or a connection that drops while submits are in flight,
can send the same SMS twice. The alternative (mark failed) would fail over messages that were in
fact sent. Every in-flight submit of a dropped link fails with `ChannelUnavailable` at once.

An `ESME_ROK` answer whose body cannot be read is *not* an unknown outcome: the SMSC took the
message. The id is read leniently when it can be (a missing NUL), else the part is accepted
without an id (`SubmitResponse.message_id` empty) and never resubmitted.

Throttling answers (ESME_RTHROTTLED 0x58, ESME_RMSGQFUL 0x14) pause new submits on this connector
for `throttle_pause_s` (Kannel sleeps 1 s); sends meanwhile get `ChannelUnavailable` with
`retry_after_s` and `paused`: a pause of the bind, not a failed try of each message behind it
(the dispatcher retries them when the pause ends, their tries untouched). `throughput_per_s` is a
token bucket in front of the window.

SMSC message ids are unique only among one SMSC's live messages (many count from 1 again after a
restart). The session remembers, for the ids it was given and has no final receipt for yet, when
it submitted them (`ISSUED_KEPT` at most); a receipt for such an id carries that time as
`Receipt.sent_after`, so that it is never matched to an earlier send that got the same id.

Receipts (`deliver_sm`) are handled in batches by `delivery.take_deliveries`: stored through the
`ReceiptSink` first, acknowledged after; see that module for the error rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from omnirelay.channels.sms import pdu
from omnirelay.channels.sms.config import SmppConnectorConfig
from omnirelay.channels.sms.delivery import take_deliveries
from omnirelay.channels.sms.receipt import normalise_ref
from omnirelay.channels.sms.throughput import TokenBucket
from omnirelay.domain.errors import ChannelUnavailable
from omnirelay.ports import Clock, ReceiptSink

log = logging.getLogger(__name__)

CREDENTIAL_ERRORS = frozenset({pdu.ESME_RINVPASWD, pdu.ESME_RINVSYSID})
THROTTLING = frozenset({pdu.ESME_RTHROTTLED, pdu.ESME_RMSGQFUL})
NACKS_BEFORE_RECONNECT = 3
RECEIPT_BATCH = 512  # deliver_sm handed to the sink in one record() call at most
UNBIND_WAIT_MAX_S = 1.0
ISSUED_KEPT = 100_000  # ids awaiting their final receipt remembered per connector (oldest forgotten)
MAX_MESSAGE_ID = 65  # SMPP v3.4 §4.4.2: message_id is a C-Octet String of up to 65 octets

PduBuilder = Callable[[int], bytes]
Response = tuple[pdu.Header, bytes]


class BindRefused(Exception):
    """The SMSC answered the bind with an error status."""

    def __init__(self, *, status: int) -> None:
        self.status = status
        super().__init__(f"bind refused with command_status 0x{status:02x}")


@dataclass(frozen=True, slots=True)
class SubmitResponse:
    """The SMSC's answer to one `submit_sm`: its status and (on ESME_ROK) the raw message id."""

    status: int
    message_id: str = ""
    generic_nack: bool = False
    retry_after_s: float | None = None  # set for throttling answers
    unreadable: str | None = None  # ESME_ROK with a body we could not read: why (no message id)


class _Link:
    """One TCP connection and its bind."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, window: int) -> None:
        self.reader = reader
        self.writer = writer
        self.pending: dict[int, asyncio.Future[Response]] = {}
        self.submitted: dict[int, datetime] = {}  # submit_sm sequence → when it was written
        self.window = asyncio.Semaphore(window)
        # each deliver_sm with the requests outstanding when it was read (see `_receipt_loop`)
        self.deliveries: asyncio.Queue[tuple[bytes, list[asyncio.Future[Response]]]] = asyncio.Queue()
        self.tasks: list[asyncio.Task[None]] = []
        self.finished = asyncio.Event()
        self.bound = False
        self.closed = False
        self.nacks_in_row = 0
        self.last_rx_s = asyncio.get_running_loop().time()

    def write(self, frame: bytes) -> None:
        if not self.closed:
            self.writer.write(frame)


class SmppSession:
    """A connector's session: connect, bind, keep alive, submit, take receipts, reconnect."""

    def __init__(
        self,
        config: SmppConnectorConfig,
        *,
        receipts: ReceiptSink,
        clock: Clock,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._receipts = receipts
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._sequences = pdu.SequenceNumbers()
        self._bucket = (
            TokenBucket(rate_per_s=config.throughput_per_s) if config.throughput_per_s > 0 else None
        )
        self._link: _Link | None = None
        self._bound_event = asyncio.Event()
        self._stopping = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._paused_until_s = 0.0
        self.binds_attempted = 0
        self.last_error: tuple[datetime, str] | None = None  # the latest problem, for the console
        # normalised SMSC id → when we submitted the message that got it (insertion order: oldest first)
        self.issued: dict[str, datetime] = {}

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def bound(self) -> bool:
        link = self._link
        return link is not None and link.bound and not link.closed

    def scale(self, share: float) -> None:
        """Send at `share` of the connector's throughput: this bind's part of the cluster's rate,
        1/binds (docs/architecture.md#smpp-binds)."""
        if self._bucket is not None:
            self._bucket.set_rate(self.config.throughput_per_s * share)

    @property
    def running(self) -> bool:
        """Started and not closed: binding, bound, or reconnecting."""
        return self._supervisor is not None

    @property
    def window_in_use(self) -> int:
        """submit_sm written and not answered yet."""
        link = self._link
        return len(link.submitted) if link is not None and not link.closed else 0

    @property
    def paused(self) -> bool:
        return self._paused_until_s > asyncio.get_running_loop().time()

    def _note(self, problem: str) -> None:
        self.last_error = (self._clock.now(), problem)

    def start(self) -> None:
        """Connect and bind in the background; reconnects until `close()` (and again after `start`)."""
        if self._supervisor is None:
            self._stopping.clear()
            self._supervisor = asyncio.create_task(self._supervise(), name=f"smpp-{self.name}")

    async def wait_bound(self, timeout_s: float) -> bool:
        """True once bound, False if not bound within `timeout_s`."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._bound_event.wait()
        except TimeoutError:
            return False
        return self.bound

    async def close(self) -> None:
        """Unbind (waiting briefly for `unbind_resp`), close the connection, stop reconnecting."""
        self._stopping.set()
        link = self._link
        if link is not None and link.bound and not link.closed:
            with contextlib.suppress(TimeoutError, ChannelUnavailable):
                await self._request(link, pdu.unbind, min(UNBIND_WAIT_MAX_S, self.config.response_timeout_s))
        if link is not None:
            self._abort(link, "session closing")
            await self._wait_stopped(link)
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
            self._supervisor = None

    # -- submit ---------------------------------------------------------------------------------

    async def submit(self, build: PduBuilder) -> SubmitResponse:
        """Send one `submit_sm` (built for the sequence number we allocate) and await its answer.

        Raises `ChannelUnavailable` when not bound, paused, over the rate, or when the answer does
        not come (timeout or dropped connection: the outcome is unknown).
        """
        link = self._usable_link()
        loop = asyncio.get_running_loop()
        timeout_s = self.config.response_timeout_s
        if self._bucket is not None:
            wait_s = self._bucket.delay_s(loop.time())
            if wait_s > timeout_s:
                raise ChannelUnavailable(
                    reason=f"connector {self.name}: over its {self._bucket.rate_per_s:g} msg/s throughput",
                    retry_after_s=wait_s,
                )
            wait_s = self._bucket.reserve(loop.time())
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            link = self._usable_link()
        try:
            async with asyncio.timeout(timeout_s):
                await link.window.acquire()
        except TimeoutError:
            raise ChannelUnavailable(
                reason=f"connector {self.name}: window of {self.config.window} full for {timeout_s:g} s"
            ) from None
        try:
            if link.closed:
                raise ChannelUnavailable(reason=f"connector {self.name}: connection lost before sending")
            sequence = self._sequences.next()
            request = build(sequence)
            future: asyncio.Future[Response] = loop.create_future()
            link.pending[sequence] = future
            link.submitted[sequence] = self._clock.now()
            link.write(request)
            try:
                async with asyncio.timeout(timeout_s):
                    header, frame = await future
            except TimeoutError:
                log.warning(
                    "connector %s: no submit_sm_resp for sequence %d within %g s; outcome unknown",
                    self.name,
                    sequence,
                    timeout_s,
                )
                raise ChannelUnavailable(
                    reason=f"connector {self.name}: no submit_sm_resp in {timeout_s:g} s (outcome unknown)"
                ) from None
            finally:
                link.pending.pop(sequence, None)
                link.submitted.pop(sequence, None)
        finally:
            link.window.release()
        return self._submit_response(link, header, frame)

    def _remember(self, link: _Link, header: pdu.Header, frame: bytes) -> None:
        """In the reader, as a `submit_sm_resp` comes: the id it gives and when its submit was
        written go to `issued` before any receipt read after it is handled."""
        submitted_at = link.submitted.pop(header.sequence, None)
        if submitted_at is None or header.status != pdu.ESME_ROK:
            return
        message_id, _ = _message_id(frame)
        if not message_id:
            return
        ref = normalise_ref(message_id)
        issued = self.issued
        issued.pop(ref, None)  # a reused id moves to the newest end
        issued[ref] = submitted_at
        if len(issued) > ISSUED_KEPT:
            del issued[next(iter(issued))]

    def _usable_link(self) -> _Link:
        link = self._link
        if link is None or not link.bound or link.closed:
            raise ChannelUnavailable(reason=f"connector {self.name} not bound")
        remaining_s = self._paused_until_s - asyncio.get_running_loop().time()
        if remaining_s > 0:
            raise ChannelUnavailable(
                reason=f"connector {self.name} paused after SMSC throttling",
                retry_after_s=remaining_s,
                paused=True,
            )
        return link

    def _submit_response(self, link: _Link, header: pdu.Header, frame: bytes) -> SubmitResponse:
        if header.command_id == pdu.GENERIC_NACK:
            return SubmitResponse(status=header.status, generic_nack=True)
        status = header.status
        if status == pdu.ESME_ROK:
            if header.command_id != pdu.SUBMIT_SM_RESP:  # not an answer to the submit at all
                try:
                    pdu.decode_message_id(frame)
                except pdu.PduDecodeError as exc:
                    why = f"unreadable submit_sm_resp ({exc.reason}); outcome unknown"
                    raise ChannelUnavailable(reason=f"connector {self.name}: {why}") from exc
            message_id, unreadable = _message_id(frame)
            if unreadable is None:
                return SubmitResponse(status=status, message_id=message_id)
            if message_id:
                log.warning("connector %s: submit_sm_resp message_id read despite %s", self.name, unreadable)
                return SubmitResponse(status=status, message_id=message_id)
            log.warning(
                "connector %s: submit_sm_resp ESME_ROK with an unreadable body (%s): accepted without an id",
                self.name,
                unreadable,
            )
            return SubmitResponse(status=status, unreadable=unreadable)
        if status in THROTTLING:
            pause_s = self.config.throttle_pause_s
            now_s = asyncio.get_running_loop().time()
            if self._paused_until_s <= now_s:
                self._note(f"SMSC throttling (command_status 0x{status:02x}); paused {pause_s:g} s")
                log.warning(
                    "connector %s: SMSC throttling (command_status 0x%02x); pausing submits for %g s",
                    self.name,
                    status,
                    pause_s,
                )
            self._paused_until_s = max(self._paused_until_s, now_s + pause_s)
            return SubmitResponse(status=status, retry_after_s=pause_s)
        if status == pdu.ESME_RINVBNDSTS:
            self._abort(link, "SMSC says we are not bound (ESME_RINVBNDSTS); rebinding")
        return SubmitResponse(status=status)

    # -- connection lifecycle -------------------------------------------------------------------

    async def _supervise(self) -> None:
        attempt = 0
        cfg = self.config
        while not self._stopping.is_set():
            try:
                link = await self._open()
            except BindRefused as exc:
                delay_s = cfg.reconnect_max_s * self._rng.uniform(0.8, 1.0)
                self._note(f"bind refused (command_status 0x{exc.status:02x})")
                if exc.status in CREDENTIAL_ERRORS:
                    log.error(
                        "connector %s: SMSC %s:%d refused the bind for system_id %r (command_status 0x%02x, "
                        "wrong password or system_id): check the connector configuration; retrying in %.0f s",
                        self.name,
                        cfg.host,
                        cfg.port,
                        cfg.system_id,
                        exc.status,
                        delay_s,
                    )
                else:
                    log.error(
                        "connector %s: bind refused (command_status 0x%02x); retrying in %.0f s",
                        self.name,
                        exc.status,
                        delay_s,
                    )
            except (
                OSError,
                TimeoutError,
                EOFError,
                pdu.FrameError,
                pdu.PduDecodeError,
                ChannelUnavailable,
            ) as exc:
                delay_s = self._backoff_s(attempt)
                attempt += 1
                self._note(f"cannot bind to {cfg.host}:{cfg.port} ({exc or type(exc).__name__})")
                log.warning(
                    "connector %s: cannot bind to %s:%d (%s); retrying in %.2f s",
                    self.name,
                    cfg.host,
                    cfg.port,
                    exc or type(exc).__name__,
                    delay_s,
                )
            except Exception:  # top of the supervisor loop: never stop reconnecting
                delay_s = self._backoff_s(attempt)
                attempt += 1
                self._note("unexpected error while binding")
                log.exception(
                    "connector %s: unexpected error while binding; retrying in %.2f s", self.name, delay_s
                )
            else:
                attempt = 0
                await link.finished.wait()
                await self._wait_stopped(link)
                delay_s = self._backoff_s(0)
            if self._stopping.is_set():
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay_s):
                    await self._stopping.wait()

    def _backoff_s(self, attempt: int) -> float:
        cfg = self.config
        ceiling_s = min(cfg.reconnect_max_s, cfg.reconnect_min_s * float(2 ** min(attempt, 30)))
        return ceiling_s * self._rng.uniform(0.5, 1.0)

    async def _open(self) -> _Link:
        cfg = self.config
        self.binds_attempted += 1
        ssl_context = ssl.create_default_context() if cfg.tls else None
        async with asyncio.timeout(cfg.response_timeout_s):
            reader, writer = await asyncio.open_connection(
                cfg.host, cfg.port, ssl=ssl_context, server_hostname=cfg.host if cfg.tls else None
            )
        link = _Link(reader, writer, window=cfg.window)
        link.tasks.append(asyncio.create_task(self._read_loop(link), name=f"smpp-{self.name}-reader"))
        link.tasks.append(asyncio.create_task(self._receipt_loop(link), name=f"smpp-{self.name}-receipts"))
        try:
            build = _bind_builder(cfg)
            header, frame = await self._request(link, build, cfg.response_timeout_s)
            if header.status != pdu.ESME_ROK:
                raise BindRefused(status=header.status)
            if header.command_id != pdu.BIND_TRANSCEIVER_RESP:
                raise ChannelUnavailable(
                    reason=f"unexpected answer 0x{header.command_id:08x} to bind_transceiver"
                )
        except BaseException:
            self._abort(link, "bind failed")
            await self._wait_stopped(link)
            raise
        link.bound = True
        link.tasks.append(asyncio.create_task(self._keepalive_loop(link), name=f"smpp-{self.name}-keepalive"))
        self._link = link
        self._bound_event.set()
        log.info(
            "connector %s: bound to %s:%d as %r (SMSC system_id %r)",
            self.name,
            cfg.host,
            cfg.port,
            cfg.system_id,
            _safe_system_id(frame),
        )
        return link

    async def _request(self, link: _Link, build: PduBuilder, timeout_s: float) -> Response:
        """A request outside the submit window (bind, enquire_link, unbind) and its response."""
        if link.closed:
            raise ChannelUnavailable(reason=f"connector {self.name}: connection closed")
        sequence = self._sequences.next()
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        link.pending[sequence] = future
        link.write(build(sequence))
        try:
            async with asyncio.timeout(timeout_s):
                return await future
        finally:
            link.pending.pop(sequence, None)

    def _abort(self, link: _Link, reason: str) -> None:
        """End a link now: fail its in-flight requests, close the socket, stop its tasks."""
        if link.closed:
            return
        was_bound = link.bound
        link.closed = True
        link.bound = False
        if self._link is link:
            self._link = None
            self._bound_event.clear()
        error = ChannelUnavailable(reason=f"connector {self.name}: {reason} (outcome unknown)")
        for future in link.pending.values():
            if not future.done():
                future.set_exception(error)
        link.pending.clear()
        link.writer.close()
        current = asyncio.current_task()
        for task in link.tasks:
            if task is not current:
                task.cancel()
        link.finished.set()
        if was_bound and not self._stopping.is_set():
            self._note(f"connection ended: {reason}")
            log.warning("connector %s: connection ended: %s", self.name, reason)

    async def _wait_stopped(self, link: _Link) -> None:
        current = asyncio.current_task()
        others = [task for task in link.tasks if task is not current]
        await asyncio.gather(*others, return_exceptions=True)
        with contextlib.suppress(OSError, ssl.SSLError):
            await link.writer.wait_closed()

    # -- per-link tasks -------------------------------------------------------------------------

    async def _read_loop(self, link: _Link) -> None:
        loop = asyncio.get_running_loop()
        reason = "closed by the SMSC"
        try:
            while True:
                frame = await pdu.read_frame(link.reader)
                link.last_rx_s = loop.time()
                header = pdu.decode_header(frame)
                command_id = header.command_id
                if command_id & pdu.RESPONSE_BIT:
                    if command_id == pdu.GENERIC_NACK:
                        link.nacks_in_row += 1
                        log.warning(
                            "connector %s: generic_nack 0x%02x for sequence %d",
                            self.name,
                            header.status,
                            header.sequence,
                        )
                        if link.nacks_in_row >= NACKS_BEFORE_RECONNECT:
                            reason = f"{link.nacks_in_row} generic_nack in a row; reconnecting"
                            break
                    else:
                        link.nacks_in_row = 0
                        if command_id == pdu.SUBMIT_SM_RESP:
                            self._remember(link, header, frame)
                    future = link.pending.pop(header.sequence, None)
                    if future is not None and not future.done():
                        future.set_result((header, frame))
                elif command_id == pdu.DELIVER_SM:
                    link.deliveries.put_nowait((frame, [f for f in link.pending.values() if not f.done()]))
                elif command_id == pdu.ENQUIRE_LINK:
                    link.write(pdu.enquire_link_resp(header.sequence))
                elif command_id == pdu.UNBIND:
                    link.write(pdu.unbind_resp(header.sequence))
                    reason = "the SMSC unbound"
                    break
                else:
                    log.warning("connector %s: unexpected PDU 0x%08x; generic_nack", self.name, command_id)
                    link.write(pdu.generic_nack(header.sequence, pdu.ESME_RINVCMDID))
        except asyncio.IncompleteReadError:
            reason = "connection closed by the SMSC"
        except pdu.FrameError as exc:
            reason = f"broken framing ({exc})"
        except OSError as exc:
            reason = f"connection error ({exc!r})"
        except Exception:  # top of the reader task: log, drop the link, reconnect
            log.exception("connector %s: reader failed", self.name)
            reason = "internal error in the reader"
        self._abort(link, reason)

    async def _keepalive_loop(self, link: _Link) -> None:
        loop = asyncio.get_running_loop()
        interval_s = self.config.enquire_link_s
        while not link.closed:
            idle_s = loop.time() - link.last_rx_s
            if idle_s < interval_s:
                await asyncio.sleep(interval_s - idle_s)
                continue
            try:
                await self._request(link, pdu.enquire_link, self.config.response_timeout_s)
            except TimeoutError:
                self._abort(link, "no enquire_link_resp; the link is dead")
                return
            except ChannelUnavailable:
                return

    async def _receipt_loop(self, link: _Link) -> None:
        while True:
            batch = [await link.deliveries.get()]
            while len(batch) < RECEIPT_BATCH and not link.deliveries.empty():
                batch.append(link.deliveries.get_nowait())
            frames = [frame for frame, _ in batch]
            # An SMSC may send a receipt before the submit_sm_resp that gives its id. Wait for the
            # answers outstanding when the receipts were read (bounded by the response timeout):
            # then `issued` knows the ids they gave, and the receipts get their `sent_after`.
            outstanding = {f for _, futures in batch for f in futures if not f.done()}
            if outstanding:
                await asyncio.wait(outstanding, timeout=self.config.response_timeout_s)
            try:
                responses = await take_deliveries(
                    frames,
                    receipts=self._receipts,
                    clock=self._clock,
                    connector=self.name,
                    issued=self.issued,
                )
            except Exception:  # top of the receipts task: leave them unacknowledged, the SMSC redelivers
                log.exception("connector %s: failed to handle %d deliver_sm", self.name, len(frames))
                self._abort(link, "internal error while handling deliver_sm")
                return
            for response in responses:
                link.write(response)


def _bind_builder(cfg: SmppConnectorConfig) -> PduBuilder:
    def build(sequence: int) -> bytes:
        return pdu.bind_transceiver(
            sequence, system_id=cfg.system_id, password=cfg.password, system_type=cfg.system_type
        )

    return build


def _safe_system_id(frame: bytes) -> str:
    try:
        return pdu.decode_system_id(frame)
    except pdu.PduDecodeError:
        return "?"


def _message_id(frame: bytes) -> tuple[str, str | None]:
    """The id of an ESME_ROK `submit_sm_resp`, and why its body could not be read (None when it
    could). An unreadable body still gives the id when it is one printable string of at most 65
    octets (no NUL, or something after it that is no TLV: common SMSC bugs), else ""."""
    try:
        return pdu.decode_message_id(frame), None
    except pdu.PduDecodeError as exc:
        candidate = frame[pdu.HEADER_LENGTH :].split(b"\0", 1)[0]
        if 0 < len(candidate) <= MAX_MESSAGE_ID and candidate.isascii() and candidate.decode().isprintable():
            return candidate.decode(), exc.reason
        return "", exc.reason
