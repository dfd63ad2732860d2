"""The Locust viewer's edge list: every request lands on the current edge, a move visits every
edge in turn, and a bad edge is refused with a reason."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadgen.locustfiles.failover import EdgeFailover, edge_base

EDGES = ("http://127.0.0.1:8001", "http://127.0.0.1:8002/", "https://edge3.example:8443")

paths = st.lists(st.text("abcdefghij0123456789._-", min_size=1, max_size=8), min_size=1, max_size=4).map(
    lambda names: "/" + "/".join(names)
)
queries = st.sampled_from(["", "_HLS_msn=12&_HLS_part=3", "_HLS_skip=YES"])


@given(path=paths, query=queries, start=st.integers(0, 10), moves=st.integers(0, 10))
def test_rebase_keeps_path_and_query_and_takes_the_current_edge(path: str, query: str, start: int,
                                                                moves: int) -> None:
    failover = EdgeFailover(EDGES, current=start)
    for _ in range(moves):
        failover.move()
    url = f"http://10.0.0.9:9999{path}" + (f"?{query}" if query else "")
    moved = urlsplit(failover.rebase(url))
    assert (moved.path, moved.query) == (path, query)
    assert f"{moved.scheme}://{moved.netloc}" == failover.base
    assert failover.base == edge_base(EDGES[(start + moves) % len(EDGES)])


def test_moves_visit_every_edge_before_coming_back() -> None:
    failover = EdgeFailover(EDGES, current=1)
    seen = [failover.base]
    for _ in range(len(EDGES)):
        before, after = failover.move()
        assert before == seen[-1]
        seen.append(after)
    assert seen[0] == seen[-1] and len(set(seen)) == len(EDGES)
    assert failover.moves == len(EDGES)


def test_one_edge_cannot_move_and_none_is_refused() -> None:
    assert not EdgeFailover(EDGES[:1]).can_move
    with pytest.raises(ValueError, match="at least one edge"):
        EdgeFailover(())


@pytest.mark.parametrize(("text", "reason"), [
    ("127.0.0.1:8001", "http"),
    ("ftp://host", "http"),
    ("http://", "http"),
    ("http://host/hls", "without a path"),
    ("http://host?x=1", "without a path"),
    ("http://host:99999", "bad port"),
])
def test_bad_edges_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        edge_base(text)
