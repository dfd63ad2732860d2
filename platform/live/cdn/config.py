"""nginx.conf for one CDN node (an edge or a shield), generated from a typed settings object.

Pure: settings in, configuration text out; nothing here touches a file or a process (the
launcher writes the text and runs nginx). The configuration is what makes nginx LL-HLS-aware
(RFC 8216bis 6.2.5, Apple's CDN guidance, docs/llhls.md "Caching"):

- one cache key per LL-HLS answer: the path plus ``_HLS_msn``, ``_HLS_part`` and ``_HLS_skip``,
  and no other query argument, so ``?x=random`` cannot bust the cache; only those three go
  upstream;
- request coalescing (``proxy_cache_lock``): concurrent identical misses, held blocking reloads
  and the preload-hinted part included, become one upstream request, with lock and read
  timeouts above the longest legal block (3 target durations);
- lifetimes from the origin's Cache-Control (parts, segments and blocking answers long),
  plain playlist reloads re-keyed every 100 ms (nginx caches in whole seconds; a plain reload
  must not outlive half a part), short negative caching for errors without a Cache-Control;
- edges pick a shield by consistent hashing on the channel, so a channel's parts leave the
  origin once per shield; shields prefer their first origin; both skip a peer that errors or
  times out (``proxy_next_upstream``);
- CORS as the origin sends it, gzip for playlists, HTTP/2 over TLS at the edge;
- ``stub_status`` and an access log carrying ``$upstream_cache_status`` for ``live cdn``'s
  Prometheus endpoint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

#: The access-log format ``live.cdn.metrics`` parses (tab separated, one request a line).
LOG_FIELDS = ("msec", "status", "upstream_cache_status", "request_method", "request_uri",
              "body_bytes_sent", "request_time", "upstream_addr", "upstream_status")
STATUS_PATH = "/nginx_status"
ACCESS_LOG = "access.log"
ERROR_LOG = "error.log"
PID_FILE = "nginx.pid"

_SIZE = re.compile(r"\A[1-9][0-9]{0,9}[kKmMgG]?\Z")
_HOST = re.compile(r"\A(?:[A-Za-z0-9._-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])\Z")
_UNSAFE_PATH = re.compile(r"[\"'\\;{}\s$#]")


class Role(StrEnum):
    EDGE = "edge"
    SHIELD = "shield"


@dataclass(frozen=True, slots=True)
class Upstream:
    """One server a node fetches from: a shield (for an edge) or an origin (for a shield)."""

    host: str
    port: int
    scheme: str = "http"

    @classmethod
    def parse(cls, url: str) -> Upstream:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"upstream {url!r}: scheme must be http or https")
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
            raise ValueError(f"upstream {url!r}: give scheme://host:port only (no path, query "
                             "or credentials); nodes proxy the /hls/ tree as is")
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if not _HOST.match(host):
            raise ValueError(f"upstream {url!r}: bad host {host!r}")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise ValueError(f"upstream {url!r}: {exc}") from exc
        return cls(host, port, parts.scheme)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.address}"


@dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Listen:
        host, sep, port = text.rpartition(":")
        if not sep:
            host, port = "127.0.0.1", text
        if not port.isdigit() or not 0 < int(port) <= 65535:
            raise ValueError(f"listen {text!r}: expected HOST:PORT with a port 1-65535")
        host = host or "0.0.0.0"
        if not _HOST.match(host):
            raise ValueError(f"listen {text!r}: bad host {host!r}")
        return cls(host, int(port))

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM certificate chain and private key; the edge then speaks HTTP/2 over TLS."""

    cert: Path
    key: Path


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """Everything one node's nginx.conf depends on."""

    role: Role
    upstreams: tuple[Upstream, ...]
    listen: Listen = Listen("127.0.0.1", 8090)
    #: The proxy cache (parts, segments, playlists); ``cache_size`` caps it (LRU beyond).
    cache_dir: Path = Path("/var/cache/livetwin-cdn")
    cache_size: str = "1g"
    #: Logs, pid file and nginx's temporary files, so nginx needs no other writable path.
    run_dir: Path = Path("/var/lib/livetwin-cdn")
    tls: TlsFiles | None = None
    workers: int = 1  # 0 = one per core ("auto")
    #: Worker processes' user when nginx starts as root (nginx's own default: nobody).
    user: str | None = None
    worker_connections: int = 8192
    #: The longest EXT-X-TARGETDURATION any origin serves; a blocking reload may be held for
    #: 3 of them (RFC 8216bis 6.2.5.2), so every timeout on the way must be longer.
    target_duration_s: int = 2

    def __post_init__(self) -> None:
        if not self.upstreams:
            raise ValueError("a node needs at least one upstream")
        if len({u.scheme for u in self.upstreams}) > 1:
            raise ValueError("upstreams must all use the same scheme")
        if not _SIZE.match(self.cache_size):
            raise ValueError(f"cache size {self.cache_size!r}: expected a number with k, m or g")
        for path in (self.cache_dir, self.run_dir, *(() if self.tls is None
                                                       else (self.tls.cert, self.tls.key))):
            if _UNSAFE_PATH.search(str(path)):
                raise ValueError(f"path {str(path)!r}: quotes, spaces, ';', braces, '$' and '#' "
                                 "are not allowed in nginx paths here")
        if self.workers < 0 or self.worker_connections < 64 or self.target_duration_s < 1:
            raise ValueError("workers >= 0, worker_connections >= 64, target_duration_s >= 1")
        if self.user is not None and not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", self.user):
            raise ValueError(f"user {self.user!r}: not a user name")
        if self.tls is not None and self.role is not Role.EDGE:
            raise ValueError("TLS terminates at the edge; shields speak plain HTTP inside")

    @property
    def longest_block_s(self) -> int:
        return 3 * self.target_duration_s

    @property
    def lock_timeout_s(self) -> int:
        """Above the longest legal block, so a held reload's waiters never give up early."""
        return self.longest_block_s + 2

    @property
    def read_timeout_s(self) -> int:
        return self.longest_block_s + 4

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"


