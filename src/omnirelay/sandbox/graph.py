"""Graph API simulator: Meta's Messenger Send API and its webhooks, over real HTTP.

A Starlette app served by uvicorn on a local socket (port 0 picks a free port; `base_url` tells
which). It is what the sandbox runs instead of graph.facebook.com and what the integration tests
send to. It is independent of `omnirelay.channels` (import-linter forbids adapters importing each
other), so the few lines of signing live here too.

What it simulates (docs/channels.md#messenger):

* `POST /{version}/{page_id}/messages` and `/{version}/me/messages`, token from
  `Authorization: Bearer`, the `access_token` query parameter or body field; a wrong token is a
  190 error; `appsecret_proof` is checked when given (or required per page); bodies are validated
  like Meta does (missing recipient or message, bad messaging_type, empty message, too-long text,
  bad attachment or button template: code 100).
* Recipients: a known PSID; a `phone_number` that a PSID of the Page registered; a `user_ref` that
  a checkbox opt-in (`user_optin(user_ref=...)`) gave; anything else is 100/2018001 "No matching
  user found". A Page without Customer Matching (`set_customer_matching(page, False)`) refuses
  every send by `phone_number` with 200/2018027, whoever the number is, and serves PSIDs. A PSID
  marked outside the 24-hour window gets 10/2018278 (except `MESSAGE_TAG` sends); any inbound
  event from the person reopens the window.
* Scripted errors per recipient (any code/subcode/HTTP status/headers, forever or N times), a slow
  mode (delay before answering), a 5xx mode (N times or for a while; plain-text body, like a
  failing proxy).
* Success answers `{"recipient_id", "message_id": "m_…"}` (no `recipient_id` for phone-number
  and `user_ref` sends, only `recipient_id` for sender actions). After a message send to a PSID it
  POSTs signed webhooks to the page's `webhook_url`: `message_echoes` (if `send_echoes`, with
  `metadata`), `message_deliveries` after `delivery_delay_s` (unless that recipient is "never
  deliver"), and `message_reads` after `read_delay_s` more (if `send_reads`, and unless that
  recipient is "never read": a person who gets the message and does not open it). The read's
  watermark is the send's time, as Meta's: everything sent up to it was read. Sender actions trigger
  none, and neither do sends by `phone_number` or `user_ref`: Meta, "Effective February 19, 2018,
  this webhook event will no longer be triggered by message sends that use recipient.user_ref or
  recipient.phone_number" (message_deliveries, message_echoes; reads likewise).
  Webhooks are retried after `webhook_retry_delays_s` on failure, like Meta.
* Scripting a person: `user_sends`, `user_postback`, `user_optin`, `user_referral`, or any raw
  `post_event`, each a signed webhook awaited before returning.
* Every Send API request (`requests`) and every webhook (`webhooks`) is recorded for tests.

Not simulated: media URL fetching, quick replies, message tags' policy,
rate limits and usage headers (script them: `script_error(..., headers=)`,
`set_response_headers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import logging
import re
import secrets
import socket
import time
import uuid
from collections.abc import Coroutine, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

import httpx
import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

logger = logging.getLogger(__name__)

_MESSAGING_TYPES = frozenset({"RESPONSE", "UPDATE", "MESSAGE_TAG"})
# Meta's current message tags (since 2020-03-04; the older ones, e.g. SHIPPING_UPDATE, are refused)
_MESSAGE_TAGS = frozenset(
    {"CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE", "HUMAN_AGENT", "CUSTOMER_FEEDBACK"}
)
_SENDER_ACTIONS = frozenset({"mark_seen", "typing_on", "typing_off", "react", "unreact"})
_MEDIA_TYPES = frozenset({"image", "audio", "video", "file"})
_HTTP_URL = re.compile(r"^https?://[^\s/]+", re.IGNORECASE)


@dataclass(slots=True)
class SimulatedPage:
    page_id: str
    access_token: str = field(repr=False)
    app_secret: str = field(repr=False)
    webhook_url: str | None = None
    app_id: str = "1000000000000001"
    require_appsecret_proof: bool = False
    customer_matching: bool = True  # False: every send by phone number is 200/2018027


@dataclass(slots=True)
class SimulatedUser:
    page_id: str
    psid: str
    phone_number: str | None = None  # digits, no '+'
    outside_window: bool = False
    never_deliver: bool = False
    never_read: bool = False  # delivered, never read: no `message_reads` for this person


@dataclass(slots=True)
class ScriptedError:
    code: int
    subcode: int | None = None
    message: str | None = None
    http_status: int = 400
    times: int | None = None  # None: every time
    headers: Mapping[str, str] = field(default_factory=dict)
    error_type: str = "OAuthException"
    is_transient: bool | None = None


@dataclass(frozen=True, slots=True)
class SendRecord:
    """One Send API request as received, and what the simulator answered."""

    page_id: str | None  # the Page the token belongs to, when it was recognised
    recipient: dict[str, Any] | None
    body: dict[str, Any] | None
    http_status: int
    response: dict[str, Any] | str


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    """One webhook the simulator posted (after its retries)."""

    page_id: str
    url: str
    body: dict[str, Any]
    http_status: int | None  # of the last attempt; None when it never got an answer
    attempts: int

    @property
    def delivered(self) -> bool:
        return self.http_status is not None and 200 <= self.http_status < 300


@dataclass(frozen=True, slots=True)
class Inbound:
    """What a scripted person did: their PSID (None for a checkbox opt-in) and the event's mid."""

    psid: str | None
    mid: str | None
    webhook: WebhookRecord | None


