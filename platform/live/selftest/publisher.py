"""A synthetic live publisher: a moving test pattern with the capture clock painted in, over RTMP.

Each frame is generated on a real-time schedule; at the instant it is generated its
``time.time()`` in milliseconds is painted into it (`live.selftest.clockcode`), which is what
"capture" means for glass-to-glass latency. The encoder gets real work (a moving gradient,
a moving box and a fine texture), the audio track is a sine tone, and both are encoded and
muxed by PyAV (libx264 zerolatency without B-frames, keyframe every ``keyint_s``; AAC-LC) and
published with FFmpeg's RTMP client, the same client OBS and ffmpeg use.

`publish_blocking` is the loop itself; `main` (``python -m live.selftest.publisher``) wraps it
for a subprocess, and `publish` runs that subprocess from asyncio (see there for why not a thread).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Protocol

import av
import numpy as np
import numpy.typing as npt

from live.selftest import clockcode


class _Stop(Protocol):
    """`threading.Event` or `multiprocessing.Event`: all the loop needs of a stop signal."""

    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...


class PublishError(Exception):
    """The RTMP peer refused or dropped the publication (the server's side, or the network)."""


@dataclass(frozen=True, slots=True)
class PublishSettings:
    """What the publisher sends; built once at the edge (CLI, test) and passed down."""

    width: int = 1280
    height: int = 720
    fps: int = 30
    bitrate_kbps: int = 2500
    duration_s: float | None = None
    keyint_s: float = 2.0
    preset: str = "ultrafast"
    audio_rate: int = 44100
    audio_kbps: int = 96
    tone_hz: float = 440.0

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2 or self.width < 64 or self.height < 36:
            raise ValueError(f"resolution {self.width}x{self.height} must be even and at least 64x36")
        if not 1 <= self.fps <= 120:
            raise ValueError(f"fps {self.fps} is out of 1..120")
        if self.bitrate_kbps <= 0 or self.audio_kbps <= 0:
            raise ValueError("bitrates must be positive")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ValueError(f"duration {self.duration_s} s must be positive")

    @property
    def keyint_frames(self) -> int:
        return max(1, round(self.keyint_s * self.fps))


@dataclass(frozen=True, slots=True)
class PublishStats:
    """What one publication sent, and how well it kept its real-time schedule."""

    url: str
    #: Coded frames handed to the muxer (AAC adds a priming frame, so audio is one up).
    video_frames: int
    audio_frames: int
    video_bytes: int
    audio_bytes: int
    first_capture_ms: int | None
    last_capture_ms: int | None
    #: Frames generated more than one frame interval after their scheduled instant.
    late_frames: int
    #: The worst lateness against the schedule, in seconds.
    max_lateness_s: float
    elapsed_s: float


class TestPattern:
    """Moving yuv420p pictures: cheap to make, not cheap to encode."""

    __test__ = False  # not a pytest class, despite the name

    #: The pattern repeats every PERIOD pixels, so a frame is a moving window on a wider one.
    PERIOD = 200

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        period = self.PERIOD
        yy, xx = np.mgrid[0:height, 0:width + period]
        self._luma = ((xx + yy) % period + 24 + (xx // 2 + yy // 2) % 2 * 24).astype(np.uint8)
        cy, cx = np.mgrid[0:height // 2, 0:width // 2 + period]
        self._u = ((cx * 2 + cy) % (period * 4 // 5) + 48).astype(np.uint8)
        self._v = ((cx + 2 * cy) % (period * 4 // 5) + 48).astype(np.uint8)
        self._strip = clockcode.strip_height(height)

    def frame(self, index: int) -> npt.NDArray[np.uint8]:
        """Frame ``index`` as the (H * 3/2) x W array `av.VideoFrame.from_ndarray` takes."""
        w, h = self.width, self.height
        out = np.empty((h * 3 // 2, w), dtype=np.uint8)
        luma = out[:h]
        shift = (index * 3) % self.PERIOD
        luma[:] = self._luma[:, shift:shift + w]
        box = max(8, h // 6)
        x = (index * 7) % max(1, w - box)
        y = self._strip + (index * 3) % max(1, h - self._strip - box)
        luma[y:y + box, x:x + box] = 235
        quarter = (h // 2) * (w // 2)
        u = out[h:].reshape(-1)[:quarter].reshape(h // 2, w // 2)
        v = out[h:].reshape(-1)[quarter:].reshape(h // 2, w // 2)
        shift = index % self.PERIOD
        u[:] = self._u[:, shift:shift + w // 2]
        v[:] = self._v[:, ::-1][:, shift:shift + w // 2]
        chroma_strip = (self._strip + 1) // 2
        u[:chroma_strip] = 128  # the code stays pure luma: no colour bleeding into its cells
        v[:chroma_strip] = 128
        return out


def _tone(settings: PublishSettings, first_sample: int, count: int) -> npt.NDArray[np.float32]:
    t = (np.arange(first_sample, first_sample + count) / settings.audio_rate).astype(np.float64)
    return (0.3 * np.sin(2 * math.pi * settings.tone_hz * t)).astype(np.float32).reshape(1, count)


def publish_blocking(url: str, settings: PublishSettings,
                     stop: _Stop | None = None) -> PublishStats:
    """Publish to ``url`` (``rtmp://host:port/app/key``) until the duration elapses or ``stop``."""
    try:
        container = av.open(url, "w", format="flv")
    except av.FFmpegError as exc:
        raise PublishError(f"cannot connect to {url}: {exc}") from exc
    try:
        return _publish(container, url, settings, stop or threading.Event())
    finally:
        try:
            container.close()
        except av.FFmpegError:
            pass  # the peer is gone; the error that matters has already been raised


def _publish(container: av.container.OutputContainer, url: str, settings: PublishSettings,
             stop: _Stop) -> PublishStats:
    fps = settings.fps
    video = container.add_stream("libx264", rate=fps)
    video.width, video.height, video.pix_fmt = settings.width, settings.height, "yuv420p"
    video.bit_rate = settings.bitrate_kbps * 1000
    frame_time_base = Fraction(1, fps)
    video.time_base = frame_time_base
    video.codec_context.options = {
        "preset": settings.preset, "tune": "zerolatency", "bf": "0",
        "g": str(settings.keyint_frames), "keyint_min": str(settings.keyint_frames),
        "sc_threshold": "0", "maxrate": str(settings.bitrate_kbps * 1000),
        "bufsize": str(settings.bitrate_kbps * 1000),
    }
    audio = container.add_stream("aac", rate=settings.audio_rate, layout="mono")
    audio.bit_rate = settings.audio_kbps * 1000
    pattern = TestPattern(settings.width, settings.height)
    total = None if settings.duration_s is None else round(settings.duration_s * fps)
    counts = {"video": 0, "audio": 0, "video_bytes": 0, "audio_bytes": 0}

    def mux(packets: list[av.Packet], kind: str) -> None:  # type: ignore[type-arg]
        for packet in packets:
            counts[kind] += 1
            counts[f"{kind}_bytes"] += packet.size
            try:
                container.mux(packet)
            except av.FFmpegError as exc:
                raise PublishError(f"{url} dropped the publication: {exc}") from exc

    first_ms: int | None = None
    last_ms: int | None = None
    late = 0
    worst = 0.0
    samples = 0
    start = time.monotonic()
    index = 0
    while (total is None or index < total) and not stop.is_set():
        lateness = time.monotonic() - (start + index / fps)
        if lateness < 0:
            if stop.wait(-lateness):
                break
        else:
            worst = max(worst, lateness)
            late += lateness > 1 / fps
        planes = pattern.frame(index)
        capture_ms = int(time.time() * 1000)
        clockcode.paint(planes[:settings.height], capture_ms)
        first_ms = capture_ms if first_ms is None else first_ms
        last_ms = capture_ms
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts = index
        frame.time_base = frame_time_base  # not video.time_base: the FLV header resets it to 1/1000
        mux(video.encode(frame), "video")
        index += 1
        while samples < index * settings.audio_rate / fps:
            chunk = av.AudioFrame.from_ndarray(_tone(settings, samples, 1024), format="fltp", layout="mono")
            chunk.sample_rate = settings.audio_rate
            chunk.pts = samples
            chunk.time_base = Fraction(1, settings.audio_rate)
            mux(audio.encode(chunk), "audio")
            samples += 1024
    mux(video.encode(None), "video")
    mux(audio.encode(None), "audio")
    return PublishStats(
        url=url, video_frames=counts["video"], audio_frames=counts["audio"],
        video_bytes=counts["video_bytes"], audio_bytes=counts["audio_bytes"],
        first_capture_ms=first_ms, last_capture_ms=last_ms, late_frames=late,
        max_lateness_s=round(worst, 4), elapsed_s=round(time.monotonic() - start, 3),
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m live.selftest.publisher URL SETTINGS_JSON``: publish until done or stdin closes.

    The subprocess entry `publish` uses; prints the `PublishStats` as one JSON line. Closing
    stdin (or the parent dying) stops it at the next frame.
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m live.selftest.publisher URL SETTINGS_JSON", file=sys.stderr)
        return 64
    try:
        settings = PublishSettings(**json.loads(args[1]))
    except (ValueError, TypeError) as exc:
        print(f"bad settings: {exc}", file=sys.stderr)
        return 64
    stop = threading.Event()

    def watch_stdin() -> None:
        # the raw descriptor, not sys.stdin: a daemon thread parked in a buffered read
        # aborts interpreter shutdown
        while os.read(0, 4096):
            pass
        stop.set()

    threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()
    try:
        stats = publish_blocking(args[0], settings, stop)
    except PublishError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(json.dumps(asdict(stats)), flush=True)
    return 0


async def publish(url: str, *, width: int = 1280, height: int = 720, fps: int = 30,
                  bitrate_kbps: int = 2500, duration_s: float | None,
                  stop: asyncio.Event | None = None, preset: str = "ultrafast",
                  keyint_s: float = 2.0) -> PublishStats:
    """Publish from a child process; returns when ``duration_s`` has elapsed or ``stop`` is set.

    A process, not a thread: PyAV holds the GIL while FFmpeg's RTMP client blocks on the
    socket, which would freeze this event loop (and any server living in it), and encoding
    gets a core of its own. Cancelling the caller stops the child at its next frame.
    """
    settings = PublishSettings(width=width, height=height, fps=fps, bitrate_kbps=bitrate_kbps,
                               duration_s=duration_s, preset=preset, keyint_s=keyint_s)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "live.selftest.publisher", url, json.dumps(asdict(settings)),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    # not communicate(): it closes stdin at once, which is this child's stop signal
    outcome = asyncio.ensure_future(asyncio.gather(child.stdout.read(), child.stderr.read(), child.wait()))
    waiter = asyncio.ensure_future(stop.wait()) if stop is not None else None
    try:
        if waiter is not None:
            await asyncio.wait([outcome, waiter], return_when=asyncio.FIRST_COMPLETED)  # type: ignore[type-var]
            child.stdin.close()
        stdout, stderr, _ = await asyncio.shield(outcome)
    finally:
        child.stdin.close()  # stop the child at its next frame if we are leaving early
        if waiter is not None:
            waiter.cancel()
        await asyncio.wait({outcome})
    message = stderr.decode(errors="replace").strip()
    if child.returncode == 2:
        raise PublishError(message)
    if child.returncode != 0:
        raise RuntimeError(f"publisher process failed (exit {child.returncode}): {message[-2000:]}")
    return PublishStats(**json.loads(stdout.decode().strip().splitlines()[-1]))


if __name__ == "__main__":
    sys.exit(main())
