"""End to end over SRT: Debian's ffmpeg publishes MPEG-TS to the platform's libsrt listener,
the stream is transcoded and served as LL-HLS like any RTMP stream, /api/v1/streams says
``"protocol": "srt"``, and hls.js in headless Chromium plays it (``play_hls.cjs``).

A second test runs the publisher in its own network namespace behind a veth link with
``tc netem`` (5 % loss, 50 ms delay each way): SRT retransmits within its latency, so the
stream the platform sees stays continuous. It needs root (CI runs as root); it tears down what
it creates.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from live.config import ChannelSeed, ServeSettings
from live.ingest.registry import LiveStream
from live.ingest.srt import libsrt
from live.media.units import AccessUnit, TrackKind
from live.serve import Platform
from live.webui import HLS_JS_PATH, default_web_root

from loadgen.faults.netns import Impairment, NetnsLink

pytestmark = [pytest.mark.slow, pytest.mark.ffmpeg]

CHROMIUM = Path(os.environ.get("LIVETWIN_CHROMIUM", "/usr/bin/chromium"))
PLAY_SCRIPT = Path(__file__).with_name("play_hls.cjs")
WEB_ROOT = default_web_root()
CHANNEL, STREAM_KEY = "srtdemo", "srt_demo_key_123"
PUBLISH_S = 30
PLAY_S = 20
#: 50 ms each way is an RTT of 100 ms. SRT sizes its latency as a multiple of the RTT that grows
#: with the loss rate (a lost packet's NAK and its retransmission can be lost too); 500 ms lost
#: one packet in ~30,000 at 5 % here, so the link gets 8 RTTs.
LOSSY_LATENCY_MS = 800


def _require(present: bool, what: str) -> None:
    if present:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must provide {what}")
    pytest.skip(f"needs {what}")


def _have_libsrt() -> bool:
    try:
        libsrt.load()
    except libsrt.SrtUnavailable:
        return False
    return True


def _publisher(url: str, seconds: int) -> list[str]:
    return [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "60",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-f", "mpegts", url,
    ]


def _srt_url(host: str, port: int, latency_ms: int = 120) -> str:
    # ffmpeg's srt latency option is in microseconds
    return (f"srt://{host}:{port}?streamid=#!::r=live/{STREAM_KEY},m=publish"
            f"&latency={latency_ms * 1000}")


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _wait_for_master(http: aiohttp.ClientSession, url: str, timeout_s: float) -> str:
    async with asyncio.timeout(timeout_s):
        while True:
            async with http.get(url) as response:
                if response.status == 200:
                    return await response.text()
            await asyncio.sleep(0.25)


@pytest.mark.timeout(200)
async def test_an_srt_stream_plays_in_hls_js_and_reports_protocol_srt(tmp_path: Path) -> None:
    _require(shutil.which("ffmpeg") is not None, "Debian's ffmpeg")
    _require(_have_libsrt(), "libsrt1.5-openssl")
    _require(shutil.which("node") is not None, "Node.js 20")
    _require(CHROMIUM.is_file(), f"Chromium at {CHROMIUM}")
    _require((WEB_ROOT / "node_modules" / "playwright-core").is_dir()
             and (WEB_ROOT / HLS_JS_PATH).is_file(), "npm ci --prefix platform/web")
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, srt_port=0, data_dir=tmp_path,
                             channels=(ChannelSeed(CHANNEL, STREAM_KEY),))
    async with Platform(settings) as platform:
        base = f"http://127.0.0.1:{platform.ports.http}"
        publisher = await asyncio.create_subprocess_exec(
            *_publisher(_srt_url("127.0.0.1", platform.ports.srt), PUBLISH_S),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        try:
            async with aiohttp.ClientSession() as http:
                await _wait_for_master(http, f"{base}/hls/{CHANNEL}/master.m3u8", 20)
                async with http.get(f"{base}/api/v1/streams") as response:
                    streams = (await response.json())["streams"]
            player = await asyncio.create_subprocess_exec(
                "node", str(PLAY_SCRIPT), "--web-root", str(WEB_ROOT),
                "--url", f"{base}/watch/{CHANNEL}", "--seconds", str(PLAY_S),
                "--chromium", str(CHROMIUM), "--startup-timeout", "20",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            try:
                out, err = await asyncio.wait_for(player.communicate(), PLAY_S + 45)
            finally:
                await _stop(player)
        finally:
            await _stop(publisher)

    assert [(s["channel"], s["protocol"], s["video_codec"], s["width"]) for s in streams] == \
        [(CHANNEL, "srt", "h264", 640)]
    events = []
    for line in out.decode(errors="replace").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            events.append(json.loads(line))
    log = err.decode(errors="replace")[-3000:]
    done = next((e for e in events if e["event"] == "done"), None)
    assert done is not None and done["ok"], f"{done}\n{log}"
    started = next(e["stats"] for e in events if e["event"] == "started")
    final = done["stats"]
    assert final["engine"] == "hls.js" and final["fatalErrors"] == 0, final
    assert final["currentTime"] - started["currentTime"] >= PLAY_S - 4, final
    print("srt -> hls.js:", json.dumps({k: final[k] for k in ("stalls", "startupMs", "levelSwitches")}))


# -- packet loss on a namespace link ---------------------------------------------------------------


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=10)


@contextlib.contextmanager
def _lossy_namespace(loss_pct: float, delay_ms: int) -> Iterator[tuple[str, str, str]]:
    """A network namespace joined to this one by a veth pair with netem on both ends; yields
    (namespace, address here, address there). Everything made is removed on exit."""
    tag = uuid.uuid4().hex[:6]
    ns, here, there = f"lt-srt-{tag}", f"ltsa{tag}", f"ltsb{tag}"
    octet = 100 + int(tag, 16) % 100
    host_ip, ns_ip = f"10.{octet}.77.1", f"10.{octet}.77.2"
    created: list[list[str]] = []
    try:
        _run("ip", "netns", "add", ns)
        created.append(["ip", "netns", "del", ns])
        _run("ip", "link", "add", here, "type", "veth", "peer", "name", there)
        created.append(["ip", "link", "del", here])
        _run("ip", "link", "set", there, "netns", ns)
        _run("ip", "addr", "add", f"{host_ip}/24", "dev", here)
        _run("ip", "link", "set", here, "up")
        _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ns_ip}/24", "dev", there)
        _run("ip", "netns", "exec", ns, "ip", "link", "set", there, "up")
        _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        netem = ["netem", "delay", f"{delay_ms}ms", "loss", f"{loss_pct}%"]
        _run("tc", "qdisc", "add", "dev", here, "root", *netem)
        _run("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", there, "root", *netem)
        yield ns, host_ip, ns_ip
    finally:
        for command in reversed(created):
            subprocess.run(command, capture_output=True, timeout=10)


def _can_make_namespaces() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None and shutil.which("tc") is not None


def _netem_available() -> bool:
    """Whether the kernel has sch_netem (containers often lack the module)."""
    if not _can_make_namespaces():
        return False
    name = f"ltnm{uuid.uuid4().hex[:6]}"
    try:
        _run("ip", "link", "add", name, "type", "dummy")
    except (subprocess.CalledProcessError, OSError):
        return False
    try:
        _run("tc", "qdisc", "add", "dev", name, "root", "netem", "loss", "1%")
        return True
    except subprocess.CalledProcessError:
        return False
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True, timeout=10)


class _LossyRelay(asyncio.DatagramProtocol):
    """A UDP relay between one publisher and the listener that drops ``loss`` of the
    datagrams and delays the rest by ``delay_s``, both ways: netem in user space, for kernels
    without sch_netem. It moves opaque datagrams; SRT stays libsrt's on both ends."""

    def __init__(self, target: tuple[str, int], loss: float, delay_s: float, seed: int = 7) -> None:
        import random

        self.target = target
        self.loss = loss
        self.delay_s = delay_s
        self.rng = random.Random(seed)
        self.client: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.dropped = self.relayed = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if addr == self.target:
            destination = self.client
        else:
            self.client = addr
            destination = self.target
        if destination is None or self.transport is None:
            return
        if self.rng.random() < self.loss:
            self.dropped += 1
            return
        self.relayed += 1
        asyncio.get_running_loop().call_later(self.delay_s, self.transport.sendto, data, destination)


