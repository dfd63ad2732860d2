"""The tier's counters in Prometheus text: nginx ``stub_status`` and cache statuses from the logs.

nginx (Debian's build) has no Prometheus exporter; ``live cdn`` serves one. The pure part parses
``stub_status`` pages and access-log lines (the ``livetwin`` format in ``live.cdn.config``) and
renders counters; ``LogTail`` reads only what a log gained since the last scrape; the aiohttp
shell at the bottom scrapes every node on each ``GET /metrics``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import aiohttp
from aiohttp import web

from live.cdn.config import ACCESS_LOG, LOG_FIELDS, STATUS_PATH, Role

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
_STUB = re.compile(
    r"Active connections:\s*(?P<active>\d+).*?"
    r"(?P<accepts>\d+)\s+(?P<handled>\d+)\s+(?P<requests>\d+).*?"
    r"Reading:\s*(?P<reading>\d+)\s+Writing:\s*(?P<writing>\d+)\s+Waiting:\s*(?P<waiting>\d+)",
    re.S)
#: What ``$upstream_cache_status`` can be; "-" (logged as such) when the cache was not asked.
CACHE_STATUSES: Final = ("HIT", "MISS", "EXPIRED", "STALE", "UPDATING", "REVALIDATED", "BYPASS", "-")


@dataclass(frozen=True, slots=True)
class StubStatus:
    active: int
    accepts: int
    handled: int
    requests: int
    reading: int
    writing: int
    waiting: int


def parse_stub_status(text: str) -> StubStatus:
    match = _STUB.search(text)
    if match is None:
        raise ValueError(f"not an nginx stub_status page: {text[:120]!r}")
    return StubStatus(**{k: int(v) for k, v in match.groupdict().items()})


@dataclass(frozen=True, slots=True)
class LogLine:
    status: int
    cache_status: str
    uri: str
    upstream_addr: str


def parse_log_line(line: str) -> LogLine | None:
    """One ``livetwin``-format line; None for anything else (a torn or foreign line)."""
    values = line.rstrip("\n").split("\t")
    if len(values) != len(LOG_FIELDS) or not values[1].isdigit():
        return None
    row = dict(zip(LOG_FIELDS, values, strict=True))
    cache = row["upstream_cache_status"]
    return LogLine(int(row["status"]), cache if cache in CACHE_STATUSES else "-",
                   row["request_uri"], row["upstream_addr"])


@dataclass
class LogTail:
    """Complete lines a log gained since the last read (a partial last line waits)."""

    path: Path
    offset: int = 0
    pending: bytes = b""

    def read_lines(self) -> list[str]:
        try:
            with self.path.open("rb") as log:
                size = log.seek(0, 2)
                if size < self.offset:  # rotated or truncated
                    self.offset, self.pending = 0, b""
                log.seek(self.offset)
                data = self.pending + log.read()
                self.offset = log.tell()
        except FileNotFoundError:
            return []
        head, sep, self.pending = data.rpartition(b"\n")
        return head.decode(errors="replace").split("\n") if sep else []


@dataclass
class NodeCounters:
    """What one node has answered since ``live cdn`` started, by cache status and status class."""

    name: str
    role: Role
    responses: Counter[tuple[str, str]] = field(default_factory=Counter)
    stub: StubStatus | None = None
    up: bool = False

    def add(self, lines: Iterable[LogLine]) -> None:
        for line in lines:
            self.responses[(line.cache_status, f"{line.status // 100}xx")] += 1

    @property
    def hit_ratio(self) -> float | None:
        cached = sum(n for (cache, _), n in self.responses.items() if cache != "-")
        if not cached:
            return None
        hits = sum(n for (cache, _), n in self.responses.items() if cache in ("HIT", "UPDATING"))
        return hits / cached


def render_prometheus(nodes: Sequence[NodeCounters]) -> str:
    """Prometheus text exposition (format 0.0.4) for every node."""
    out = [
        "# HELP livetwin_cdn_up Whether the node answered its stub_status page.",
        "# TYPE livetwin_cdn_up gauge",
    ]
    out += [f'livetwin_cdn_up{{node="{n.name}",role="{n.role.value}"}} {int(n.up)}' for n in nodes]
    out += [
        "# HELP livetwin_cdn_responses_total Responses logged, by cache status and status class.",
        "# TYPE livetwin_cdn_responses_total counter",
    ]
    for node in nodes:
        for (cache, status), count in sorted(node.responses.items()):
            out.append(f'livetwin_cdn_responses_total{{node="{node.name}",role="{node.role.value}",'
                       f'cache="{cache}",status="{status}"}} {count}')
    out += [
        "# HELP livetwin_cdn_hit_ratio Cache hits over cache lookups since start.",
        "# TYPE livetwin_cdn_hit_ratio gauge",
    ]
    for node in nodes:
        if node.hit_ratio is not None:
            out.append(f'livetwin_cdn_hit_ratio{{node="{node.name}",role="{node.role.value}"}} '
                       f"{node.hit_ratio:.6f}")
    stub_fields = (("requests", "counter", "Requests nginx has handled (stub_status)."),
                   ("accepts", "counter", "Connections accepted (stub_status)."),
                   ("active", "gauge", "Open client connections (stub_status)."),
                   ("waiting", "gauge", "Idle keep-alive connections (stub_status)."))
    for name, kind, help_text in stub_fields:
        metric = f"livetwin_cdn_{name}{'_total' if kind == 'counter' else ''}"
        out += [f"# HELP {metric} {help_text}", f"# TYPE {metric} {kind}"]
        for node in nodes:
            if node.stub is not None:
                out.append(f'{metric}{{node="{node.name}",role="{node.role.value}"}} '
                           f"{getattr(node.stub, name)}")
    return "\n".join(out) + "\n"


@dataclass
class ScrapedNode:
    counters: NodeCounters
    status_url: str
    log: LogTail


class TierMetrics:
    """Scrapes every node of a running tier on each ``GET /metrics``."""

    def __init__(self, nodes: Iterable[tuple[str, Role, str, Path]]) -> None:
        """``nodes``: (name, role, base URL, node directory) for each node."""
        self.nodes = [ScrapedNode(NodeCounters(name, role), f"{url}{STATUS_PATH}",
                                  LogTail(directory / ACCESS_LOG))
                      for name, role, url, directory in nodes]
        self._http: aiohttp.ClientSession | None = None

    async def scrape(self) -> str:
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=2),
                connector=aiohttp.TCPConnector(ssl=False))
        for node in self.nodes:
            lines = (parse_log_line(text) for text in node.log.read_lines())
            node.counters.add(line for line in lines if line is not None)
            try:
                async with self._http.get(node.status_url) as response:
                    node.counters.stub = parse_stub_status(await response.text())
                    node.counters.up = response.status == 200
            except (aiohttp.ClientError, TimeoutError, ValueError):
                node.counters.up = False
        return render_prometheus([n.counters for n in self.nodes])

    async def handle(self, request: web.Request) -> web.Response:
        return web.Response(text=await self.scrape(), headers={"Content-Type": CONTENT_TYPE})

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


def metrics_app(metrics: TierMetrics) -> web.Application:
    app = web.Application()
    app.router.add_get("/metrics", metrics.handle)

    async def close(_: web.Application) -> None:
        await metrics.close()

    app.on_cleanup.append(close)
    return app
