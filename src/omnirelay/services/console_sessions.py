"""Console sign-in (docs/console.md#sign-in-and-sessions): who a session cookie belongs to, and its
CSRF token.

An account signs in with its API username and password and gets an IBSSO session
(`Authenticator.open_session`): the same store, idle expiry and logout as the API's sessions,
shared by every node. The operator signs in with the operator token and gets a session kept in
this process only (the operator is no account, and `auth_sessions` rows belong to accounts).
The cookie's value names which: `a.<IBSSO token>` or `o.<random>`. Only digests of either are kept.

The CSRF token of a session is a digest of its cookie value: a page from the gateway carries it,
another site can neither read the HttpOnly cookie nor derive the token; every node derives the
same token, also after a restart.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from omnirelay.domain.errors import Unauthorized
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
    def __init__(self, auth: Authenticator, operator: OperatorGuard | None, *, idle_s: float = 3600) -> None:
        self._auth = auth
        self._operator = operator
        self._idle_s = idle_s
        self._operator_sessions: dict[str, float] = {}  # digest -> last used (monotonic)

    async def sign_in_account(self, username: str, password: str) -> str:
        """A new session cookie value for the account, or `Unauthorized`."""
        return "a." + await self._auth.open_session(username, password)

    def sign_in_operator(self, token: str) -> str:
        """A new session cookie value for the operator, or `Unauthorized`."""
        if self._operator is None:
            raise Unauthorized()
        self._operator.check(f"Bearer {token}")
        value = "o." + secrets.token_urlsafe(32)
        self._forget_idle()
        self._operator_sessions[digest(value)] = time.monotonic()
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
            used = self._operator_sessions.get(key)
            now = time.monotonic()
            if used is None or now - used > self._idle_s:
                self._operator_sessions.pop(key, None)
                return None
            self._operator_sessions[key] = now
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
            self._operator_sessions.pop(digest(cookie), None)

    def csrf_token(self, cookie: str) -> str:
        return hashlib.sha256(b"omnirelay console csrf\x00" + cookie.encode()).hexdigest()

    def csrf_ok(self, cookie: str | None, presented: str | None) -> bool:
        if not cookie or not presented:
            return False
        return hmac.compare_digest(self.csrf_token(cookie), presented)

    def _forget_idle(self) -> None:
        now = time.monotonic()
        for key, used in list(self._operator_sessions.items()):
            if now - used > self._idle_s:
                del self._operator_sessions[key]
