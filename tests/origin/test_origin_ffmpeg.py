"""A fallback client we did not write (Debian's ffprobe) reads a stream the origin serves.

The media is real CMAF made by the ffmpeg CLI (fragments of 10 frames, an IDR every 60), cut
into an init segment and moof+mdat parts the way the packager hands them over.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from live.origin.app import setup_origin
from live.origin.store import OriginStore
from live.package.parts import InitSegment, Part

pytestmark = [
    pytest.mark.ffmpeg,
    pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                       reason="needs Debian's ffmpeg and ffprobe"),
]

FPS = 30
FRAMES_PER_PART = 10
PARTS_PER_SEGMENT = 6


def top_level_boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    boxes, offset = [], 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        boxes.append((kind, data[offset:offset + size]))
        offset += size
    return boxes


@pytest.fixture(scope="module")
def cmaf(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[bytes]]:
    path = Path(tmp_path_factory.mktemp("cmaf")) / "clip.mp4"
    args = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate={FPS}",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "4",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-keyint_min", "60",
        "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
        "-f", "mp4", "-movflags", "cmaf+frag_keyframe+empty_moov+default_base_moof",
        "-frag_duration", "333334", str(path),
    ]
    subprocess.run(args, check=True, timeout=60)
    boxes = top_level_boxes(path.read_bytes())
    init = b"".join(box for kind, box in boxes if kind in (b"ftyp", b"moov"))
    parts: list[bytes] = []
    for kind, box in boxes:
        if kind == b"moof":
            parts.append(box)
        elif kind == b"mdat":
            parts[-1] += box
    assert len(parts) == 12
    return init, parts


async def test_ffprobe_reads_the_ended_stream_through_the_multivariant_playlist(
        cmaf: tuple[bytes, list[bytes]]) -> None:
    init, parts = cmaf
    store = OriginStore()
    store.publish_init("alpha", InitSegment("180p", init, "avc1.640015,mp4a.40.2", 600_000, 320, 180, 30.0))
    for number, data in enumerate(parts):
        msn, index = divmod(number, PARTS_PER_SEGMENT)
        store.publish_part("alpha", Part("180p", msn, index, data, FRAMES_PER_PART / FPS, index == 0,
                                         1.7e9 + number / 3, index == PARTS_PER_SEGMENT - 1))
    store.end("alpha")
    app = web.Application()
    setup_origin(app, store)
    server = TestServer(app)
    await server.start_server()
    try:
        process = await asyncio.create_subprocess_exec(
            "ffprobe", "-v", "error", "-count_frames",
            "-show_entries", "stream=codec_name,nb_read_frames:format=duration",
            "-of", "json", str(server.make_url("/hls/alpha/master.m3u8")),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        probe = json.loads(out)
        codecs = {stream["codec_name"]: stream for stream in probe["streams"]}
        assert set(codecs) == {"h264", "aac"}
        assert int(codecs["h264"]["nb_read_frames"]) == 4 * FPS  # every frame of every segment
        assert float(probe["format"]["duration"]) == pytest.approx(4.0, abs=0.2)
    finally:
        await server.close()


async def test_ffprobe_follows_the_live_playlist_until_endlist(cmaf: tuple[bytes, list[bytes]]) -> None:
    init, parts = cmaf
    store = OriginStore()
    store.publish_init("alpha", InitSegment("180p", init, "avc1.640015,mp4a.40.2", 600_000, 320, 180, 30.0))

    def publish(number: int) -> None:
        msn, index = divmod(number, PARTS_PER_SEGMENT)
        store.publish_part("alpha", Part("180p", msn, index, parts[number], FRAMES_PER_PART / FPS,
                                         index == 0, 1.7e9 + number / 3, index == PARTS_PER_SEGMENT - 1))

    for number in range(PARTS_PER_SEGMENT):
        publish(number)
    app = web.Application()
    setup_origin(app, store)
    server = TestServer(app)
    await server.start_server()
    try:
        process = await asyncio.create_subprocess_exec(
            "ffprobe", "-v", "error", "-live_start_index", "0", "-count_frames",
            "-show_entries", "stream=codec_name,nb_read_frames", "-of", "json",
            str(server.make_url("/hls/alpha/180p.m3u8")),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        for number in range(PARTS_PER_SEGMENT, len(parts)):
            await asyncio.sleep(FRAMES_PER_PART / FPS)
            publish(number)
        store.end("alpha")
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        codecs = {stream["codec_name"]: stream for stream in json.loads(out)["streams"]}
        assert int(codecs["h264"]["nb_read_frames"]) == 4 * FPS
    finally:
        await server.close()
