"""The DASH routes serve the LL-HLS store's own CMAF: ffprobe reads the MPD, a segment being
produced arrives chunk by chunk as its parts are published, and every byte is the one HLS
serves. The media is real CMAF from the ffmpeg CLI, cut into parts as the packager does."""

from __future__ import annotations

import asyncio
import json
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
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

NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
FPS = 30
FRAMES_PER_PART = 10
PARTS_PER_SEGMENT = 6
INIT = "180p"


def top_level_boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    boxes, offset = [], 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        boxes.append((kind, data[offset:offset + size]))
        offset += size
    return boxes


def tfdt(part: bytes) -> int:
    at = part.find(b"tfdt")
    version = part[at + 4]
    return int.from_bytes(part[at + 8 : at + (16 if version == 1 else 12)], "big")


@pytest.fixture(scope="module")
def cmaf(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[bytes]]:
    path = Path(tmp_path_factory.mktemp("cmaf")) / "clip.mp4"
    subprocess.run([
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate={FPS}",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "4",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-keyint_min", "60",
        "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
        "-f", "mp4", "-movflags", "cmaf+frag_keyframe+empty_moov+default_base_moof",
        "-frag_duration", "333334", str(path),
    ], check=True, timeout=60)
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


def publish(store: OriginStore, parts: list[bytes], number: int) -> None:
    msn, index = divmod(number, PARTS_PER_SEGMENT)
    store.publish_part("alpha", Part(INIT, msn, index, parts[number], FRAMES_PER_PART / FPS,
                                     index == 0, 1.7e9 + number / 3, index == PARTS_PER_SEGMENT - 1,
                                     tfdt(parts[number])))


@pytest.fixture
async def served(cmaf: tuple[bytes, list[bytes]]) -> AsyncIterator[tuple[OriginStore, TestServer]]:
    init, _ = cmaf
    store = OriginStore()
    store.publish_init("alpha", InitSegment(INIT, init, "avc1.640015,mp4a.40.2", 600_000, 320, 180, 30.0))
    app = web.Application()
    setup_origin(app, store)
    server = TestServer(app)
    await server.start_server()
    try:
        yield store, server
    finally:
        await server.close()


