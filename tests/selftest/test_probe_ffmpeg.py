"""The probe plays real CMAF HLS written by Debian's ffmpeg and reads every painted clock."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web
from live.selftest import clockcode
from live.selftest.probe import DecodedFrame, ProbeError, probe

pytestmark = [
    pytest.mark.ffmpeg,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="Debian's ffmpeg is not installed"),
]

FPS = 15
SECONDS = 2
FIRST_MS = 1_795_000_000_000


def painted_clip(width: int, height: int, seconds: int = SECONDS,
                 first_ms: int = FIRST_MS) -> tuple[bytes, list[int]]:
    """Raw yuv420p frames with a moving picture and a clock code each; and the painted times."""
    frames, times = [], []
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(FPS * seconds):
        ms = first_ms + i * 1000 // FPS
        y = ((xx + yy + 5 * i) % 200 + 30).astype(np.uint8)
        clockcode.paint(y, ms)
        uv = np.full(width * height // 2, 128, dtype=np.uint8)
        frames.append(y.tobytes() + uv.tobytes())
        times.append(ms)
    return b"".join(frames), times


def ffmpeg_cmaf_hls(directory: Path, width: int, height: int, kbps: int,
                    first_ms: int = FIRST_MS) -> list[int]:
    """Encode a painted clip to fMP4 HLS (1 s segments) in ``directory``; the painted times."""
    raw, times = painted_clip(width, height, first_ms=first_ms)
    directory.mkdir(parents=True)
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
         "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{width}x{height}", "-r", str(FPS), "-i", "-",
         "-c:v", "libx264", "-preset", "ultrafast", "-b:v", f"{kbps}k", "-g", str(FPS), "-bf", "0",
         "-f", "hls", "-hls_segment_type", "fmp4", "-hls_time", "1", "-hls_playlist_type", "vod",
         "-hls_fmp4_init_filename", "init.mp4", str(directory / "index.m3u8")],
        input=raw, check=True, timeout=60,
    )
    return times


@pytest.fixture(scope="module")
def hls_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[int]]]:
    root = tmp_path_factory.mktemp("hls")
    painted = {
        "180p": ffmpeg_cmaf_hls(root / "180p", 320, 180, 150),
        "90p": ffmpeg_cmaf_hls(root / "90p", 160, 90, 60),
    }
    (root / "master.m3u8").write_text(
        "#EXTM3U\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=200000,RESOLUTION=320x180,CODECS="avc1.42c00d"\n180p/index.m3u8\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=80000,RESOLUTION=160x90,CODECS="avc1.42c00b"\n90p/index.m3u8\n'
    )
    return root, painted


@pytest.fixture
async def static_server(hls_tree: tuple[Path, dict[str, list[int]]]) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_static("/", hls_tree[0])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_probe_decodes_every_frame_of_a_media_playlist_and_reads_every_code(
    static_server: str, hls_tree: tuple[Path, dict[str, list[int]]]
) -> None:
    seen: list[DecodedFrame] = []
    report = await probe(f"{static_server}/180p/index.m3u8", 30, on_frame=seen.append)
    assert report.ended
    assert report.frames == FPS * SECONDS and report.unreadable_frames == 0
    assert [f.painted_ms for f in seen] == hls_tree[1]["180p"]
    assert report.segments == SECONDS and report.parts == 0 and report.http_errors == 0
    assert report.decode_errors == 0
    assert report.latency_ms is not None and report.latency_ms.count == FPS * SECONDS
    # the clip was painted with a fixed past clock, so latency is now minus then, per frame
    assert report.latency_ms.min > 0
    assert report.pdt_latency_ms is None  # ffmpeg wrote no PROGRAM-DATE-TIME
    pts = [f.pts_s for f in seen]
    assert pts == sorted(pts)


@pytest.mark.parametrize(("choice", "expected"), [("lowest", "90p"), ("highest", "180p"), ("180p", "180p"),
                                                  (None, "90p")])
async def test_probe_picks_the_rendition_asked_for_from_a_multivariant_playlist(
    static_server: str, hls_tree: tuple[Path, dict[str, list[int]]], choice: str | None, expected: str
) -> None:
    seen: list[DecodedFrame] = []
    report = await probe(f"{static_server}/master.m3u8", 30, rendition=choice, on_frame=seen.append)
    assert report.media_playlist == f"{static_server}/{expected}/index.m3u8"
    assert [f.painted_ms for f in seen] == hls_tree[1][expected]
    assert report.unreadable_frames == 0


async def test_unknown_rendition_names_the_ones_there_are(static_server: str) -> None:
    with pytest.raises(ProbeError, match="180p"):
        await probe(f"{static_server}/master.m3u8", 5, rendition="4k")


async def test_probe_joins_a_live_playlist_at_its_newest_segment_and_follows_it_to_the_end(
    tmp_path: Path,
) -> None:
    """ffmpeg writes plain (non-LL) HLS in real time while the probe plays it by polling."""
    raw, painted = painted_clip(320, 180, seconds=4)  # the playlist is live for a while
    source = tmp_path / "clip.yuv"
    source.write_bytes(raw)
    out = tmp_path / "live"
    out.mkdir()
    app = web.Application()
    app.router.add_static("/", out)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    ffmpeg = await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
        "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", "320x180", "-r", str(FPS), "-i", str(source),
        "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "150k", "-g", str(FPS), "-bf", "0",
        "-f", "hls", "-hls_segment_type", "fmp4", "-hls_time", "1", "-hls_list_size", "0",
        "-hls_flags", "temp_file", "-hls_fmp4_init_filename", "init.mp4", str(out / "index.m3u8"))
    try:
        async with asyncio.timeout(20):
            while not (out / "index.m3u8").exists() or (out / "index.m3u8").read_text().count("#EXTINF") < 2:
                await asyncio.sleep(0.05)
        seen: list[DecodedFrame] = []
        report = await probe(f"http://127.0.0.1:{port}/index.m3u8", 30, on_frame=seen.append)
        assert await ffmpeg.wait() == 0
    finally:
        if ffmpeg.returncode is None:
            ffmpeg.kill()
            await ffmpeg.wait()
        await runner.cleanup()
    codes = [f.painted_ms for f in seen]
    assert report.ended and report.unreadable_frames == 0 and report.http_errors == 0
    assert report.playlist_reloads > 2  # it polled a live playlist, not one finished file
    assert len(codes) < len(painted)  # joined live, not from the start
    assert codes == painted[len(painted) - len(codes):]  # then every frame, once, in order


async def test_probe_follows_a_stream_that_starts_over_with_a_new_init_segment(tmp_path: Path) -> None:
    """A publisher reconnects: sequence numbers restart at 0 under a new EXT-X-MAP."""
    first = ffmpeg_cmaf_hls(tmp_path / "a", 320, 180, 150)
    second = ffmpeg_cmaf_hls(tmp_path / "b", 160, 90, 60, first_ms=FIRST_MS + 100_000)

    def served(tree: str, live: bool) -> str:
        text = (tmp_path / tree / "index.m3u8").read_text().replace('URI="', f'URI="{tree}/')
        lines = [line if line.startswith("#") else f"{tree}/{line}" for line in text.splitlines()]
        if live:
            lines = [line.replace("#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-MEDIA-SEQUENCE:5") for line in lines
                     if line not in ("#EXT-X-ENDLIST", "#EXT-X-PLAYLIST-TYPE:VOD")]
        return "\n".join(lines) + "\n"

    requests = 0

    async def playlist(_: web.Request) -> web.Response:
        nonlocal requests
        requests += 1
        return web.Response(text=served("a", live=True) if requests <= 2 else served("b", live=False))

    app = web.Application()
    app.router.add_get("/index.m3u8", playlist)
    app.router.add_static("/", tmp_path)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        seen: list[DecodedFrame] = []
        report = await probe(f"http://127.0.0.1:{runner.addresses[0][1]}/index.m3u8", 30,
                             on_frame=seen.append)
    finally:
        await runner.cleanup()
    assert report.restarts == 1 and report.ended
    assert report.unreadable_frames == 0 and report.decode_errors == 0
    assert [f.painted_ms for f in seen] == first[FPS:] + second  # joined at A's newest segment


async def test_an_unreachable_server_is_a_probe_error_not_a_crash(unused_tcp_port: int) -> None:
    with pytest.raises(ProbeError, match="could not be fetched"):
        await probe(f"http://127.0.0.1:{unused_tcp_port}/hls/x/master.m3u8", 5)
