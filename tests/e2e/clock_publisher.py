"""A publisher whose frames carry their capture clock, over RTMP from Debian's ffmpeg.

Run as a script by the browser tests: it generates gray frames on a real-time schedule (a
moving gradient and box, so the encoder has real work), paints ``time.time()`` in milliseconds
into each at the instant it is made (the Python clockcode painter, which the browser's
clockcode.js reads back), and pipes them to the ffmpeg CLI, which encodes them with libx264
(and a sine tone with AAC) and publishes over RTMP as OBS would. Extra ffmpeg output options
(a GOP off the 2 s grid, forced keyframes) follow ``--``.

    python tests/e2e/clock_publisher.py --url rtmp://127.0.0.1:PORT/live/KEY --size 1280x720 \\
        --seconds 90 [-- -g 80 -force_key_frames expr:...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np

try:  # the painter is moving from loadgen to live.selftest (issue 12); either is the same module
    from live.selftest import clockcode  # type: ignore[import-not-found,unused-ignore]
except ImportError:
    from loadgen import clockcode  # type: ignore[no-redef,unused-ignore]


def ffmpeg_args(url: str, width: int, height: int, fps: int, seconds: float, extra: list[str]) -> list[str]:
    gop = extra or ["-g", str(2 * fps)]
    return [
        "ffmpeg", "-hide_banner", "-loglevel", "error",
        "-f", "rawvideo", "-pix_fmt", "gray", "-video_size", f"{width}x{height}", "-framerate", str(fps),
        "-i", "pipe:0",
        "-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-bf", "0",
        "-sc_threshold", "0", *gop, "-b:v", f"{max(300, width * height // 400)}k",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-shortest",
        "-f", "flv", url,
    ]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in args:
        extra = args[args.index("--") + 1:]
        args = args[:args.index("--")]
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=90.0)
    options = parser.parse_args(args)
    width, height = (int(v) for v in options.size.split("x"))
    fps = options.fps
    encoder = subprocess.Popen(ffmpeg_args(options.url, width, height, fps, options.seconds, extra),
                               stdin=subprocess.PIPE)
    assert encoder.stdin is not None
    yy, xx = np.mgrid[0:height, 0:2 * width]
    gradient = ((xx // 4 + yy // 3) % 200 + 28).astype(np.uint8)
    box = max(16, height // 6)
    start = time.monotonic()
    try:
        for index in range(round(options.seconds * fps)):
            delay = start + index / fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            shift = (index * 4) % width
            frame = np.ascontiguousarray(gradient[:, shift:shift + width])
            x = (index * 7) % (width - box)
            moving = frame[height // 2:height // 2 + box, x:x + box]
            moving[:] = 255 - moving
            clockcode.paint(frame, int(time.time() * 1000))  # the capture instant
            encoder.stdin.write(frame.tobytes())
        encoder.stdin.close()
        return encoder.wait()
    except (BrokenPipeError, KeyboardInterrupt):
        return encoder.wait()
    finally:
        if encoder.poll() is None:
            encoder.terminate()


if __name__ == "__main__":
    raise SystemExit(main())
