"""DVR segment files straight from disk, for as little CPU as Python can send them.

aiohttp's ``FileResponse`` spends most of a request outside ``sendfile``: two thread-pool round
trips (stat and open, then close), a ``pathlib`` walk, and ``loop.sendfile``'s set-up (pause
reading, wait for an empty buffer, register the socket for writing, a future per call). A DVR
segment needs none of it: the files are immutable and on local disk, and the viewers of a DVR
fetch the same few segments. ``SegmentFiles.response`` answers the common request, a plain
``GET`` without ``Range`` or conditional headers, with ``SendfileResponse``:

* the file comes from an open-file cache (nginx's ``open_file_cache``): one ``open`` and
  ``fstat`` per file, not per request, and ``ETag``/``Last-Modified`` formatted once;
* the headers go out through aiohttp as always (middlewares and hooks see a normal response);
* ``os.sendfile`` writes the body on the socket at once; only what the socket will not take now
  goes through ``loop.sendfile``.

Every other request (``HEAD``, ranges, ``If-*``) gets ``FileResponse`` itself, so the HTTP
answers are the same as before: the same headers (``ETag`` and ``Last-Modified`` computed as
aiohttp computes them), ranges, 304 and 412. The cache holds at most ``capacity`` descriptors;
the DVR's HTTP shell drops the entries of segments retention removed (``discard``), so a
deleted segment's disk space is not kept by an open descriptor.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import stat as stat_mode
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter

#: Request headers only ``FileResponse`` answers (ranges and conditional requests).
_SLOW_PATH: Final = (hdrs.RANGE, hdrs.IF_RANGE, hdrs.IF_MATCH, hdrs.IF_NONE_MATCH,
                     hdrs.IF_MODIFIED_SINCE, hdrs.IF_UNMODIFIED_SINCE)
#: Open segment files kept: a few minutes of a full ladder around where viewers watch.
OPEN_FILES: Final = 256

#: Which recording a file belongs to: (channel, recording id).
Owner = tuple[str, int]
#: Which file of it: (rendition, msn), msn ``None`` for an init segment.
FileId = tuple[str, int | None]


class OpenFile:
    """One cached descriptor and the headers its file's ``stat`` gives."""

    __slots__ = ("etag", "fd", "last_modified", "owner", "part", "path", "size")

    def __init__(self, path: str, fd: int, stat: os.stat_result, owner: Owner, part: FileId) -> None:
        self.path = path
        self.fd = fd  # -1 once closed
        self.size = stat.st_size
        self.etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'  # as FileResponse computes it
        self.last_modified = time.strftime("%a, %d %b %Y %H:%M:%S GMT",
                                           time.gmtime(math.ceil(stat.st_mtime)))
        self.owner = owner
        self.part = part


class SegmentFiles:
    """Open regular files by path, the least recently used closed first.

    Never awaits while it holds a descriptor, so closing one (eviction, ``discard``) can never
    pull it from under a response: ``SendfileResponse`` takes the descriptor again after its
    only ``await`` and sends synchronously.
    """

    def __init__(self, capacity: int = OPEN_FILES) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._open: OrderedDict[str, OpenFile] = OrderedDict()
        self._owned: dict[Owner, set[str]] = {}

    def __len__(self) -> int:
        return len(self._open)

    def get(self, path: str, owner: Owner, part: FileId) -> OpenFile | None:
        """The open file at ``path``; ``None`` when there is none (or not a regular file)."""
        entry = self._open.get(path)
        if entry is not None:
            self._open.move_to_end(path)
            return entry
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            stat = os.fstat(fd)
        except OSError:
            os.close(fd)
            return None
        if not stat_mode.S_ISREG(stat.st_mode):
            os.close(fd)
            return None
        entry = self._open[path] = OpenFile(path, fd, stat, owner, part)
        self._owned.setdefault(owner, set()).add(path)
        if len(self._open) > self.capacity:
            self._close(self._open.popitem(last=False)[1])
        return entry

    def owns(self, owner: Owner) -> bool:
        return owner in self._owned

    def discard(self, owner: Owner, doomed: Callable[[FileId], bool] | None = None) -> int:
        """Close ``owner``'s files that ``doomed`` picks (all without it): they were removed."""
        paths = self._owned.get(owner, ())
        gone = [path for path in paths if doomed is None or doomed(self._open[path].part)]
        for path in gone:
            self._close(self._open.pop(path))
        return len(gone)

    def close(self) -> None:
        while self._open:
            self._close(self._open.popitem()[1])

    def _close(self, entry: OpenFile) -> None:
        paths = self._owned[entry.owner]
        paths.discard(entry.path)
        if not paths:
            del self._owned[entry.owner]
        fd, entry.fd = entry.fd, -1
        os.close(fd)

    def response(self, request: web.Request, path: str, headers: dict[str, str],
                 owner: Owner, part: FileId) -> web.StreamResponse | None:
        """The file at ``path`` with ``headers``; ``None`` when it is not there."""
        if request.method != hdrs.METH_GET or any(name in request.headers for name in _SLOW_PATH):
            return web.FileResponse(path, headers=headers) if os.path.isfile(path) else None
        entry = self.get(path, owner, part)
        if entry is None:
            return None
        return SendfileResponse(self, entry, {**headers, hdrs.ETAG: entry.etag,
                                              hdrs.LAST_MODIFIED: entry.last_modified,
                                              hdrs.ACCEPT_RANGES: "bytes"})


class SendfileResponse(web.StreamResponse):
    """A 200 whose body is a whole cached file, written with ``os.sendfile``."""

    def __init__(self, files: SegmentFiles, entry: OpenFile, headers: dict[str, str]) -> None:
        super().__init__(headers=headers)
        self._files = files
        self._entry = entry
        self.content_length = entry.size

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self._payload_writer is not None or self._eof_sent:
            return await super().prepare(request)
        writer = await super().prepare(request)  # sends the headers
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("connection lost")
        entry, count, offset = self._entry, self._entry.size, 0
        if entry.fd < 0:  # closed while the headers went out: take it again
            again = self._files.get(entry.path, entry.owner, entry.part)
            if again is None or again.size != count:
                raise ConnectionResetError(f"{entry.path} went away")
            entry = again
        sock = _plain_socket(transport)
        if sock is not None:
            offset = _send_now(sock.fileno(), entry.fd, count)
        if offset < count:
            # the socket is full: wait for it on a descriptor of our own (the cache may close
            # its one meanwhile)
            with os.fdopen(os.dup(entry.fd), "rb", buffering=0) as file:
                await asyncio.get_running_loop().sendfile(transport, file, offset, count - offset)
        await super().write_eof()
        return writer


def _plain_socket(transport: asyncio.BaseTransport) -> socket.socket | None:
    """The socket under a plain (not TLS) transport that buffers nothing now, else ``None``."""
    sock: socket.socket | None = transport.get_extra_info("socket")
    if (sock is None or transport.get_extra_info("sslcontext") is not None
            or not isinstance(transport, asyncio.WriteTransport)
            or transport.get_write_buffer_size()):
        return None
    return sock


def _send_now(out: int, fd: int, count: int) -> int:
    """Bytes of ``fd`` written on the socket ``out`` before it would block."""
    offset = 0
    while offset < count:
        try:
            sent = os.sendfile(out, fd, offset, count - offset)
        except (BlockingIOError, InterruptedError):
            break
        except OSError as exc:
            raise ConnectionResetError(f"sendfile: {exc}") from exc
        if sent == 0:
            raise ConnectionResetError(f"the file ended {count - offset} bytes early")
        offset += sent
    return offset
