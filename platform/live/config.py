"""The one typed settings object for `live serve`, built at the edge (CLI) and passed down."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from live.commerce.settings import PaymentsSettings

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
    payments: PaymentsSettings = field(default_factory=PaymentsSettings)  # None url: embedded sandbox
    ad_creatives: int = 0  # ad clips to make with `live transcode` at start (0: none)

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
