"""The HTTP answers every ``/hls/`` handler gives: CORS, caching headers, errors and gzip.

Shared by the live origin (``live.origin.app``) and the DVR (``live.dvr.app``), so a player
sees one set of rules whichever playlist it loads. Cache-Control follows the CDN guidance:
media URLs are immutable, errors are not cached except 404s briefly.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Hashable
from typing import Final, TypeVar

from aiohttp import web
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