class _GraphError(Exception):
    def __init__(
        self,
        code: int,
        message: str,
        *,
        subcode: int | None = None,
        http_status: int = 400,
        error_type: str = "OAuthException",
        headers: Mapping[str, str] | None = None,
        is_transient: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.subcode = subcode
        self.http_status = http_status
        self.error_type = error_type
        self.headers = dict(headers or {})
        self.is_transient = is_transient

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.error_type, "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.is_transient is not None:
            error["is_transient"] = self.is_transient
        error["fbtrace_id"] = _trace_id()
        return {"error": error}


def _param_error(message: str, subcode: int | None = None) -> _GraphError:
    return _GraphError(100, f"(#100) {message}", subcode=subcode, error_type="GraphMethodException")


def _trace_id() -> str:
    return secrets.token_urlsafe(8)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _sign(app_secret: str, raw: bytes, digest: str) -> str:
    return hmac.new(app_secret.encode(), raw, digest).hexdigest()


def _digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)


_SERVE_TASK = "graph-simulator"


class _NotTheGatewaysServer(logging.Filter):
    """uvicorn logs its start and stop to `uvicorn.error` whoever runs it: in the sandbox those lines
    of the simulator's embedded server read as the gateway's own, printed twice."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running loop
            return True
        return task is None or task.get_name() != _SERVE_TASK


logging.getLogger("uvicorn.error").addFilter(_NotTheGatewaysServer())


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the host process (pytest, omnirelay) owns signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class GraphSimulator:
    """The simulator; `async with GraphSimulator(client) as graph:` or `start()` / `stop()`.

    `client` posts the webhooks; the caller owns and closes it.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        delivery_delay_s: float = 0.05,
        send_echoes: bool = False,
        send_reads: bool = False,
        read_delay_s: float = 0.05,
        webhook_retry_delays_s: Sequence[float] = (0.2, 1.0, 5.0),
        webhook_timeout_s: float = 5.0,
        webhooks_in_flight: int = 16,
    ) -> None:
        self._client = client
        # At most this many webhook POSTs at once; the rest wait here, not in httpcore's pool, whose
        # every request scans all its connections (a socket poll each) and queued requests: with
        # hundreds of echoes and receipts queued it took most of the event loop it shares with the
        # gateway in sandbox mode, and every database round trip waited behind it.
        self._webhook_slots = asyncio.Semaphore(webhooks_in_flight)
        self._host = host
        self._port = port
        self.delivery_delay_s = delivery_delay_s
        self.send_echoes = send_echoes
        self.send_reads = send_reads
        self.read_delay_s = read_delay_s
        self.webhook_retry_delays_s = tuple(webhook_retry_delays_s)
        self.webhook_timeout_s = webhook_timeout_s
        self._settings = (
            delivery_delay_s,
            send_echoes,
            send_reads,
            read_delay_s,
            self.webhook_retry_delays_s,
            webhook_timeout_s,
        )
        self.requests: list[SendRecord] = []
        self.webhooks: list[WebhookRecord] = []
        self._pages: dict[str, SimulatedPage] = {}
        self._users: dict[tuple[str, str], SimulatedUser] = {}
        self._user_refs: set[tuple[str, str]] = set()  # (page, user_ref) of checkbox opt-ins
        self._scripts: dict[tuple[str, str], list[ScriptedError]] = {}
        self._response_headers: dict[str, dict[str, str]] = {}
        self._slow_s = 0.0
        self._wake = asyncio.Event()
        self._failing = False
        self._fail_times: int | None = None
        self._fail_until: float | None = None
        self._fail_status = 500
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: _EmbeddedServer | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._app = Starlette(routes=[Route("/{version}/{node}/messages", self._send, methods=["POST"])])

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """E.g. `http://127.0.0.1:41234`; the Send API is at `{base_url}/v25.0/{page_id}/messages`."""
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        if self._serve_task is not None:
            raise RuntimeError("the Graph simulator is already running")
        # IPPROTO_TCP, not the default 0: asyncio's event loop disables Nagle's algorithm only on
        # sockets whose `proto` says TCP (accepted sockets inherit it). With Nagle on, a response's
        # body waits for the ACK of its headers, which the client delays (~40 ms per answer); uvloop,
        # which the in-process sandbox runs on, sets TCP_NODELAY either way.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._port))
            self._port = sock.getsockname()[1]
            config = uvicorn.Config(
                self._app,
                log_config=None,
                lifespan="off",
                ws="none",
                access_log=False,
                timeout_graceful_shutdown=2,
            )
            self._server = _EmbeddedServer(config)
            self._wake = asyncio.Event()
            self._serve_task = asyncio.create_task(self._server.serve(sockets=[sock]), name=_SERVE_TASK)
            while not self._server.started:
                if self._serve_task.done():
                    self._serve_task.result()  # raises what stopped it
                    raise RuntimeError("the Graph simulator stopped during startup")
                await asyncio.sleep(0.005)
        except BaseException:
            sock.close()
            if self._serve_task is not None:
                self._serve_task.cancel()
                await asyncio.gather(self._serve_task, return_exceptions=True)
            self._server = None
            self._serve_task = None
            raise
        logger.info("Graph API simulator listening on %s", self.base_url)

    async def stop(self) -> None:
        self._wake.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None and self._serve_task is not None:
            self._server.should_exit = True
            await self._serve_task
        self._server = None
        self._serve_task = None

    async def __aenter__(self) -> GraphSimulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def reset(self) -> None:
        """Forget pages, users, scripts, modes and records, cancel pending webhooks and restore the
        constructor's webhook settings: a clean simulator without restarting the server."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._pages.clear()
        self._users.clear()
        self._user_refs.clear()
        self._scripts.clear()
        self._response_headers.clear()
        self.requests.clear()
        self.webhooks.clear()
        self.set_slow(0)
        self.clear_server_error()
        (
            self.delivery_delay_s,
            self.send_echoes,
            self.send_reads,
            self.read_delay_s,
            self.webhook_retry_delays_s,
            self.webhook_timeout_s,
        ) = self._settings

    @property
    def pending(self) -> int:
        """Webhooks scheduled after sends and not yet posted (or given up); tests: `Gateway.until_idle`."""
        return len(self._tasks)

    async def settle(self) -> None:
        """Wait until every scheduled webhook has been posted (or given up)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- set-up and scripting -------------------------------------------------------------------

    def add_page(
        self,
        page_id: str,
        access_token: str,
        app_secret: str,
        webhook_url: str | None = None,
        *,
        app_id: str = "1000000000000001",
        require_appsecret_proof: bool = False,
    ) -> SimulatedPage:
        page = SimulatedPage(page_id, access_token, app_secret, webhook_url, app_id, require_appsecret_proof)
        self._pages[page_id] = page
        return page

    def add_user(
        self,
        page_id: str,
        psid: str | None = None,
        *,
        phone_number: str | None = None,
        outside_window: bool = False,
        never_deliver: bool = False,
        never_read: bool = False,
    ) -> SimulatedUser:
        """A person known to the Page (a PSID), optionally with a matched phone number."""
        self._page(page_id)
        user = SimulatedUser(
            page_id,
            psid or self._new_psid(),
            _digits(phone_number) if phone_number else None,
            outside_window,
            never_deliver,
            never_read,
        )
        self._users[(page_id, user.psid)] = user
        return user

    def user(self, page_id: str, psid: str) -> SimulatedUser:
        return self._users[(page_id, psid)]

    def set_outside_window(self, page_id: str, psid: str, outside: bool = True) -> None:
        self.user(page_id, psid).outside_window = outside

    def set_customer_matching(self, page_id: str, enabled: bool) -> None:
        """Whether the Page may send by phone number (Meta: a permission, and a U.S.-based admin)."""
        self._page(page_id).customer_matching = enabled

    def set_never_deliver(self, page_id: str, psid: str, never: bool = True) -> None:
        self.user(page_id, psid).never_deliver = never

    def set_never_read(self, page_id: str, psid: str, never: bool = True) -> None:
        self.user(page_id, psid).never_read = never

    def script_error(
        self,
        page_id: str,
        recipient: str,
        *,
        code: int,
        subcode: int | None = None,
        message: str | None = None,
        times: int | None = None,
        http_status: int = 400,
        headers: Mapping[str, str] | None = None,
        error_type: str = "OAuthException",
        is_transient: bool | None = None,
    ) -> None:
        """Answer sends to `recipient` (a PSID, a `user_ref`, or `+digits` for a `phone_number` send
        that no PSID matches) with this error, `times` times (None: until `clear_scripts`).
        Scripts queue up."""
        script = ScriptedError(
            code, subcode, message, http_status, times, dict(headers or {}), error_type, is_transient
        )
        self._scripts.setdefault((page_id, recipient), []).append(script)

    def clear_scripts(self) -> None:
        self._scripts.clear()

    def set_response_headers(self, page_id: str, headers: Mapping[str, str] | None) -> None:
        """Add these headers (e.g. `X-Business-Use-Case-Usage`) to every Send API answer for the Page."""
        if headers:
            self._response_headers[page_id] = dict(headers)
        else:
            self._response_headers.pop(page_id, None)

    def set_slow(self, delay_s: float) -> None:
        """Wait `delay_s` before answering each Send API request (0 turns it off)."""
        self._slow_s = delay_s
        if delay_s <= 0:
            self._wake.set()
            self._wake = asyncio.Event()

    def fail_with_server_error(
        self, *, times: int | None = None, duration_s: float | None = None, http_status: int = 500
    ) -> None:
        """Answer every Send API request with `http_status` N times, for a while, or (both None) until
        `clear_server_error`."""
        self._fail_status = http_status
        self._fail_times = times
        self._fail_until = None if duration_s is None else asyncio.get_running_loop().time() + duration_s
        self._failing = True

    def clear_server_error(self) -> None:
        self._failing = False

    # --- scripted people ------------------------------------------------------------------------

    async def user_sends(
        self,
        page_id: str,
        psid: str | None = None,
        *,
        text: str | None = "Hello",
        attachments: Sequence[tuple[str, str]] = (),
        phone_number: str | None = None,
        quick_reply_payload: str | None = None,
    ) -> Inbound:
        """A person (new unless `psid` is known) writes to the Page: a signed `messages` webhook.

        `phone_number` registers that number to the person (Meta's customer matching)."""
        user = self._person(page_id, psid, phone_number)
        mid = self._new_mid()
        message: dict[str, Any] = {"mid": mid}
        if text is not None:
            message["text"] = text
        if attachments:
            message["attachments"] = [{"type": kind, "payload": {"url": url}} for kind, url in attachments]
        if quick_reply_payload is not None:
            message["quick_reply"] = {"payload": quick_reply_payload}
        record = await self.post_event(page_id, self._from_user(user, {"message": message}))
        return Inbound(user.psid, mid, record)

    async def user_postback(
        self,
        page_id: str,
        psid: str | None = None,
        *,
        title: str = "Get Started",
        payload: str = "GET_STARTED",
        referral_ref: str | None = None,
    ) -> Inbound:
        """A person taps a postback button (or Get Started): a signed `messaging_postbacks` webhook."""
        user = self._person(page_id, psid, None)
        mid = self._new_mid()
        postback: dict[str, Any] = {"mid": mid, "title": title, "payload": payload}
        if referral_ref is not None:
            postback["referral"] = {"ref": referral_ref, "source": "SHORTLINK", "type": "OPEN_THREAD"}
        record = await self.post_event(page_id, self._from_user(user, {"postback": postback}))
        return Inbound(user.psid, mid, record)

    async def user_optin(
        self, page_id: str, psid: str | None = None, *, ref: str | None = None, user_ref: str | None = None
    ) -> Inbound:
        """An opt-in. With `user_ref` and no `psid` it is the checkbox plugin's: no sender at all."""
        optin: dict[str, Any] = {}
        if ref is not None:
            optin["ref"] = ref
        if user_ref is not None and psid is None:
            optin["user_ref"] = user_ref
            self._page(page_id)
            self._user_refs.add((page_id, user_ref))  # the Page may now send to it
            event = {"recipient": {"id": page_id}, "timestamp": _now_ms(), "optin": optin}
            return Inbound(None, None, await self.post_event(page_id, event))
        user = self._person(page_id, psid, None)
        record = await self.post_event(page_id, self._from_user(user, {"optin": optin}))
        return Inbound(user.psid, None, record)

    async def user_referral(
        self, page_id: str, psid: str | None = None, *, ref: str, source: str = "SHORTLINK"
    ) -> Inbound:
        """A person re-enters the thread through an m.me link or ad: `messaging_referrals`."""
        user = self._person(page_id, psid, None)
        referral = {"ref": ref, "source": source, "type": "OPEN_THREAD"}
        record = await self.post_event(page_id, self._from_user(user, {"referral": referral}))
        return Inbound(user.psid, None, record)

    async def post_event(self, page_id: str, *messaging: Mapping[str, Any]) -> WebhookRecord | None:
        """POST one signed webhook carrying these `messaging` elements; None if the Page has no
        webhook URL."""
        page = self._page(page_id)
        if not page.webhook_url:
            return None
        body = {
            "object": "page",
            "entry": [{"id": page_id, "time": _now_ms(), "messaging": [dict(item) for item in messaging]}],
        }
        raw = msgspec.json.encode(body)
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": "sha256=" + _sign(page.app_secret, raw, "sha256"),
            "X-Hub-Signature": "sha1=" + _sign(page.app_secret, raw, "sha1"),
        }
        status: int | None = None
        attempts = 0
        for delay_s in (0.0, *self.webhook_retry_delays_s):
            if delay_s:
                await asyncio.sleep(delay_s)
            attempts += 1
            try:
                async with self._webhook_slots:
                    response = await self._client.post(
                        page.webhook_url, content=raw, headers=headers, timeout=self.webhook_timeout_s
                    )
            except httpx.HTTPError as exc:
                status = None
                logger.info("Graph simulator webhook failed (%s), attempt %d", type(exc).__name__, attempts)
                continue
            status = response.status_code
            if response.is_success:
                break
            logger.info("Graph simulator webhook answered %d, attempt %d", status, attempts)
        record = WebhookRecord(page_id, page.webhook_url, body, status, attempts)
        self.webhooks.append(record)
        return record

    def _person(self, page_id: str, psid: str | None, phone_number: str | None) -> SimulatedUser:
        existing = self._users.get((page_id, psid)) if psid else None
        if existing is None:
            existing = self.add_user(page_id, psid, phone_number=phone_number)
        elif phone_number:
            existing.phone_number = _digits(phone_number)
        existing.outside_window = False  # any user action reopens the standard messaging window
        return existing

    @staticmethod
    def _from_user(user: SimulatedUser, event: dict[str, Any]) -> dict[str, Any]:
        return {
            "sender": {"id": user.psid},
            "recipient": {"id": user.page_id},
            "timestamp": _now_ms(),
            **event,
        }

    def _new_psid(self) -> str:
        return f"{7_000_000_000_000_000 + next(self._ids) * 7919 + secrets.randbelow(7919)}"

    def _new_mid(self) -> str:
        return f"m_{uuid.uuid4().hex}"

    def _page(self, page_id: str) -> SimulatedPage:
        try:
            return self._pages[page_id]
        except KeyError:
            raise KeyError(f"no simulated page {page_id!r}; add_page() first") from None

    # --- the Send API ---------------------------------------------------------------------------

    async def _send(self, request: Request) -> Response:
        # The request is taken in full first: in slow mode Meta has the message and only the
        # answer is late, so a client that gives up waiting does not un-send it.
        raw = await request.body()
        if self._slow_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._slow_s)
        if self._server_error_now():
            text = "Service temporarily unavailable"
            self.requests.append(SendRecord(None, None, None, self._fail_status, text))
            return PlainTextResponse(text, status_code=self._fail_status)
        body: dict[str, Any] | None = None
        page: SimulatedPage | None = None
        try:
            body = self._parse(raw, request.headers.get("content-type", ""))
            page = self._authenticate(request, body)
            answer = self._answer(page, body)
        except _GraphError as exc:
            recipient = body.get("recipient") if body else None
            page_id = page.page_id if page else None
            payload = exc.body()
            self.requests.append(
                SendRecord(
                    page_id,
                    recipient if isinstance(recipient, dict) else None,
                    body,
                    exc.http_status,
                    payload,
                )
            )
            headers = {**self._response_headers.get(page_id or "", {}), **exc.headers}
            return JSONResponse(payload, status_code=exc.http_status, headers=headers)
        assert page is not None
        self.requests.append(SendRecord(page.page_id, body["recipient"], body, 200, answer))
        headers = {**self._response_headers.get(page.page_id, {}), "x-fb-trace-id": _trace_id()}
        return JSONResponse(answer, headers=headers)

    def _server_error_now(self) -> bool:
        if not self._failing:
            return False
        if self._fail_until is not None and asyncio.get_running_loop().time() >= self._fail_until:
            self._failing = False
            return False
        if self._fail_times is not None:
            if self._fail_times <= 0:
                self._failing = False
                return False
            self._fail_times -= 1
        return True

    @staticmethod
    def _parse(raw: bytes, content_type: str) -> dict[str, Any]:
        if content_type.startswith("application/x-www-form-urlencoded"):
            form: dict[str, Any] = dict(parse_qsl(raw.decode("utf-8", "replace")))
            for key in ("recipient", "message"):
                if isinstance(form.get(key), str):
                    try:
                        form[key] = msgspec.json.decode(form[key])
                    except msgspec.DecodeError:
                        raise _param_error(f"param {key} must be a JSON object") from None
            return form
        if not raw:
            return {}
        try:
            decoded = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            raise _param_error("Invalid JSON in the request body") from None
        if not isinstance(decoded, dict):
            raise _param_error("The request body must be a JSON object")
        return decoded

    def _authenticate(self, request: Request, body: Mapping[str, Any]) -> SimulatedPage:
        authorization = request.headers.get("authorization", "")
        token = (
            authorization[7:].strip()
            if authorization.lower().startswith("bearer ")
            else request.query_params.get("access_token") or body.get("access_token")
        )
        if not token:
            raise _GraphError(104, "An access token is required to request this resource.")
        node = request.path_params["node"]
        page = next(
            (p for p in self._pages.values() if hmac.compare_digest(p.access_token, str(token))), None
        )
        if page is None or node not in ("me", page.page_id):
            raise _GraphError(190, "Invalid OAuth access token - Cannot parse access token")
        proof = request.query_params.get("appsecret_proof") or body.get("appsecret_proof")
        if proof is not None:
            expected = _sign(page.app_secret, page.access_token.encode(), "sha256")
            if not hmac.compare_digest(expected, str(proof)):
                raise _param_error("Invalid appsecret_proof provided in the API argument")
        elif page.require_appsecret_proof:
            raise _param_error("API calls from the server require an appsecret_proof argument")
        return page

    def _answer(self, page: SimulatedPage, body: dict[str, Any]) -> dict[str, Any]:
        recipient = _validate(body)
        if "user_ref" in recipient:
            return self._answer_user_ref(page, body, str(recipient["user_ref"]))
        if "phone_number" in recipient and not page.customer_matching:
            raise _GraphError(
                200,
                "(#200) Customer Matching is available only for bots that have a U.S.-based admin",
                subcode=2018027,
            )
        user, key = self._resolve(page, recipient)
        self._scripted(page.page_id, key)
        if user is None:
            raise _param_error("No matching user found", 2018001)
        if "sender_action" in body:
            return {"recipient_id": user.psid}
        if user.outside_window and body.get("messaging_type") != "MESSAGE_TAG":
            raise _GraphError(
                10,
                "(#10) This message is sent outside of allowed window. Learn more about the new policy here: "
                "https://developers.facebook.com/docs/messenger-platform/policy-overview",
                subcode=2018278,
            )
        mid = self._new_mid()
        by_phone = "phone_number" in recipient
        answer: dict[str, Any] = (
            {"message_id": mid} if by_phone else {"recipient_id": user.psid, "message_id": mid}
        )
        self._attachment_id(body, answer)
        if page.webhook_url and not by_phone:  # Meta posts no webhook for sends by phone number
            self._spawn(self._after_send(page, user, mid, body["message"]))
        return answer

    def _answer_user_ref(self, page: SimulatedPage, body: dict[str, Any], user_ref: str) -> dict[str, Any]:
        self._scripted(page.page_id, user_ref)
        if (page.page_id, user_ref) not in self._user_refs:
            raise _param_error("No matching user found", 2018001)
        if "sender_action" in body:
            raise _param_error("Sender actions cannot be sent to a user_ref")
        answer: dict[str, Any] = {"message_id": self._new_mid()}  # no recipient_id, and no webhook
        self._attachment_id(body, answer)
        return answer

    def _attachment_id(self, body: Mapping[str, Any], answer: dict[str, Any]) -> None:
        attachment = body["message"].get("attachment")
        if isinstance(attachment, dict) and attachment.get("payload", {}).get("is_reusable"):
            answer["attachment_id"] = str(next(self._ids) + 10**15)

    def _resolve(self, page: SimulatedPage, recipient: Mapping[str, Any]) -> tuple[SimulatedUser | None, str]:
        if "id" in recipient:
            psid = str(recipient["id"])
            return self._users.get((page.page_id, psid)), psid
        digits = _digits(str(recipient["phone_number"]))
        for user in self._users.values():
            if user.page_id == page.page_id and user.phone_number == digits:
                return user, user.psid
        return None, f"+{digits}"

    def _scripted(self, page_id: str, key: str) -> None:
        queue = self._scripts.get((page_id, key))
        if not queue:
            return
        script = queue[0]
        if script.times is not None:
            script.times -= 1
            if script.times <= 0:
                queue.pop(0)
        raise _GraphError(
            script.code,
            script.message or f"(#{script.code}) Scripted error",
            subcode=script.subcode,
            http_status=script.http_status,
            error_type=script.error_type,
            headers=script.headers,
            is_transient=script.is_transient,
        )

    # --- webhooks after a send ------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("Graph simulator webhook task failed", exc_info=task.exception())

    async def _after_send(
        self, page: SimulatedPage, user: SimulatedUser, mid: str, message: dict[str, Any]
    ) -> None:
        sent_ms = _now_ms()
        if self.send_echoes:
            echo: dict[str, Any] = {"is_echo": True, "app_id": int(page.app_id), "mid": mid}
            for key in ("metadata", "text", "attachments"):
                if key in message:
                    echo[key] = message[key]
            if "attachment" in message:
                echo["attachments"] = [message["attachment"]]
            await self.post_event(
                page.page_id,
                {
                    "sender": {"id": page.page_id},
                    "recipient": {"id": user.psid},
                    "timestamp": sent_ms,
                    "message": echo,
                },
            )
        if user.never_deliver:
            return
        await asyncio.sleep(self.delivery_delay_s)
        delivery = {"mids": [mid], "watermark": sent_ms}
        await self.post_event(page.page_id, self._from_user(user, {"delivery": delivery}))
        if self.send_reads and not user.never_read:
            await asyncio.sleep(self.read_delay_s)
            await self.post_event(page.page_id, self._from_user(user, {"read": {"watermark": sent_ms}}))


