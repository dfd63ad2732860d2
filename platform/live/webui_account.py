"""Sign-up, log-in and log-out pages, and the streamer dashboard, on the API's own logic.

The forms are plain HTML posts (they work without scripts) handled here: the credentials go
through the API's validation, rate limits and password hashing (``Api.sign_up``, ``Api.log_in``),
and a refusal is shown next to the field the API names (``ApiError.field``). A new session's
token goes only into the HttpOnly, SameSite=Strict session cookie (``live.api.websession``),
never into the page, so scripts, and so injected scripts, cannot read it. Every form carries the
double-submit CSRF token and is checked for its origin before anything else happens.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Final
from urllib.parse import parse_qsl

from aiohttp import web

from live.api.app import Api
from live.api.auth import token_hash
from live.api.errors import ApiError
from live.api.models import Account
from live.api.repository import Conflict
from live.api.validation import Credentials, parse_credentials
from live.api.websession import (
    CSRF_COOKIE,
    CSRF_FIELD,
    SESSION_COOKIE,
    csrf_cookie_options,
    csrf_refusal,
    new_csrf_token,
    session_cookie_options,
    well_formed_csrf,
)

#: A form body larger than this is not one of ours (two short fields and a token).
FORM_MAX_BYTES: Final = 8 * 1024
#: Where ``?next=`` may send the browser after logging in: a path on this site, nothing else.
_LOCAL_PATH: Final = re.compile(r"/(?!/)[A-Za-z0-9_/\-]{0,200}")
_FIELDS: Final = ("username", "password")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def safe_next(value: str | None, default: str = "/dashboard") -> str:
    """An internal path to go to after logging in; anything else (``//evil``, URLs) is dropped."""
    return value if value and _LOCAL_PATH.fullmatch(value) else default


@dataclass(frozen=True, slots=True)
class PublishPoints:
    """Where a streamer publishes: shown on the dashboard with the stream key."""

    rtmp: str  # rtmp://host[:port]/live
    srt: str | None  # srt://host:port, None without an SRT listener


class Csrf:
    """The double-submit token of a request: the cookie's value, or a fresh one to set."""

    def __init__(self, request: web.Request, secure: bool) -> None:
        existing = request.cookies.get(CSRF_COOKIE)
        self.fresh = not well_formed_csrf(existing)
        self.token: str = new_csrf_token() if self.fresh or existing is None else existing
        self.secure = secure

    def attach(self, response: web.StreamResponse) -> web.StreamResponse:
        if self.fresh:
            response.set_cookie(CSRF_COOKIE, self.token, **csrf_cookie_options(self.secure))  # type: ignore[arg-type]
        return response


class Accounts:
    """The account pages over one ``Api``; ``render_page`` wraps a body in the site's headers."""

    def __init__(self, api: Api, templates: Path, headers: Callable[[web.Request], dict[str, str]],
                 publish: Callable[[], PublishPoints], chat_port: Callable[[], int]) -> None:
        self.api = api
        self.headers = headers
        self.publish = publish
        self.chat_port = chat_port
        self.secure = api.public_base_http.startswith("https://")
        try:
            self.forms = {
                "signup": Template((templates / "signup.html").read_text(encoding="utf-8")),
                "login": Template((templates / "login.html").read_text(encoding="utf-8")),
            }
            self.dashboard_page = Template((templates / "dashboard.html").read_text(encoding="utf-8"))
        except OSError as exc:
            raise RuntimeError(f"account page templates missing under {templates}: {exc}") from exc

    async def account(self, request: web.Request) -> Account | None:
        """Who the session cookie belongs to (None: no cookie, or a dead session)."""
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        try:
            return await self.api.viewer(request)
        except ApiError:
            return None

    def nav(self, account: Account | None, csrf: Csrf) -> str:
        """The header's account links: log in / sign up, or the name, dashboard and log out."""
        if account is None:
            return '<nav class="account"><a href="/login">Log in</a> <a href="/signup">Sign up</a></nav>'
        return (
            f'<nav class="account"><span class="who">{_e(account.username)}</span> '
            '<a href="/dashboard">Dashboard</a> '
            '<form method="post" action="/logout" class="inline">'
            f'<input type="hidden" name="{CSRF_FIELD}" value="{_e(csrf.token)}">'
            '<button type="submit" class="link">Log out</button></form></nav>'
        )

    # ---------------------------------------------------------------- forms

    def _form(self, request: web.Request, kind: str, csrf: Csrf, *, status: int = 200,
              username: str = "", errors: dict[str, str] | None = None) -> web.StreamResponse:
        errors = errors or {}
        values: dict[str, str] = {
            "csrf": _e(csrf.token),
            "next": _e(safe_next(request.query.get("next"))),
            "username": _e(username),
            "form_error": _e(errors.get("form", "")),
            "form_error_hidden": "" if errors.get("form") else "hidden",
            "nav": self.nav(None, csrf),
        }
        for name in _FIELDS:
            values[f"{name}_error"] = _e(errors.get(name, ""))
            values[f"{name}_invalid"] = 'aria-invalid="true"' if name in errors else ""
        body = self.forms[kind].substitute(values)
        response = web.Response(text=body, status=status, content_type="text/html",
                                headers=self.headers(request))
        return csrf.attach(response)

    async def signup_page(self, request: web.Request) -> web.StreamResponse:
        return self._form(request, "signup", Csrf(request, self.secure))

    async def login_page(self, request: web.Request) -> web.StreamResponse:
        return self._form(request, "login", Csrf(request, self.secure))

    async def _read_form(self, request: web.Request) -> dict[str, str]:
        """The url-encoded form, bounded, after the origin and CSRF checks (else 403)."""
        if request.content_length is not None and request.content_length > FORM_MAX_BYTES:
            raise web.HTTPRequestEntityTooLarge(FORM_MAX_BYTES, request.content_length)
        if request.content_type != "application/x-www-form-urlencoded":
            raise web.HTTPUnsupportedMediaType(text="send the form as application/x-www-form-urlencoded\n")
        raw = await request.content.read(FORM_MAX_BYTES + 1)
        if len(raw) > FORM_MAX_BYTES:
            raise web.HTTPRequestEntityTooLarge(FORM_MAX_BYTES, len(raw))
        try:
            form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=8))
        except (UnicodeDecodeError, ValueError):
            raise web.HTTPBadRequest(text="the form is not UTF-8 url-encoded fields\n") from None
        reason = csrf_refusal(request.headers, request.cookies, request.host, form.get(CSRF_FIELD))
        if reason is not None:
            raise web.HTTPForbidden(text=f"refused: {reason}\n", headers={"Cache-Control": "no-store"})
        return form

    async def _submit(self, request: web.Request, kind: str) -> web.StreamResponse:
        csrf = Csrf(request, self.secure)
        form = await self._read_form(request)
        username = form.get("username", "")[:64]
        try:
            credentials = parse_credentials({"username": form.get("username", ""),
                                             "password": form.get("password", "")})
            if kind == "signup":
                await self._sign_up(credentials, request)
            token, expires_at, _ = await self.api.log_in(credentials, request)
        except ApiError as error:
            field = error.field if error.field in _FIELDS else "form"
            message = error.message
            if error.code == "rate_limited":
                message = f"{message} (in {error.headers.get('Retry-After', '?')} s)"
            return self._form(request, kind, csrf, status=error.status, username=username,
                              errors={field: message})
        response = _see_other(safe_next(request.query.get("next")))
        response.set_cookie(SESSION_COOKIE, token,
                            **session_cookie_options(self.secure, expires_at - self.api.clock()))  # type: ignore[arg-type]
        # a new session gets a new CSRF token: one planted before logging in is worth nothing
        response.set_cookie(CSRF_COOKIE, new_csrf_token(), **csrf_cookie_options(self.secure))  # type: ignore[arg-type]
        return response

    async def _sign_up(self, credentials: Credentials, request: web.Request) -> None:
        try:
            await self.api.sign_up(credentials, request)
        except Conflict as error:
            raise ApiError(409, "conflict", "this name is taken", field=error.field) from None

    async def signup(self, request: web.Request) -> web.StreamResponse:
        return await self._submit(request, "signup")

    async def login(self, request: web.Request) -> web.StreamResponse:
        return await self._submit(request, "login")

    async def logout(self, request: web.Request) -> web.StreamResponse:
        await self._read_form(request)
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            await self.api.repo.delete_session(token_hash(token))
        response = _see_other("/")
        response.del_cookie(SESSION_COOKIE, path="/")
        response.del_cookie(CSRF_COOKIE, path="/")
        return response

    # ---------------------------------------------------------------- dashboard

    async def dashboard(self, request: web.Request) -> web.StreamResponse:
        account = await self.account(request)
        if account is None:
            raise web.HTTPSeeOther("/login?next=/dashboard")
        csrf = Csrf(request, self.secure)
        points = self.publish()
        body = self.dashboard_page.substitute(
            nav=self.nav(account, csrf),
            user=_e(account.username),
            csrf=_e(csrf.token),
            rtmp=_e(points.rtmp),
            srt=_e(points.srt or ""),
            whip=_e(f"{request.url.origin()}/whip/"),
            chat_port=_e(self.chat_port()),
        )
        headers = {**self.headers(request), "Cache-Control": "no-store"}
        return csrf.attach(web.Response(text=body, content_type="text/html", headers=headers))


def _see_other(location: str) -> web.Response:
    """303 to a page of ours (RFC 9110 15.4.4: the browser follows with a GET)."""
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def setup_accounts(app: web.Application, accounts: Accounts) -> None:
    """Mount ``/signup``, ``/login``, ``/logout`` (POST) and ``/dashboard``."""
    app.router.add_get("/signup", accounts.signup_page)
    app.router.add_post("/signup", accounts.signup)
    app.router.add_get("/login", accounts.login_page)
    app.router.add_post("/login", accounts.login)
    app.router.add_post("/logout", accounts.logout)
    app.router.add_get("/dashboard", accounts.dashboard)
