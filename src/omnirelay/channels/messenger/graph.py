"""`GraphSender`: the `ChannelSender` for `Channel.FACEBOOK`, over Meta's Send API.

One `send()` resolves the application (`outbound.sender` is its key) and the recipient through the
`MessengerDirectory`, builds the Send API body, waits for the Page's token bucket and POSTs
`{base_url}/{api_version}/{page_id}/messages`. Design choices:

* **HTTP client.** aiohttp (`open_graph_session`; the caller owns the session and closes it), for
  its CPU cost per call: about a tenth of httpx's with 64 calls in flight
  (docs/decisions/0004-graph-client.md). Past the session's set-up only `_post` knows the library:
  it hands the rest a `GraphResponse` (status, body, the headers read). No redirects, no cookies.
* **Credentials.** The Page access token travels in an `Authorization: Bearer` header, never in the
  URL, so neither a client log line nor any exception text can show it. `appsecret_proof`
  (HMAC-SHA256 of the token keyed by the app secret) goes in the query string; it is useless without
  the token. Meta's error messages are scrubbed of the token and secret before they reach a reason.
* **Errors.** Failed calls are classified by `errors.classify` (one table,
  docs/messenger-errors.md#the-table) and
  raised as `ChannelUnavailable` (retry) or `MessageRejected` (fail over, `pause_channel=True` for
  channel-wide problems). Timeouts (`timeout_s` for the whole call) and transport errors become
  `ChannelUnavailable`: the outcome is unknown, and `message.metadata` carries the gateway message
  id so a `message_echoes` webhook can reconcile a send whose response was lost.
* **Pacing.** Per Page, a token bucket for text (also templates and sender actions) and one for
  media make sends wait instead of failing. Rate-limit errors and `X-Business-Use-Case-Usage`'s
  `estimated_time_to_regain_access` throttle the Page (`ChannelUnavailable` with `retry_after_s`,
  no HTTP call). A channel-wide error pauses the Page for `pause_s`: sends to it are rejected at
  once (`MessageRejected`, no HTTP call) until the pause ends, by the injected `Clock`. A Customer
  Matching refusal (200/2018027, 200/2018021) stops only the Page's sends by phone number, for
  `phone_pause_s`.
  **Known limitation:** this state is in process memory, not shared across nodes (see `pacing`).
* **Sends by phone number** (Customer Matching: no PSID known for the number) end when Meta takes
  them, `DELIVERED_TO_OPERATOR`: Meta posts no delivery, echo or read for them, so a wait for a
  receipt would only expire (docs/decisions/0007-messenger-as-meta-documents.md). A step whose
  criterion is SEEN cannot be met there: it is not sent, and fails over at once
  (docs/decisions/0011-success-criteria.md).
* **Logging.** Message id, Page id, Graph `message_id` and `fbtrace_id`; never tokens or URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re

import aiohttp
import httpx
import msgspec
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from omnirelay.channels.messenger.errors import Action, classify, find_rule
from omnirelay.channels.messenger.pacing import PageGates, regain_access_after_s, retry_after_header_s
from omnirelay.domain.errors import ChannelUnavailable, MessageRejected
from omnirelay.domain.messages import (
    MEDIA_KINDS,
    AddressKind,
    ButtonKind,
    Channel,
    FacebookContent,
    FacebookKind,
    Outbound,
    SenderAction,
    SuccessCriterion,
)
from omnirelay.domain.statuses import (
    DELIVERED_TO_OPERATOR,
    EC_CRITERION_NOT_REPORTED,
    EC_INVALID_DESTINATION_ADDRESS,
    EC_UNKNOWN_APPLICATION,
    EC_UNKNOWN_USER,
    PENDING_WAITING_DELIVERY,
    REJECTED_DESTINATION,
    REJECTED_DESTINATION_NOT_REGISTERED,
    REJECTED_SOURCE,
    UNDELIVERABLE_NOT_SENT,
)
from omnirelay.ports import Accepted, Clock, MessengerApplication, MessengerDirectory, MessengerPageState

logger = logging.getLogger(__name__)

_ATTACHMENT_TYPES = {
    FacebookKind.IMAGE: "image",
    FacebookKind.AUDIO: "audio",
    FacebookKind.VIDEO: "video",
    FacebookKind.FILE: "file",
}
_SENDER_ACTIONS = {
    SenderAction.MARK_SEEN: "mark_seen",
    SenderAction.TYPING_ON: "typing_on",
    SenderAction.TYPING_OFF: "typing_off",
}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

Json = dict[str, object]


class _GraphError(msgspec.Struct):
    message: str = ""
    code: int | None = None
    error_subcode: int | None = None
    fbtrace_id: str | None = None
    is_transient: bool = False


class _ErrorBody(msgspec.Struct):
    error: _GraphError


class _SendResult(msgspec.Struct):
    recipient_id: str | None = None
    message_id: str | None = None


class GraphResponse(msgspec.Struct, frozen=True):
    """A Send API answer as `GraphSender` classifies it, whatever HTTP client fetched it: the status,
    the body and the three headers it reads."""

    status: int
    content: bytes
    business_use_case_usage: str | None = None  # X-Business-Use-Case-Usage
    retry_after: str | None = None  # Retry-After
    fb_trace_id: str | None = None  # x-fb-trace-id

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300


def open_graph_session(
    base_url: str, *, max_connections: int = 200, keepalive_s: float = 5
) -> aiohttp.ClientSession:
    """The HTTP client of `GraphSender`s that call `base_url`; open it in the event loop and `await
    session.close()` at shutdown. Like the httpx client it replaces: the proxy of the environment
    (`HTTP(S)_PROXY`, `NO_PROXY`; looked up once here, as httpx did, not on every call as aiohttp's
    `trust_env` would: two thread hops per call), httpx's TLS trust (certifi, or `SSL_CERT_FILE` /
    `SSL_CERT_DIR`), idle connections kept 5 s. No cookie jar: the Graph API needs none, and one
    would be shared by every Page. Give it at least as many connections as the senders' `max_in_flight`."""
    proxy: URL | None = None
    proxy_auth: aiohttp.BasicAuth | None = None
    with contextlib.suppress(LookupError):
        proxy, proxy_auth = get_env_proxy_for_url(URL(base_url))
    connector = aiohttp.TCPConnector(
        limit=max_connections, keepalive_timeout=keepalive_s, ssl=httpx.create_ssl_context()
    )
    return aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), proxy=proxy, proxy_auth=proxy_auth
    )