async def ffprobe(url: str) -> dict[str, object]:
    process = await asyncio.create_subprocess_exec(
        "ffprobe", "-v", "error", "-count_frames",
        "-show_entries", "stream=codec_name,nb_read_frames", "-of", "json", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return json.loads(out)  # type: ignore[no-any-return]


async def test_ffprobe_reads_every_frame_through_the_mpd_of_an_ended_stream(
    served: tuple[OriginStore, TestServer], cmaf: tuple[bytes, list[bytes]]
) -> None:
    store, server = served
    _, parts = cmaf
    for number in range(len(parts)):
        publish(store, parts, number)
    store.end("alpha")
    probe = await ffprobe(str(server.make_url("/dash/alpha/manifest.mpd")))
    codecs = {s["codec_name"]: s for s in probe["streams"]}  # type: ignore[attr-defined]
    assert {"h264", "aac"} <= set(codecs)
    assert int(codecs["h264"]["nb_read_frames"]) == 4 * FPS


async def test_the_live_mpd_describes_the_stores_segments_with_their_tfdt(
    served: tuple[OriginStore, TestServer], cmaf: tuple[bytes, list[bytes]]
) -> None:
    store, server = served
    _, parts = cmaf
    for number in range(PARTS_PER_SEGMENT + 2):  # one complete segment, one being produced
        publish(store, parts, number)
    async with aiohttp.ClientSession() as http:
        async with http.get(server.make_url("/dash/alpha/manifest.mpd")) as response:
            assert response.status == 200
            assert response.content_type == "application/dash+xml"
            root = ET.fromstring(await response.text())
        async with http.get(server.make_url("/dash/time")) as response:
            assert (await response.text()).endswith("Z")
    assert root.get("type") == "dynamic"
    template = root.find("d:Period/d:AdaptationSet/d:Representation/d:SegmentTemplate", NS)
    assert template is not None and template.get("availabilityTimeComplete") == "false"
    timescale = int(template.get("timescale", "0"))
    s = template.findall("d:SegmentTimeline/d:S", NS)
    assert s[0].get("t") == str(tfdt(parts[0]))
    assert int(s[0].get("d", "0")) == pytest.approx(2 * timescale, rel=0.01)
    assert s[0].get("r") == "1"  # the segment being produced is listed with its nominal length


async def test_the_segment_being_produced_arrives_in_chunks_as_parts_are_published(
    served: tuple[OriginStore, TestServer], cmaf: tuple[bytes, list[bytes]]
) -> None:
    store, server = served
    _, parts = cmaf
    for number in range(PARTS_PER_SEGMENT + 1):
        publish(store, parts, number)
    state = store.channel("alpha")
    assert state is not None
    url = server.make_url(f"/dash/alpha/{INIT}/{state.epoch}/1.m4s")
    received: list[tuple[int, int]] = []  # (bytes so far, parts published then)
    published = PARTS_PER_SEGMENT + 1
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        assert response.headers.get("Transfer-Encoding") == "chunked"
        body = bytearray()

        async def producer() -> None:
            nonlocal published
            for number in range(PARTS_PER_SEGMENT + 1, len(parts)):
                await asyncio.sleep(0.1)
                publish(store, parts, number)
                published += 1

        task = asyncio.create_task(producer())
        async for chunk in response.content.iter_any():
            body += chunk
            received.append((len(body), published))
        await task
    assert bytes(body) == b"".join(parts[PARTS_PER_SEGMENT:])
    assert len(received) >= 3 and received[0][1] < len(parts)  # bytes before the segment was done
    seg = store.channel("alpha").rendition(INIT).complete_segment(1)  # type: ignore[union-attr]
    assert seg is not None and seg.data == bytes(body)  # the very bytes HLS serves


async def test_the_next_segment_is_held_until_it_opens_and_unknown_ones_are_404(
    served: tuple[OriginStore, TestServer], cmaf: tuple[bytes, list[bytes]]
) -> None:
    store, server = served
    _, parts = cmaf
    for number in range(PARTS_PER_SEGMENT):
        publish(store, parts, number)
    state = store.channel("alpha")
    assert state is not None
    async with aiohttp.ClientSession() as http:
        async with http.get(server.make_url(f"/dash/alpha/{INIT}/{state.epoch}/5.m4s")) as response:
            assert response.status == 404
        async with http.get(server.make_url(f"/dash/alpha/{INIT}/old/0.m4s")) as response:
            assert response.status == 404

        async def later() -> None:
            await asyncio.sleep(0.2)
            for number in range(PARTS_PER_SEGMENT, len(parts)):
                publish(store, parts, number)

        task = asyncio.create_task(later())
        async with http.get(server.make_url(f"/dash/alpha/{INIT}/{state.epoch}/1.m4s")) as response:
            assert response.status == 200
            assert await response.read() == b"".join(parts[PARTS_PER_SEGMENT:])
        await task
        async with http.get(server.make_url(f"/dash/alpha/{INIT}/{state.epoch}/init.mp4")) as response:
            assert await response.read() == state.rendition(INIT).init.data  # type: ignore[union-attr]


async def test_the_mpd_is_rendered_once_per_change_however_often_it_is_polled(
    served: tuple[OriginStore, TestServer], cmaf: tuple[bytes, list[bytes]]
) -> None:
    store, server = served
    _, parts = cmaf
    for number in range(3):
        publish(store, parts, number)
    url = server.make_url("/dash/alpha/manifest.mpd")
    async with aiohttp.ClientSession() as http:
        async def fetch() -> str:
            async with http.get(url) as response:
                return await response.text()
        first, again = await fetch(), await fetch()
        assert first == again  # same publishTime: the same rendering
        for number in range(3, PARTS_PER_SEGMENT + 1):  # segment 0 completes: the timeline grows
            publish(store, parts, number)
        assert await fetch() != first
        store.remove("alpha")
        async with http.get(url) as response:
            assert response.status == 404


async def test_ffprobe_reads_the_live_dynamic_mpd(
    served: tuple[OriginStore, TestServer], cmaf: tuple[bytes, list[bytes]]
) -> None:
    store, server = served
    _, parts = cmaf
    for number in range(PARTS_PER_SEGMENT + 1):
        publish(store, parts, number)

    async def keep_publishing() -> None:
        for number in range(PARTS_PER_SEGMENT + 1, len(parts)):
            await asyncio.sleep(FRAMES_PER_PART / FPS)
            publish(store, parts, number)

    task = asyncio.create_task(keep_publishing())
    process = await asyncio.create_subprocess_exec(  # 1 s of analysis: the clip is only 4 s long
        "ffprobe", "-v", "error", "-analyzeduration", "1000000",
        "-show_entries", "stream=codec_name,width,height", "-of", "json",
        str(server.make_url("/dash/alpha/manifest.mpd")),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    await task
    assert process.returncode == 0, err.decode()
    streams = {s["codec_name"]: s for s in json.loads(out)["streams"]}
    assert streams["h264"]["width"] == 320 and "aac" in streams
