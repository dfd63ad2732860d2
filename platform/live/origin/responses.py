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

from live.origin.blocking import DirectiveError, Directives, parse_directives
from live.package.timing import ChannelTiming

K = TypeVar("K", bound=Hashable)

PLAYLIST_TYPE: Final = "application/vnd.apple.mpegurl"
IMMUTABLE: Final = "public, max-age=31536000, immutable"
CORS: Final = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Age, Date, Content-Length",
}


def headers(cache_control: str, **extra: str) -> dict[str, str]:
    return {**CORS, "Cache-Control": cache_control, **extra}


def error(status: int, reason: str, *, cache_control: str = "no-store") -> web.Response:
    return web.Response(status=status, text=reason + "\n", headers=headers(cache_control))


def not_found(reason: str) -> web.Response:
    return error(404, reason, cache_control="public, max-age=1")


def accepts_gzip(request: web.Request) -> bool:
    for item in request.headers.get("Accept-Encoding", "").split(","):
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
    extra = {"Content-Encoding": "gzip"} if gzip else {}
    return web.Response(body=body, content_type=PLAYLIST_TYPE,
                        headers=headers(cache_control, Vary="Accept-Encoding", **extra))


def text_playlist(request: web.Request, text: str, cache_control: str) -> web.Response:
    """A playlist rendered for this one request, gzipped when the client takes it."""
    gzip = accepts_gzip(request)
    return playlist_response(gzip_text(text) if gzip else text.encode(), gzip, cache_control)


def memoized_playlist(request: web.Request, memo: dict[K, tuple[int, bytes]], key: K, version: int,
                      render: Callable[[], str], cache_control: str) -> web.Response:
    """A playlist rendered (and compressed) once per ``version`` and variant: releasing thousands
    of held requests for the same position costs one render."""
    gzip = accepts_gzip(request)
    entry = memo.get(key)
    if entry is None or entry[0] != version:
        text = render()
        memo[key] = entry = (version, gzip_text(text) if gzip else text.encode())
    return playlist_response(entry[1], gzip, cache_control)


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
