"""The HTTP answers every ``/hls/`` handler gives: CORS, caching headers, errors and gzip.

Shared by the live origin (``live.origin.app``) and the DVR (``live.dvr.app``), so a player
sees one set of rules whichever playlist it loads. Cache-Control follows the CDN guidance:
media URLs are immutable, errors are not cached except 404s briefly.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Hashable
from email.utils import formatdate
from typing import Final, TypeVar

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE
from multidict import CIMultiDict, CIMultiDictProxy

from live.origin.blocking import DirectiveError, Directives, parse_directives
from live.package.timing import ChannelTiming

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

PLAYLIST_TYPE: Final = "application/vnd.apple.mpegurl"
IMMUTABLE: Final = "public, max-age=31536000, immutable"
CORS: Final = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Age, Date, Content-Length",
}


#: Distinct header sets / Accept-Encoding values remembered; past it a cache starts over.
_CACHE_LIMIT: Final = 256


def headers(cache_control: str, **extra: str) -> dict[str, str]:
    return {**CORS, "Cache-Control": cache_control, **extra}


def _remember(cache: dict[K, T], key: K, value: T) -> T:
    if len(cache) >= _CACHE_LIMIT:  # outsiders pick Accept-Encoding: bound what they can grow
        cache.clear()
    cache[key] = value
    return value


_FROZEN: dict[tuple[str, str, bool], CIMultiDictProxy[str]] = {}


def frozen_headers(cache_control: str, content_type: str, *, gzip: bool = False) -> CIMultiDictProxy[str]:
    """The headers of a body response, built once per (Cache-Control, type, gzip).

    The same names in the same order as ``web.Response(content_type=..., headers=headers(...))``
    writes, so the bytes on the wire do not change; aiohttp copies them into each response
    without parsing the content type again. Playlists vary by Accept-Encoding.
    """
    key = (cache_control, content_type, gzip)
    found = _FROZEN.get(key)
    if found is not None:
        return found
    built = CIMultiDict(CORS)
    built["Cache-Control"] = cache_control
    if content_type == PLAYLIST_TYPE:
        built["Vary"] = "Accept-Encoding"
        if gzip:
            built["Content-Encoding"] = "gzip"
    built["Content-Type"] = content_type
    return _remember(_FROZEN, key, CIMultiDictProxy(built))


class _OneWrite(web.StreamResponse):
    """A ``StreamResponse`` that holds its head back until the body, as ``web.Response`` does
    (aiohttp's own flag), so a small answer is one ``send`` rather than two."""

    _send_headers_immediately = False


async def media_body(request: web.Request, data: bytes | memoryview, content_type: str) -> web.StreamResponse:
    """An immutable media body (init, segment, part) with its prebuilt headers.

    A part is a ``memoryview`` into its segment's buffer; ``web.Response`` would wrap it in a
    payload object and write it in extra steps, so it goes out as a prepared ``StreamResponse``
    instead: the same headers, one write of head and body.
    """
    if not isinstance(data, memoryview):
        return web.Response(body=data, headers=frozen_headers(IMMUTABLE, content_type))
    response = _OneWrite(headers=frozen_headers(IMMUTABLE, content_type))
    response.content_length = len(data)
    await response.prepare(request)
    if request.method != "HEAD":
        await response.write(data)
    await response.write_eof()
    return response


def error(status: int, reason: str, *, cache_control: str = "no-store") -> web.Response:
    return web.Response(status=status, text=reason + "\n", headers=headers(cache_control))


def not_found(reason: str) -> web.Response:
    return error(404, reason, cache_control="public, max-age=1")


_GZIP_ACCEPTED: dict[str, bool] = {}


def accepts_gzip(request: web.Request) -> bool:
    """Whether the client takes gzip; parsed once per distinct Accept-Encoding value (players
    send one or two, so a release of thousands of held requests parses nothing)."""
    value = request.headers.get("Accept-Encoding", "")
    known = _GZIP_ACCEPTED.get(value)
    return _remember(_GZIP_ACCEPTED, value, _parse_accepts_gzip(value)) if known is None else known


def _parse_accepts_gzip(value: str) -> bool:
    for item in value.split(","):
        token, _, params = item.strip().partition(";")
        if token.strip().lower() in ("gzip", "*"):
            quality = params.strip().replace(" ", "")
            return quality not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def gzip_text(text: str) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    return compressor.compress(text.encode()) + compressor.flush()


def playlist_response(body: bytes, gzip: bool, cache_control: str) -> web.Response:
    """A rendered (and, when ``gzip``, compressed) playlist that varies by Accept-Encoding."""
    return web.Response(body=body, headers=frozen_headers(cache_control, PLAYLIST_TYPE, gzip=gzip))


def text_playlist(request: web.Request, text: str, cache_control: str) -> web.Response:
    """A playlist rendered for this one request, gzipped when the client takes it."""
    gzip = accepts_gzip(request)
    return playlist_response(gzip_text(text) if gzip else text.encode(), gzip, cache_control)


def memoized_playlist(request: web.Request, memo: dict[K, tuple[int, bytes]], key: K, version: int,
                      render: Callable[[], str], cache_control: str) -> web.Response:
    """A playlist rendered (and compressed) once per ``version`` and variant: releasing thousands
    of held requests for the same position costs one render."""
    gzip = accepts_gzip(request)
    return playlist_response(memoized_body(memo, key, version, gzip, render), gzip, cache_control)


def memoized_body(memo: dict[K, tuple[int, bytes]], key: K, version: int, gzip: bool,
                  render: Callable[[], str]) -> bytes:
    """``render()``'s text (gzipped when ``gzip``) as of ``version``, rendered once per version."""
    entry = memo.get(key)
    if entry is None or entry[0] != version:
        text = render()
        memo[key] = entry = (version, gzip_text(text) if gzip else text.encode())
    return entry[1]


_DATE: list[tuple[int, str]] = [(0, "")]


def http_date() -> str:
    """The Date header's value (RFC 9110 5.6.7, what aiohttp writes), formatted once a second."""
    now = int(time.time())
    stamp, text = _DATE[0]
    if stamp != now:
        text = formatdate(now, usegmt=True)
        _DATE[0] = (now, text)
    return text


def wire_answer(body: bytes | memoryview, frozen: CIMultiDictProxy[str]) -> bytes:
    """The bytes of a 200 answer as aiohttp writes it on a keep-alive HTTP/1.1 connection: status
    line, ``frozen`` headers, then Content-Length, Date and Server, a blank line and the body.

    Built once and written to every held request its release answers (``WrittenResponse``).
    """
    head = "HTTP/1.1 200 OK\r\n" + "".join(f"{name}: {value}\r\n" for name, value in frozen.items())
    head += f"Content-Length: {len(body)}\r\nDate: {http_date()}\r\nServer: {SERVER_SOFTWARE}\r\n\r\n"
    return head.encode("latin-1") + body


def can_write_early(request: web.Request) -> bool:
    """Whether ``request`` may be answered with ``wire_answer`` bytes straight to its transport:
    a keep-alive HTTP/1.1 GET (HEAD, HTTP/1.0 and closing connections differ on the wire)."""
    return (request.method == "GET" and request.version == (1, 1) and request.keep_alive
            and not any(app.on_response_prepare for app in request.match_info.apps))


class EarlyWrite:
    """A held request's early answer (``Blocker.wait(early=...)``): when the release runs it,
    ``build``'s bytes (``wire_answer``, shared by every request released with it) go straight
    to the connection, and ``sent`` says how many, for the handler's ``WrittenResponse``.

    Only for ``can_write_early`` requests; the app's middlewares must not change the headers of
    a 200 they pass through (the origin's metrics middleware only counts it).
    """

    __slots__ = ("build", "request", "sent")

    def __init__(self, request: web.Request, build: Callable[[], bytes | None]) -> None:
        self.request = request
        self.build = build
        self.sent = 0

    def __call__(self) -> None:
        transport = self.request.transport
        if transport is None or transport.is_closing():
            return
        payload = self.build()
        if payload is not None:
            transport.write(payload)
            self.sent = len(payload)


class WrittenResponse(web.StreamResponse):
    """A 200 answer that was already written to the connection (``wire_answer``) when its held
    request was released: aiohttp keeps the connection alive and writes nothing more."""

    def __init__(self, nbytes: int) -> None:
        super().__init__()
        self._written = nbytes

    @property
    def keep_alive(self) -> bool:
        return True

    @property
    def prepared(self) -> bool:
        return True

    @property
    def body_length(self) -> int:
        return self._written

    async def prepare(self, request: web.BaseRequest) -> None:
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


def request_directives(request: web.Request) -> Directives | web.Response:
    """The request's ``_HLS_`` directives, or the 400 a malformed one gets (RFC 8216bis 6.2.5)."""
    try:
        return parse_directives(request.query)
    except DirectiveError as exc:
        return error(400, str(exc))


def media_cache_control(timing: ChannelTiming, *, ended: bool, blocking: bool,
                        ended_max_age_s: int = 10) -> str:
    """Live playlists live about a second; a blocking answer is cacheable under its ``_HLS_``
    query for six target durations (a later answer would only be longer)."""
    if ended:
        return f"public, max-age={ended_max_age_s}"
    if blocking:
        return f"public, max-age={6 * timing.target_duration_s}"
    return "public, max-age=1"