def _validate(body: Mapping[str, Any]) -> dict[str, Any]:
    """Meta's checks on a Send API body; returns the recipient object."""
    recipient = body.get("recipient")
    if not isinstance(recipient, dict) or not recipient:
        raise _param_error("param recipient must be non-empty.")
    if not any(key in recipient for key in ("id", "phone_number", "user_ref")):
        raise _param_error("param recipient must contain id, phone_number or user_ref")
    message = body.get("message")
    action = body.get("sender_action")
    if message is None and action is None:
        raise _param_error("Must send either message or state")
    if message is not None and action is not None:
        raise _param_error("Cannot send message and sender_action in the same request")
    if action is not None:
        if action not in _SENDER_ACTIONS:
            raise _param_error(f"Param sender_action must be one of {sorted(_SENDER_ACTIONS)}")
        return recipient
    messaging_type = body.get("messaging_type")
    if messaging_type not in _MESSAGING_TYPES:
        raise _param_error("Param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}")
    if messaging_type == "MESSAGE_TAG" and not body.get("tag"):
        raise _param_error("Param tag is required when messaging_type is MESSAGE_TAG")
    if messaging_type == "MESSAGE_TAG" and body.get("tag") not in _MESSAGE_TAGS:
        raise _param_error(f"Param tag must be one of {sorted(_MESSAGE_TAGS)}")
    if not isinstance(message, dict):
        raise _param_error("param message must be an object")
    _validate_message(message)
    return recipient


