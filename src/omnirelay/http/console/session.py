"""The console's session cookie, forms and CSRF check (docs/console.md#sign-in-and-sessions).

Cookies are HttpOnly and SameSite=Strict, and Secure unless the page was asked for over plain
HTTP from a loopback host (`make run` on a laptop), where a browser would not send a Secure
cookie back. Behind a TLS-terminating proxy the scheme is the proxy's (uvicorn reads
X-Forwarded-Proto from trusted proxies), so the cookie is Secure there.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from omnirelay.http.context import services
from omnirelay.services.console_sessions import ConsoleSessions, Principal

SESSION_COOKIE = "omnirelay_console"
LOGIN_COOKIE = "omnirelay_console_login"  # the sign-in form's CSRF, before any session exists
MAX_FORM_BYTES = 16 * 1024
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


@dataclass(frozen=True, slots=True)
class SignedIn:
    principal: Principal
    cookie: str
    csrf: str
    who: str


def sessions(request: Request) -> ConsoleSessions:
    found = services(request).console_sessions
    assert found is not None, "the console is wired in bootstrap"
    return found


def secure(request: Request) -> bool:
    return not (request.url.scheme == "http" and (request.url.hostname or "") in LOOPBACK)


def set_cookie(request: Request, response: Response, name: str, value: str, *, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, path="/console", httponly=True, samesite="strict", secure=secure(request))


async def signed_in(request: Request) -> SignedIn | None:
    """The session of this request's cookie, or None."""
    cookie = request.cookies.get(SESSION_COOKIE)
    store = sessions(request)
    principal = await store.principal(cookie)
    if principal is None or cookie is None:
        return None
    console = services(request).console
    if principal.account_id is None:
        who = "operator"
    else:
        names = await console.account_names() if console is not None else {}
        who = names.get(principal.account_id, f"account {principal.account_id}")
    return SignedIn(principal, cookie, store.csrf_token(cookie), who)


class FormTooLarge(Exception):
    pass


async def form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body, first value of each field; bounded in size."""
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLarge()
    try:
        parsed = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {k: v[0] for k, v in parsed.items()}
