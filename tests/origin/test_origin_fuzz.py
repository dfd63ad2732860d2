"""Fuzzing what a viewer controls at the origin: the blocking-reload directives and the URL.

``parse_directives`` answers Directives or a DirectiveError (a 400 with a reason), whatever the
query holds; any GET under ``/hls/`` answers 200 for a resource that exists and 404 otherwise,
never a 405 or a 5xx, however the path is shaped.
"""

from __future__ import annotations

import re
import string
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from live.origin.app import setup_origin
from live.origin.blocking import DirectiveError, Directives, parse_directives
from live.origin.store import OriginStore

from .conftest import Feed

Client = TestClient[web.Request, web.Application]

_DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=20)
_VALUES = _DIGITS | st.text(max_size=24) | st.sampled_from(["YES", "v2", "NO", "", "-1", "+1", " 1", "1.0"])
_KEYS = st.sampled_from(["_HLS_msn", "_HLS_part", "_HLS_skip", "_HLS_msn ", "_hls_msn", "other"])


@settings(max_examples=400)
@given(query=st.dictionaries(_KEYS, _VALUES, max_size=4))
def test_any_directive_query_parses_or_is_a_client_error(query: dict[str, str]) -> None:
    try:
        parsed = parse_directives(query)
    except DirectiveError as error:
        assert str(error)
        return
    assert isinstance(parsed, Directives)
    msn, part = query.get("_HLS_msn"), query.get("_HLS_part")
    if msn is not None:  # a number was accepted only as ASCII digits, as RFC 8216bis 6.2.5.2 writes it
        assert parsed.msn == int(msn) and msn.isascii() and msn.isdigit()
    else:
        assert parsed.msn is None and part is None
    if part is not None:
        assert parsed.part == int(part)
    assert parsed.skip == (query.get("_HLS_skip") in ("YES", "v2"))


_SEGMENT = st.one_of(
    st.sampled_from(["alpha", "nobody", "720p", "360p", "audio", "master.m3u8", "720p.m3u8",
                     "init.mp4", "0.m4s", "0.0.m4s", "zzzz", "", ".", "..", "%41", "-x"]),
    st.text(alphabet=string.ascii_letters + string.digits + "-._~", max_size=70),
)
_PATHS = st.lists(_SEGMENT, min_size=1, max_size=6).map(lambda parts: "/hls/" + "/".join(parts))
_NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
_ROUTES = [
    re.compile(rf"/hls/{_NAME}/{_NAME}/[0-9a-z]{{1,16}}/[A-Za-z0-9._-]{{1,40}}"),
    re.compile(rf"/hls/{_NAME}/master\.m3u8"),
    re.compile(rf"/hls/{_NAME}/{_NAME}\.m3u8"),
]


@pytest.fixture
async def fed_client(store: OriginStore, feed: Feed) -> AsyncIterator[Client]:
    feed.segments(2)
    app = web.Application()
    setup_origin(app, store)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=_PATHS, method=st.sampled_from(["GET", "HEAD"]))
async def test_any_path_under_hls_is_served_or_404_never_405_or_5xx(
    fed_client: Client, path: str, method: str
) -> None:
    async with fed_client.request(method, path, allow_redirects=False) as response:
        status = response.status
    if not any(route.fullmatch(path.replace("%41", "A")) for route in _ROUTES):
        assert status == 404, (path, status)
    assert status in (200, 404), (path, status)


async def test_unknown_paths_under_hls_are_404_and_other_methods_405(fed_client: Client) -> None:
    for path in ("/hls/", "/hls/alpha", "/hls/alpha/720p", "/hls/alpha/720p/x", "/hls/a/b/c/d/e"):
        assert (await fed_client.get(path)).status == 404, path
    assert (await fed_client.post("/hls/alpha/master.m3u8")).status == 405  # a real resource
    assert (await fed_client.options("/hls/anything")).status == 204  # CORS preflight still answers
