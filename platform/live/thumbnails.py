"""One JPEG per live channel for the landing page, made in the background, never per request.

Each live stream gets one small task: it keeps a reference to the newest keyframe the ingest
handed over (one access unit; the ingest already bounds its size) and, every ``refresh_s``
seconds when a newer keyframe has arrived, decodes that keyframe alone (an IDR picture needs
nothing before it) with PyAV and encodes a ``max_width``-wide JPEG of the same aspect. The top
rung of a ladder is the source passed through whenever its codec allows
(``live.transcode.ladder``), so these keyframes are the top rung's; otherwise they are the
picture the top rung is encoded from, the same image before the encoder. Requests only read
the finished bytes, with an ETag and a ``max-age`` equal to the refresh period. Memory: one
keyframe reference and one JPEG per live stream; decoding runs in a worker thread, one at a
time for the whole node.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Final

import av
from aiohttp import web

from live.ingest.registry import LiveStream, LiveStreamRegistry
from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig

log = logging.getLogger(__name__)

REFRESH_S: Final = 10.0
MAX_WIDTH: Final = 320
#: the libavcodec decoder for each ``VideoConfig.codec``
_DECODERS: Final = {"h264": "h264", "h265": "hevc"}


class ThumbnailError(Exception):
    """The keyframe could not be turned into a picture (unknown codec, corrupt data)."""


def thumbnail_size(width: int, height: int, max_width: int = MAX_WIDTH) -> tuple[int, int]:
    """At most ``max_width`` wide, the source's aspect, even sides (4:2:0 JPEG), at least 2x2."""
    if width <= 0 or height <= 0:
        raise ThumbnailError(f"the stream has no picture size ({width}x{height})")
    out_w = min(width, max_width)
    out_h = round(height * out_w / width)
    return max(2, out_w - out_w % 2), max(2, out_h - out_h % 2)


def keyframe_jpeg(config: VideoConfig, keyframe: bytes, max_width: int = MAX_WIDTH) -> bytes:
    """Decode one length-prefixed keyframe with its decoder record; a JPEG of it, scaled down."""
    name = _DECODERS.get(config.codec)
    if name is None:
        raise ThumbnailError(f"no decoder for video codec {config.codec!r}")
    try:
        decoder = av.CodecContext.create(name, "r")
        decoder.extradata = config.record
        frames = decoder.decode(av.Packet(keyframe)) + decoder.decode(None)  # type: ignore[attr-defined,union-attr]
        if not frames:
            raise ThumbnailError("the keyframe decoded to no picture")
        width, height = thumbnail_size(frames[-1].width, frames[-1].height, max_width)
        picture = frames[-1].reformat(width=width, height=height, format="yuvj420p")
        encoder = av.CodecContext.create("mjpeg", "w")
        encoder.width, encoder.height = width, height  # type: ignore[attr-defined]
        encoder.pix_fmt = "yuvj420p"  # type: ignore[attr-defined]
        encoder.time_base = Fraction(1, 1)
        encoder.options = {"q": "5"}
        packets = encoder.encode(picture) + encoder.encode(None)  # type: ignore[attr-defined]
    except av.FFmpegError as exc:
        raise ThumbnailError(f"cannot decode the keyframe: {exc}") from exc
    return b"".join(bytes(packet) for packet in packets)


@dataclass(frozen=True, slots=True)
class Thumbnail:
    jpeg: bytes
    etag: str
    generation: int  # how many times this stream's thumbnail was made, 1 for the first
    made_at: float  # time.time()


@dataclass(eq=False, slots=True)
class _Channel:
    stream: LiveStream
    config: VideoConfig | None = None
    keyframe: bytes | None = None
    keyframe_seq: int = 0
    made_seq: int = 0
    thumbnail: Thumbnail | None = None
    first_keyframe: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    unsubscribe: Callable[[], None] | None = None