def _validate_message(message: Mapping[str, Any]) -> None:
    text, attachment = message.get("text"), message.get("attachment")
    if text is None and attachment is None:
        raise _param_error("Message cannot be empty, must provide valid attachment or text", 2018034)
    if text is not None and attachment is not None:
        raise _param_error("Only one of message[text] and message[attachment] may be set")
    metadata = message.get("metadata")
    if metadata is not None and (not isinstance(metadata, str) or len(metadata) > 1000):
        raise _param_error("Length of param message[metadata] must be less than or equal to 1000")
    if text is not None:
        if not isinstance(text, str) or not text:
            raise _param_error("Message cannot be empty, must provide valid attachment or text", 2018034)
        if len(text) > 2000:
            raise _param_error("Length of param message[text] must be less than or equal to 2000")
        return
    if not isinstance(attachment, dict) or not isinstance(attachment.get("payload"), dict):
        raise _param_error("param message[attachment] must have a type and a payload")
    kind, payload = attachment.get("type"), attachment["payload"]
    if kind in _MEDIA_TYPES:
        url = payload.get("url")
        if not payload.get("attachment_id") and not (isinstance(url, str) and _HTTP_URL.match(url)):
            raise _param_error("param message[attachment][payload][url] must be a valid URL")
        return
    if kind != "template":
        raise _param_error(
            "param message[attachment][type] must be one of image, audio, video, file, template"
        )
    if payload.get("template_type") != "button":
        raise _param_error("Unsupported template_type (the simulator knows button templates)")
    template_text, buttons = payload.get("text"), payload.get("buttons")
    if not isinstance(template_text, str) or not template_text or len(template_text) > 640:
        raise _param_error("param message[attachment][payload][text] must be 1 to 640 characters")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        raise _param_error("param message[attachment][payload][buttons] must have 1 to 3 buttons")
    for button in buttons:
        _validate_button(button)


