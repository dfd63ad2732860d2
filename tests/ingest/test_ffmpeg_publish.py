"""End to end with a client nobody here wrote: Debian's ffmpeg CLI publishing over RTMP."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass, field

import pytest
from live.ingest.registry import LiveStream, LiveStreamRegistry
from live.ingest.rtmp.server import RtmpServer
from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig

pytestmark = [
    pytest.mark.slow,
    pytest.mark.ffmpeg,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="Debian's ffmpeg is not installed"),
]

SECONDS = 10
FPS = 30
GOP = 60
SAMPLE_RATE = 44100


@dataclass
class Capture:
    video_config: VideoConfig | None = None
    audio_config: AudioConfig | None = None
    video: list[AccessUnit] = field(default_factory=list)
    audio: list[AccessUnit] = field(default_factory=list)
    ended: bool = False


def capture_all(registry: LiveStreamRegistry) -> dict[str, Capture]:
    captures: dict[str, Capture] = {}

    def on_start(stream: LiveStream) -> None:
        capture = captures[stream.channel] = Capture()

        def listener(_: LiveStream, item: object) -> None:
            if isinstance(item, VideoConfig):
                capture.video_config = item
            elif isinstance(item, AudioConfig):
                capture.audio_config = item
            elif isinstance(item, AccessUnit):
                (capture.video if item.kind is TrackKind.VIDEO else capture.audio).append(item)
            elif item is None:
                capture.ended = True

        stream.subscribe(listener)

    registry.on_stream_start(on_start)
    return captures


def ffmpeg_publish_args(port: int, key: str, size: str = "640x360") -> list[str]:
    return [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={FPS}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={SAMPLE_RATE}",
        "-t", str(SECONDS),
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
        "-g", str(GOP), "-keyint_min", str(GOP), "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "96k",
        "-f", "flv", f"rtmp://127.0.0.1:{port}/live/{key}",
    ]


async def run(args: list[str], timeout: float) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(timeout):
            _, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return process.returncode or 0, stderr.decode(errors="replace")


def check_capture(capture: Capture, width: int, height: int) -> None:
    assert capture.ended
    assert capture.video_config is not None and capture.audio_config is not None
    assert (capture.video_config.width, capture.video_config.height) == (width, height)
    assert capture.video_config.codec == "h264"
    assert capture.audio_config.sample_rate == SAMPLE_RATE
    assert capture.audio_config.channels == 1
    assert capture.audio_config.object_type == 2
    assert len(capture.video) == SECONDS * FPS
    expected_audio = SECONDS * SAMPLE_RATE / 1024
    assert abs(len(capture.audio) - expected_audio) <= 3
    for units in (capture.video, capture.audio):
        dts = [u.dts_ms for u in units]
        assert dts == sorted(dts) and len(set(dts)) == len(dts)
    keyframes = [i for i, u in enumerate(capture.video) if u.keyframe]
    assert keyframes == list(range(0, SECONDS * FPS, GOP))
    assert all(u.pts_ms >= u.dts_ms for u in capture.video)
    walls = [u.ingest_wallclock for u in capture.video]
    assert walls == sorted(walls) and walls[-1] - walls[0] > SECONDS * 0.8


async def test_ffmpeg_publishes_ten_seconds_and_every_unit_arrives(
    rtmp_server: RtmpServer, registry: LiveStreamRegistry
) -> None:
    captures = capture_all(registry)
    code, stderr = await run(ffmpeg_publish_args(rtmp_server.port, "key_alpha_123"), 60)
    assert code == 0, stderr
    check_capture(captures["alpha"], 640, 360)


async def test_two_ffmpeg_publishers_at_once_both_arrive_whole(
    rtmp_server: RtmpServer, registry: LiveStreamRegistry
) -> None:
    captures = capture_all(registry)
    results = await asyncio.gather(
        run(ffmpeg_publish_args(rtmp_server.port, "key_alpha_123", "640x360"), 60),
        run(ffmpeg_publish_args(rtmp_server.port, "key_bravo_456", "426x240"), 60),
    )
    for code, stderr in results:
        assert code == 0, stderr
    check_capture(captures["alpha"], 640, 360)
    check_capture(captures["bravo"], 426, 240)


async def test_ffmpeg_with_a_wrong_key_fails_fast(rtmp_server: RtmpServer) -> None:
    code, stderr = await run(ffmpeg_publish_args(rtmp_server.port, "wrong_key_000"), 15)
    assert code != 0
    assert "Server error: unknown stream key" in stderr  # our onStatus reached ffmpeg, nothing else
