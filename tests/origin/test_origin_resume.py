"""A stream taken over by another ingest node continues the origin's playlists (issue 16).

The new ingest node asks the origins where the channel goes on (``GET /ingest/{channel}``) and
pushes a new stream whose header names that ``start_msn``; the origin keeps the channel's
playlists and numbering, closes the old run's open segments, fills a rendition that fell behind
with EXT-X-GAP segments, and marks the new run's first segment with EXT-X-DISCONTINUITY and its
own EXT-X-MAP. Old and new media stay downloadable under their own epochs.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from live.dvr.app import setup_dvr
from live.dvr.catalog import DvrSettings
from live.dvr.service import open_dvr
from live.media.units import AudioConfig
from live.origin.app import setup_origin
from live.origin.ingest import PushedStreams, StalePush, setup_ingest
from live.origin.playlists import render_media
from live.origin.store import MAX_RESUME_HOLE, OriginSettings, OriginStore
from live.package.fmp4 import audio_track, init_segment
from live.package.ingest_wire import IngestParser, TrackHeader, encode_header, encode_part
from live.package.parts import InitSegment
from live.package.push import CmafPush, PushSettings, _Track
from live.package.segmenter import Segmenter, SegmenterError, SegmenterSettings

from tests.origin.test_origin_ingest import (
    INITS,
    PARTS_PER_SEGMENT,
    TIMING,
    TOKEN,
    Origin,
    make_part,
    origins,  # noqa: F401  (fixture)
    until,
)
from tests.package.test_segmenter import VIDEO, video_units

#: The new ingest node's encoder: another init segment (its own codec configuration).
NEW_HEADER = init_segment([audio_track(AudioConfig("aac", "mp4a.40.2", 44_100, 2, 2, b"\x12\x10"))])
NEW_INITS = [InitSegment(i.rendition, NEW_HEADER, i.codecs, i.bandwidth, i.width, i.height,
                         i.frame_rate) for i in INITS]


def feed(streams: PushedStreams, stream: str, rendition: str, parts: range) -> None:
    for n in parts:
        streams.part("alpha", stream, make_part(rendition, n))


def test_the_header_carries_the_start_msn() -> None:
    events = IngestParser("720p").feed(encode_header(INITS[0], TIMING, 42))
    assert events == [TrackHeader(INITS[0], TIMING, 42)]
    assert IngestParser("720p").feed(encode_header(INITS[0], TIMING)) == [TrackHeader(INITS[0], TIMING)]


def test_a_resumed_stream_continues_numbering_after_a_discontinuity() -> None:
    store = OriginStore(OriginSettings(timing=TIMING))
    streams = PushedStreams(store)
    for init in INITS:
        streams.header("alpha", "b0", TrackHeader(init, TIMING))
    feed(streams, "b0", "720p", range(0, 14))  # segment 100 and 5 parts of 101
    feed(streams, "b0", "360p", range(0, 9))  # segment 100 only: 101 never arrived
    state = store.channel("alpha")
    assert state is not None and store.next_msn("alpha") == 102

    for init in NEW_INITS:  # ingest node B: a newer stream, continuing at 102
        streams.header("alpha", "b1", TrackHeader(init, TIMING, 102))
    assert store.channel("alpha") is state and state.epoch == "b1" and not state.ended
    feed(streams, "b1", "720p", range(18, 27))
    feed(streams, "b1", "360p", range(18, 20))

    hd = render_media(state, "720p")
    assert "#EXT-X-MEDIA-SEQUENCE:100" in hd
    assert hd.index('#EXT-X-MAP:URI="720p/b0/init.mp4"') < hd.index("720p/b0/100.m4s")
    assert "720p/b0/101.m4s" in hd  # the old run's open segment was closed, under its epoch
    after = hd.split("720p/b0/101.m4s", 1)[1]
    assert after.lstrip().startswith('#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="720p/b1/init.mp4"')
    assert "720p/b1/102.m4s" in after and "b0/" not in after
    rend = state.rendition("720p")
    assert rend is not None and rend.init == NEW_INITS[0]
    assert rend.init_of("b0", state.epoch) == INITS[0] and rend.init_of("b1", state.epoch) == NEW_INITS[0]
    assert [seg.msn for seg in rend.segments] == [100, 101, 102]

    sd = render_media(state, "360p")  # 101 filled with a gap, as long as 720p's 101
    gap = sd.split("360p/b0/100.m4s", 1)[1].split("#EXT-X-DISCONTINUITY", 1)[0]
    assert "#EXT-X-GAP" in gap and "360p/b0/101.m4s" in gap and "#EXTINF:1.0," in gap
    assert '#EXT-X-PART:DURATION=0.2,URI="360p/b1/102.1.m4s"' in sd

    with pytest.raises(StalePush):  # ingest node A coming back is refused
        streams.header("alpha", "b0", TrackHeader(INITS[0], TIMING))
    assert store.channel("alpha") is state and state.epoch == "b1"


def test_a_resume_that_cannot_continue_starts_a_new_stream() -> None:
    store = OriginStore(OriginSettings(timing=TIMING))
    streams = PushedStreams(store)
    streams.header("alpha", "b0", TrackHeader(INITS[0], TIMING))
    feed(streams, "b0", "720p", range(0, 9))
    first = store.channel("alpha")
    too_far = 101 + MAX_RESUME_HOLE + 1
    streams.header("alpha", "b1", TrackHeader(INITS[0], TIMING, too_far))
    assert store.channel("alpha") is not first and store.channel("alpha").epoch == "b1"  # type: ignore[union-attr]
    store.end("alpha")
    assert store.next_msn("alpha") is None  # an ended stream is never continued
    assert store.resume("alpha", "b2", TIMING, 0) is None


def test_evicting_the_discontinuity_counts_it_and_forgets_the_old_init() -> None:
    store = OriginStore(OriginSettings(timing=TIMING, dvr_window_s=4.0, min_live_segments=2))
    streams = PushedStreams(store)
    streams.header("alpha", "b0", TrackHeader(INITS[0], TIMING))
    feed(streams, "b0", "720p", range(0, 18))
    streams.header("alpha", "b1", TrackHeader(NEW_INITS[0], TIMING, 102))
    feed(streams, "b1", "720p", range(18, 18 + 9 * 6))
    state = store.channel("alpha")
    assert state is not None
    rend = state.rendition("720p")
    assert rend is not None and rend.segments[0].msn > 102
    assert rend.discontinuity_sequence == 1 and rend.inits == {}
    text = render_media(state, "720p")
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:1" in text and "#EXT-X-DISCONTINUITY\n" not in text
    assert '#EXT-X-MAP:URI="720p/b1/init.mp4"' in text


async def test_a_second_pusher_resumes_the_stream_at_both_origins(origins: list[Origin]) -> None:  # noqa: F811
    urls = tuple(o.url for o in origins)
    first = CmafPush(PushSettings(urls, TOKEN, backoff_max_s=0.3, end_timeout_s=1.0))
    second = CmafPush(PushSettings(urls, TOKEN, backoff_max_s=0.3, end_timeout_s=1.0))
    await first.start()
    await second.start()
    try:
        assert await second.resume_point("alpha") == 0  # nothing live yet
        a = first.stream("alpha")
        for init in INITS:
            a.publish_init("alpha", init, TIMING)
        for n in range(0, 12):
            for init in INITS:
                a.publish_part("alpha", make_part(init.rendition, n))
        await until(lambda: all(o.segments("360p") == [100, 101] and len(o.parts("720p")) == 12
                                for o in origins))
        for track in origin_tracks(first):  # ingest node A dies: its pushes stop mid-segment
            track.task.cancel()
        start = await second.resume_point("alpha")
        assert start == 102
        b = second.stream("alpha", start)
        for init in NEW_INITS:
            b.publish_init("alpha", init, TIMING)
        for n in range(18, 30):
            for init in NEW_INITS:
                b.publish_part("alpha", make_part(init.rendition, n))
        await until(lambda: all(o.segments("720p") == [100, 101, 102, 103] for o in origins))
        async with aiohttp.ClientSession() as session:
            bodies = []
            for origin in origins:
                base = f"{origin.url}/hls/alpha/720p"
                async with session.get(base + ".m3u8") as response:
                    bodies.append(await response.text())
                for path, body in ((f"/{a.stream_id}/init.mp4", INITS[0].data),
                                   (f"/{b.stream_id}/init.mp4", NEW_INITS[0].data),
                                   (f"/{a.stream_id}/100.3.m4s", make_part("720p", 3).data),
                                   (f"/{b.stream_id}/102.0.m4s", make_part("720p", 18).data)):
                    async with session.get(base + path) as media:
                        assert media.status == 200 and await media.read() == body
                async with session.get(f"{base}/{b.stream_id}/100.m4s") as wrong:
                    assert wrong.status == 404  # segment 100 belongs to the earlier run
                async with session.get(f"{origin.url}/dash/alpha/manifest.mpd") as mpd:
                    text = await mpd.text()  # DASH: the current run only, as a new Period
                    assert f'id="{b.stream_id}"' in text and a.stream_id not in text
            assert bodies[0] == bodies[1]
            assert "#EXT-X-MEDIA-SEQUENCE:100" in bodies[0]
            assert bodies[0].count("#EXT-X-DISCONTINUITY\n") == 1
    finally:
        await first.close()
        await second.close()


def origin_tracks(push: CmafPush) -> list[_Track]:
    return [track for origin in push.origins for track in origin.tracks.values()]


def test_a_segmenter_numbers_from_its_start_msn() -> None:
    units = video_units([33] * 150, [i % 30 == 0 for i in range(150)], [0] * 150)
    numbered = Segmenter("r", SegmenterSettings(0.333, 2.0), start_msn=57)
    numbered.configure(VIDEO, None, bandwidth=2_000_000, frame_rate=30.0)
    plain = Segmenter("r", SegmenterSettings(0.333, 2.0))
    plain.configure(VIDEO, None, bandwidth=2_000_000, frame_rate=30.0)
    got = [p for u in units for p in numbered.push(u)] + numbered.flush()
    base = [p for u in units for p in plain.push(u)] + plain.flush()
    assert [(p.msn - 57, p.index, p.data) for p in got] == [(p.msn, p.index, p.data) for p in base]
    assert got[0].msn == 57 and got[-1].msn > 57
    with pytest.raises(SegmenterError):
        Segmenter("r", start_msn=-1)


@settings(max_examples=150, deadline=None)
@given(hd=st.integers(1, 40), sd=st.integers(1, 40), ahead=st.integers(-2, MAX_RESUME_HOLE + 2),
       new_parts=st.integers(0, 30))
def test_any_takeover_keeps_numbering_contiguous_or_starts_a_new_stream(
        hd: int, sd: int, ahead: int, new_parts: int) -> None:
    """Whatever each rendition had received and wherever the new run says it starts: either
    the playlists go on (same state, contiguous msns, one discontinuity per rendition that got
    new media) or the stream starts afresh; never a hole, never a number going back."""
    store = OriginStore(OriginSettings(timing=TIMING))
    streams = PushedStreams(store)
    for init in INITS:
        streams.header("alpha", "b0", TrackHeader(init, TIMING))
    feed(streams, "b0", "720p", range(0, hd))
    feed(streams, "b0", "360p", range(0, sd))
    old = store.channel("alpha")
    lead = store.next_msn("alpha")
    assert lead == 100 + (max(hd, sd) - 1) // PARTS_PER_SEGMENT + 1
    start = lead + ahead
    for init in NEW_INITS:
        streams.header("alpha", "b1", TrackHeader(init, TIMING, max(start, 1)))
    state = store.channel("alpha")
    assert state is not None and state.epoch == "b1"
    resumed = state is old
    assert resumed == (0 <= ahead <= MAX_RESUME_HOLE)
    offset = (start - 100) * PARTS_PER_SEGMENT
    for rendition in ("720p", "360p"):
        if resumed:
            feed(streams, "b1", rendition, range(offset, offset + new_parts))
        rend = state.rendition(rendition)
        assert rend is not None
        msns = [seg.msn for seg in rend.segments]
        assert msns == list(range(100, 100 + len(msns))) if resumed else msns == []
        joins = [seg for seg in rend.segments if seg.discontinuity]
        if resumed:
            assert len(joins) == (1 if new_parts else 0)
            assert all(seg.msn == start for seg in joins)
            text = render_media(state, rendition)
            assert text.count("#EXT-X-DISCONTINUITY\n") == len(joins)
            assert all(seg.epoch == ("b1" if seg.msn >= start else "b0") for seg in rend.segments)


async def test_the_origin_s_dvr_records_both_runs_with_a_discontinuity(tmp_path: Path) -> None:
    """The DVR on the origin hears the resume: the new run's init (even when identical) starts a
    new run of its recording, which its playlist marks with EXT-X-DISCONTINUITY."""
    store = OriginStore(OriginSettings(timing=TIMING))
    dvr = await open_dvr(tmp_path / "dvr", DvrSettings(durable=False), inline=True)
    app = web.Application()
    setup_dvr(app, dvr.catalog, dvr.store)
    setup_origin(app, store)
    setup_ingest(app, store, TOKEN, recorder=dvr.recorder)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with aiohttp.ClientSession() as session:
            for stream, start, parts in (("s1", 0, range(0, 18)), ("s2", 102, range(18, 36))):
                body = encode_header(INITS[0], TIMING, start) + b"".join(
                    encode_part(make_part("720p", n)) for n in parts)
                async with session.post(f"{base}/ingest/alpha/{stream}/720p", data=body,
                                        headers=auth) as response:
                    assert response.status == 200
            assert store.channel("alpha").epoch == "s2"  # type: ignore[union-attr]
            async with session.get(f"{base}/hls/alpha/dvr/720p.m3u8") as response:
                assert response.status == 200
                playlist = await response.text()
        segments = [line for line in playlist.splitlines() if line.endswith(".m4s")]
        assert len(segments) == 4, playlist  # 100, 101 of the first run; 102, 103 of the second
        assert playlist.count("#EXT-X-DISCONTINUITY\n") == 1, playlist
    finally:
        await runner.cleanup()
        await dvr.close()
