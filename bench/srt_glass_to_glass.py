"""Glass-to-glass through SRT beside RTMP, in one run, with the painted clock.

The same synthetic publisher (``live.selftest.publisher``: a moving 720p30 pattern with its capture
wall-clock painted into every frame, libx264 zerolatency, AAC) publishes first over RTMP (FLV,
FFmpeg's RTMP client, as ``live demo`` does) and then over SRT (MPEG-TS, our libsrt binding as
the caller, at the listener's 120 ms latency); each time the probe viewer plays the top LL-HLS
rendition and reads the clock back from decoded frames. Latency = probe wall-clock at decode -
painted capture time. The two runs go one after the other so they do not share the CPU.

    PYTHONPATH=platform:. python bench/srt_glass_to_glass.py [--seconds 30] [--size 1280x720]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

from live.config import ChannelSeed, ServeSettings
from live.ingest.srt import libsrt
from live.selftest.probe import ProbeReport, probe
from live.selftest.publisher import PublishSettings, PublishStats, _publish, publish
from live.serve import Platform

TS_PACKET = 188
SRT_MESSAGE = 7 * TS_PACKET  # 1316: SRT live mode's payload


class _SrtWriter:
    """A file-like sink for PyAV's MPEG-TS muxer that sends whole 1316-byte messages."""

    def __init__(self, sock: int) -> None:
        self.sock = sock
        self.pending = bytearray()

    def write(self, data: bytes) -> int:
        self.pending += data
        while len(self.pending) >= SRT_MESSAGE:
            libsrt.send(self.sock, bytes(self.pending[:SRT_MESSAGE]))
            del self.pending[:SRT_MESSAGE]
        usable = len(self.pending) - len(self.pending) % TS_PACKET
        if usable:  # flush what is whole now: waiting for a full message would add latency
            libsrt.send(self.sock, bytes(self.pending[:usable]))
            del self.pending[:usable]
        return len(data)


def publish_srt_blocking(host: str, port: int, stream_id: str, settings: PublishSettings,
                         stop: threading.Event) -> PublishStats:
    import av

    libsrt.startup()
    sock = libsrt.create_socket()
    libsrt.set_int(sock, libsrt.SRTO_TRANSTYPE, libsrt.SRTT_LIVE)
    libsrt.set_string(sock, libsrt.SRTO_STREAMID, stream_id)
    libsrt.set_int(sock, libsrt.SRTO_LATENCY, 120)
    libsrt.connect(sock, host, port)
    container = av.open(_SrtWriter(sock), "w", format="mpegts", buffer_size=SRT_MESSAGE,
                        options={"flush_packets": "1"})
    try:
        return _publish(container, f"srt://{host}:{port}", settings, stop)
    finally:
        container.close()
        libsrt.close(sock)


def _child(argv: list[str]) -> int:
    host, port, stream_id, settings_json = argv
    stop = threading.Event()

    def watch_stdin() -> None:
        while os.read(0, 4096):
            pass
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    stats = publish_srt_blocking(host, int(port), stream_id,
                                 PublishSettings(**json.loads(settings_json)), stop)
    print(json.dumps(asdict(stats)), flush=True)
    return 0


async def _wait_live(platform: Platform, channel: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = platform.origin.channel(channel)
        if state is not None and any(r.last is not None for r in state.renditions.values()):
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{channel} did not go live in {timeout_s} s")


async def _measure(platform: Platform, channel: str, start_publisher: object,
                   seconds: float) -> ProbeReport:
    publisher = await start_publisher()  # type: ignore[operator]
    try:
        await _wait_live(platform, channel)
        await asyncio.sleep(4)  # let the ladder settle before measuring
        return await probe(f"http://127.0.0.1:{platform.ports.http}/hls/{channel}/master.m3u8",
                           seconds, rendition="highest")
    finally:
        await publisher()


async def main_async(seconds: float, width: int, height: int) -> int:
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, srt_port=0,
                             data_dir=Path(os.environ.get("TMPDIR", "/tmp")) / "srt_g2g",
                             channels=(ChannelSeed("g2g_rtmp", "g2g_rtmp_key_1"),
                                       ChannelSeed("g2g_srt", "g2g_srt_key_1")))
    publish_s = seconds + 40
    async with Platform(settings) as platform:
        async def rtmp() -> object:
            stop = asyncio.Event()
            task = asyncio.ensure_future(publish(
                f"{platform.rtmp_base()}/g2g_rtmp_key_1", width=width, height=height,
                duration_s=publish_s, stop=stop))

            async def finish() -> None:
                stop.set()
                await asyncio.gather(task, return_exceptions=True)
            return finish

        async def srt() -> object:
            pub = PublishSettings(width=width, height=height, duration_s=publish_s)
            child = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--publish-srt", "127.0.0.1", str(platform.ports.srt),
                "#!::r=live/g2g_srt_key_1,m=publish", json.dumps(asdict(pub)),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL)

            async def finish() -> None:
                assert child.stdin is not None
                child.stdin.close()
                await child.wait()
            return finish

        reports = {"RTMP": await _measure(platform, "g2g_rtmp", rtmp, seconds),
                   "SRT": await _measure(platform, "g2g_srt", srt, seconds)}
    print(f"glass-to-glass, painted clock, {width}x{height}@30, top rendition, {seconds:g} s each "
          f"(probe viewer: decode time; a lower bound on a player's)")
    for name, report in reports.items():
        p = report.latency_ms
        if p is None:
            print(f"  {name}: no readable frames ({report.frames} frames)")
            continue
        print(f"  {name:<5} p50 {p.p50:6.0f} ms  p95 {p.p95:6.0f} ms  p99 {p.p99:6.0f} ms  "
              f"max {p.max:6.0f} ms  n={p.count}  stalls {report.stalls}")
    rtmp_p, srt_p = reports["RTMP"].latency_ms, reports["SRT"].latency_ms
    if rtmp_p and srt_p:
        print(f"  SRT - RTMP: p50 {srt_p.p50 - rtmp_p.p50:+.0f} ms, p95 {srt_p.p95 - rtmp_p.p95:+.0f} ms "
              f"(SRT's receiver latency is 120 ms)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--publish-srt"]:
        return _child(args[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", default="1280x720")
    parsed = parser.parse_args(args)
    width, height = (int(v) for v in parsed.size.split("x"))
    return asyncio.run(main_async(parsed.seconds, width, height))


if __name__ == "__main__":
    raise SystemExit(main())