def _path(path: Path) -> str:
    return f'"{path}"'


def _upstream_block(settings: NodeSettings) -> list[str]:
    if settings.role is Role.EDGE:
        lines = [
            "    # Edges pick a shield by consistent hashing on the channel (ketama): each",
            "    # channel is fetched through one shield, so its parts leave the origin once per",
            "    # shield, and adding or losing a shield moves only that shield's channels.",
            "    upstream livetwin_upstream {",
            "        hash $livetwin_channel consistent;",
        ]
        lines += [f"        server {u.address} max_fails=1 fail_timeout=2s;" for u in settings.upstreams]
    else:
        lines = [
            "    # Shields fetch from the first origin; the others take over when it errors or",
            "    # times out (every origin an ingest node pushes to holds the same channels).",
            "    upstream livetwin_upstream {",
        ]
        first, *rest = settings.upstreams
        lines.append(f"        server {first.address} max_fails=1 fail_timeout=2s;")
        lines += [f"        server {u.address} backup;" for u in rest]
    lines += ["        keepalive 64;", "    }"]
    return lines


def _listen_lines(settings: NodeSettings) -> list[str]:
    listen = settings.listen.address
    if settings.tls is None:
        return [f"        listen {listen} reuseport;" if settings.workers != 1
                else f"        listen {listen};"]
    return [
        "        # HTTP/2 over TLS: what Apple's LL-HLS clients expect of a CDN.",
        f"        listen {listen} ssl http2;",
        f"        ssl_certificate {_path(settings.tls.cert)};",
        f"        ssl_certificate_key {_path(settings.tls.key)};",
        "        ssl_protocols TLSv1.2 TLSv1.3;",
        "        ssl_session_cache shared:livetwin_tls:10m;",
        "        ssl_session_timeout 1h;",
    ]


