"""The one typed settings object for `live serve`, built at the edge (CLI) and passed down.

Seeded stream keys can come from the command line (``--channel NAME=KEY``, visible in ``ps``),
a file (``--channel NAME=@FILE``, ``--channel-file FILE``) or the environment
(``LIVETWIN_CHANNELS``); each seed remembers where it came from, which is what `live serve`
prints instead of the key. Outside ``--dev`` a seeded key must be ``SEEDED_KEY_MIN`` characters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from live.commerce.settings import PaymentsSettings
from live.dvr.catalog import DvrSettings, default_max_bytes
from live.http_limits import HttpLimits
from live.transcode.ladder import LadderSettings
from live.webrtc.settings import WebRtcSettings

_CHANNEL_NAME = re.compile(r"^[a-z0-9_]{3,25}$")
_STREAM_KEY = re.compile(r"^[A-Za-z0-9_\-]{8,128}$")
_URL_SAFE = re.compile(r"^[A-Za-z0-9:/._\-\[\]]+$")

#: The shortest seeded key `live serve` accepts without --dev (generated keys are 37 characters).
SEEDED_KEY_MIN = 16
#: The environment variable `live serve` reads channel seeds from: NAME=KEY, comma or space separated.
CHANNELS_ENV = "LIVETWIN_CHANNELS"


@dataclass(frozen=True, slots=True)
class ChannelSeed:
    """A channel that `--channel NAME=KEY` makes sure exists with that key."""

    name: str
    stream_key: str
    source: str = "the command line"  # where the key came from: printed instead of the key

    @classmethod
    def parse(cls, text: str, source: str = "the command line", option: str = "--channel") -> ChannelSeed:
        """``NAME=KEY``, or ``NAME=@FILE`` to read the key from FILE (its first line)."""
        name, sep, key = text.partition("=")
        name = name.strip().lower()
        shown = f"{name}={key}" if key.startswith("@") else f"{name}=..."
        if not sep or not _CHANNEL_NAME.match(name):
            raise ValueError(
                f"{option} {shown!r}: expected NAME=KEY with NAME 3-25 chars of [a-z0-9_]"
            )
        if key.startswith("@"):
            path = Path(key[1:])
            try:
                lines = path.read_text().splitlines()
            except (OSError, UnicodeDecodeError) as error:
                raise ValueError(f"{option} {shown!r}: cannot read the key file: {error}") from None
            key, source = (lines[0].strip() if lines else ""), f"file {path}"
        if not _STREAM_KEY.match(key):
            raise ValueError(
                f"{option} {shown!r} (key from {source}): KEY must be 8-128 chars of letters, "
                "digits, '_' or '-'"
            )
        return cls(name, key, source)


def seeds_from_file(path: Path) -> tuple[ChannelSeed, ...]:
    """``--channel-file``: one NAME=KEY (or NAME=@FILE) a line; blank lines and # comments skipped."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"--channel-file {path}: {error}") from None
    return tuple(ChannelSeed.parse(line.strip(), f"file {path}", f"--channel-file {path}: line")
                 for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def seeds_from_environment(environ: Mapping[str, str]) -> tuple[ChannelSeed, ...]:
    """``LIVETWIN_CHANNELS="name=key other=@/run/secrets/key"``."""
    text = environ.get(CHANNELS_ENV, "")
    return tuple(ChannelSeed.parse(item, f"the environment ({CHANNELS_ENV})", CHANNELS_ENV)
                 for item in text.replace(",", " ").split())


def check_seed_keys(seeds: tuple[ChannelSeed, ...], *, dev: bool) -> None:
    """Refuse short seeded keys (guessable) unless in development."""
    if dev:
        return
    for seed in seeds:
        if len(seed.stream_key) < SEEDED_KEY_MIN:
            raise ValueError(
                f"channel {seed.name}: the key from {seed.source} is {len(seed.stream_key)} "
                f"characters; use at least {SEEDED_KEY_MIN} (or --dev on a development machine)"
            )


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


#: What one `live serve` process can run (``--roles``); all of them by default.
ROLES = ("ingest", "origin", "api", "chat")


def parse_roles(text: str) -> frozenset[str]:
    """``ingest,origin`` -> the roles; unknown or none is an error."""
    roles = frozenset(item.strip() for item in text.split(",") if item.strip())
    unknown = sorted(roles - set(ROLES))
    if unknown or not roles:
        raise ValueError(f"--roles {text!r}: expected a comma-separated subset of {','.join(ROLES)}")
    return roles


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
    srt_port: int | None = None  # None = no SRT listener (the CLI turns it on at 9000)
    #: False when the port is only the default: if it is taken, serve without SRT (and say so).
    srt_port_required: bool = True
    srt_latency_ms: int = 120
    srt_passphrase: str | None = None
    #: Development: allows short seeded keys. Never on a machine others can reach.
    dev: bool = False
    #: Take API clients' addresses from X-Forwarded-For's last hop (only behind our own proxy).
    trust_forwarded_for: bool = False
    #: The HTTP listener's request-head deadline and connection caps.
    http_limits: HttpLimits = field(default_factory=HttpLimits)
    #: redis://HOST:PORT to count chat's per-user message limit across nodes (None: per node).
    chat_rate_store: str | None = None
    #: (host, port) to serve /metrics on instead of the HTTP port (None: on the HTTP port).
    metrics_listen: tuple[str, int] | None = None
    #: When set, /metrics answers only ``Authorization: Bearer <metrics_token>``.
    metrics_token: str | None = None
    #: Where players fetch /hls/ (a CDN edge, `live cdn`): handed out by the viewer page and
    #: the API instead of this origin. None = this server.
    public_hls_url: str | None = None
    webrtc: WebRtcSettings = field(default_factory=WebRtcSettings)  # WHIP ingest, WHEP playback
    dvr_window_s: float = 4 * 3600.0  # rewind window of every live stream, on disk under data_dir
    dvr_max_bytes: int | None = None  # per channel; None = 4 h of the default ladder (see live.dvr)
    vod_retention_s: float = 7 * 86400.0  # how long an ended stream stays as a VOD
    live_window_s: float = 60.0  # what the origin holds in memory; older media is the DVR's
    payments: PaymentsSettings = field(default_factory=PaymentsSettings)  # None url: embedded sandbox
    ad_creatives: int = 0  # ad clips to make with `live transcode` at start (0: none)
    roles: frozenset[str] = frozenset(ROLES)  # what this process runs (docs/scaleout.md)
    #: Origins an ingest node pushes CMAF to (DASH-IF ingest); empty = its own origin only.
    origins: tuple[str, ...] = ()
    #: The shared secret of CMAF pushes: an origin accepts pushes only with it (None: none).
    ingest_token: str | None = None
    #: nats://HOST:PORT of the control plane (JetStream): ingest nodes lease the channels they
    #: carry there, so a stream key is live on one node at a time; the API lists every node's
    #: live channels from it. None: no leases.
    control_plane: str | None = None
    node_id: str = ""  # this node's name in the control plane ("" = host name and process id)
    #: Accounts that may open /ops (``--admin NAME``); each must exist when the server starts.
    admins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.public_hls_url is not None:
            check_public_hls_url(self.public_hls_url)
        if not self.roles or not self.roles <= set(ROLES):
            raise ValueError(f"roles {sorted(self.roles)}: expected a subset of {ROLES}")
        for url in self.origins:
            if not re.match(r"^https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._\-/]*)?$", url):
                raise ValueError(f"--origin {url!r}: expected http(s)://HOST:PORT")
        if self.origins and not self.ingest_token:
            raise ValueError("--origin needs --ingest-token (the origins' shared ingest secret)")
        if self.origins and "ingest" not in self.roles:
            raise ValueError("--origin is where the ingest role pushes; add ingest to --roles")
        if "ingest" in self.roles and "origin" not in self.roles and not self.origins:
            raise ValueError("an ingest node without the origin role needs --origin URL "
                             "(where its packager pushes)")
        if self.control_plane is not None and not self.control_plane.startswith(("nats://", "tls://")):
            raise ValueError(f"--control-plane {self.control_plane!r}: expected nats://HOST:PORT")
        if self.ingest_token is not None and len(self.ingest_token) < SEEDED_KEY_MIN:
            raise ValueError(f"--ingest-token: use at least {SEEDED_KEY_MIN} characters")

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
    def srt_base(self) -> str:
        return f"srt://{self.url_host}:{self.srt_port}"

    @property
    def http_base(self) -> str:
        return f"http://{self.url_host}:{self.http_port}"

    @property
    def hls_base(self) -> str:
        """Base URL players fetch ``/hls/...`` from: the CDN when one is given, else this server."""
        return (self.public_hls_url or self.http_base).rstrip("/")


def check_public_hls_url(url: str) -> str:
    """``http(s)://host[:port][/prefix]``, nothing else (it lands in pages and a CSP)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment or parts.username or not _URL_SAFE.match(url):
        raise ValueError(f"--public-hls-url {url!r}: expected http(s)://HOST[:PORT][/PREFIX]")
    return url
