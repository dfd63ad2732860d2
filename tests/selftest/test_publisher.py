"""The synthetic publisher speaks real RTMP to the real server, with the capture clock in every frame."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import av
import numpy as np
import pytest
from live.ingest.registry import LiveStream, LiveStreamRegistry
from live.ingest.rtmp.server import RtmpServer
from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig
from live.selftest import clockcode
from live.selftest.publisher import PublishError, PublishSettings, TestPattern, main, publish

pytestmark = pytest.mark.slow


@dataclass
class Capture:
    video_config: VideoConfig | None = None
    audio_config: AudioConfig | None = None
    video: list[AccessUnit] = field(default_factory=list)
    audio: list[AccessUnit] = field(default_factory=list)
    ended: bool = False


def capture(registry: LiveStreamRegistry) -> Capture:
    seen = Capture()

    def on_start(stream: LiveStream) -> None:
        def listener(_: LiveStream, item: object) -> None:
            if isinstance(item, VideoConfig):
                seen.video_config = item
            elif isinstance(item, AudioConfig):
                seen.audio_config = item
            elif isinstance(item, AccessUnit):
                (seen.video if item.kind is TrackKind.VIDEO else seen.audio).append(item)
            elif item is None:
                seen.ended = True

        stream.subscribe(listener)

    registry.on_stream_start(on_start)
    return seen


def read_codes(config: VideoConfig, units: list[AccessUnit]) -> list[int | None]:
    decoder = av.CodecContext.create("h264", "r")
    decoder.extradata = config.record
    frames: list[av.VideoFrame] = []
    for unit in units:
        frames.extend(decoder.decode(av.Packet(unit.data)))
    frames.extend(decoder.decode(None))
    return [clockcode.read(f.to_ndarray(format="gray")) for f in frames]


async def test_published_units_reach_the_registry_and_carry_capture_clocks(
    rtmp_server: RtmpServer, registry: LiveStreamRegistry
) -> None:
    seen = capture(registry)
    stats = await publish(f"rtmp://127.0.0.1:{rtmp_server.port}/live/probe_key_1",
                          width=320, height=180, fps=15, bitrate_kbps=300, duration_s=2.0, keyint_s=1.0)
    for _ in range(100):
        if seen.ended:
            break
        await asyncio.sleep(0.05)
    assert seen.ended
    assert stats.video_frames == 30 and len(seen.video) == 30
    assert seen.video_config is not None and seen.audio_config is not None
    assert (seen.video_config.width, seen.video_config.height) == (320, 180)
    assert seen.audio_config.sample_rate == 44100 and seen.audio_config.channels == 1
    assert len(seen.audio) == stats.audio_frames >= 2 * 44100 // 1024
    assert [i for i, u in enumerate(seen.video) if u.keyframe] == [0, 15]
    steps = [b.dts_ms - a.dts_ms for a, b in zip(seen.video, seen.video[1:], strict=False)]
    assert set(steps) <= {66, 67}  # 15 fps on FLV's 1 kHz clock
    audio_steps = [b.dts_ms - a.dts_ms for a, b in zip(seen.audio, seen.audio[1:], strict=False)]
    assert set(audio_steps) <= {23, 24}  # 1024 samples at 44.1 kHz
    codes = read_codes(seen.video_config, seen.video)
    assert None not in codes and len(codes) == 30
    assert codes == sorted(codes) and len(set(codes)) == 30
    assert codes[0] == stats.first_capture_ms and codes[-1] == stats.last_capture_ms
    # causality on one clock: painted before it was sent, so before the server saw it
    assert all(ms <= unit.ingest_wallclock * 1000 for ms, unit in zip(codes, seen.video, strict=True))


async def test_stop_event_ends_an_open_ended_publication(
    rtmp_server: RtmpServer, registry: LiveStreamRegistry
) -> None:
    seen = capture(registry)
    stop = asyncio.Event()
    task = asyncio.create_task(publish(f"rtmp://127.0.0.1:{rtmp_server.port}/live/probe_key_1",
                                       width=160, height=90, fps=10, duration_s=None, stop=stop))
    while len(seen.video) < 5:
        await asyncio.sleep(0.05)
    stop.set()
    stats = await asyncio.wait_for(task, 20)
    assert stats.video_frames >= 5


async def test_unknown_stream_key_is_reported_as_a_publish_error(rtmp_server: RtmpServer) -> None:
    with pytest.raises(PublishError):
        await publish(f"rtmp://127.0.0.1:{rtmp_server.port}/live/wrong_key",
                      width=160, height=90, fps=10, duration_s=2.0)


def test_pattern_moves_and_keeps_chroma_neutral_under_the_code() -> None:
    pattern = TestPattern(320, 180)
    a, b = pattern.frame(0), pattern.frame(1)
    assert a.shape == (270, 320) and a.dtype == np.uint8
    assert not np.array_equal(a, b)
    flat = a.ravel()
    u = flat[320 * 180:320 * 180 + 160 * 90].reshape(90, 160)
    v = flat[320 * 180 + 160 * 90:].reshape(90, 160)
    covered = (clockcode.strip_height(180) + 1) // 2
    assert (u[:covered] == 128).all() and (v[:covered] == 128).all()
    assert not (u[covered:] == 128).all()


def test_settings_refuse_odd_sizes_and_nonsense_rates() -> None:
    with pytest.raises(ValueError):
        PublishSettings(width=321)
    with pytest.raises(ValueError):
        PublishSettings(fps=0)
    with pytest.raises(ValueError):
        PublishSettings(duration_s=0)


async def test_cancelling_publish_stops_the_child_and_ends_the_stream(
    rtmp_server: RtmpServer, registry: LiveStreamRegistry
) -> None:
    seen = capture(registry)
    task = asyncio.create_task(publish(f"rtmp://127.0.0.1:{rtmp_server.port}/live/probe_key_1",
                                       width=160, height=90, fps=10, duration_s=None))
    while len(seen.video) < 3:
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(20):
        while not seen.ended:
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("argv", [
    ["rtmp://h/live/k"], ["rtmp://h/live/k", "{not json"],
    ["rtmp://h/live/k", '{"width": 321}'], ["rtmp://h/live/k", '{"colour": 1}'],
])
def test_subprocess_entry_refuses_bad_arguments_with_a_usage_code(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 64
    assert capsys.readouterr().err
