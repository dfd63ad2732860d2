"""Rendered playlists against the LL-HLS rules, read back by a parser we did not write (m3u8)."""

from __future__ import annotations

from datetime import UTC, datetime

import m3u8
import pytest
from live.origin.playlists import render_media, render_multivariant, skippable_segments
from live.origin.store import OriginStore

from .conftest import T0, Feed, make_store


def media(store: OriginStore, rendition: str = "720p", *, skip: bool = False) -> m3u8.M3U8:
    state = store.channel("alpha")
    assert state is not None
    return m3u8.loads(render_media(state, rendition, skip=skip))


def media_text(store: OriginStore, rendition: str = "720p", *, skip: bool = False) -> str:
    state = store.channel("alpha")
    assert state is not None
    return render_media(state, rendition, skip=skip)


def test_multivariant_lists_every_rendition_with_required_attributes(feed: Feed) -> None:
    feed.segments(3)
    state = feed.store.channel("alpha")
    assert state is not None
    playlist = m3u8.loads(render_multivariant(state))
    assert playlist.is_variant
    by_uri = {variant.uri: variant.stream_info for variant in playlist.playlists}
    assert set(by_uri) == {"720p.m3u8", "360p.m3u8", "audio.m3u8"}
    hd = by_uri["720p.m3u8"]
    assert hd.bandwidth == 3_000_000
    assert hd.average_bandwidth is not None and 0 < hd.average_bandwidth <= hd.bandwidth
    assert hd.codecs == "avc1.64001f,mp4a.40.2"
    assert hd.resolution == (1280, 720)
    assert hd.frame_rate == 30.0
    audio = by_uri["audio.m3u8"]
    assert audio.codecs == "mp4a.40.2" and audio.resolution is None


def test_multivariant_puts_audio_only_variant_after_video_ones(feed: Feed) -> None:
    state = feed.store.channel("alpha")
    assert state is not None
    uris = [variant.uri for variant in m3u8.loads(render_multivariant(state)).playlists]
    assert uris[-1] == "audio.m3u8"


def test_average_bandwidth_is_measured_from_segments(store: OriginStore) -> None:
    feed = Feed(store, part_bytes=10_000).start()
    feed.segments(2)
    state = store.channel("alpha")
    assert state is not None
    info = {v.uri: v.stream_info for v in m3u8.loads(render_multivariant(state)).playlists}
    # 6 parts x 10,000 bytes per 2 s segment = 240 kbit/s
    assert info["360p.m3u8"].average_bandwidth == 240_000
    # the declared peak stays the BANDWIDTH unless segments exceed it
    assert info["audio.m3u8"].bandwidth == 240_000
    assert info["360p.m3u8"].bandwidth == 800_000


def test_media_playlist_declares_ll_hls_server_control(feed: Feed) -> None:
    feed.segments(2)
    playlist = media(feed.store)
    assert playlist.version >= 9
    assert playlist.target_duration == 2
    part_target = playlist.part_inf.part_target
    assert part_target == pytest.approx(0.334)
    control = playlist.server_control
    assert control.can_block_reload == "YES"
    assert control.part_hold_back >= 3 * part_target
    assert control.hold_back >= 3 * playlist.target_duration
    assert control.can_skip_until >= 6 * playlist.target_duration
    assert playlist.segment_map[0].uri.endswith("/init.mp4")


def test_every_segment_has_program_date_time_before_its_first_part(feed: Feed) -> None:
    feed.segments(3)
    feed.parts(2)
    text = media_text(feed.store)
    lines = text.splitlines()
    playlist = m3u8.loads(text)
    for number, segment in enumerate(playlist.segments):
        expected = datetime.fromtimestamp(T0 + number * 2.0, UTC)
        # m3u8 hangs the open segment's date on its first part
        stamp = segment.program_date_time if segment.uri else segment.parts[0].program_date_time
        assert abs((stamp - expected).total_seconds()) < 0.002
    # textual order: within each segment block the PDT comes before any EXT-X-PART
    block_has_pdt = False
    for line in lines:
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME"):
            block_has_pdt = True
        elif line.startswith("#EXT-X-PART:"):
            assert block_has_pdt
        elif line.startswith("#EXTINF"):
            block_has_pdt = False


def test_parts_are_independent_exactly_at_segment_starts(feed: Feed) -> None:
    feed.segments(1)
    feed.parts(3)
    for segment in media(feed.store).segments:
        for number, part in enumerate(segment.parts):
            assert (part.independent == "YES") == (number == 0)


def test_exactly_one_preload_hint_names_the_next_part(feed: Feed) -> None:
    feed.parts(4)
    text = media_text(feed.store)
    assert text.count("#EXT-X-PRELOAD-HINT") == 1
    hint = m3u8.loads(text).preload_hint
    assert hint.hint_type == "PART" and hint.uri.endswith("/0.4.m4s")
    feed.parts(2)  # closes segment 0: the next part is 1.0
    assert media(feed.store).preload_hint.uri.endswith("/1.0.m4s")


def test_rendition_reports_cover_every_other_rendition(feed: Feed) -> None:
    feed.segments(1)
    feed.part("720p")
    feed.index -= 1  # publish the same position for the others later
    reports = {r.uri: (r.last_msn, r.last_part) for r in media(feed.store, "720p").rendition_reports}
    assert reports == {"360p.m3u8": (0, 5), "audio.m3u8": (0, 5)}
    reports = {r.uri: (r.last_msn, r.last_part) for r in media(feed.store, "audio").rendition_reports}
    assert reports == {"720p.m3u8": (1, 0), "360p.m3u8": (0, 5)}


