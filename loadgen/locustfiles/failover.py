"""Which edge a Locust viewer asks, and the move to the next one when it fails.

A real deployment hands players several CDN edges (hls.js gets redundant stream URLs; our
asyncio fleet in `live.selftest.viewer_fleet` does the same); a viewer whose edge dies must
reconnect to another and resume, not count as lost. Playlists carry relative URIs, so every URL
a viewer resolves carries the host it was read from: `rebase` moves each request onto the
current edge, whichever edge served the playlist that named it. Free of Locust, so the rules are
tested without a swarm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

#: answers that mean "this edge is not serving", worth the same request at another edge
#: (0: no HTTP answer at all; a refused or reset connection)
RETRIABLE_STATUSES = frozenset({0, 502, 503, 504})


def edge_base(text: str) -> str:
    """``http(s)://host[:port]`` checked and normalised; ValueError says what is wrong."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"an edge is http(s)://HOST[:PORT], not {text!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"an edge is a base URL without a path or query, not {text!r}")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        raise ValueError(f"bad port in edge {text!r}") from None
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


@dataclass
class EdgeFailover:
    """A viewer's edges, the one it uses now, and how often it moved."""

    edges: tuple[str, ...]
    current: int = 0
    moves: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not self.edges:
            raise ValueError("a failover needs at least one edge")
        self.edges = tuple(edge_base(e) for e in self.edges)
        self.current %= len(self.edges)

    @property
    def base(self) -> str:
        return self.edges[self.current]

    @property
    def can_move(self) -> bool:
        return len(self.edges) > 1

    def rebase(self, url: str) -> str:
        """`url` with its scheme and host replaced by the current edge's (path and query kept)."""
        parts = urlsplit(url)
        edge = urlsplit(self.base)
        return urlunsplit((edge.scheme, edge.netloc, parts.path, parts.query, parts.fragment))

    def move(self) -> tuple[str, str]:
        """Go to the next edge; (from, to)."""
        before = self.base
        self.current = (self.current + 1) % len(self.edges)
        self.moves += 1
        return before, self.base
