"""The store: what the packager may publish, and the window invariants under any stream shape."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live.origin.playlists import skippable_segments
from live.origin.store import OriginSettings, OriginStore
from live.package.parts import InitSegment, Part
from live.package.sink import PartSink, PublishError
from live.package.timing import ChannelTiming

from .conftest import AUDIO, VIDEO, Feed


def part(msn: int, index: int, *, end: bool = False, duration: float = 0.3,
         independent: bool | None = None, rendition: str = "720p", data: bytes = b"moofmdat") -> Part:
    return Part(rendition, msn, index, data, duration,
                index == 0 if independent is None else independent, 1.7e9, end)


def test_part_before_init_is_the_packagers_fault(store: OriginStore) -> None:
    with pytest.raises(PublishError, match="unknown channel"):
        store.publish_part("alpha", part(0, 0))
    store.publish_init("alpha", AUDIO)
    with pytest.raises(PublishError, match="before its init"):
        store.publish_part("alpha", part(0, 0))


@pytest.mark.parametrize(("bad", "reason"), [
    (part(0, 1), r"expected part 0\.0"),
    (part(0, 0, independent=False), "must be independent"),
    (part(0, 0, duration=0.5), "PART-TARGET"),
    (part(0, 0, duration=0.0), "PART-TARGET"),
    (part(0, 0, data=b""), "empty part"),
    (part(-1, 0), ">= 0"),
])
def test_malformed_first_parts_are_refused(store: OriginStore, bad: Part, reason: str) -> None:
    store.publish_init("alpha", VIDEO)
    with pytest.raises(PublishError, match=reason):
        store.publish_part("alpha", bad)


def test_parts_must_follow_in_order(store: OriginStore) -> None:
    store.publish_init("alpha", VIDEO)
    store.publish_part("alpha", part(5, 0))
    with pytest.raises(PublishError, match=r"expected part 5\.1"):
        store.publish_part("alpha", part(5, 2))
    store.publish_part("alpha", part(5, 1, end=True))
    with pytest.raises(PublishError, match=r"expected part 6\.0"):
        store.publish_part("alpha", part(5, 2))


def test_segment_longer_than_target_duration_is_refused(store: OriginStore) -> None:
    store.publish_init("alpha", VIDEO)
    for index in range(8):  # 8 x 0.3 = 2.4 s rounds to 2: fine
        store.publish_part("alpha", part(0, index))
    with pytest.raises(PublishError, match="TARGETDURATION"):
        store.publish_part("alpha", part(0, 8))  # 2.7 s rounds to 3


def test_refused_part_leaves_the_state_untouched(store: OriginStore) -> None:
    store.publish_init("alpha", VIDEO)
    store.publish_part("alpha", part(0, 0))
    state = store.channel("alpha")
    assert state is not None
    before = (state.version, state.renditions["720p"].last, state.total_bytes)
    with pytest.raises(PublishError):
        store.publish_part("alpha", part(0, 3))
    assert (state.version, state.renditions["720p"].last, state.total_bytes) == before


def test_bad_names_are_refused(store: OriginStore) -> None:
    with pytest.raises(PublishError, match="channel name"):
        store.publish_init("../etc", VIDEO)
    with pytest.raises(PublishError, match="rendition name"):
        store.publish_init("alpha", InitSegment("master", b"x", "mp4a.40.2", 1000))


def test_segment_is_its_parts_joined_and_parts_are_slices_of_it(feed: Feed) -> None:
    feed.segments(1)
    state = feed.store.channel("alpha")
    assert state is not None
    rend = state.renditions["360p"]
    seg = rend.complete_segment(0)
    assert seg is not None and seg.data is not None
    assert seg.data == b"".join(feed.payload_at("360p", 0, i) for i in range(6))
    for stored in seg.parts:
        assert isinstance(stored.data, memoryview) and stored.data.obj is seg.data


def test_end_closes_the_open_segment_and_refuses_more_parts(feed: Feed) -> None:
    feed.parts(3)
    feed.store.end("alpha")
    state = feed.store.channel("alpha")
    assert state is not None and state.ended
    rend = state.renditions["720p"]
    assert rend.complete_count == 1 and rend.last is not None and rend.last.segment_end
    with pytest.raises(PublishError, match="ended"):
        feed.part()


def test_init_after_end_starts_a_new_stream_with_a_new_epoch(feed: Feed) -> None:
    feed.segments(1)
    old = feed.store.channel("alpha")
    feed.store.end("alpha")
    feed.store.publish_init("alpha", VIDEO)
    new = feed.store.channel("alpha")
    assert new is not None and old is not None and new is not old
    assert new.epoch != old.epoch and not new.ended and list(new.renditions) == ["720p"]


def test_listeners_hear_rendition_changes_and_channel_endings(store: OriginStore) -> None:
    heard: list[tuple[str, str | None]] = []
    store.add_listener(lambda channel, rendition: heard.append((channel, rendition)))
    store.publish_init("alpha", VIDEO)
    store.publish_part("alpha", part(0, 0))
    store.end("alpha")
    store.remove("alpha")
    assert heard == [("alpha", "720p"), ("alpha", "720p"), ("alpha", None), ("alpha", None)]


# -- properties -----------------------------------------------------------------------------------

streams = st.fixed_dictionaries({
    "parts_per_segment": st.lists(st.integers(1, 8), min_size=1, max_size=40),
    "part_s": st.sampled_from([0.2, 0.25, 1 / 3]),
    "part_bytes": st.integers(1, 3000),
    "min_live": st.integers(1, 8),
    "dvr_s": st.floats(1.0, 60.0),
    "budget": st.integers(1000, 400_000),
    "tail_parts": st.integers(0, 5),
})


@settings(max_examples=120, deadline=None)
@given(streams)
def test_windows_hold_their_invariants_for_any_stream(shape: dict) -> None:  # type: ignore[type-arg]
    part_s = shape["part_s"]
    target = 2
    timing = ChannelTiming(target, part_s + 0.0005)
    store = OriginStore(OriginSettings(timing=timing, dvr_window_s=shape["dvr_s"],
                                       channel_byte_budget=shape["budget"],
                                       min_live_segments=shape["min_live"]))
    for init in (VIDEO, AUDIO):
        store.publish_init("alpha", init)
    payload = b"p" * shape["part_bytes"]
    published: list[tuple[int, int]] = []
    count_of: dict[int, int] = {}
    layout = [*shape["parts_per_segment"], shape["tail_parts"]]
    for msn, count in enumerate(layout):
        count = min(count, int(2.4 / part_s))  # keep segments within TARGETDURATION
        is_tail = msn == len(layout) - 1
        for index in range(count):
            end = index == count - 1 and not is_tail
            for rendition in ("720p", "audio"):
                store.publish_part("alpha", Part(rendition, msn, index, payload, part_s, index == 0,
                                                 1.7e9 + msn * 2, end))
            published.append((msn, index))
        count_of[msn] = count
    state = store.channel("alpha")
    assert state is not None
    completed = len(shape["parts_per_segment"])
    for rend in state.renditions.values():
        msns = [seg.msn for seg in rend.segments]
        # contiguous, ending at the newest segment
        assert msns == list(range(msns[0], msns[0] + len(msns)))
        # never fewer than the live minimum (or all there is)
        assert rend.complete_count >= min(shape["min_live"], completed)
        # the DVR window: the oldest kept segment is young enough, unless the minimum pins it
        if rend.complete_count > shape["min_live"]:
            assert rend.edge_s - rend.segments[0].end_s <= shape["dvr_s"] + 0.001
        # segments are their parts joined, and durations add up
        for seg in rend.complete_segments():
            assert seg.data is not None and len(seg.data) == seg.nbytes == count_of[seg.msn] * len(payload)
        # every still-downloadable part is younger than 6 target durations; listed ones than 3
        for seg in rend.segments:
            for stored in seg.parts:
                served = rend.part(stored.msn, stored.index, timing)
                if served is not None:
                    assert rend.edge_s - stored.start_s <= 6 * target + 0.001
                if rend.part_listed(stored, timing):
                    assert served is not None
                    assert rend.edge_s - stored.start_s <= 3 * target + 0.001
        # delta updates skip exactly the complete segments ending 6 target durations before the edge
        linear = 0
        for seg in rend.segments:
            if not seg.complete or seg.end_s > rend.edge_s - 12.0 + 0.001:
                break
            linear += 1
        assert skippable_segments(rend, 12.0) == linear
        # accounting
        assert rend.nbytes == len(rend.init.data) + sum(seg.nbytes for seg in rend.segments)
    # over budget only when nothing more may go
    if state.total_bytes > shape["budget"]:
        assert all(rend.complete_count <= shape["min_live"] for rend in state.renditions.values())
    # every part of the last 3 target durations is listed
    video = state.renditions["720p"]
    recent = [seg for seg in video.segments if seg.parts]
    for seg in recent:
        for stored in seg.parts:
            if video.edge_s - stored.start_s <= 3 * target - 0.001:
                assert video.part_listed(stored, timing)



def test_a_dropped_rendition_leaves_the_multivariant_playlist_and_the_reports(
    store: OriginStore, feed: Feed
) -> None:
    from live.origin.playlists import render_media, render_multivariant

    feed.segments(2)
    store.drop_rendition("alpha", "360p")
    state = store.channel("alpha")
    assert state is not None and state.rendition("360p") is None
    master = render_multivariant(state)
    assert "360p.m3u8" not in master and "720p.m3u8" in master
    assert "360p.m3u8" not in render_media(state, "720p")
    feed.renditions = tuple(r for r in feed.renditions if r.rendition != "360p")
    feed.part()  # the others go on
    store.drop_rendition("alpha", "360p")  # idempotent
    store.drop_rendition("nochannel", "360p")


def test_the_store_is_the_packagers_sink() -> None:
    sink: PartSink = OriginStore()  # mypy checks the signatures; isinstance the four names
    assert isinstance(sink, PartSink)


def test_an_init_opens_an_unknown_channel_with_the_timing_it_carries_and_never_changes_it() -> None:
    store = OriginStore()
    timing = ChannelTiming(4, 0.5)
    store.publish_init("alpha", VIDEO, timing)
    state = store.channel("alpha")
    assert state is not None and state.timing == timing
    store.publish_init("alpha", AUDIO, timing)
    with pytest.raises(PublishError, match="timing"):
        store.publish_init("alpha", AUDIO, ChannelTiming(2, 0.5))