def test_parts_older_than_three_target_durations_leave_the_playlist(feed: Feed) -> None:
    feed.segments(6)
    feed.parts(2)
    playlist = media(feed.store)
    edge = 6 * 2.0 + 2 / 3
    start = 0.0
    listed_parts = 0
    for segment in playlist.segments:
        for part in segment.parts:
            listed_parts += 1
            age = edge - (start + int(part.uri.rsplit(".", 2)[-2]) * (1 / 3))
            assert age <= 3 * playlist.target_duration + 1e-6
        start += 2.0
    # every part starting within the last 3 target durations (6 s = 18 parts) is listed
    assert listed_parts == 18


def test_part_files_stay_for_three_more_target_durations(feed: Feed) -> None:
    feed.segments(2)
    state = feed.store.channel("alpha")
    assert state is not None
    rend = state.renditions["720p"]
    feed.segments(3)  # part 0.0 is now 10 s old: delisted (> 6 s) but still downloadable (<= 12 s)
    part = rend.part(0, 0, state.timing)
    assert part is not None and bytes(part.data).startswith(b"720p:0.0:")
    assert "/0.0.m4s" not in media_text(feed.store)
    feed.segments(1)  # 12 s old: at the limit
    feed.parts(1)  # past it
    assert rend.part(0, 0, state.timing) is None
    assert rend.complete_segment(0) is not None  # the segment itself stays


def test_ended_playlist_has_endlist_and_no_preload_hint(feed: Feed) -> None:
    feed.segments(2)
    feed.parts(3)
    feed.store.end("alpha")
    text = media_text(feed.store)
    playlist = m3u8.loads(text)
    assert playlist.is_endlist
    assert "#EXT-X-PRELOAD-HINT" not in text
    assert playlist.preload_hint is None
    # the open segment was closed with the parts it had
    assert playlist.segments[-1].uri.endswith("/2.m4s")
    assert playlist.segments[-1].duration == pytest.approx(1.0)


def test_delta_update_skips_segments_older_than_can_skip_until(store: OriginStore) -> None:
    feed = Feed(store).start()
    feed.segments(70)  # 140 s: past the two-minute skip window
    feed.parts(1)
    full = media(store)
    delta = media(store, skip=True)
    skipped = delta.skip.skipped_segments
    assert skipped > 0
    assert delta.media_sequence == full.media_sequence
    kept = delta.segments
    assert len(kept) + skipped == len(full.segments)
    assert [s.uri for s in kept] == [s.uri for s in full.segments[skipped:]]
    # what remains spans at least CAN-SKIP-UNTIL; one more skipped segment would not
    remaining = sum(s.duration or 0.0 for s in kept) + 1 / 3
    assert remaining >= full.server_control.can_skip_until
    assert remaining - 2.0 < full.server_control.can_skip_until


def test_delta_update_of_a_short_playlist_skips_nothing(feed: Feed) -> None:
    feed.segments(3)
    assert "#EXT-X-SKIP" not in media_text(feed.store, skip=True)


def test_delta_update_is_not_offered_after_endlist(feed: Feed) -> None:
    feed.segments(20)
    feed.store.end("alpha")
    assert "#EXT-X-SKIP" not in media_text(feed.store, skip=True)


def test_skippable_count_matches_boundary(feed: Feed) -> None:
    feed.segments(10)
    state = feed.store.channel("alpha")
    assert state is not None
    rend = state.renditions["720p"]
    # edge at 20 s, boundary at 8 s: segments 0-3 end at or before it
    assert skippable_segments(rend, 12.0) == 4


def test_live_playlist_keeps_six_segments_even_with_a_tiny_dvr_window() -> None:
    store = make_store(dvr_window_s=1.0)
    feed = Feed(store).start()
    feed.segments(12)
    feed.parts(2)
    playlist = media(store)
    complete = [s for s in playlist.segments if s.uri]
    assert len(complete) == 6
    assert playlist.media_sequence == 6


def test_dvr_window_keeps_segments_by_age() -> None:
    store = make_store(dvr_window_s=30.0)
    feed = Feed(store).start()
    feed.segments(40)
    playlist = media(store)
    # edge at 80 s; segments ending more than 30 s before it are gone
    assert playlist.media_sequence == 24
    assert len(playlist.segments) == 16


def test_byte_budget_evicts_the_same_oldest_segment_in_every_rendition() -> None:
    store = make_store(channel_byte_budget=3 * 3 * 6 * 1000 * 8)
    feed = Feed(store, part_bytes=1000).start()
    feed.segments(20)
    state = store.channel("alpha")
    assert state is not None
    firsts = {rend.segments[0].msn for rend in state.renditions.values()}
    assert len(firsts) == 1
    assert state.total_bytes <= store.settings.channel_byte_budget
    assert media(store).media_sequence == firsts.pop()


def test_memoized_segment_lines_render_like_a_fresh_render(feed: Feed) -> None:
    state = feed.store.channel("alpha")
    assert state is not None
    for _ in range(40):
        feed.parts(5)
        memoized = render_media(state, "720p")
        for seg in state.renditions["720p"].segments:
            seg.block = ""
        assert render_media(state, "720p") == memoized


def test_rendition_without_parts_gets_no_rendition_report(feed: Feed) -> None:
    feed.part("720p")
    assert media(feed.store, "720p").rendition_reports == []
