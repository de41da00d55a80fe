"""msgspec types of the Messenger management API (applications and users)."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from omnirelay.http import patterns
from omnirelay.services.messenger_users import (
    NAME_LIMIT,
    PAGE_ID,
    SECRET_LIMIT,
    URL_LIMIT,
    VERIFY_TOKEN_LIMIT,
)


class ApplicationIn(Struct, forbid_unknown_fields=False):
    """Create: `name`, `pageId`, `pageAccessToken`, `appSecret` required. Update: any subset."""

    name: str | UnsetType | None = UNSET
    pageId: str | UnsetType | None = UNSET
    pageAccessToken: str | UnsetType | None = UNSET
    appSecret: str | UnsetType | None = UNSET
    verifyToken: str | UnsetType | None = UNSET
    webhookUrl: str | UnsetType | None = UNSET


# The document's account of what `MessengerApplications` checks (services/messenger_users.py);
# decoding stays with `ApplicationIn`, so that a broken rule is answered with the field's name.
_NON_BLANK = patterns.NON_BLANK  # not empty, not only whitespace
_URL = patterns.ABSOLUTE_URL
Name = Annotated[str, Meta(max_length=NAME_LIMIT, pattern=_NON_BLANK)]
PageId = Annotated[str, Meta(pattern=PAGE_ID.pattern, description="The Facebook Page's numeric id")]
Secret = Annotated[str, Meta(max_length=SECRET_LIMIT, pattern=_NON_BLANK, description="Write-only")]
VerifyToken = Annotated[str, Meta(max_length=VERIFY_TOKEN_LIMIT, pattern=_NON_BLANK)]
WebhookUrl = Annotated[
    str, Meta(max_length=URL_LIMIT, pattern=_URL, description="Where inbound messages are forwarded")
]


class ApplicationCreateIn(Struct, forbid_unknown_fields=False):
    """A new application; `verifyToken` is generated when left out or null."""

    name: Name
    pageId: PageId
    pageAccessToken: Secret
    appSecret: Secret
    verifyToken: VerifyToken | None = None
    webhookUrl: WebhookUrl | None = None


class ApplicationUpdateIn(Struct, forbid_unknown_fields=False):
    """The fields present are changed; `webhookUrl: null` stops forwarding."""

    name: Name | UnsetType = UNSET
    pageId: PageId | UnsetType = UNSET
    pageAccessToken: Secret | UnsetType = UNSET
    appSecret: Secret | UnsetType = UNSET
    verifyToken: VerifyToken | UnsetType = UNSET
    webhookUrl: WebhookUrl | UnsetType | None = UNSET


class ApplicationOut(Struct):
    key: str
    name: str
    pageId: str
    verifyToken: str
    webhookUrl: str | None
    callbackUrl: str


class ApplicationsOut(Struct):
    applications: list[ApplicationOut]


class UserOut(Struct, omit_defaults=True):
    key: str
    integrationType: Literal["FACEBOOK"]
    phoneNumber: str | None = None


class UserIn(Struct):
    phoneNumber: str | UnsetType | None = UNSET


class UserPhoneIn(Struct):
    """The document's account of `UserIn`: `phoneNumber` is required; null removes it."""

    phoneNumber: (
        Annotated[
            str,
            Meta(
                pattern=patterns.PHONE,
                description="International digits (country code first), '+' and spaces allowed: "
                "6 to 15 digits that make a possible number of that country's numbering plan",
            ),
        ]
        | None
    )
