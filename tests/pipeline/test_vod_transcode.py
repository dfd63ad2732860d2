"""`live transcode`: a file through the live transcode+package path into a static LL-HLS tree."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import av
import m3u8
import pytest
from live.vod import transcode_file

pytestmark = [pytest.mark.slow, pytest.mark.ffmpeg,
              pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs Debian's ffmpeg")]

FRAMES = 120  # 4 s at 30 fps


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MP4 with B-frames and AAC priming, so the file starts at a negative DTS."""
    path = tmp_path_factory.mktemp("src") / "in.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
         "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", str(FRAMES / 30),
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-bf", "2",
         "-c:a", "aac", str(path)], check=True)
    return path


def decode(playlist: Path) -> tuple[list[int], list[int], int, tuple[int, int]]:
    """(every video PTS in ms, keyframe PTS in ms, audio frames, size) decoded through the playlist."""
    with av.open(str(playlist)) as container:
        video = container.streams.video[0]
        pts: list[int] = []
        keys: list[int] = []
        audio = 0
        size = (video.codec_context.width, video.codec_context.height)
        for packet in container.demux():
            if packet.size == 0:
                continue
            if packet.stream.type == "video":
                ms = int(packet.pts * packet.time_base * 1000)
                pts.append(ms)
                if packet.is_keyframe:
                    keys.append(ms)
                packet.decode()
            else:
                audio += 1
    return sorted(pts), keys, audio, size


def test_a_file_becomes_an_aligned_ll_hls_ladder_with_every_frame(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "vod"
    result = transcode_file(source, out)
    assert set(result.renditions) >= {"360p30", "160p30"}
    assert result.source_frames == FRAMES
    master = m3u8.load(str(out / "master.m3u8"))
    listed = {p.uri for p in master.playlists}
    assert listed == {f"{name}.m3u8" for name in result.renditions}
    keyframe_sets = []
    for name in result.renditions:
        media = m3u8.load(str(out / f"{name}.m3u8"))
        assert media.is_endlist
        assert all(round(seg.duration) <= media.target_duration for seg in media.segments)
        pts, keys, audio, size = decode(out / f"{name}.m3u8")
        assert len(pts) == FRAMES and len(set(pts)) == FRAMES
        assert audio >= FRAMES / 30 * 48000 / 1024 - 2
        if name == "source":  # passthrough: the publisher's own IDRs and size
            assert size == (640, 360)
            continue
        assert size[1] == int(name.split("p")[0])
        keyframe_sets.append(keys)
    # every encoded rung has its IDRs at identical PTS, the first frame and the 2 s grid
    assert len(keyframe_sets) >= 2
    assert all(keys == keyframe_sets[0] for keys in keyframe_sets)
    assert keyframe_sets[0][0] == pts[0]
    assert all(k % 2000 < 34 for k in keyframe_sets[0][1:])


def test_the_cli_reports_a_missing_input_clearly(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "live.cli", "transcode", str(tmp_path / "nope.mp4"),
                          "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert run.returncode == 2
    assert "no such file" in run.stderr


def test_the_cli_refuses_a_file_without_video(tmp_path: Path) -> None:
    audio_only = tmp_path / "a.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine", "-t", "1",
                    "-c:a", "aac", str(audio_only)], check=True)
    run = subprocess.run([sys.executable, "-m", "live.cli", "transcode", str(audio_only),
                          "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