def _validate_button(button: Any) -> None:
    if not isinstance(button, dict):
        raise _param_error("Each button must be an object")
    title = button.get("title")
    if not isinstance(title, str) or not title or len(title) > 20:
        raise _param_error("Button title must be 1 to 20 characters")
    if button.get("type") == "web_url":
        url = button.get("url")
        if not isinstance(url, str) or not _HTTP_URL.match(url):
            raise _param_error("Button url must be a valid http(s) URL")
    elif button.get("type") == "postback":
        payload = button.get("payload")
        if not isinstance(payload, str) or not payload or len(payload) > 1000:
            raise _param_error("Postback payload must be 1 to 1000 characters")
    else:
        raise _param_error("Button type must be web_url or postback")


NUMBERED_PAGE_LIMIT = 100_000


def numbered_page(index: int) -> SimulatedPage:
    """The `index`-th numbered simulated Page (`omnirelay sandbox graph --pages`): its id, access
    token and app secret derive from the index alone, so a client can register the matching
    Messenger application in omnirelay without asking the simulator. Every Page has a token of its
    own (the simulator finds the Page by its token). Its only person is `numbered_user(index)`,
    who has no phone number: every send by phone number is refused ("No matching user found"). It
    has no webhook URL, so it posts no webhooks: a send to its person is accepted and never
    delivered."""
    if not 0 <= index < NUMBERED_PAGE_LIMIT:
        raise ValueError(f"a numbered page index is 0 to {NUMBERED_PAGE_LIMIT - 1}")
    return SimulatedPage(
        page_id=f"3000000000{index:05d}",
        access_token=f"sim-page-token-{index:05d}",
        app_secret=f"sim-app-secret-{index:05d}",
    )


