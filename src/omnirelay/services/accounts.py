"""Accounts and authentication (docs/api.md#authentication): Basic, `App` API keys and IBSSO sessions.

Passwords are hashed with scrypt; API keys and session tokens are stored as SHA-256 digests.
The slow password hash is not paid on every request: a successful verification is cached
briefly, keyed by a digest of the presented credentials (never by the credentials themselves).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable

from omnirelay.domain.errors import Unauthorized, ValidationFailed
from omnirelay.domain.times import to_ms
from omnirelay.ports import AccountStore, Clock

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
# OWASP ASVS 4.0 V2.1.1 and V2.1.2: at least 12 characters, up to at least 64 allowed; the cap
# keeps one login from costing a scrypt of megabytes (docs/decisions/0009-newcomer-and-packaging.md).
MIN_PASSWORD, MAX_PASSWORD = 12, 128


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def new_password_hash(password: str) -> str:
    """The stored form of a password an operator chooses for an account, or `ValidationFailed`."""
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(field="password", problem=f"must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ValidationFailed(field="password", problem=f"must be at most {MAX_PASSWORD} characters")
    return hash_password(password)


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(
        password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=len(digest) // 2
    )
    return hmac.compare_digest(candidate.hex(), digest)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_api_key() -> str:
    return secrets.token_hex(16) + "-" + secrets.token_urlsafe(24)


class Authenticator:
    def __init__(
        self, store: AccountStore, clock: Clock, *, cache_s: float = 60.0, session_idle_s: float = 3600
    ):
        self._store = store
        self._clock = clock
        self._cache_s = cache_s
        self._idle_ms = int(session_idle_s * 1000)
        self._cache: dict[str, tuple[float, int]] = {}
        self._pending: dict[str, asyncio.Future[int]] = {}

    async def authenticate(self, header: str | None) -> int:
        """The account id for an Authorization header, or `Unauthorized`."""
        if not header:
            raise Unauthorized()
        key = digest(header)
        hit = self._cache.get(key)
        now_mono = time.monotonic()
        if hit is not None and hit[0] > now_mono:
            return hit[1]
        # One verification per credentials at a time: concurrent requests with the same header (64
        # connections starting together) wait for it instead of each paying the slow hash.
        task = self._pending.get(key)
        if task is None:
            task = self._pending[key] = asyncio.ensure_future(self._verify(header, key))
            task.add_done_callback(lambda t: self._verified(key, t))
        try:
            return await asyncio.shield(task)
        except Unauthorized:
            raise Unauthorized() from None  # each caller its own exception, not one shared instance

    def _verified(self, key: str, task: asyncio.Future[int]) -> None:
        self._pending.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved: also when every waiter has gone

    async def _verify(self, header: str, key: str) -> int:
        scheme, _, credentials = header.strip().partition(" ")
        check: Callable[[str], Awaitable[int | None]] | None = {
            "basic": self._basic,
            "app": self._app,
            "ibsso": self._ibsso,
        }.get(scheme.lower())
        account_id = await check(credentials.strip()) if check is not None else None
        if account_id is None:
            raise Unauthorized()
        if len(self._cache) > 50_000:
            self._cache.clear()
        # Sessions are re-checked more often so that logout and idle expiry take effect quickly.
        ttl = self._cache_s if scheme.lower() != "ibsso" else min(self._cache_s, 5.0)
        self._cache[key] = (time.monotonic() + ttl, account_id)
        return account_id

    async def _basic(self, credentials: str) -> int | None:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        username, sep, password = decoded.partition(":")
        if not sep:
            return None
        return await self.check_password(username, password)

    async def check_password(self, username: str, password: str) -> int | None:
        found = await self._store.account_by_username(username)
        if found is None or not verify_password(password, found[1]):
            return None
        return found[0]

    async def _app(self, api_key: str) -> int | None:
        return await self._store.account_by_key_digest(digest(api_key))

    async def _ibsso(self, token: str) -> int | None:
        token_digest = digest(token)
        found = await self._store.session(token_digest)
        now = self._clock.now()
        if found is None or to_ms(now) - found[1] > self._idle_ms:
            return None
        await self._store.touch_session(token_digest, now)
        return found[0]

    async def open_session(self, username: str, password: str) -> str:
        account_id = await self.check_password(username, password)
        if account_id is None:
            raise Unauthorized()
        token = secrets.token_urlsafe(32)
        await self._store.create_session(digest(token), account_id, self._clock.now())
        return token

    async def close_session(self, header: str | None) -> None:
        scheme, _, token = (header or "").strip().partition(" ")
        if scheme.lower() != "ibsso" or not token.strip():
            raise Unauthorized()
        await self.authenticate(header)
        await self._store.delete_session(digest(token.strip()))
        self._cache.pop(digest(header or ""), None)
