"""SRT ingest over real libsrt with clients nobody here wrote: Debian's ffmpeg and
``srt-live-transmit`` publish MPEG-TS; the stream comes out of the registry exactly as an
RTMP one does. Wrong keys, a second publisher, a publisher with no video: refused or closed
with a logged reason, and the server goes on."""

from __future__ import annotations

import asyncio
import itertools
import logging
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from live.ingest.registry import LiveStream, LiveStreamRegistry
from live.ingest.srt import libsrt
from live.ingest.srt.server import SrtServer, SrtServerSettings
from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig

try:
    libsrt.load()
    HAVE_LIBSRT = True
except libsrt.SrtUnavailable:
    HAVE_LIBSRT = False

pytestmark = [
    pytest.mark.slow,
    pytest.mark.ffmpeg,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="Debian's ffmpeg is not installed"),
    pytest.mark.skipif(not HAVE_LIBSRT, reason="libsrt1.5-openssl is not installed"),
]

FPS = 30
KEY = "key_alpha_123"


@dataclass
class Capture:
    video_config: VideoConfig | None = None
    audio_config: AudioConfig | None = None
    video: list[AccessUnit] = field(default_factory=list)
    audio: list[AccessUnit] = field(default_factory=list)
    ended: bool = False


def capture_all(registry: LiveStreamRegistry) -> dict[str, Capture]:
    """What every stream that goes live delivers to a registry listener."""
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


def srt_url(port: int, stream_id: str, **extra: str) -> str:
    query = "&".join([f"streamid={stream_id}", *(f"{k}={v}" for k, v in extra.items())])
    return f"srt://127.0.0.1:{port}?{query}"


def ffmpeg_ts_args(seconds: float, *, audio: bool = True, video: bool = True,
                   codec: str = "libx264") -> list[str]:
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re"]
    if video:
        args += ["-f", "lavfi", "-i", f"testsrc2=size=320x240:rate={FPS}"]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    args += ["-t", str(seconds)]
    if video:
        args += ["-c:v", codec, "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(FPS),
                 "-pix_fmt", "yuv420p"]
        if codec == "libx265":
            args += ["-x265-params", "log-level=none"]
    if audio:
        args += ["-c:a", "aac", "-b:a", "64k"]
    return [*args, "-f", "mpegts"]


async def publish(url: str, seconds: float, **kwargs: object) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *ffmpeg_ts_args(seconds, **kwargs), url,  # type: ignore[arg-type]
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)


@pytest.fixture
async def srt_server(
    registry: LiveStreamRegistry, key_resolver: Callable[[str], Awaitable[str | None]]
) -> AsyncIterator[SrtServer]:
    server = SrtServer(key_resolver, registry, SrtServerSettings(port=0, no_video_timeout_s=3.0))
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def wait_for(predicate: object, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.05)


def check_continuous(capture: Capture, seconds: float) -> None:
    assert capture.video_config is not None and capture.video_config.width == 320
    assert capture.audio_config is not None and capture.audio_config.sample_rate == 48000
    dts = [unit.dts_ms for unit in capture.video]
    assert len(dts) >= FPS * seconds * 0.9, len(dts)
    assert all(b - a == pytest.approx(1000 / FPS, abs=1) for a, b in itertools.pairwise(dts))
    assert capture.video[0].keyframe and capture.video[0].kind is TrackKind.VIDEO
    assert sum(unit.keyframe for unit in capture.video) >= seconds - 1
    audio = [unit.dts_ms for unit in capture.audio]
    assert all(0 < b - a <= 22 for a, b in itertools.pairwise(audio))


async def test_ffmpeg_publishes_h264_and_aac_with_an_access_control_stream_id(
    srt_server: SrtServer, registry: LiveStreamRegistry
) -> None:
    captures = capture_all(registry)
    seconds = 6
    publisher = await publish(srt_url(srt_server.port, f"#!::r=live/{KEY},m=publish"), seconds)
    await wait_for(lambda: registry.get("alpha") is not None, 5)
    stream = registry.get("alpha")
    assert stream is not None and stream.protocol == "srt"
    _, stderr = await publisher.communicate()
    assert publisher.returncode == 0, stderr.decode(errors="replace")
    await wait_for(lambda: captures["alpha"].ended, 5)
    check_continuous(captures["alpha"], seconds)
    assert registry.get("alpha") is None


async def test_h265_over_srt_gives_an_hevc_configuration(
    srt_server: SrtServer, registry: LiveStreamRegistry
) -> None:
    captures = capture_all(registry)
    publisher = await publish(srt_url(srt_server.port, KEY), 3, codec="libx265")
    _, stderr = await publisher.communicate()
    assert publisher.returncode == 0, stderr.decode(errors="replace")
    await wait_for(lambda: "alpha" in captures and captures["alpha"].ended, 5)
    capture = captures["alpha"]
    assert capture.video_config is not None and capture.video_config.codec == "h265"
    assert capture.video_config.codec_string.startswith("hvc1.")
    assert len(capture.video) >= FPS * 2 and capture.video[0].keyframe


async def test_a_wrong_key_is_refused_during_the_handshake(
    srt_server: SrtServer, registry: LiveStreamRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "live.ingest.srt")
    for stream_id in ("#!::r=live/not_a_key_999,m=publish", "#!::r=live/key_alpha_123,m=request",
                      "bad key with spaces"):
        publisher = await publish(srt_url(srt_server.port, stream_id), 2)
        async with asyncio.timeout(15):
            await publisher.communicate()
        assert publisher.returncode != 0
    assert srt_server.connections_total == 0  # never a connection
    assert srt_server.refused_total == 3
    text = caplog.text
    assert "unknown stream key" in text and "only takes publishers" in text
    assert "neither" in text
    assert len(registry) == 0


