"""Messenger applications and their users, as the management API sees them
(docs/api.md#messenger-applications-and-users).

Every call is scoped to the caller's account: another account's application keys behave exactly
like keys that do not exist (404). `pageAccessToken` and `appSecret` are write-only: they are
stored for the Send API and webhook signatures and never returned or logged.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass, replace
from enum import Enum

from omnirelay.domain import phones
from omnirelay.domain.errors import NotFound, ValidationFailed
from omnirelay.domain.scenarios import new_key
from omnirelay.ports import Clock, MessengerApplication, MessengerApplicationStore, MessengerUser

log = logging.getLogger(__name__)

NAME_LIMIT = 200
PAGE_ID = re.compile(r"^[0-9]{1,64}$")
SECRET_LIMIT = 1000
VERIFY_TOKEN_LIMIT = 200
URL_LIMIT = 2000


class Keep(Enum):
    """A field left out of a change: keep its value."""

    KEEP = "KEEP"


KEEP = Keep.KEEP


@dataclass(frozen=True, slots=True)
class ApplicationChange:
    """A create (every field given, or generated) or a partial update (KEEP what is left out)."""

    name: str | Keep | None = KEEP
    page_id: str | Keep | None = KEEP
    page_access_token: str | Keep | None = KEEP
    app_secret: str | Keep | None = KEEP
    verify_token: str | Keep | None = KEEP
    webhook_url: str | Keep | None = KEEP  # None clears it


def callback_path(key: str) -> str:
    """The webhook path to register in Meta's app dashboard (prefix it with the public base URL)."""
    return f"/webhooks/facebook/{key}"


def _absolute_http_url(url: str) -> bool:
    scheme, sep, rest = url.partition("://")
    return bool(sep) and scheme.lower() in ("http", "https") and bool(rest.split("/")[0])


def _text(value: str | Keep | None, field: str, limit: int, *, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(field=field, problem="is required and must not be empty")
    if len(value) > limit:
        raise ValidationFailed(field=field, problem=f"must be at most {limit} characters")
    if pattern is not None and not pattern.match(value):
        raise ValidationFailed(field=field, problem="must be the numeric id of the Facebook Page")
    return value


def _webhook_url(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > URL_LIMIT or not _absolute_http_url(value):
        raise ValidationFailed(field="webhookUrl", problem="must be an absolute http(s) URL")
    return value


class MessengerApplications:
    def __init__(self, store: MessengerApplicationStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    # -- applications -------------------------------------------------------------------------

    async def create(self, account_id: int, change: ApplicationChange) -> MessengerApplication:
        verify_token = change.verify_token
        if verify_token is KEEP or verify_token is None:
            verify_token = secrets.token_urlsafe(24)
        app = MessengerApplication(
            key=new_key(),
            account_id=account_id,
            name=_text(change.name, "name", NAME_LIMIT),
            page_id=_text(change.page_id, "pageId", 64, pattern=PAGE_ID),
            page_access_token=_text(change.page_access_token, "pageAccessToken", SECRET_LIMIT),
            app_secret=_text(change.app_secret, "appSecret", SECRET_LIMIT),
            verify_token=_text(verify_token, "verifyToken", VERIFY_TOKEN_LIMIT),
            webhook_url=_webhook_url(
                change.webhook_url if not isinstance(change.webhook_url, Keep) else None
            ),
        )
        await self._store.create_application(app, self._clock.now())
        log.info("Messenger application %s created for page %s", app.key, app.page_id)
        return app

    async def get(self, account_id: int, key: str) -> MessengerApplication:
        app = await self._store.application(key)
        if app is None or app.account_id != account_id:
            raise NotFound("Application not found")
        return app

    async def applications(self, account_id: int) -> list[MessengerApplication]:
        return await self._store.list_applications(account_id)

    async def update(self, account_id: int, key: str, change: ApplicationChange) -> MessengerApplication:
        """Fields left out keep their values (the secrets cannot be read back, so this matters);
        `webhookUrl: null` removes forwarding."""
        app = await self.get(account_id, key)
        if not isinstance(change.name, Keep):
            app = replace(app, name=_text(change.name, "name", NAME_LIMIT))
        if not isinstance(change.page_id, Keep):
            app = replace(app, page_id=_text(change.page_id, "pageId", 64, pattern=PAGE_ID))
        if not isinstance(change.page_access_token, Keep):
            token = _text(change.page_access_token, "pageAccessToken", SECRET_LIMIT)
            app = replace(app, page_access_token=token)
        if not isinstance(change.app_secret, Keep):
            app = replace(app, app_secret=_text(change.app_secret, "appSecret", SECRET_LIMIT))
        if not isinstance(change.verify_token, Keep):
            app = replace(app, verify_token=_text(change.verify_token, "verifyToken", VERIFY_TOKEN_LIMIT))
        if not isinstance(change.webhook_url, Keep):
            app = replace(app, webhook_url=_webhook_url(change.webhook_url))
        await self._store.update_application(app)
        log.info("Messenger application %s updated", app.key)
        return app

    async def delete(self, account_id: int, key: str) -> None:
        if not await self._store.delete_application(account_id, key):
            raise NotFound("Application not found")
        log.info("Messenger application %s deleted with its users", key)

    # -- users ----------------------------------------------------------------------------------

    async def users(self, account_id: int, key: str, limit: int, offset: int) -> list[MessengerUser]:
        await self.get(account_id, key)
        return await self._store.list_users(key, limit, offset)

    async def user(self, account_id: int, key: str, user_key: str) -> MessengerUser:
        await self.get(account_id, key)
        user = await self._store.user(key, user_key)
        if user is None:
            raise NotFound("User not found")
        return user

    async def set_phone(
        self, account_id: int, key: str, user_key: str, phone_number: str | None
    ) -> MessengerUser:
        """Set (international digits, optional '+', spaces ignored; stored without '+') or clear."""
        digits = None
        if phone_number is not None:
            digits = phones.normalise(phone_number)
            if digits is None:
                raise ValidationFailed(
                    field="phoneNumber",
                    problem="must be an international phone number (country code and number, digits only)",
                )
        user = await self.user(account_id, key, user_key)
        if not await self._store.set_user_phone(key, user_key, digits):
            raise NotFound("User not found")
        return replace(user, phone_number=digits)

    async def delete_user(self, account_id: int, key: str, user_key: str) -> None:
        await self.get(account_id, key)
        if not await self._store.delete_user(key, user_key):
            raise NotFound("User not found")
