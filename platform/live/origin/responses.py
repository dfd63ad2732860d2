"""The HTTP answers every ``/hls/`` handler gives: CORS, caching headers, errors and gzip.

Shared by the live origin (``live.origin.app``) and the DVR (``live.dvr.app``), so a player
sees one set of rules whichever playlist it loads. Cache-Control follows the CDN guidance:
media URLs are immutable, errors are not cached except 404s briefly.
"""

from __future__ import annotations

import zlib
from typing import Final

from aiohttp import web

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
