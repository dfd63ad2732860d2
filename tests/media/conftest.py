"""Real media made by Debian's ffmpeg CLI, shared by the media tests (made once per session)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Clip:
    name: str
    width: int
    height: int
    sample_rate: int
    channels: int
    args: tuple[str, ...]
    fmt: str = "flv"


def _lavfi(size: str, rate: int, sample_rate: int, seconds: float) -> tuple[str, ...]:
    return (
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}",
        "-f", "lavfi", "-i", f"sine=f=440:sample_rate={sample_rate}",
        "-t", str(seconds),
    )  # fmt: skip


CLIPS = {
    clip.name: clip
    for clip in (
        Clip("360p_high_bframes", 640, 360, 48000, 1,
             (*_lavfi("640x360", 30, 48000, 3), "-c:v", "libx264", "-g", "60", "-bf", "2",
              "-c:a", "aac")),
        Clip("480p_odd_width_stereo", 854, 480, 44100, 2,
             (*_lavfi("854x480", 25, 44100, 3), "-c:v", "libx264", "-g", "50", "-bf", "3",
              "-c:a", "aac", "-ac", "2")),
        Clip("1080p_cropped", 1920, 1080, 48000, 2,
             (*_lavfi("1920x1080", 30, 48000, 1), "-c:v", "libx264", "-preset", "veryfast",
              "-g", "15", "-bf", "2", "-c:a", "aac", "-ac", "2")),
        Clip("baseline_22k", 320, 240, 22050, 1,
             (*_lavfi("320x240", 15, 22050, 2), "-c:v", "libx264", "-profile:v", "baseline",
              "-g", "15", "-c:a", "aac")),
        Clip("high444_cif", 352, 288, 32000, 2,
             (*_lavfi("352x288", 30, 32000, 2), "-c:v", "libx264", "-pix_fmt", "yuv444p",
              "-bf", "2", "-c:a", "aac", "-ac", "2")),
        Clip("interlaced_1080i", 1920, 1080, 48000, 1,
             (*_lavfi("1920x1080", 25, 48000, 1), "-c:v", "libx264", "-preset", "veryfast",
              "-x264-params", "interlaced=1", "-bf", "2", "-c:a", "aac")),
    )
}  # fmt: skip


def _ffmpeg(out: Path, args: tuple[str, ...], fmt: str) -> Path:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.fail("Debian's ffmpeg CLI is required for the media tests (apt-get install ffmpeg)")
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args, "-f", fmt, str(out)],
        check=True,
        timeout=120,
    )
    return out


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def make_clip(media_dir: Path):  # type: ignore[no-untyped-def]
    made: dict[str, Path] = {}

    def make(name: str) -> Path:
        if name not in made:
            clip = CLIPS[name]
            made[name] = _ffmpeg(media_dir / f"{name}.{clip.fmt}", clip.args, clip.fmt)
        return made[name]

    return make


@pytest.fixture(scope="session")
def flv_360p(make_clip) -> Path:  # type: ignore[no-untyped-def]
    path: Path = make_clip("360p_high_bframes")
    return path


@pytest.fixture(scope="session")
def hevc_mp4(media_dir: Path) -> Path:
    """H.265 in MP4 (libx265, B-frames): its hvcC and length-prefixed frames feed the
    Enhanced RTMP tests, since Debian's ffmpeg 5.1 cannot write enhanced FLV."""
    return _ffmpeg(
        media_dir / "hevc.mp4",
        ("-f", "lavfi", "-i", "testsrc2=size=854x480:rate=25", "-t", "1", "-c:v", "libx265",
         "-x265-params", "log-level=error:bframes=2:keyint=25", "-tag:v", "hvc1"),
        "mp4",
    )  # fmt: skip


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test asking for ``clip`` runs once per ffmpeg clip in CLIPS."""
    if "clip" in metafunc.fixturenames:
        metafunc.parametrize("clip", list(CLIPS.values()), ids=list(CLIPS))


@pytest.fixture(scope="session")
def run_ffmpeg(media_dir: Path):  # type: ignore[no-untyped-def]
    """``run_ffmpeg(name, args, fmt)``: run the ffmpeg CLI into a session file, return its path."""

    def run(name: str, args: tuple[str, ...], fmt: str) -> Path:
        out = media_dir / name
        return out if out.exists() else _ffmpeg(out, args, fmt)

    return run
