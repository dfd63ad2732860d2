"""Date ranges (ad breaks) in media playlists: in every rendition, the same text, at a boundary."""

from __future__ import annotations

from live.origin.playlists import render_media
from live.origin.store import DateRange

from .conftest import T0, Feed


def test_the_next_boundary_is_where_the_open_segment_will_end(feed: Feed) -> None:
    assert feed.store.next_segment_boundary("alpha") is None  # inits only: nothing live yet
    for _ in range(8):  # one segment of 6 parts, then 2 parts into the next
        feed.part()
    boundary = feed.store.next_segment_boundary("alpha")
    assert boundary == T0 + 6 * feed.part_s + 2  # open segment start + TARGETDURATION
    for _ in range(4):
        feed.part()
    assert feed.store.next_segment_boundary("alpha") == T0 + 12 * feed.part_s  # it closed: exact
    assert feed.store.next_segment_boundary("nobody") is None
    feed.store.end("alpha")
    assert feed.store.next_segment_boundary("alpha") is None


def test_a_date_range_appears_in_every_rendition_until_it_leaves_the_window(feed: Feed) -> None:
    for _ in range(8):
        feed.part()
    state = feed.store.channel("alpha")
    assert state is not None
    version = state.version
    lines = ('#EXT-X-DATERANGE:ID="ad-1",CLASS="com.apple.hls.interstitial",START-DATE="x"',)
    feed.store.add_date_range("alpha", DateRange(T0 + 60, lines))
    assert state.version > version  # memoized playlists are rendered again
    for rendition in ("720p", "360p", "audio"):
        text = render_media(state, rendition)
        assert text.count(lines[0]) == 1
        assert render_media(state, rendition, skip=True).count(lines[0]) == 1
    feed.store.add_date_range("alpha", DateRange(T0 - 60, ('#EXT-X-DATERANGE:ID="old"',)))
    assert 'ID="old"' not in render_media(state, "720p")  # ended before the oldest segment
