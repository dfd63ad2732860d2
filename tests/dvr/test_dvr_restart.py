"""What a restart finds: everything written before a crash, corrupt entries skipped with a
reason, a resumed stream on the same timeline after a discontinuity, VODs and their retention."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from live.dvr.playlists import render_dvr_media

from .conftest import T0, Clock, Feed, make_dvr


def index_of(root: Path, channel: str = "alpha") -> Path:
    (index,) = root.glob(f"{channel}/*/index.jsonl")
    return index


def test_a_crash_keeps_every_completed_segment_and_a_resumed_stream_continues_the_timeline(
        tmp_path: Path) -> None:
    clock = Clock()
    dvr = make_dvr(tmp_path, clock)
    feed = Feed(dvr, clock).start()
    written = [feed.segment() for _ in range(10)]
    recording = dvr.catalog.recording("alpha")
    assert recording is not None
    before = render_dvr_media(recording, "720p")
    # the crash: no end(), the process is gone; a new one opens the same directory
    clock.now += 30
    dvr = make_dvr(tmp_path, clock)
    restored = dvr.catalog.recording("alpha")
    assert restored is not None and restored.id == recording.id and not restored.ended
    assert render_dvr_media(restored, "720p") == before
    for offset, segment in enumerate(written):
        for rendition, data in segment.items():
            path = dvr.store.segment_path("alpha", restored.id, rendition, restored.id + offset)
            assert path.read_bytes() == data

    feed = Feed(dvr, clock).start()  # the publisher comes back: the packager starts at msn 0
    feed.run(8)  # four segments
    resumed = dvr.catalog.recording("alpha")
    assert resumed is restored
    playlist = render_dvr_media(resumed, "720p")
    assert playlist.count("#EXT-X-DISCONTINUITY\n") == 1
    assert playlist.count("#EXT-X-MAP:") == 2
    msns = [int(line.split("/")[1].split(".")[0]) for line in playlist.splitlines()
            if line.endswith(".m4s")]
    assert msns == list(range(recording.id, recording.id + 14))  # one contiguous timeline


def test_corrupt_index_entries_are_skipped_with_a_logged_reason_and_the_rest_is_served(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    dvr = make_dvr(tmp_path, clock)
    Feed(dvr, clock).start().run(20)
    index = index_of(tmp_path)
    lines = index.read_bytes().splitlines(keepends=True)
    segments = [i for i, line in enumerate(lines) if b'"segment"' in line]
    garbage, wrong_size, negative = segments[3], segments[4], segments[5]
    lines[garbage] = b'{"type":"segment","rendition":"720p",\xff\n'
    entry = json.loads(lines[wrong_size])
    entry["nbytes"] += 1
    lines[wrong_size] = json.dumps(entry).encode() + b"\n"
    entry = json.loads(lines[negative])
    entry["duration_s"] = -2.0
    lines[negative] = json.dumps(entry).encode() + b"\n"
    index.write_bytes(b"".join(lines) + b'{"type":"segment","rend')  # and a torn tail

    with caplog.at_level(logging.WARNING, logger="live.dvr"):
        dvr = make_dvr(tmp_path, clock)
    reasons = [r.getMessage() for r in caplog.records if "skipping index entry" in r.getMessage()]
    assert len(reasons) == 4, reasons
    assert any("not JSON" in r for r in reasons)
    assert any("the index says" in r for r in reasons)
    assert any("impossible" in r or "negative" in r for r in reasons)
    assert any("torn" in r for r in reasons)
    recording = dvr.catalog.recording("alpha")
    assert recording is not None
    assert sum(len(track.segments) for track in recording.tracks.values()) == 10 * 6 - 3
    assert index.read_bytes().endswith(b"\n")  # the torn tail is cut, so appends stay whole


def test_an_ended_stream_is_a_vod_until_its_retention_runs_out(tmp_path: Path) -> None:
    clock = Clock()
    dvr = make_dvr(tmp_path, clock, vod_retention_s=3600.0)
    feed = Feed(dvr, clock).start()
    feed.run(60)
    dvr.recorder.end("alpha")
    recording = dvr.catalog.recording("alpha")
    assert recording is not None and recording.ended
    vod = render_dvr_media(recording, "720p", skip=True)
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in vod and vod.endswith("#EXT-X-ENDLIST\n")
    assert "#EXT-X-SKIP" not in vod
    (video,) = dvr.videos("alpha")
    assert video.duration_s == 60 and video.started_at == T0 and not video.live
    assert video.playback_path == f"/hls/alpha/vod/{recording.id}/master.m3u8"

    clock.now += 10
    Feed(dvr, clock).start().run(10)  # a new broadcast: a new recording, later msns
    newest = dvr.catalog.recording("alpha")
    assert newest is not None and newest is not recording and newest.id > recording.next_msn - 1
    assert [v.live for v in dvr.videos("alpha")] == [True, False]

    clock.now += 3600
    dvr = make_dvr(tmp_path, clock, vod_retention_s=3600.0)  # restart: the old VOD expires
    assert [v.id for v in dvr.videos("alpha")] == [str(newest.id)]
    assert not (tmp_path / "alpha" / str(recording.id)).exists()


def test_an_interrupted_recording_older_than_the_window_is_closed_as_a_vod(tmp_path: Path) -> None:
    clock = Clock()
    dvr = make_dvr(tmp_path, clock, window_s=600.0)
    Feed(dvr, clock).start().run(20)
    clock.now += 601
    dvr = make_dvr(tmp_path, clock, window_s=600.0)
    old = dvr.catalog.recording("alpha")
    assert old is not None and old.ended
    Feed(dvr, clock).start().run(2)
    assert dvr.catalog.recording("alpha") is not old
