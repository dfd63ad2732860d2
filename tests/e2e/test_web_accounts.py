"""Account pages, the session cookie and CSRF, over `live serve` (real HTTP, real chat node).

The browser-level proof (Chromium signs up, streams, chats) is test_web_first_minutes.py; this
module holds the flags, refusals and edge cases at the HTTP level, where each is cheap to pin.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st
from live.api.app import setup_api
from live.api.storage import open_repository
from live.api.websession import CSRF_COOKIE, SESSION_COOKIE, cross_origin_refusal, csrf_refusal
from live.config import ServeSettings
from live.ingest.registry import LiveStreamRegistry
from live.serve import Platform
from live.webui import setup_web
from live.webui_account import safe_next
from websockets.typing import Origin

PASSWORD = "correct horse battery staple"
_CSRF_INPUT = re.compile(r'name="csrf" value="([A-Za-z0-9_-]+)"')


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path)
    async with Platform(settings) as running:
        yield running


def _browser() -> aiohttp.ClientSession:
    """A client that keeps cookies from 127.0.0.1 as a browser does (aiohttp's jar refuses IPs)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def _form(csrf: str | None, username: str, password: str = PASSWORD) -> dict[str, str]:
    form = {"username": username, "password": password}
    if csrf is not None:
        form["csrf"] = csrf
    return form


def _base(platform: Platform) -> str:
    return f"http://127.0.0.1:{platform.ports.http}"


async def _csrf(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as response:
        assert response.status == 200
        match = _CSRF_INPUT.search(await response.text())
    assert match is not None
    return match.group(1)


def _set_cookies(response: aiohttp.ClientResponse) -> dict[str, SimpleCookie]:
    found: dict[str, SimpleCookie] = {}
    for header in response.headers.getall("Set-Cookie", []):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        for name in cookie:
            found[name] = cookie
    return found


async def _sign_up(http: aiohttp.ClientSession, base: str, username: str) -> aiohttp.ClientResponse:
    csrf = await _csrf(http, f"{base}/signup")
    response = await http.post(f"{base}/signup", data=_form(csrf, username),
                               allow_redirects=False)
    response.release()
    return response


async def test_signing_up_sets_an_httponly_samesite_strict_session_cookie_and_no_token_in_the_page(
        platform: Platform) -> None:
    base = _base(platform)
    async with _browser() as http:
        response = await _sign_up(http, base, "cookie_monster")
        assert response.status == 303 and response.headers["Location"] == "/dashboard"
        cookies = _set_cookies(response)
        session = cookies[SESSION_COOKIE][SESSION_COOKIE]
        assert session["httponly"] is True
        assert session["samesite"] == "Strict"
        assert session["path"] == "/"
        assert not session["secure"]  # the public URL is http here; https turns it on (below)
        assert 29 * 86400 < int(session["max-age"]) <= 30 * 86400
        assert cookies[CSRF_COOKIE][CSRF_COOKIE]["httponly"] is True
        token = session.value
        async with http.get(f"{base}/dashboard") as page:
            assert page.status == 200
            text = await page.text()
        assert token not in text and "cookie_monster" in text
        # the cookie is the API session too: the dashboard's script reads the account with it
        async with http.get(f"{base}/api/v1/sessions/current") as current:
            assert (await current.json())["account"]["username"] == "cookie_monster"


async def test_the_session_cookie_is_secure_when_the_public_url_is_https(tmp_path: Path) -> None:
    repo = await open_repository(None, tmp_path)
    app = web.Application()
    streams = LiveStreamRegistry()
    api = setup_api(app, repo, streams, public_base_rtmp="rtmp://x/live", public_base_http="https://watch.example")
    setup_web(app, streams, api=api)
    async with TestClient(TestServer(app)) as client:
        async with client.get("/signup") as page:
            csrf = _CSRF_INPUT.search(await page.text())
            assert csrf is not None and _set_cookies(page)[CSRF_COOKIE][CSRF_COOKIE]["secure"] is True
        # aiohttp's jar keeps Secure cookies off plain http: send the CSRF cookie by hand
        async with client.post("/signup", data={"csrf": csrf.group(1), "username": "secure_one",
                                                "password": PASSWORD},
                               headers={"Cookie": f"{CSRF_COOKIE}={csrf.group(1)}"},
                               allow_redirects=False) as response:
            assert response.status == 303
            assert _set_cookies(response)[SESSION_COOKIE][SESSION_COOKIE]["secure"] is True
    await repo.close()


async def test_errors_are_shown_next_to_the_field_they_name(platform: Platform) -> None:
    base = _base(platform)
    async with _browser() as http:
        csrf = await _csrf(http, f"{base}/signup")
        async with http.post(f"{base}/signup", data=_form(csrf, "fine_name", "short"),
                             allow_redirects=False) as response:
            assert response.status == 400
            page = await response.text()
        assert re.search(r'id="password"[^>]*aria-invalid="true"', page, re.S)
        assert re.search(r'id="password-error" class="field-error">password: must be', page)
        assert re.search(r'id="username-error" class="field-error"></p>', page)
        assert 'value="fine_name"' in page  # what was typed is kept (the password is not)

        assert (await _sign_up(http, base, "taken_name")).status == 303
    async with _browser() as other:
        csrf = await _csrf(other, f"{base}/signup")
        async with other.post(f"{base}/signup", data=_form(csrf, "TAKEN_name"),
                              allow_redirects=False) as response:
            assert response.status == 409
            page = await response.text()
        assert re.search(r'id="username-error" class="field-error">this name is taken', page)
        csrf = await _csrf(other, f"{base}/login")
        async with other.post(f"{base}/login", data={"csrf": csrf, "username": "taken_name",
                                                     "password": "wrong password!"},
                              allow_redirects=False) as response:
            assert response.status == 401
            page = await response.text()
        assert re.search(r'id="form-error" class="form-error" role="alert" >unknown username or wrong', page)
        assert SESSION_COOKIE not in _set_cookies(response)
        # a payload in the name comes back escaped, never as markup
        async with other.post(f"{base}/signup", data=_form(csrf, '"><img src=x onerror=alert(1)>'),
                              allow_redirects=False) as response:
            assert response.status == 400
            page = await response.text()
        assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
])
async def test_a_cross_site_form_post_is_refused(platform: Platform, headers: dict[str, str]) -> None:
    base = _base(platform)
    async with _browser() as http:
        csrf = await _csrf(http, f"{base}/login")  # even with the right token and cookie
        async with http.post(f"{base}/signup", data=_form(csrf, "victim_one"),
                             headers=headers, allow_redirects=False) as response:
            assert response.status == 403
            assert "may not change anything" in await response.text()
            assert SESSION_COOKIE not in _set_cookies(response)


