"""Browser sessions: the session token in an HttpOnly cookie, and CSRF checks for it.

Bearer tokens (``Authorization: Bearer``) are never sent by a browser on its own, so requests
carrying one need no CSRF defence. A cookie is sent on its own, so every state-changing request
that is authenticated by the session cookie, and every sign-up, log-in and log-out form, must pass
two checks (OWASP CSRF Prevention Cheat Sheet, "Fetch Metadata headers" and "Signed/naive
double-submit cookie"):

1. Where it comes from: ``Sec-Fetch-Site`` (W3C Fetch Metadata) must be ``same-origin`` or
   ``none`` (typed into the address bar); without that header, an ``Origin`` header must name the
   request's own host. A sibling subdomain (``same-site``) is refused too: it could have tossed a
   cookie of its own.
2. A token the attacker cannot read: the ``X-CSRF-Token`` header (or the ``csrf`` form field)
   must equal the ``livetwin_csrf`` cookie, compared in constant time. Pages embed that value;
   cross-origin pages cannot read it.

The session cookie is ``HttpOnly`` (scripts never see the token), ``SameSite=Strict`` (no other
site's request carries it, RFC 6265bis 5.4.7), ``Path=/`` and ``Secure`` whenever the platform's
public URL is https. Its name is shared with the chat node, which reads it on the WebSocket
handshake (cookies are per host, not per port: RFC 6265 8.5).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

SESSION_COOKIE: Final = "livetwin_session"
CSRF_COOKIE: Final = "livetwin_csrf"
CSRF_HEADER: Final = "X-CSRF-Token"
CSRF_FIELD: Final = "csrf"
#: Methods that change nothing (RFC 9110 9.2.1) need no CSRF check.
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_CSRF_CHARS: Final = 43  # secrets.token_urlsafe(32)
_ALLOWED_FETCH_SITES: Final = frozenset({"same-origin", "none"})


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def well_formed_csrf(value: str | None) -> bool:
    if value is None or len(value) != _CSRF_CHARS:
        return False
    core = value.replace("-", "").replace("_", "")
    return core.isascii() and core.isalnum()


def cross_origin_refusal(headers: Mapping[str, str], host: str | None) -> str | None:
    """Why a state-changing browser request is not from our own pages, else None.

    ``host`` is the request's Host header (``name[:port]``).
    """
    site = headers.get("Sec-Fetch-Site")
    if site is not None:
        if site.strip().lower() in _ALLOWED_FETCH_SITES:
            return None
        return f"a {site[:32]!r} request may not change anything here (Sec-Fetch-Site)"
    origin = headers.get("Origin")
    if origin is None:
        return None  # neither header: not a browser that would send cookies cross-site unasked
    if origin == "null" or host is None:
        return "a request from an opaque origin may not change anything here"
    parts = urlsplit(origin)
    if parts.netloc.lower() != host.strip().lower():
        return f"a request from {origin[:100]!r} may not change anything here (Origin)"
    return None


def csrf_refusal(headers: Mapping[str, str], cookies: Mapping[str, str], host: str | None,
                 submitted: str | None) -> str | None:
    """Why a cookie-authenticated (or sign-in) request fails the CSRF checks, else None.

    ``submitted`` is the token the request carries (the header, or the form field).
    """
    reason = cross_origin_refusal(headers, host)
    if reason is not None:
        return reason
    expected = cookies.get(CSRF_COOKIE)
    if expected is None or not well_formed_csrf(expected):
        return "no CSRF cookie: reload the page and try again"
    if submitted is None or not hmac.compare_digest(submitted.encode(), expected.encode()):
        return (f"the CSRF token is missing or wrong (send the {CSRF_HEADER} header "
                f"or the {CSRF_FIELD!r} field)")
    return None


def session_cookie_options(secure: bool, max_age_s: float | None) -> dict[str, object]:
    """Keyword arguments for ``aiohttp.web.Response.set_cookie`` of the session cookie."""
    options: dict[str, object] = {"path": "/", "httponly": True, "samesite": "Strict", "secure": secure}
    if max_age_s is not None:
        options["max_age"] = int(max_age_s)
    return options


def csrf_cookie_options(secure: bool) -> dict[str, object]:
    """The CSRF cookie lives as long as the browser session; scripts read the value from the page."""
    return {"path": "/", "httponly": True, "samesite": "Strict", "secure": secure}


def origin_host_matches(origin: str | None, host: str | None) -> bool:
    """For the chat node (another port of the same host): does ``Origin`` name this host?

    Ports are ignored because the web pages and the chat node listen on different ports of one
    host, and cookies are shared between ports anyway (RFC 6265 8.5).
    """
    if not origin or not host:
        return False
    origin_host = urlsplit(origin).hostname
    request_host = urlsplit(f"//{host.strip()}").hostname
    return origin_host is not None and origin_host == request_host
