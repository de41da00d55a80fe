"""`HttpWebhookPoster`: the httpx adapter for pushes to customers' URLs."""

from __future__ import annotations

import httpx

from omnirelay.domain.errors import ChannelUnavailable


class HttpWebhookPoster:
    def __init__(self, client: httpx.AsyncClient, *, timeout_s: float = 10.0) -> None:
        self._client = client
        self._timeout_s = timeout_s

    async def post_json(self, url: str, body: bytes) -> int:
        """The HTTP status; `ChannelUnavailable` for anything that kept the post from an answer."""
        try:
            response = await self._client.post(
                url, content=body, headers={"Content-Type": "application/json"}, timeout=self._timeout_s
            )
        except Exception as exc:
            # Every failure of a post is the customer URL's problem, a failed try for the caller to
            # count: not only httpx's HTTPError but InvalidURL, IDNAError (a UnicodeError), the
            # ExceptionGroup of a port out of range... (CancelledError is not an Exception.)
            raise ChannelUnavailable(reason=f"{type(exc).__name__} posting to customer URL") from exc
        return response.status_code
