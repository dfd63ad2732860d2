"""The one typed settings object for `live serve`, built at the edge (CLI) and passed down."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from live.dvr.catalog import DvrSettings, default_max_bytes
from live.transcode.ladder import LadderSettings

_CHANNEL_NAME = re.compile(r"^[a-z0-9_]{3,25}$")
_STREAM_KEY = re.compile(r"^[A-Za-z0-9_\-]{8,128}$")


@dataclass(frozen=True, slots=True)
class ChannelSeed:
    """A channel that `--channel NAME=KEY` makes sure exists with that key."""

    name: str
    stream_key: str

    @classmethod
    def parse(cls, text: str) -> ChannelSeed:
        name, sep, key = text.partition("=")
        name = name.strip().lower()
        if not sep or not _CHANNEL_NAME.match(name):
            raise ValueError(
                f"--channel {text!r}: expected NAME=KEY with NAME 3-25 chars of [a-z0-9_]"
            )
        if not _STREAM_KEY.match(key):
            raise ValueError(
                f"--channel {text!r}: KEY must be 8-128 chars of letters, digits, '_' or '-'"
            )
        return cls(name, key)


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd]?)$")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$")


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``4h`` or ``7d`` in seconds (> 0)."""
    match = _DURATION.match(text.strip().lower())
    if match is None or float(match[1]) <= 0:
        raise ValueError(f"{text!r}: expected a positive duration such as 90s, 30m, 4h or 7d")
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


def parse_size(text: str) -> int:
    """``500000000``, ``500M``, ``40G`` or ``2T`` in bytes (> 0; K/M/G/T are powers of 1024)."""
    match = _SIZE.match(text.strip().lower())
    if match is None or float(match[1]) <= 0:
        raise ValueError(f"{text!r}: expected a positive size such as 500M or 40G")
    return int(float(match[1]) * 1024 ** ("kmgt".find(match[2]) + 1 if match[2] else 0))


@dataclass(frozen=True, slots=True)
class ServeSettings:
    host: str = "127.0.0.1"
    rtmp_port: int = 1935
    http_port: int = 8080
    chat_port: int = 8081
    data_dir: Path = Path("data")
    database: str | None = None  # None = SQLite under data_dir; or postgresql://...
    chat_broker: str | None = None  # None = in-process; or nats://... to share rooms across nodes
    channels: tuple[ChannelSeed, ...] = field(default_factory=tuple)
    public_host: str | None = None  # host name to print in URLs; defaults to host
    dvr_window_s: float = 4 * 3600.0  # rewind window of every live stream, on disk under data_dir
    dvr_max_bytes: int | None = None  # per channel; None = 4 h of the default ladder (see live.dvr)
    vod_retention_s: float = 7 * 86400.0  # how long an ended stream stays as a VOD
    live_window_s: float = 60.0  # what the origin holds in memory; older media is the DVR's

    @property
    def dvr(self) -> DvrSettings:
        """The DVR's settings; the byte cap defaults to the window of the full default ladder
        (every rung with its audio, plus a passthrough as large as the top rung)."""
        ladder = LadderSettings()
        rungs_kbps = [rung.video_kbps + ladder.audio_kbps for rung in ladder.rungs]
        ladder_bps = (sum(rungs_kbps) + max(rungs_kbps)) * 1000
        return DvrSettings(window_s=self.dvr_window_s, vod_retention_s=self.vod_retention_s,
                           max_bytes=self.dvr_max_bytes or default_max_bytes(self.dvr_window_s,
                                                                             ladder_bps))

    @property
    def url_host(self) -> str:
        host = self.public_host or self.host
        if host in ("0.0.0.0", "::"):
            return "127.0.0.1"
        return f"[{host}]" if ":" in host else host

    @property
    def rtmp_base(self) -> str:
        port = "" if self.rtmp_port == 1935 else f":{self.rtmp_port}"
        return f"rtmp://{self.url_host}{port}/live"

    @property
    def http_base(self) -> str:
        return f"http://{self.url_host}:{self.http_port}"
