"""The DVR window over 4 h 10 min of a full ladder, on a simulated clock: exact retention, the
byte cap, a delta update of a few kilobytes, and memory that stays flat once the window is full."""

from __future__ import annotations

import logging
import tracemalloc
from pathlib import Path

import pytest
from live.dvr.playlists import render_dvr_media

from .conftest import LADDER, Clock, Feed, make_dvr

WINDOW_S = 4 * 3600.0


def files_on_disk(root: Path) -> int:
    return sum(1 for path in root.rglob("*.m4s"))


@pytest.mark.slow
def test_four_hours_ten_minutes_of_a_full_ladder_keep_exactly_the_four_hour_window(
        tmp_path: Path) -> None:
    clock = Clock()
    dvr = make_dvr(tmp_path, clock, window_s=WINDOW_S)
    feed = Feed(dvr, clock).start()
    tracemalloc.start()  # from the start: an object made before it would look new when replaced
    try:
        feed.run(WINDOW_S)
        filled, _ = tracemalloc.get_traced_memory()
        feed.run(10 * 60)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    recording = dvr.catalog.recording("alpha")
    assert recording is not None
    assert set(recording.tracks) == {init.rendition for init in LADDER}
    for track in recording.tracks.values():
        assert track.duration_s == pytest.approx(WINDOW_S)
        assert len(track.segments) == WINDOW_S / 2
        assert track.segments[-1].msn == recording.id + feed.msn - 1
    # every rung evicted in step, and the disk holds exactly what the index lists
    assert len({track.segments[0].msn for track in recording.tracks.values()}) == 1
    assert files_on_disk(tmp_path) == len(LADDER) * WINDOW_S / 2
    # the index was compacted on the way: it is about the window's size, not the 4 h 10 min fed
    index_lines = (tmp_path / "alpha" / str(recording.id) / "index.jsonl").read_text().count("\n")
    assert index_lines < 1.5 * len(LADDER) * WINDOW_S / 2

    full = render_dvr_media(recording, "720p")
    delta = render_dvr_media(recording, "720p", skip=True)
    assert full.count("#EXTINF") == WINDOW_S / 2
    assert "#EXT-X-SKIP:SKIPPED-SEGMENTS=" in delta
    assert len(delta.encode()) < 16 * 1024, len(delta)
    print(f"4 h DVR playlist: full {len(full)} B, delta {len(delta)} B; traced memory at 4 h "
          f"{filled} B, at 4 h 10 min {after} B")
    # memory: no media is held, and ten more minutes with a full window add nothing
    assert not dvr.recorder._streams["alpha"].open
    assert after - filled < 256 * 1024, (filled, after)


@pytest.mark.slow
def test_the_byte_cap_shrinks_the_window_with_a_warning_instead_of_filling_the_disk(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    per_segment = 6 * 300
    cap = int(per_segment * 3600 / 2)  # one hour of the ladder
    dvr = make_dvr(tmp_path, clock, window_s=WINDOW_S, max_bytes=cap)
    feed = Feed(dvr, clock).start()
    with caplog.at_level(logging.WARNING, logger="live.dvr"):
        feed.run(2 * 3600)
    recording = dvr.catalog.recording("alpha")
    assert recording is not None
    assert recording.nbytes <= cap
    assert recording.duration_s == pytest.approx(3600, abs=2)
    assert sum(path.stat().st_size for path in tmp_path.rglob("*.m4s")) <= cap
    warnings = [r.getMessage() for r in caplog.records if "--dvr-max-bytes" in r.getMessage()]
    assert warnings and "holds only" in warnings[0]
    assert len(warnings) <= 2 * 3600 / 600  # rate-limited, not one per segment