def appsecret_proof(access_token: str, app_secret: str) -> str:
    """`hex(HMAC-SHA256(key=app_secret, msg=access_token))`, as Graph's "Require App Secret" wants."""
    return hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()


def _bad_content(problem: str) -> MessageRejected:
    rule = find_rule(100, None)  # the same verdict as Meta's "invalid parameter"
    assert rule is not None
    return MessageRejected(
        status=rule.status, error=rule.error, reason=f"invalid Messenger content: {problem}"
    )


def _absolute_url(url: str) -> str:
    """Infobip's documented button URL is `www.infobip.com` (docs/api.md#messenger-message-types); Meta
    wants a scheme."""
    return url if _SCHEME.match(url) else f"https://{url}"


def _message(content: FacebookContent) -> Json:
    kind = content.kind
    if kind is FacebookKind.TEXT:
        if not content.text:
            raise _bad_content("TEXT without text")
        return {"text": content.text}
    if kind in _ATTACHMENT_TYPES:
        if not content.url:
            raise _bad_content(f"{kind} without url")
        return {
            "attachment": {
                "type": _ATTACHMENT_TYPES[kind],
                "payload": {"url": content.url, "is_reusable": True},
            }
        }
    if kind is FacebookKind.TEMPLATE:
        if not content.text or not content.buttons:
            raise _bad_content("TEMPLATE needs text and buttons")
        buttons: list[Json] = []
        for button in content.buttons:
            if button.kind is ButtonKind.POSTBACK:
                buttons.append({"type": "postback", "title": button.title, "payload": button.payload or ""})
            elif button.url:
                buttons.append({"type": "web_url", "title": button.title, "url": _absolute_url(button.url)})
            else:
                raise _bad_content("URL button without url")
        payload: Json = {"template_type": "button", "text": content.text, "buttons": buttons}
        return {"attachment": {"type": "template", "payload": payload}}
    raise _bad_content(f"unsupported kind {kind}")