def render(settings: NodeSettings) -> str:
    """The complete nginx.conf for one node, commented; run with ``nginx -c`` as is."""
    role = settings.role
    run = settings.run_dir
    upstream_scheme = settings.upstreams[0].scheme
    edge = role is Role.EDGE
    lines = [
        f"# livetwin CDN {role.value}: generated by `live cdn config`; see docs/cdn.md.",
        f"# Upstream ({'shields' if edge else 'origins'}): "
        + ", ".join(u.url for u in settings.upstreams),
        f"# Longest legal LL-HLS block: {settings.longest_block_s} s (3 x TARGETDURATION "
        f"{settings.target_duration_s} s); cache lock and read timeouts sit above it.",
        "",
        *([] if settings.user is None else [f"user {settings.user};"]),
        f"worker_processes {settings.workers or 'auto'};",
        f"pid {_path(run / PID_FILE)};",
        f"error_log {_path(run / ERROR_LOG)} warn;",
        "# Held blocking reloads end within one block; do not wait longer than that to stop.",
        f"worker_shutdown_timeout {settings.longest_block_s}s;",
        "",
        "events {",
        f"    worker_connections {settings.worker_connections};",
        "}",
        "",
        "http {",
        "    # Every writable path under the node's own directories: nginx runs unprivileged.",
        f"    client_body_temp_path {_path(run / 'tmp' / 'body')};",
        f"    proxy_temp_path {_path(run / 'tmp' / 'proxy')};",
        f"    fastcgi_temp_path {_path(run / 'tmp' / 'fastcgi')};",
        f"    uwsgi_temp_path {_path(run / 'tmp' / 'uwsgi')};",
        f"    scgi_temp_path {_path(run / 'tmp' / 'scgi')};",
        "",
        "    default_type application/octet-stream;",
        "    server_tokens off;",
        "    sendfile on;",
        "    tcp_nopush on;",
        "    tcp_nodelay on;",
        "    keepalive_timeout 65s;",
        "    keepalive_requests 100000;",
        "",
        "    # One line per request, tab separated; `live cdn` counts cache statuses from it.",
        "    log_format livetwin '" + "\\t".join(f"${name}" for name in LOG_FIELDS) + "';",
        f"    access_log {_path(run / ACCESS_LOG)} livetwin buffer=64k flush=1s;",
        "",
        "    # levels=1:2 spreads files over directories; use_temp_path=off writes responses",
        "    # straight into the cache directory; inactive entries (parts of a stream nobody",
        "    # plays any more) are dropped after 10 minutes, the least recently used beyond",
        "    # max_size.",
        f"    proxy_cache_path {_path(settings.cache_dir)} levels=1:2 "
        f"keys_zone=livetwin_{role.value}:64m max_size={settings.cache_size} inactive=10m "
        "use_temp_path=off;",
        "",
        "    # The channel is the first path element under /hls/.",
        "    map $uri $livetwin_channel {",
        '        "~^/hls/(?<channel>[A-Za-z0-9][A-Za-z0-9_-]{0,63})/" $channel;',
        '        default "";',
        "    }",
        "",
        "    # The LL-HLS delivery directives (RFC 8216bis 6.2.5) are the only query arguments",
        "    # that change an answer: they are the only ones kept, in the cache key and upstream.",
        "    map $arg__HLS_msn $livetwin_q_msn {",
        '        "" "";',
        '        "~^(?<v>[0-9]{1,18})$" "&_HLS_msn=$v";',
        '        default "&_HLS_msn=invalid";',
        "    }",
        "    map $arg__HLS_part $livetwin_q_part {",
        '        "" "";',
        '        "~^(?<v>[0-9]{1,9})$" "&_HLS_part=$v";',
        '        default "&_HLS_part=invalid";',
        "    }",
        "    map $arg__HLS_skip $livetwin_q_skip {",
        '        "" "";',
        '        "~^(?<v>YES|v2)$" "&_HLS_skip=$v";',
        '        default "&_HLS_skip=invalid";',
        "    }",
        '    map "$livetwin_q_msn$livetwin_q_part$livetwin_q_skip" $livetwin_args {',
        '        "" "";',
        '        "~^&(?<q>.*)$" "?$q";',
        "    }",
        "",
        "    # A plain playlist reload (no _HLS_msn) must not be served older than about half a",
        "    # part: nginx's cache clock ticks in whole seconds, so such reloads are keyed by the",
        "    # current tenth of a second instead (coalesced within it, never reused after it).",
        '    map $msec $livetwin_decisecond {',
        '        "~^(?<t>[0-9]+\\.[0-9])" $t;',
        "    }",
        '    map "$uri:$arg__HLS_msn" $livetwin_reload_slot {',
        '        "~\\.m3u8:$" "@$livetwin_decisecond";',
        '        default "";',
        "    }",
        "",
        "    # CORS as the origin sends it (hidden from upstream below, so never doubled).",
        "    map $request_method $livetwin_preflight_methods {",
        '        OPTIONS "GET, HEAD, OPTIONS";',
        '        default "";',
        "    }",
        "    map $request_method $livetwin_preflight_max_age {",
        '        OPTIONS "86400";',
        '        default "";',
        "    }",
        "",
        *_upstream_block(settings),
        "",
    ]
    if edge:
        lines += [
            "    # Playlists are compressed here, once per cached answer's delivery; nodes fetch",
            "    # identity bodies upstream so one cache entry serves every Accept-Encoding.",
            "    gzip on;",
            "    gzip_types application/vnd.apple.mpegurl application/x-mpegurl;",
            "    gzip_min_length 256;",
            "    gzip_comp_level 5;",
            "    gzip_vary on;",
            "    gzip_proxied any;",
            "",
        ]
    lines += [
        "    server {",
        *_listen_lines(settings),
        "        server_name _;",
        "",
        "        # Requests and connections for `live cdn`'s metrics; loopback only.",
        f"        location = {STATUS_PATH} {{",
        "            stub_status;",
        "            access_log off;",
        "            allow 127.0.0.1;",
        "            allow ::1;",
        "            deny all;",
        "        }",
        "",
        '        location ~ "^/hls/[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)*$" {',
        "            add_header Access-Control-Allow-Origin * always;",
        "            add_header Access-Control-Expose-Headers \"Age, Date, Content-Length\" always;",
        "            add_header Access-Control-Allow-Methods $livetwin_preflight_methods always;",
        "            add_header Access-Control-Allow-Headers $http_access_control_request_headers always;",
        "            add_header Access-Control-Max-Age $livetwin_preflight_max_age always;",
        "            add_header X-Cache $upstream_cache_status always;",
        "            if ($request_method = OPTIONS) {",
        "                return 204;",
        "            }",
        "",
        f"            proxy_pass {upstream_scheme}://livetwin_upstream$uri$livetwin_args;",
        "            proxy_http_version 1.1;",
        '            proxy_set_header Connection "";',
        '            proxy_set_header Accept-Encoding "";',
        "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "            proxy_hide_header Access-Control-Allow-Origin;",
        "            proxy_hide_header Access-Control-Expose-Headers;",
        "            proxy_hide_header Vary;",
        "            proxy_hide_header Set-Cookie;",
        "            # Vary: Accept-Encoding would split the cache per client header spelling;",
        "            # we always fetch identity, so there is only one variant.",
        "            proxy_ignore_headers Vary;",
        "",
        f"            proxy_cache livetwin_{role.value};",
        "            proxy_cache_key $uri$livetwin_args$livetwin_reload_slot;",
        "            # Coalescing: one request per key goes upstream; the others wait for its",
        "            # answer. A blocking reload or preload-hinted part may be held upstream for",
        f"            # {settings.longest_block_s} s, so waiters wait longer than that.",
        "            proxy_cache_lock on;",
        f"            proxy_cache_lock_timeout {settings.lock_timeout_s}s;",
        f"            proxy_cache_lock_age {settings.lock_timeout_s}s;",
        "            # Lifetimes come from the origin's Cache-Control (parts, segments and",
        "            # blocking answers immutable; plain reloads about a second, re-keyed above).",
        "            # Errors without one: a second at most.",
        "            proxy_cache_valid 404 410 1s;",
        "            proxy_cache_valid 500 502 503 504 1s;",
        "",
        "            proxy_connect_timeout 1s;",
        "            proxy_send_timeout 5s;",
        f"            proxy_read_timeout {settings.read_timeout_s}s;",
        "            # Failover: a peer that refuses, times out or answers 502/503/504 is skipped",
        "            # and marked down for fail_timeout; the viewer sees the next peer's answer.",
        "            proxy_next_upstream error timeout http_502 http_503 http_504;",
        "            proxy_next_upstream_tries 3;",
        f"            proxy_next_upstream_timeout {settings.read_timeout_s}s;",
        "            proxy_buffers 64 16k;",
        "        }",
        "",
        "        location / {",
        "            return 404;",
        "        }",
        "    }",
        "}",
        "",
    ]
    return "\n".join(lines)