class Thumbnails:
    """The thumbnails of every live stream of one registry (call ``start`` inside the loop)."""

    def __init__(self, registry: LiveStreamRegistry, refresh_s: float = REFRESH_S,
                 max_width: int = MAX_WIDTH) -> None:
        self.registry = registry
        self.refresh_s = refresh_s
        self.max_width = max_width
        self._channels: dict[str, _Channel] = {}
        self._decoding = asyncio.Semaphore(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.generations = 0  # all thumbnails made on this node (the tests count them)
        self.failures = 0

    def start(self) -> None:
        """Watch every stream from now on; call inside the event loop the ingest runs on."""
        self._loop = asyncio.get_running_loop()
        self.registry.on_stream_start(self._watch)
        for stream in self.registry:
            self._watch(stream)

    async def close(self) -> None:
        channels = list(self._channels.values())
        self._channels.clear()
        for channel in channels:
            self._drop(channel)
        for channel in channels:
            if channel.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await channel.task

    def get(self, name: str) -> Thumbnail | None:
        channel = self._channels.get(name)
        return channel.thumbnail if channel is not None else None

    def _watch(self, stream: LiveStream) -> None:
        channel = _Channel(stream)
        old = self._channels.pop(stream.channel, None)
        if old is not None:
            self._drop(old)
        self._channels[stream.channel] = channel

        def listener(_: LiveStream, item: AccessUnit | VideoConfig | AudioConfig | None) -> None:
            if item is None:
                if self._channels.get(stream.channel) is channel:
                    del self._channels[stream.channel]
                self._drop(channel)
            elif isinstance(item, VideoConfig):
                channel.config = item
            elif isinstance(item, AccessUnit) and item.kind is TrackKind.VIDEO and item.keyframe:
                channel.keyframe = item.data  # a reference: the older keyframe is freed
                channel.keyframe_seq += 1
                channel.first_keyframe.set()

        assert self._loop is not None, "Thumbnails.start() was not called"
        channel.task = self._loop.create_task(self._run(channel))
        channel.unsubscribe = stream.subscribe(listener)

    @staticmethod
    def _drop(channel: _Channel) -> None:
        if channel.unsubscribe is not None:
            channel.unsubscribe()
        if channel.task is not None:
            channel.task.cancel()
        channel.keyframe = None

    async def _run(self, channel: _Channel) -> None:
        """The first thumbnail as soon as a keyframe arrives, then one per period if newer."""
        await channel.first_keyframe.wait()
        while True:
            if channel.keyframe_seq != channel.made_seq:
                await self._make(channel)
            await asyncio.sleep(self.refresh_s)

    async def _make(self, channel: _Channel) -> None:
        config, keyframe, seq = channel.config, channel.keyframe, channel.keyframe_seq
        if config is None or keyframe is None:
            return
        channel.made_seq = seq
        async with self._decoding:
            try:
                jpeg = await asyncio.to_thread(keyframe_jpeg, config, keyframe, self.max_width)
            except ThumbnailError as exc:
                self.failures += 1
                log.warning("thumbnail of %s failed: %s", channel.stream.channel, exc)
                return
        previous = channel.thumbnail
        generation = previous.generation + 1 if previous is not None else 1
        etag = '"' + hashlib.sha256(jpeg).hexdigest()[:20] + '"'
        channel.thumbnail = Thumbnail(jpeg, etag, generation, time.time())
        self.generations += 1


THUMBNAILS_KEY: Final = web.AppKey("live.thumbnails", Thumbnails)


async def thumbnail(request: web.Request) -> web.StreamResponse:
    """``GET /thumbnails/{channel}.jpg``: the finished JPEG; 304 on a matching ETag."""
    thumbs = request.app[THUMBNAILS_KEY]
    found = thumbs.get(request.match_info["channel"])
    if found is None:
        raise web.HTTPNotFound(text="no thumbnail: the channel is not live or has no keyframe yet\n",
                               headers={"Cache-Control": "no-store"})
    headers = {
        "ETag": found.etag,
        "Cache-Control": f"public, max-age={int(thumbs.refresh_s)}",
        "X-Content-Type-Options": "nosniff",
    }
    if found.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=found.jpeg, content_type="image/jpeg", headers=headers)


def setup_thumbnails(app: web.Application, thumbs: Thumbnails) -> None:
    app[THUMBNAILS_KEY] = thumbs
    app.router.add_get("/thumbnails/{channel}.jpg", thumbnail)