async def test_a_form_without_the_csrf_token_or_cookie_is_refused(platform: Platform) -> None:
    base = _base(platform)
    async with _browser() as http:
        csrf = await _csrf(http, f"{base}/login")
        for form in ({"username": "x_user", "password": PASSWORD},
                     {"csrf": csrf[:-1] + ("A" if csrf[-1] != "A" else "B"), "username": "x_user",
                      "password": PASSWORD}):
            async with http.post(f"{base}/signup", data=form, allow_redirects=False) as response:
                assert response.status == 403
    async with _browser() as cookieless, \
            cookieless.post(f"{base}/signup", data=_form(csrf, "x_user"), allow_redirects=False) as response:
        assert response.status == 403  # the token alone, no cookie to match it


async def test_cookie_sessions_need_the_csrf_header_on_the_api_and_bearer_clients_do_not(
        platform: Platform) -> None:
    base = _base(platform)
    async with _browser() as http:
        await _sign_up(http, base, "dash_user")
        async with http.post(f"{base}/api/v1/channels", json={"name": "no_csrf"}) as response:
            assert response.status == 403 and (await response.json())["error"] == "csrf_failed"
        async with http.post(f"{base}/api/v1/channels", json={"name": "cross_site"},
                             headers={"X-CSRF-Token": "x", "Sec-Fetch-Site": "cross-site"}) as response:
            assert response.status == 403
        csrf = next(c.value for c in http.cookie_jar if c.key == CSRF_COOKIE)
        async with http.post(f"{base}/api/v1/channels", json={"name": "with_csrf"},
                             headers={"X-CSRF-Token": csrf, "Sec-Fetch-Site": "same-origin"}) as response:
            assert response.status == 201
            assert (await response.json())["stream_key"].startswith("live_")
    async with _browser() as bearer:
        credentials = {"username": "dash_user", "password": PASSWORD}
        async with bearer.post(f"{base}/api/v1/sessions", json=credentials) as response:
            token = (await response.json())["token"]
        async with bearer.post(f"{base}/api/v1/channels", json={"name": "by_bearer"},
                               headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 201


async def test_logging_out_revokes_the_session_and_clears_the_cookie(platform: Platform) -> None:
    base = _base(platform)
    async with _browser() as http:
        await _sign_up(http, base, "leaving_one")
        token = next(c.value for c in http.cookie_jar if c.key == SESSION_COOKIE)
        csrf = next(c.value for c in http.cookie_jar if c.key == CSRF_COOKIE)
        async with http.post(f"{base}/logout", data={"csrf": csrf}, allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"] == "/"
            assert _set_cookies(response)[SESSION_COOKIE][SESSION_COOKIE]["max-age"] == "0"
        async with http.get(f"{base}/dashboard", allow_redirects=False) as page:
            assert page.status == 303 and page.headers["Location"] == "/login?next=/dashboard"
    async with _browser() as replay, replay.get(f"{base}/api/v1/sessions/current",
                                                headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 401  # the old token is dead, not just forgotten


async def _first(ws: websockets.ClientConnection, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if frame["type"] == kind:
                return frame


async def test_chat_signs_in_with_the_cookie_only_from_a_page_of_this_host(platform: Platform) -> None:
    base = _base(platform)
    async with _browser() as http:
        await _sign_up(http, base, "chatty_one")
        csrf = next(c.value for c in http.cookie_jar if c.key == CSRF_COOKIE)
        async with http.post(f"{base}/api/v1/channels", json={"name": "cookie_room"},
                             headers={"X-CSRF-Token": csrf}) as response:
            assert response.status == 201
        token = next(c.value for c in http.cookie_jar if c.key == SESSION_COOKIE)
    chat = f"ws://127.0.0.1:{platform.ports.chat}/chat/cookie_room"
    cookie = {"Cookie": f"{SESSION_COOKIE}={token}"}
    async with websockets.connect(chat, additional_headers=cookie, origin=Origin(base)) as ws:
        welcome = await _first(ws, "welcome")
        assert welcome["user"] == "chatty_one" and welcome["role"] == "broadcaster"
    async with websockets.connect(chat, additional_headers=cookie,
                                  origin=Origin("http://evil.example")) as ws:
        assert (await _first(ws, "welcome"))["user"] is None  # hijacking gets a reader, no more
    async with websockets.connect(chat, additional_headers=cookie) as ws:  # no Origin: not a page
        assert (await _first(ws, "welcome"))["user"] is None
    # the owner's own connections are not viewers
    async with _browser() as http, websockets.connect(chat, additional_headers=cookie, origin=Origin(base)), \
            websockets.connect(chat) as reader:
        await _first(reader, "welcome")
        async with http.get(f"{base}/api/v1/channels/cookie_room") as response:
            assert (await response.json())["viewer_count"] == 1


async def test_the_dashboard_and_pages_name_the_chat_node_in_their_policy(platform: Platform) -> None:
    base = _base(platform)
    async with _browser() as http:
        await _sign_up(http, base, "policy_one")
        for path in ("/dashboard", "/watch/some_channel"):
            async with http.get(f"{base}{path}") as page:
                policy = page.headers["Content-Security-Policy"]
                assert f"ws://127.0.0.1:{platform.ports.chat}" in policy
                assert "form-action 'self'" in policy
                assert f'data-chat-port="{platform.ports.chat}"' in await page.text()


@given(st.text(max_size=40))
def test_next_never_leaves_the_site(value: str) -> None:
    target = safe_next(value)
    assert target.startswith("/") and not target.startswith("//") and "\\" not in target and ":" not in target


@pytest.mark.parametrize(("headers", "host", "refused"), [
    ({}, "a:1", False),
    ({"Sec-Fetch-Site": "same-origin"}, "a:1", False),
    ({"Sec-Fetch-Site": "none"}, "a:1", False),
    ({"Sec-Fetch-Site": "same-site"}, "a:1", True),
    ({"Sec-Fetch-Site": "cross-site", "Origin": "http://a:1"}, "a:1", True),
    ({"Origin": "http://a:1"}, "a:1", False),
    ({"Origin": "http://a:2"}, "a:1", True),
    ({"Origin": "null"}, "a:1", True),
])
def test_where_a_request_comes_from(headers: dict[str, str], host: str, refused: bool) -> None:
    assert (cross_origin_refusal(headers, host) is not None) is refused


def test_the_csrf_token_must_match_the_cookie() -> None:
    token = "A" * 43
    assert csrf_refusal({}, {CSRF_COOKIE: token}, "h", token) is None
    assert csrf_refusal({}, {CSRF_COOKIE: token}, "h", "B" * 43) is not None
    assert csrf_refusal({}, {CSRF_COOKIE: token}, "h", None) is not None
    assert csrf_refusal({}, {}, "h", token) is not None
    assert csrf_refusal({}, {CSRF_COOKIE: "short"}, "h", "short") is not None