async def test_a_second_publisher_on_a_live_key_is_refused_and_the_first_goes_on(
    srt_server: SrtServer, registry: LiveStreamRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "live.ingest.srt")
    captures = capture_all(registry)
    first = await publish(srt_url(srt_server.port, KEY), 6)
    await wait_for(lambda: "alpha" in captures and len(captures["alpha"].video) > 10, 10)
    second = await publish(srt_url(srt_server.port, KEY), 2)
    async with asyncio.timeout(15):
        await second.communicate()
    assert second.returncode != 0
    assert "channel alpha already has a publisher" in caplog.text
    _, stderr = await first.communicate()
    assert first.returncode == 0, stderr.decode(errors="replace")
    await wait_for(lambda: captures["alpha"].ended, 5)
    check_continuous(captures["alpha"], 6)


async def test_a_publisher_without_video_is_closed_with_a_reason(
    srt_server: SrtServer, registry: LiveStreamRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "live.ingest.srt")
    publisher = await publish(srt_url(srt_server.port, KEY), 8, video=False)
    await wait_for(lambda: "carries no H.264/H.265 video" in caplog.text, 10)
    await wait_for(lambda: registry.get("alpha") is None, 5)
    async with asyncio.timeout(15):
        await publisher.communicate()
    assert publisher.returncode != 0  # ffmpeg sees its connection closed


async def test_garbage_instead_of_ts_is_closed_after_the_no_video_timeout(
    srt_server: SrtServer, registry: LiveStreamRegistry, caplog: pytest.LogCaptureFixture,
    tmp_path: Path
) -> None:
    caplog.set_level(logging.WARNING, "live.ingest.srt")
    publisher = await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
        "-f", "lavfi", "-i", "anoisesrc=r=48000", "-t", "8", "-f", "s16le",
        srt_url(srt_server.port, KEY, pkt_size="1316"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    await wait_for(lambda: "no decodable H.264/H.265 video" in caplog.text, 10)
    assert registry.get("alpha") is None
    async with asyncio.timeout(15):
        await publisher.wait()


async def test_the_same_key_publishes_again_after_a_disconnect(
    srt_server: SrtServer, registry: LiveStreamRegistry
) -> None:
    captures = capture_all(registry)
    for _ in range(2):
        publisher = await publish(srt_url(srt_server.port, KEY), 2)
        _, stderr = await publisher.communicate()
        assert publisher.returncode == 0, stderr.decode(errors="replace")
        await wait_for(lambda: registry.get("alpha") is None, 5)
        assert captures["alpha"].ended and len(captures["alpha"].video) >= FPS
    assert srt_server.connections_total == 2


@pytest.mark.skipif(shutil.which("srt-live-transmit") is None, reason="srt-tools is not installed")
async def test_srt_live_transmit_relays_a_ts_file_as_a_second_independent_client(
    srt_server: SrtServer, registry: LiveStreamRegistry, tmp_path: Path
) -> None:
    captures = capture_all(registry)
    clip = tmp_path / "clip.ts"
    make = await asyncio.create_subprocess_exec(
        *[arg for arg in ffmpeg_ts_args(4) if arg != "-re"], str(clip),
        stderr=asyncio.subprocess.PIPE)
    _, stderr = await make.communicate()
    assert make.returncode == 0, stderr.decode(errors="replace")
    # ffmpeg paces the file in real time (-re) into srt-live-transmit's UDP input; SRT out.
    relay = await asyncio.create_subprocess_exec(
        "srt-live-transmit", "-q", "-a:no", "-t:15", "udp://127.0.0.1:53817",
        f"srt://127.0.0.1:{srt_server.port}?streamid=#!::r=live/{KEY},m=publish",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    await asyncio.sleep(0.5)
    feed = await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", str(clip),
        "-c", "copy", "-f", "mpegts", "udp://127.0.0.1:53817?pkt_size=1316",
        stderr=asyncio.subprocess.PIPE)
    try:
        _, stderr = await feed.communicate()
        assert feed.returncode == 0, stderr.decode(errors="replace")
        await wait_for(lambda: "alpha" in captures and len(captures["alpha"].video) >= 4 * FPS - 2, 5)
    finally:
        relay.terminate()
        await relay.wait()
    await wait_for(lambda: captures["alpha"].ended, 8)
    capture = captures["alpha"]
    assert capture.video_config is not None and capture.audio_config is not None
    assert registry.get("alpha") is None


async def test_with_a_passphrase_only_encrypted_publishers_with_it_get_in(
    registry: LiveStreamRegistry, key_resolver: Callable[[str], Awaitable[str | None]]
) -> None:
    server = SrtServer(key_resolver, registry,
                       SrtServerSettings(port=0, passphrase="correct horse battery"))
    await server.start()
    try:
        captures = capture_all(registry)
        for passphrase in (None, "wrong passphrase 123"):
            extra = {"passphrase": passphrase} if passphrase else {}
            refused = await publish(srt_url(server.port, KEY, **extra), 2)
            async with asyncio.timeout(20):
                await refused.communicate()
            assert refused.returncode != 0
        assert "alpha" not in captures
        accepted = await publish(srt_url(server.port, KEY, passphrase="correct horse battery"), 2)
        _, stderr = await accepted.communicate()
        assert accepted.returncode == 0, stderr.decode(errors="replace")
        await wait_for(lambda: "alpha" in captures and captures["alpha"].ended, 5)
        assert len(captures["alpha"].video) >= FPS
    finally:
        await server.close()


def test_a_passphrase_outside_10_to_79_characters_is_refused_at_startup() -> None:
    with pytest.raises(ValueError, match="10 to 79"):
        SrtServerSettings(passphrase="short")
