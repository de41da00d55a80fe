"""Console sign-in (docs/console.md#sign-in-and-sessions): who a session cookie belongs to, and its
CSRF token.

An account signs in with its API username and password and gets an IBSSO session
(`Authenticator.open_session`): the same store, idle expiry and logout as the API's sessions,
shared by every node. The operator signs in with the operator token and gets a session of the
operator's own (`OperatorSessionStore`: the operator is no account), with the same idle expiry and
shared by every node too. The cookie's value names which: `a.<IBSSO token>` or `o.<random>`. Only
digests of either are kept.

The CSRF token of a session is a digest of its cookie value: a page from the gateway carries it,
another site can neither read the HttpOnly cookie nor derive the token; every node derives the
same token, also after a restart.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from omnirelay.domain.errors import Unauthorized
from omnirelay.domain.times import to_ms
from omnirelay.ports import Clock, OperatorSessionStore
from omnirelay.services.accounts import Authenticator, digest
from omnirelay.services.operator import OperatorGuard


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is signed in: an account (`account_id`), or the operator (`account_id` None)."""

    account_id: int | None

    @property
    def is_operator(self) -> bool:
        return self.account_id is None


OPERATOR = Principal(None)


class ConsoleSessions:
    def __init__(
        self,
        auth: Authenticator,
        operator: OperatorGuard | None,
        operator_sessions: OperatorSessionStore,
        clock: Clock,
        *,
        idle_s: float = 3600,
    ) -> None:
        self._auth = auth
        self._operator = operator
        self._operator_sessions = operator_sessions
        self._clock = clock
        self._idle_s = idle_s

    async def sign_in_account(self, username: str, password: str) -> str:
        """A new session cookie value for the account, or `Unauthorized`."""
        return "a." + await self._auth.open_session(username, password)

    async def sign_in_operator(self, token: str) -> str:
        """A new session cookie value for the operator, or `Unauthorized`."""
        if self._operator is None:
            raise Unauthorized()
        self._operator.check(f"Bearer {token}")
        value = "o." + secrets.token_urlsafe(32)
        now = self._clock.now()
        await self._operator_sessions.create(digest(value), now)
        return value

    async def principal(self, cookie: str | None) -> Principal | None:
        """Who the session cookie belongs to; None when it names no live session."""
        if not cookie:
            return None
        kind, _, secret = cookie.partition(".")
        if kind == "a" and secret:
            try:
                return Principal(await self._auth.authenticate(f"IBSSO {secret}"))
            except Unauthorized:
                return None
        if kind == "o" and secret:
            key = digest(cookie)
            used = await self._operator_sessions.last_used(key)
            now = self._clock.now()
            if used is None or to_ms(now) - used > self._idle_s * 1000:
                return None
            await self._operator_sessions.touch(key, now)
            return OPERATOR
        return None

    async def sign_out(self, cookie: str | None) -> None:
        if not cookie:
            return
        kind, _, secret = cookie.partition(".")
        if kind == "a" and secret:
            with contextlib.suppress(Unauthorized):  # already ended
                await self._auth.close_session(f"IBSSO {secret}")
        elif kind == "o":
            # and every operator session idle too long, so that the table holds the live ones
            idle_before = self._clock.now() - timedelta(seconds=self._idle_s)
            await self._operator_sessions.delete(digest(cookie), idle_before=idle_before)

    def csrf_token(self, cookie: str) -> str:
        return hashlib.sha256(b"omnirelay console csrf\x00" + cookie.encode()).hexdigest()

    def csrf_ok(self, cookie: str | None, presented: str | None) -> bool:
        if not cookie or not presented:
            return False
        return hmac.compare_digest(self.csrf_token(cookie), presented)
