"""Landing-page thumbnails: made from the stream's keyframes by PyAV, once per period, never per
request; served with caching headers; gone when the stream ends; the landing page orders by
viewers. The stream is real H.264 (libx264 through PyAV, demuxed from MP4 as the ingest hands it
over: AVCC access units plus the avcC record)."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator

import av
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st
from live.ingest.registry import LiveStream, LiveStreamRegistry
from live.media.units import AccessUnit, TrackKind, VideoConfig
from live.thumbnails import ThumbnailError, Thumbnails, keyframe_jpeg, thumbnail_size
from live.webui import LiveChannel, render_channel_list, setup_web

Served = tuple[LiveStreamRegistry, Thumbnails, TestClient[web.Request, web.Application]]


def _h264(width: int, height: int, frames: int = 20, gop: int = 10) -> tuple[bytes, list[tuple[bytes, bool]]]:
    """A real H.264 stream: the avcC record and its (access unit, keyframe) list."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"g": str(gop), "bf": "0"}
        for i in range(frames):
            picture = np.full((height, width, 3), (i * 11) % 256, dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        out.mux(stream.encode(None))
    buf.seek(0)
    with av.open(buf) as source:
        video = source.streams.video[0]
        record = bytes(video.codec_context.extradata or b"")
        units = [(bytes(p), bool(p.is_keyframe)) for p in source.demux(video) if p.size]
    return record, units


def _config(record: bytes, width: int, height: int) -> VideoConfig:
    return VideoConfig(codec="h264", codec_string="avc1.64001e", width=width, height=height, record=record)


def _unit(data: bytes, keyframe: bool, n: int) -> AccessUnit:
    return AccessUnit(TrackKind.VIDEO, n * 33, n * 33, data, keyframe, time.time())


def _jpeg_size(jpeg: bytes) -> tuple[int, int]:
    with av.open(io.BytesIO(jpeg), format="image2pipe", options={"vcodec": "mjpeg"}) as image:
        frame = next(image.decode(video=0))
        return frame.width, frame.height


@pytest.mark.parametrize(("source", "expected"), [
    ((1280, 720), (320, 180)), ((640, 360), (320, 180)), ((240, 136), (240, 136)),
    ((1080, 1920), (320, 568)), ((641, 361), (320, 180)),
])
def test_thumbnail_keeps_the_aspect_at_most_320_wide_with_even_sides(
        source: tuple[int, int], expected: tuple[int, int]) -> None:
    assert thumbnail_size(*source) == expected


@given(st.integers(1, 8192), st.integers(1, 8192))
def test_any_size_gives_even_sides_within_320_and_the_sources_aspect(width: int, height: int) -> None:
    out_w, out_h = thumbnail_size(width, height)
    assert out_w % 2 == 0 and out_h % 2 == 0 and 2 <= out_w <= 320 and out_h >= 2
    assert out_w <= max(width, 2)
    if out_h > 2 and out_w > 2:  # one or two pixels of rounding, in the smaller scale's units
        assert abs(out_h - height * out_w / width) <= 2 + height / width * 2


def test_a_size_without_a_picture_is_refused() -> None:
    with pytest.raises(ThumbnailError):
        thumbnail_size(0, 720)


@pytest.mark.parametrize(("width", "height"), [(640, 360), (426, 240), (360, 640)])
def test_a_keyframe_becomes_a_valid_jpeg_of_the_streams_size_class(width: int, height: int) -> None:
    record, units = _h264(width, height, frames=3)
    jpeg = keyframe_jpeg(_config(record, width, height), units[0][0])
    assert jpeg[:3] == b"\xff\xd8\xff" and jpeg[-2:] == b"\xff\xd9"
    assert _jpeg_size(jpeg) == thumbnail_size(width, height)


def test_corrupt_keyframes_and_unknown_codecs_are_clear_errors() -> None:
    record, units = _h264(320, 180, frames=1)
    with pytest.raises(ThumbnailError, match="no decoder"):
        keyframe_jpeg(VideoConfig("vp9", "vp09", 320, 180, record), units[0][0])
    with pytest.raises(ThumbnailError):
        keyframe_jpeg(_config(record, 320, 180), b"\x00\x00\x00\x05\x65garbage")


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    registry = LiveStreamRegistry()
    thumbs = Thumbnails(registry, refresh_s=0.2)
    thumbs.start()
    app = web.Application()
    setup_web(app, registry, thumbnails=thumbs)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield registry, thumbs, client
    await client.close()
    await thumbs.close()


async def _until(predicate: object, what: str, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.02)


def _publish(stream: LiveStream, record: bytes, units: list[tuple[bytes, bool]],
             width: int, height: int) -> None:
    stream.set_video_config(_config(record, width, height))
    for n, (data, key) in enumerate(units):
        stream.push(_unit(data, key, n))


async def test_the_thumbnail_is_made_once_per_new_keyframe_not_per_request(served: Served) -> None:
    registry, thumbs, client = served
    record, units = _h264(640, 360, frames=20, gop=10)
    stream = registry.claim("thumb_show", "rtmp", "127.0.0.1:1")
    _publish(stream, record, units[:10], 640, 360)
    await _until(lambda: thumbs.generations == 1, "the first thumbnail")
    for _ in range(20):
        async with client.get("/thumbnails/thumb_show.jpg") as response:
            assert response.status == 200
            assert response.content_type == "image/jpeg"
            assert response.headers["Cache-Control"] == "public, max-age=0"
            etag = response.headers["ETag"]
            jpeg = await response.read()
    assert _jpeg_size(jpeg) == (320, 180)
    await asyncio.sleep(0.5)  # two refresh periods without a new keyframe: nothing is made
    assert thumbs.generations == 1
    async with client.get("/thumbnails/thumb_show.jpg", headers={"If-None-Match": etag}) as response:
        assert response.status == 304
    _publish(stream, record, units[10:], 640, 360)  # a newer keyframe (another picture)
    await _until(lambda: thumbs.generations == 2, "the refreshed thumbnail")
    found = thumbs.get("thumb_show")
    assert found is not None and found.generation == 2 and found.etag != etag
    async with client.get("/live-now.json") as response:
        listed = (await response.json())["channels"]
    assert listed[0]["thumbnail"] == "/thumbnails/thumb_show.jpg?g=2"
    async with client.get("/") as response:
        assert 'src="/thumbnails/thumb_show.jpg?g=2"' in await response.text()
    assert thumbs.generations == 2 and thumbs.failures == 0


async def test_an_ended_stream_has_no_thumbnail_and_keeps_nothing(served: Served) -> None:
    registry, thumbs, client = served
    record, units = _h264(320, 180, frames=2)
    stream = registry.claim("short_show", "rtmp", "127.0.0.1:1")
    _publish(stream, record, units, 320, 180)
    await _until(lambda: thumbs.get("short_show") is not None, "the thumbnail")
    registry.release(stream)
    assert thumbs.get("short_show") is None and not thumbs._channels
    async with client.get("/thumbnails/short_show.jpg") as response:
        assert response.status == 404
        assert response.headers["Cache-Control"] == "no-store"


def _entry(name: str, viewers: int | None) -> LiveChannel:
    stream = LiveStream(channel=name, protocol="rtmp", remote="x")
    return LiveChannel(stream.health(), viewers, None)


def test_the_landing_page_lists_channels_by_viewers_most_first() -> None:
    html = render_channel_list([_entry("small", 1), _entry("big_one", 40), _entry("none_yet", None),
                                _entry("mid", 7), _entry("Bad<b>", 99)])
    order = [html.index(f'href="/watch/{name}"') for name in ("big_one", "mid", "small", "none_yet")]
    assert order == sorted(order)
    assert "Bad" not in html and "40 watching" in html

