"""`/console/login` and `/console/logout`, and the guard every other console page goes through."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from omnirelay.domain.errors import NotFound, RequestError, Unauthorized, ValidationFailed
from omnirelay.http.console.html import SECURITY_HEADERS, csrf_field, esc, page, problem
from omnirelay.http.console.session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    FormTooLarge,
    SignedIn,
    clear_cookie,
    form,
    sessions,
    set_cookie,
    signed_in,
)

Page = Callable[[Request, SignedIn], Awaitable[Response]]


def _redirect(to: str) -> RedirectResponse:
    return RedirectResponse(to, status_code=303, headers=SECURITY_HEADERS)


def guarded(endpoint: Page) -> Callable[[Request], Awaitable[Response]]:
    """Signed in, or sent to the sign-in page; bad input is a 400 page, a stranger's message a 404."""

    @functools.wraps(endpoint)
    async def handler(request: Request) -> Response:
        session = await signed_in(request)
        if session is None:
            return _redirect("/console/login")
        try:
            return await endpoint(request, session)
        except ValidationFailed as exc:
            return problem(
                "Bad request",
                exc.message,
                400,
                principal=session.principal,
                who=session.who,
                csrf=session.csrf,
            )
        except NotFound as exc:
            return problem(
                "Not found", exc.message, 404, principal=session.principal, who=session.who, csrf=session.csrf
            )

    return handler


def _login_page(request: Request, note: str = "", status_code: int = 200) -> Response:
    nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    token = csrf_field(sessions(request).csrf_token(nonce))
    notice = f'<p class="problem" role="alert">{esc(note)}</p>' if note else ""
    body = (
        f"{notice}<div class=signin>"
        '<form method="post" action="/console/login" id="account-login"><h2>Account</h2>'
        f'{token}<input type="hidden" name="kind" value="account">'
        '<label>Username <input name="username" autocomplete="username" required></label>'
        '<label>Password <input name="password" type="password" autocomplete="current-password" required>'
        '</label><button type="submit">Sign in</button></form>'
        '<form method="post" action="/console/login" id="operator-login"><h2>Operator</h2>'
        f'{token}<input type="hidden" name="kind" value="operator">'
        '<label>Operator token <input name="token" type="password" autocomplete="off" required></label>'
        '<button type="submit">Sign in</button></form></div>'
    )
    response = page("Sign in", body, status_code=status_code)
    set_cookie(request, response, LOGIN_COOKIE, nonce, max_age=3600)
    return response


async def login_page(request: Request) -> Response:
    if await signed_in(request) is not None:
        return _redirect("/console/overview")
    return _login_page(request)


async def login(request: Request) -> Response:
    try:
        fields = await form(request)
    except FormTooLarge:
        return problem("Sign in", "The form is too large.", 413)
    store = sessions(request)
    if not store.csrf_ok(request.cookies.get(LOGIN_COOKIE), fields.get("csrf")):
        return problem("Forbidden", "The form's CSRF token is missing or wrong: reload the page.", 403)
    try:
        if fields.get("kind") == "operator":
            cookie = await store.sign_in_operator(fields.get("token", ""))
        else:
            cookie = await store.sign_in_account(fields.get("username", ""), fields.get("password", ""))
    except Unauthorized:
        return _login_page(request, "Invalid login details.", 401)
    except RequestError as exc:
        return _login_page(request, exc.message, 400)
    response = _redirect("/console/overview")
    set_cookie(request, response, SESSION_COOKIE, cookie, max_age=None)
    clear_cookie(request, response, LOGIN_COOKIE)
    return response


async def logout(request: Request) -> Response:
    try:
        fields = await form(request)
    except FormTooLarge:
        return problem("Sign out", "The form is too large.", 413)
    cookie = request.cookies.get(SESSION_COOKIE)
    store = sessions(request)
    if not store.csrf_ok(cookie, fields.get("csrf")):
        return problem("Forbidden", "The form's CSRF token is missing or wrong: reload the page.", 403)
    await store.sign_out(cookie)
    response = _redirect("/console/login")
    clear_cookie(request, response, SESSION_COOKIE)
    return response


async def home(request: Request) -> Response:
    return _redirect("/console/overview" if await signed_in(request) is not None else "/console/login")