def build_body(recipient: dict[str, str], content: FacebookContent, message_id: str) -> Json:
    """The Send API body for one content; `message_id` becomes `message.metadata`."""
    if content.kind is FacebookKind.SENDER_ACTION:
        if content.sender_action is None:
            raise _bad_content("SENDER_ACTION without sender_action")
        return {"recipient": recipient, "sender_action": _SENDER_ACTIONS[content.sender_action]}
    message = _message(content)
    message["metadata"] = message_id
    body: Json = {"recipient": recipient, "messaging_type": content.messaging_type.value, "message": message}
    if content.tag is not None:
        body["tag"] = content.tag.value
    return body


class GraphSender:
    """Sends Messenger messages through the Graph Send API. See the module docstring."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        directory: MessengerDirectory,
        *,
        base_url: str,
        api_version: str = "v25.0",
        clock: Clock,
        text_rate_per_s: float = 250,
        media_rate_per_s: float = 8,
        timeout_s: float = 10,
        pause_s: float = 60,
        phone_pause_s: float = 600,
        rate_limit_backoff_s: float = 10,
        max_in_flight: int = 64,
    ) -> None:
        self.channel = Channel.FACEBOOK
        self._session = session
        self._directory = directory
        self._base_url = base_url.rstrip("/")
        self._api_version = api_version.strip("/")
        self._clock = clock
        self._timeout_s = timeout_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._pause_s = pause_s
        self._phone_pause_s = phone_pause_s
        self._rate_limit_backoff_s = rate_limit_backoff_s
        self._gates = PageGates(text_rate_per_s=text_rate_per_s, media_rate_per_s=media_rate_per_s)
        # At most this many calls at once: the rest wait here, not in the client's connection pool
        # (httpcore's, before aiohttp, scanned all its connections and queued requests on every
        # request). Give the session at least as many connections (`open_graph_session` does).
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._targets: dict[tuple[str, str, str], tuple[URL, dict[str, str]]] = {}

    def scale(self, share: float) -> None:
        """Pace every Page at `share` of its rates: this node's part of the per-Page budget
        (docs/architecture.md#cluster-wide-budgets)."""
        self._gates.scale(share)

    def throttles_learnt(self) -> dict[str, float]:
        """Pages Meta throttled for this node since the last call: Page -> seconds still to wait
        (told to the other nodes: docs/architecture.md#cluster-wide-budgets)."""
        return self._gates.learnt(self._clock.now())

    def throttled_elsewhere(self, waits: dict[str, float]) -> None:
        """Pages Meta throttled for other nodes: Page -> seconds still to wait."""
        self._gates.throttled_elsewhere(self._clock.now(), waits)

    def page_states(self) -> list[MessengerPageState]:
        """Every Page this sender has sent from, and its pauses now (the console's channels page)."""
        return self._gates.states(self._clock.now())

    async def send(self, outbound: Outbound) -> Accepted:
        content = outbound.content
        if not isinstance(content, FacebookContent):
            raise _bad_content("not a FACEBOOK content")
        app = await self._directory.application(outbound.sender)
        if app is None:
            raise MessageRejected(
                status=REJECTED_SOURCE,
                error=EC_UNKNOWN_APPLICATION,
                reason=f"unknown Messenger application {outbound.sender!r}",
            )
        recipient = await self._recipient(app, outbound)
        by_phone = "phone_number" in recipient
        if by_phone and outbound.criterion is SuccessCriterion.SEEN:
            # Meta posts no read for it: the step could only expire, after the sender paid for it
            raise MessageRejected(
                status=UNDELIVERABLE_NOT_SENT,
                error=EC_CRITERION_NOT_REPORTED,
                reason="criterion SEEN: Meta reports no read of a send by phone number; not sent",
            )
        body = build_body(recipient, content, outbound.message_id)
        gate = self._gates[app.page_id]
        gate.check(self._clock.now(), app.page_id, by_phone=by_phone)
        await (gate.media if content.kind in MEDIA_KINDS else gate.text).acquire()
        gate.check(self._clock.now(), app.page_id, by_phone=by_phone)  # a pause may have begun meanwhile
        response = await self._post(app, body, outbound.message_id)
        return self._outcome(
            app,
            response,
            outbound.message_id,
            sender_action=content.kind is FacebookKind.SENDER_ACTION,
            by_phone=by_phone,
            criterion=outbound.criterion,
        )

    async def _recipient(self, app: MessengerApplication, outbound: Outbound) -> dict[str, str]:
        if outbound.to_kind is AddressKind.USER_KEY:
            user = await self._directory.user(app.key, outbound.to)
            if user is None:
                raise MessageRejected(
                    status=REJECTED_DESTINATION_NOT_REGISTERED,
                    error=EC_UNKNOWN_USER,
                    reason=f"no user {outbound.to!r} in application {app.key!r}",
                )
            return {"id": user.psid}
        digits = outbound.to.removeprefix("+")
        if not digits.isdigit():
            raise MessageRejected(
                status=REJECTED_DESTINATION,
                error=EC_INVALID_DESTINATION_ADDRESS,
                reason="phone number is not all digits",
            )
        user = await self._directory.user_by_phone(app.key, digits)
        if user is not None:
            return {"id": user.psid}
        return {"phone_number": f"+{digits}"}  # Messenger customer matching

    def _target(self, app: MessengerApplication) -> tuple[URL, dict[str, str]]:
        """The URL (with `appsecret_proof`) and headers of a Page's sends, built once per credentials.
        The URL is parsed here, once, not by aiohttp on every call (~25 µs of a ~250 µs call)."""
        key = (app.page_id, app.page_access_token, app.app_secret)
        found = self._targets.get(key)
        if found is None:
            if len(self._targets) > 10_000:
                self._targets.clear()
            proof = appsecret_proof(app.page_access_token, app.app_secret)
            url = URL(f"{self._base_url}/{self._api_version}/{app.page_id}/messages").with_query(
                appsecret_proof=proof
            )
            headers = {"Authorization": f"Bearer {app.page_access_token}", "Content-Type": "application/json"}
            found = self._targets[key] = (url, headers)
        return found

    async def _post(self, app: MessengerApplication, body: Json, message_id: str) -> GraphResponse:
        """The one place that knows the HTTP client."""
        url, headers = self._target(app)
        try:
            async with (
                self._in_flight,
                self._session.post(
                    url,
                    headers=headers,
                    data=msgspec.json.encode(body),
                    timeout=self._timeout,
                    allow_redirects=False,
                ) as response,
            ):
                content = await response.read()
                found = response.headers
                return GraphResponse(
                    status=response.status,
                    content=content,
                    business_use_case_usage=found.get("x-business-use-case-usage"),
                    retry_after=found.get("retry-after"),
                    fb_trace_id=found.get("x-fb-trace-id"),
                )
        except TimeoutError as exc:  # aiohttp's own timeout errors are TimeoutErrors too
            logger.warning("Graph send timed out: message_id=%s page_id=%s", message_id, app.page_id)
            raise ChannelUnavailable(
                reason=f"Graph API did not answer within {self._timeout_s} s; the outcome is unknown"
            ) from exc
        except aiohttp.ClientError as exc:
            logger.warning(
                "Graph send failed: message_id=%s page_id=%s error=%s",
                message_id,
                app.page_id,
                type(exc).__name__,
            )
            raise ChannelUnavailable(reason=f"Graph API unreachable ({type(exc).__name__})") from exc

    def _outcome(
        self,
        app: MessengerApplication,
        response: GraphResponse,
        message_id: str,
        *,
        sender_action: bool,
        by_phone: bool,
        criterion: SuccessCriterion = SuccessCriterion.DELIVERED,
    ) -> Accepted:
        gate = self._gates[app.page_id]
        now = self._clock.now()
        usage_wait_s = regain_access_after_s(response.business_use_case_usage)
        if usage_wait_s is not None:
            logger.warning("Graph usage limit: page_id=%s paused for %.0f s", app.page_id, usage_wait_s)
            self._gates.throttle(app.page_id, now, usage_wait_s)
        if response.is_success:
            return self._accepted(
                app, response, message_id, sender_action=sender_action, by_phone=by_phone, criterion=criterion
            )

        try:
            error = msgspec.json.decode(response.content, type=_ErrorBody).error
        except msgspec.DecodeError:
            error = _GraphError()
        retry_after_s = usage_wait_s or retry_after_header_s(response.retry_after)
        verdict = classify(
            response.status,
            error.code,
            error.error_subcode,
            is_transient=error.is_transient,
            retry_after_s=retry_after_s,
        )
        fbtrace_id = error.fbtrace_id or response.fb_trace_id
        # A refusal of this one message (fail over) is logged by the dispatcher with this reason;
        # what concerns the channel (retry, pause) is worth a warning here.
        logger.log(
            logging.DEBUG if verdict.action is Action.FAIL_OVER else logging.WARNING,
            "Graph send failed: message_id=%s page_id=%s http_status=%s code=%s subcode=%s"
            " fbtrace_id=%s action=%s",
            message_id,
            app.page_id,
            response.status,
            error.code,
            error.error_subcode,
            fbtrace_id,
            verdict.action,
        )
        detail = _scrub(error.message, app) or f"HTTP {response.status}"
        reason = (
            f"Graph error code={error.code} subcode={error.error_subcode} ({verdict.meaning}): {detail}"
            f" [fbtrace_id={fbtrace_id}]"
        )
        if verdict.action is Action.RETRY:
            retry_s = verdict.retry_after_s
            if verdict.rate_limit:
                retry_s = retry_s if retry_s is not None else self._rate_limit_backoff_s
                self._gates.throttle(app.page_id, now, retry_s)
            raise ChannelUnavailable(reason=reason, retry_after_s=retry_s)
        if verdict.action is Action.FAIL_OVER_AND_PAUSE:
            logger.error(
                "Messenger page paused for %.0f s: page_id=%s code=%s subcode=%s fbtrace_id=%s",
                self._pause_s,
                app.page_id,
                error.code,
                error.error_subcode,
                fbtrace_id,
            )
            gate.close(now, self._pause_s, status=verdict.status, error=verdict.error, reason=reason)
        if verdict.action is Action.FAIL_OVER_AND_PAUSE_PHONE:
            # Customer Matching concerns sends by phone number only: PSID sends go on.
            logger.error(
                "Messenger page stops sends by phone number for %.0f s: page_id=%s code=%s subcode=%s"
                " fbtrace_id=%s",
                self._phone_pause_s,
                app.page_id,
                error.code,
                error.error_subcode,
                fbtrace_id,
            )
            gate.close_to_phones(
                now, self._phone_pause_s, status=verdict.status, error=verdict.error, reason=reason
            )
        raise MessageRejected(
            status=verdict.status,
            error=verdict.error,
            reason=reason,
            pause_channel=verdict.action is Action.FAIL_OVER_AND_PAUSE,
        )

    def _accepted(
        self,
        app: MessengerApplication,
        response: GraphResponse,
        message_id: str,
        *,
        sender_action: bool,
        by_phone: bool,
        criterion: SuccessCriterion,
    ) -> Accepted:
        try:
            result = msgspec.json.decode(response.content, type=_SendResult)
        except msgspec.DecodeError as exc:
            # Like Meta's 1/1357046: the message may have gone out; the echo will tell.
            raise ChannelUnavailable(
                reason="unreadable Graph API success response; the outcome is unknown"
            ) from exc
        if sender_action:
            logger.info("Messenger sender action accepted: message_id=%s page_id=%s", message_id, app.page_id)
            return Accepted(refs=(), status=DELIVERED_TO_OPERATOR)
        if not result.message_id:
            logger.warning(
                "Graph accepted a send without message_id: message_id=%s page_id=%s", message_id, app.page_id
            )
            return Accepted(refs=(), status=PENDING_WAITING_DELIVERY)
        logger.info(
            "Messenger send accepted: message_id=%s page_id=%s mid=%s fbtrace_id=%s by_phone=%s",
            message_id,
            app.page_id,
            result.message_id,
            response.fb_trace_id,
            by_phone,
        )
        if by_phone:
            # Meta posts no delivery (nor echo, nor read) for a send by phone number: waiting for
            # one would end the step EXPIRED and fail over although Messenger took the message.
            # Delivered to the platform, not known to have reached the handset.
            if criterion is SuccessCriterion.DELIVERED:
                logger.info(
                    "criterion DELIVERED met at Meta's acceptance (no delivery is reported for a send "
                    "by phone number): message_id=%s",
                    message_id,
                )
            return Accepted(refs=(result.message_id,), status=DELIVERED_TO_OPERATOR)
        return Accepted(refs=(result.message_id,), status=PENDING_WAITING_DELIVERY)


def _scrub(text: str, app: MessengerApplication) -> str:
    """Meta's error text, with anything secret of this application masked."""
    for secret in (app.page_access_token, app.app_secret):
        if secret:
            text = text.replace(secret, "***")
    return text
