"""msgspec types of the Messenger management API (applications and users)."""

from __future__ import annotations

from typing import Literal

from msgspec import UNSET, Struct, UnsetType


class ApplicationIn(Struct, forbid_unknown_fields=False):
    """Create: `name`, `pageId`, `pageAccessToken`, `appSecret` required. Update: any subset."""

    name: str | UnsetType | None = UNSET
    pageId: str | UnsetType | None = UNSET
    pageAccessToken: str | UnsetType | None = UNSET
    appSecret: str | UnsetType | None = UNSET
    verifyToken: str | UnsetType | None = UNSET
    webhookUrl: str | UnsetType | None = UNSET


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
