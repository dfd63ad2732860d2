"""Answers the origin writes to the connection itself, byte for byte what aiohttp would write.

The two hot answers of a live origin are small and the same for many requests: the playlist
that thousands of held blocking reloads get when a part lands, and the immutable part or
segment bytes every viewer fetches. aiohttp spends most of such a request in its generic
response path (header objects, serialization, the stream writer); here the status line and
headers are built once (``frozen_headers`` per kind, the Date line once a second) and the answer
goes to the transport in one write. The handler then returns a ``WrittenResponse``, which tells
aiohttp the answer is out and the connection stays open.

Only for requests where that is the same on the wire (``can_write_direct``): a keep-alive
HTTP/1.1 GET, no ``on_response_prepare`` hooks, and nothing waiting in the connection's write
buffer (a client that does not read gets the normal path, which waits for it to drain, so its
buffer stays bounded). The app's middlewares must not change the headers of a 200 they pass
through (the origin's metrics middleware only counts it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from email.utils import formatdate

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE

from live.origin.responses import IMMUTABLE, frozen_headers

_TAIL: list[tuple[int, str]] = [(0, "")]
_HEADS: dict[tuple[str, str, bool], str] = {}


def http_date() -> str:
    """The Date header's value (RFC 9110 5.6.7, what aiohttp writes), formatted once a second."""
    return _tail()[0]


def _tail() -> tuple[str, str]:
    """(Date value, the head's last lines: Date and Server, as aiohttp adds them)."""
    now = int(time.time())
    stamp, date = _TAIL[0]
    if stamp != now:
        date = formatdate(now, usegmt=True)
        _TAIL[0] = (now, date)
    return date, f"Date: {date}\r\nServer: {SERVER_SOFTWARE}\r\n\r\n"


def answer_head(cache_control: str, content_type: str, length: int, *, gzip: bool = False) -> bytes:
    """A 200's status line and headers as aiohttp writes them on a keep-alive HTTP/1.1
    connection: ``frozen_headers`` in order, then Content-Length, Date and Server."""
    key = (cache_control, content_type, gzip)
    lead = _HEADS.get(key)
    if lead is None:
        frozen = frozen_headers(cache_control, content_type, gzip=gzip)
        lead = "HTTP/1.1 200 OK\r\n" + "".join(f"{name}: {value}\r\n" for name, value in frozen.items())
        if len(_HEADS) >= 256:  # as bounded as frozen_headers' own cache
            _HEADS.clear()
        _HEADS[key] = lead
    return f"{lead}Content-Length: {length}\r\n{_tail()[1]}".encode("latin-1")


def wire_answer(body: bytes | memoryview, cache_control: str, content_type: str, *,
                gzip: bool = False) -> bytes:
    """A whole 200 answer (``answer_head`` and ``body``) as one buffer, to write many times."""
    return answer_head(cache_control, content_type, len(body), gzip=gzip) + body


def can_write_direct(request: web.Request) -> bool:
    """Whether this request's answer may go to its transport as ``answer_head`` bytes."""
    if request.method != "GET" or request.version != (1, 1) or not request.keep_alive:
        return False
    if not _writable(request.transport):
        return False
    return not any(app.on_response_prepare for app in request.match_info.apps)


def _writable(transport: asyncio.Transport | None) -> bool:
    """Open, and nothing of an earlier answer still waiting for the client to read it."""
    return transport is not None and not transport.is_closing() and not transport.get_write_buffer_size()


class WrittenResponse(web.StreamResponse):
    """A 200 answer already written to the connection: aiohttp keeps the connection alive,
    logs ``nbytes`` and writes nothing more."""

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


class EarlyWrite:
    """A held request's early answer (``Blocker.wait(early=...)``): when the release runs it,
    ``build``'s bytes (a ``wire_answer``, shared by every request released with it) go straight
    to the connection, and ``sent`` says how many, for the handler's ``WrittenResponse``.
    ``build`` returns None where the normal path would answer differently. Made only for a
    request that ``can_write_direct`` allowed; the release re-checks just the connection.
    """

    __slots__ = ("build", "sent", "transport")

    def __init__(self, request: web.Request, build: Callable[[], bytes | None]) -> None:
        self.transport = request.transport
        self.build = build
        self.sent = 0

    def __call__(self) -> None:
        transport = self.transport
        if transport is None or not _writable(transport):  # closed, or the client is not reading
            return
        payload = self.build()
        if payload is not None:
            transport.write(payload)
            self.sent = len(payload)


class _OneWrite(web.StreamResponse):
    """A ``StreamResponse`` that holds its head back until the body, as ``web.Response`` does
    (aiohttp's own flag), so a small answer is one ``send`` rather than two."""

    _send_headers_immediately = False


async def media_body(request: web.Request, data: bytes | memoryview, content_type: str) -> web.StreamResponse:
    """An immutable media body (init, segment, part): written directly where that is the same
    on the wire, else through aiohttp with the same prebuilt headers.

    A part is a ``memoryview`` into its segment's buffer, which ``web.Response`` would wrap in
    a payload object; a prepared ``StreamResponse`` sends it without.
    """
    if can_write_direct(request):
        head = answer_head(IMMUTABLE, content_type, len(data))
        transport = request.transport
        assert transport is not None  # can_write_direct checked it
        transport.writelines((head, data))
        return WrittenResponse(len(head) + len(data))
    frozen = frozen_headers(IMMUTABLE, content_type)
    if not isinstance(data, memoryview):
        return web.Response(body=data, headers=frozen)
    response = _OneWrite(headers=frozen)
    response.content_length = len(data)
    await response.prepare(request)
    if request.method != "HEAD":
        await response.write(data)
    await response.write_eof()
    return response
