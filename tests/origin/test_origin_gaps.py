"""Gap parts and segments (RFC 8216bis 4.4.4.7 EXT-X-GAP, 4.4.4.9 GAP=YES): an advertised
rendition that has no media for a while keeps its playlist moving instead of disappearing."""

from __future__ import annotations

import m3u8
import pytest
from live.origin.playlists import render_media, render_multivariant
from live.origin.store import OriginStore
from live.package.parts import Part
from live.package.sink import PublishError
from live.package.timing import ChannelTiming

from .conftest import LOW, T0, VIDEO, Feed, make_store
from .test_origin_http import client_for


def gap_part(msn: int, index: int, *, end: bool = False, rendition: str = "720p") -> Part:
    return Part(rendition, msn, index, b"", 1 / 3, False, T0 + msn * 2 + index / 3, end,
                gap=True)


def publish_gap_segment(store: OriginStore, msn: int, rendition: str = "720p") -> None:
    for index in range(6):
        store.publish_part("alpha", gap_part(msn, index, end=index == 5, rendition=rendition))


def test_a_gap_segment_is_listed_with_ext_x_gap_and_gap_parts(feed: Feed) -> None:
    feed.renditions = (LOW,)
    feed.segments(1)
    publish_gap_segment(feed.store, 0)  # 720p had nothing for segment 0
    state = feed.store.channel("alpha")
    assert state is not None
    text = render_media(state, "720p")
    assert text.count(",GAP=YES") == 6 and text.count("#EXT-X-GAP\n") == 1
    assert "INDEPENDENT=YES,GAP=YES" not in text
    playlist = m3u8.loads(text)
    assert playlist.segments[0].gap_tag
    # gap segments do not dilute the bandwidth the multivariant playlist states
    assert "AVERAGE-BANDWIDTH=0" not in render_multivariant(state)


def test_gap_parts_must_carry_no_media_and_segments_are_not_mixed(store: OriginStore) -> None:
    store.publish_init("alpha", VIDEO)
    with pytest.raises(PublishError, match="no media"):
        store.publish_part("alpha", Part("720p", 0, 0, b"x", 0.3, False, T0, False, gap=True))
    store.publish_part("alpha", Part("720p", 0, 0, b"x", 0.3, True, T0, False))
    with pytest.raises(PublishError, match="all media or all gap"):
        store.publish_part("alpha", gap_part(0, 1))


def test_the_timing_may_change_until_the_first_rendition_is_listed() -> None:
    """The packager opens the channel, measures the publisher's keyframes, then publishes its
    inits with a TARGETDURATION that fits them: no player has seen the old timing."""
    store = make_store()
    store.open("alpha", ChannelTiming(2, 0.334))
    store.publish_init("alpha", VIDEO, ChannelTiming(3, 0.334))
    state = store.channel("alpha")
    assert state is not None and state.timing.target_duration_s == 3
    with pytest.raises(PublishError, match="timing"):
        store.publish_init("alpha", LOW, ChannelTiming(2, 0.334))


async def test_gap_media_is_never_served_but_its_playlist_moves_on(store: OriginStore) -> None:
    feed = Feed(store, renditions=(VIDEO,)).start()
    feed.segments(1)
    publish_gap_segment(store, 1)
    client = await client_for(store)
    try:
        state = store.channel("alpha")
        assert state is not None
        base = f"/hls/alpha/720p/{state.epoch}"
        for path in (f"{base}/1.m4s", f"{base}/1.0.m4s"):
            response = await client.get(path)
            assert response.status == 404, path
        response = await client.get(f"{base}/0.m4s")
        assert response.status == 200
        response = await client.get("/hls/alpha/720p.m3u8?_HLS_msn=1&_HLS_part=5")
        assert response.status == 200 and "#EXT-X-GAP" in await response.text()
    finally:
        await client.close()