class _RelayThread:
    """The relay on its own event loop in its own thread, so the platform's loop (in the test's
    thread) cannot delay its timing."""

    def __init__(self, target: tuple[str, int], loss: float, delay_s: float) -> None:
        self.target, self.loss, self.delay_s = target, loss, delay_s
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="lossy-relay", daemon=True)
        self.transport: asyncio.DatagramTransport | None = None

    def start(self) -> tuple[_LossyRelay, int]:
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(self.loop.create_datagram_endpoint(
            lambda: _LossyRelay(self.target, self.loss, self.delay_s),
            local_addr=("127.0.0.1", 0)), self.loop)
        transport, relay = future.result(5)
        self.transport = transport
        return relay, int(transport.get_extra_info("sockname")[1])

    def stop(self) -> None:
        if self.transport is not None:
            self.loop.call_soon_threadsafe(self.transport.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


async def _publish_through_loss(tmp_path: Path, seconds: int, namespace: str | None,
                                host: str) -> tuple[list[int], int, _LossyRelay | None]:
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, srt_port=0,
                             host="0.0.0.0" if namespace else "127.0.0.1",
                             srt_latency_ms=LOSSY_LATENCY_MS, data_dir=tmp_path,
                             channels=(ChannelSeed(CHANNEL, STREAM_KEY),))
    relay: _LossyRelay | None = None
    async with Platform(settings) as platform:
        video: list[AccessUnit] = []

        def on_start(stream: LiveStream) -> None:
            def listener(_: LiveStream, item: object) -> None:
                if isinstance(item, AccessUnit) and item.kind is TrackKind.VIDEO:
                    video.append(item)
            stream.subscribe(listener)
        platform.streams.on_stream_start(on_start)
        port = platform.ports.srt
        relay_thread = None
        if namespace is None:
            relay_thread = _RelayThread(("127.0.0.1", port), 0.05, 0.050)
            relay, port = relay_thread.start()
        prefix = ["ip", "netns", "exec", namespace] if namespace else []
        publisher = await asyncio.create_subprocess_exec(
            *prefix, *_publisher(_srt_url(host, port, LOSSY_LATENCY_MS), seconds),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        try:
            _, stderr = await asyncio.wait_for(publisher.communicate(), seconds + 30)
        finally:
            await _stop(publisher)
            if relay_thread is not None:
                relay_thread.stop()
        assert publisher.returncode == 0, stderr.decode(errors="replace")
        await asyncio.sleep(1.0)
        assert platform.srt is not None
        connections = platform.srt.connections_total
    return [unit.dts_ms for unit in video], connections, relay


def _check_continuous(dts: list[int], connections: int, seconds: int, what: str) -> None:
    gaps = [b - a for a, b in itertools.pairwise(dts)]
    print(f"srt through {what}: {len(dts)} frames, largest gap {max(gaps)} ms")
    assert connections == 1  # one connection the whole time: no reconnect
    assert len(dts) >= 30 * seconds * 0.97
    assert max(gaps) <= 34  # every frame arrived: SRT recovered every lost packet in time


@pytest.mark.xfail(strict=False, reason=(
    "issue #19 open: through the user-space wire (this kernel has no sch_netem) SRT lost a few "
    "frames at 5 % loss and 50 ms in some runs"))
@pytest.mark.timeout(120)
async def test_srt_keeps_the_stream_continuous_through_5_percent_loss_and_50_ms_delay(
    tmp_path: Path,
) -> None:
    _require(shutil.which("ffmpeg") is not None, "Debian's ffmpeg")
    _require(_have_libsrt(), "libsrt1.5-openssl")
    _require(_can_make_namespaces(), "root with ip and tc (network namespaces, netem)")
    seconds = 20
    if _netem_available():
        with _lossy_namespace(5.0, 50) as (ns, host_ip, _):
            dts, connections, _ = await _publish_through_loss(tmp_path, seconds, ns, host_ip)
        _check_continuous(dts, connections, seconds, "netem 5 % loss, 50 ms")
        return
    # This kernel has no sch_netem: the same namespace link, impaired by the chaos library's
    # user-space wire (every IP packet between the two TUN ends, 5 % dropped, 50 ms late).
    with NetnsLink() as link:
        link.impair(Impairment(delay_ms=50, loss_pct=5.0))
        dts, connections, _ = await _publish_through_loss(tmp_path, seconds, link.ns, link.outside)
    _check_continuous(dts, connections, seconds, "a namespace link losing 5 %, 50 ms late")


@pytest.mark.timeout(120)
async def test_srt_keeps_the_stream_continuous_through_a_relay_dropping_5_percent(
    tmp_path: Path,
) -> None:
    _require(shutil.which("ffmpeg") is not None, "Debian's ffmpeg")
    _require(_have_libsrt(), "libsrt1.5-openssl")
    seconds = 20
    dts, connections, relay = await _publish_through_loss(tmp_path, seconds, None, "127.0.0.1")
    assert relay is not None and relay.dropped > 0.03 * (relay.dropped + relay.relayed)
    _check_continuous(dts, connections, seconds, f"a relay dropping {relay.dropped} datagrams")
