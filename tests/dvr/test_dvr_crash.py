"""A real crash: ffmpeg publishes to ``live serve``, the server is killed with SIGKILL mid-stream
and restarted on the same ``--data``; every segment its DVR listed before the kill is listed
again and byte-identical, and the publisher's return continues the same timeline.

It publishes 90 s before the kill, as the issue asks: 45 segments of every rung, several index
appends per second, a kill that lands mid-write.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ffmpeg]

ROOT = Path(__file__).resolve().parents[2]
CHANNEL, KEY = "demo", "demo_dvr_stream_key_2718"
PUBLISH_S = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_serve(data: Path, ports: tuple[int, int, int]) -> asyncio.subprocess.Process:
    rtmp, http, chat = ports
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'platform'}{os.pathsep}{ROOT}"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "live.cli", "serve", "--rtmp-port", str(rtmp), "--http-port", str(http),
        "--chat-port", str(chat), "--data", str(data), "--channel", f"{CHANNEL}={KEY}",
        cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    async with asyncio.timeout(30), aiohttp.ClientSession() as session:
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{http}/api/v1/streams") as response:
                    if response.status == 200:
                        return process
            await asyncio.sleep(0.2)


async def publish(rtmp: int, seconds: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "60",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k",
        "-f", "flv", f"rtmp://127.0.0.1:{rtmp}/live/{KEY}",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)


async def dvr_snapshot(session: aiohttp.ClientSession, base: str) -> dict[str, dict[str, bytes]]:
    """Every rendition's DVR playlist and the bytes of every segment it lists."""
    async with session.get(f"{base}/hls/{CHANNEL}/dvr/master.m3u8") as response:
        assert response.status == 200
        renditions = [line.removesuffix(".m3u8") for line in (await response.text()).splitlines()
                      if line.endswith(".m3u8")]
    snapshot: dict[str, dict[str, bytes]] = {}
    for rendition in renditions:
        async with session.get(f"{base}/hls/{CHANNEL}/dvr/{rendition}.m3u8") as response:
            playlist = await response.text()
        snapshot[rendition] = {"": playlist.encode()}
        for uri in re.findall(r"^(\S+\.m4s)$", playlist, re.MULTILINE):
            async with session.get(f"{base}/hls/{CHANNEL}/dvr/{uri}") as response:
                assert response.status == 200, uri
                snapshot[rendition][uri] = await response.read()
    return snapshot


async def kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    await process.wait()


@pytest.mark.timeout(360)
async def test_sigkill_and_restart_keep_every_completed_segment_byte_identical(tmp_path: Path) -> None:
    if shutil.which("ffmpeg") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must provide ffmpeg")
        pytest.skip("needs ffmpeg")
    ports = (free_port(), free_port(), free_port())
    base = f"http://127.0.0.1:{ports[1]}"
    server = await start_serve(tmp_path, ports)
    publisher = await publish(ports[0], PUBLISH_S + 30)
    try:
        async with aiohttp.ClientSession() as session:
            await asyncio.sleep(PUBLISH_S)
            before = await dvr_snapshot(session, base)
            # a segment the live origin still holds: the DVR stored exactly what it served
            rendition = next(iter(before))
            async with session.get(f"{base}/hls/{CHANNEL}/{rendition}.m3u8") as response:
                # the third-last: the DVR snapshot above surely holds it
                live_uri = re.findall(r"^(\S+/(\d+)\.m4s)$", await response.text(), re.MULTILINE)[-3]
            async with session.get(f"{base}/hls/{CHANNEL}/{live_uri[0]}") as response:
                live_segment = await response.read()
            server.send_signal(signal.SIGKILL)
            await server.wait()
    finally:
        await kill(publisher)
        await kill(server)
    assert all(len(files) > PUBLISH_S // 2 - 6 for files in before.values()), \
        {name: len(files) for name, files in before.items()}
    first_msn = int(re.findall(r"/(\d+)\.m4s$", before[rendition][""].decode(), re.MULTILINE)[0])
    uri = f"{rendition}/{first_msn + int(live_uri[1])}.m4s"
    assert before[rendition].get(uri) == live_segment

    server = await start_serve(tmp_path, ports)
    try:
        async with aiohttp.ClientSession() as session:
            after = await dvr_snapshot(session, base)
            assert set(after) == set(before)
            for name, files in before.items():
                lost = [uri for uri in files if uri and after[name].get(uri) != files[uri]]
                assert not lost, f"{name}: {lost} missing or changed after the restart"
                assert b"#EXT-X-ENDLIST" not in after[name][""]  # interrupted, not ended
            publisher = await publish(ports[0], 12)
            await publisher.wait()
            await asyncio.sleep(3)
            resumed = (await dvr_snapshot(session, base))[rendition]
    finally:
        await kill(server)
    playlist = resumed[""].decode()
    assert "#EXT-X-DISCONTINUITY\n" in playlist and playlist.count("#EXT-X-MAP:") == 2
    msns = [int(m) for m in re.findall(r"/(\d+)\.m4s$", playlist, re.MULTILINE)]
    assert msns == list(range(msns[0], msns[0] + len(msns))), "one contiguous timeline"
    assert len(msns) > len(before[rendition]) + 2
    assert all(resumed[u] == before[rendition][u] for u in before[rendition] if u)
    assert uri in resumed
