"""Real H.264 sources for the transcode tests, made once per session with Debian's ffmpeg."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Maker = Callable[..., Path]


def _make(directory: Path, name: str, args: list[str]) -> Path:
    path = directory / name
    if not path.exists():
        subprocess.run(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args, str(path)],
            check=True,
            timeout=120,
        )
    return path


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("ffmpeg") is None:
        pytest.fail("Debian's ffmpeg CLI is required to make the test media (apt-get install ffmpeg)")
    return tmp_path_factory.mktemp("transcode-media")


def h264_args(width: int, height: int, fps: int, seconds: float, *, bframes: int) -> list[str]:
    return [
        "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}",
        "-t", str(seconds), "-pix_fmt", "yuv420p",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", str(fps),
        "-bf", str(bframes), "-x264-params", f"bframes={bframes}",
    ]  # fmt: skip


@pytest.fixture(scope="session")
def source_720p30(media_dir: Path) -> Path:
    """1280x720 at 30 fps, 3 s, with B-frames (so source DTS != PTS), no audio."""
    return _make(media_dir, "720p30.mp4", h264_args(1280, 720, 30, 3, bframes=2))


@pytest.fixture(scope="session")
def source_360p30_av(media_dir: Path) -> Path:
    """640x360 at 30 fps, 3 s, AAC-LC stereo audio."""
    return _make(
        media_dir,
        "360p30-av.mp4",
        [
            *h264_args(640, 360, 30, 3, bframes=0)[:4],
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            *h264_args(640, 360, 30, 3, bframes=0)[4:],
            "-c:a", "aac", "-b:a", "96k", "-ac", "2",
        ],
    )  # fmt: skip


@pytest.fixture(scope="session")
def source_360p60(media_dir: Path) -> Path:
    """640x360 at 60 fps, 2 s: exercises frame-rate reduction on lower rungs."""
    return _make(media_dir, "360p60.mp4", h264_args(640, 360, 60, 2, bframes=0))


@pytest.fixture(scope="session")
def source_aac_main(media_dir: Path) -> Path:
    """240p video with AAC Main audio (object type 1): not AAC-LC, so it must be transcoded."""
    return _make(
        media_dir,
        "aac-main.mp4",
        [
            *h264_args(426, 240, 30, 2, bframes=0)[:4],
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
            *h264_args(426, 240, 30, 2, bframes=0)[4:],
            "-c:a", "aac", "-profile:a", "aac_main", "-b:a", "96k", "-ac", "2",
        ],
    )  # fmt: skip