def numbered_user(index: int) -> SimulatedUser:
    """The one person of numbered Page `index` (`numbered_page`): PSID 4000000000{index:05d}, no
    phone number. A client registers them in omnirelay by posting, signed with the Page's app
    secret, the webhook Meta would send when they write to the Page."""
    page = numbered_page(index)
    return SimulatedUser(page.page_id, f"4000000000{index:05d}")


def numbered_pages(count: int) -> list[SimulatedPage]:
    """Numbered Pages 0 to `count` - 1 (`numbered_page`)."""
    if not 0 <= count <= NUMBERED_PAGE_LIMIT:
        raise ValueError(f"0 to {NUMBERED_PAGE_LIMIT} numbered pages")
    return [numbered_page(i) for i in range(count)]


async def run_graph(
    host: str = "127.0.0.1",
    port: int = 8081,
    *,
    pages: Sequence[SimulatedPage] = (),
    users: Sequence[SimulatedUser] = (),
    delivery_delay_s: float = 0.5,
    send_echoes: bool = True,
    send_reads: bool = True,
) -> None:
    """Run a simulator standalone until cancelled (e.g. `asyncio.run(run_graph(...))`)."""
    async with httpx.AsyncClient() as client:
        graph = GraphSimulator(
            client,
            host=host,
            port=port,
            delivery_delay_s=delivery_delay_s,
            send_echoes=send_echoes,
            send_reads=send_reads,
        )
        for page in pages:  # before listening: no request may find an empty simulator
            graph.add_page(
                page.page_id,
                page.access_token,
                page.app_secret,
                page.webhook_url,
                app_id=page.app_id,
                require_appsecret_proof=page.require_appsecret_proof,
            )
        for user in users:
            graph.add_user(
                user.page_id,
                user.psid,
                phone_number=user.phone_number,
                outside_window=user.outside_window,
                never_deliver=user.never_deliver,
                never_read=user.never_read,
            )
        async with graph:
            logger.warning("SANDBOX: Graph API simulator (not Meta) listening on %s", graph.base_url)
            await asyncio.Event().wait()
