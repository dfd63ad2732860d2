"""The browser's clock reader (clockcode.js) reads what the Python painter paints, at any scale,
and refuses what it cannot read: the browser test's glass-to-glass rests on it."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

try:  # the painter is moving from loadgen to live.selftest (issue 12); either is the same module
    from live.selftest import clockcode  # type: ignore[import-not-found,unused-ignore]
except ImportError:
    from loadgen import clockcode  # type: ignore[no-redef,unused-ignore]

READER = Path(__file__).with_name("clockcode.js")
NOW_MS = 1_795_000_000_000

_NODE_READ = """
const fs = require('node:fs');
const reader = require(process.argv[1]);
const frames = JSON.parse(fs.readFileSync(0, 'utf8'));
const out = frames.map((f) => reader.read(Buffer.from(f.rgba, 'base64'), f.width, f.height, 4));
process.stdout.write(JSON.stringify(out));
"""


def _node_read(frames: list[np.ndarray]) -> list[int | None]:
    if shutil.which("node") is None:
        pytest.skip("needs Node.js")
    payload = []
    for rgb in frames:
        height, width = rgb.shape[:2]
        rgba = np.concatenate([rgb, np.full((height, width, 1), 255, np.uint8)], axis=-1)
        payload.append({"width": width, "height": height,
                        "rgba": base64.b64encode(rgba.tobytes()).decode()})
    done = subprocess.run(["node", "-e", _NODE_READ, str(READER)], input=json.dumps(payload),
                          capture_output=True, text=True, check=True, timeout=60)
    result: list[int | None] = json.loads(done.stdout)
    return result


def _picture(width: int, height: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = (xx * 3 + yy * 2 + seed * 17) % 256
    rgb = np.stack([base, (base * 7) % 256, 255 - base], axis=-1).astype(np.int16)
    rgb += rng.integers(-30, 30, size=rgb.shape, dtype=np.int16)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _scaled(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    return frame.reformat(width, height, "yuv420p").to_ndarray(format="rgb24")  # type: ignore[no-any-return]


def test_the_js_reader_reads_the_python_painted_clock_at_every_rung_size() -> None:
    stamps = [NOW_MS + 37 * i for i in range(12)] + [0, clockcode.MAX_MS]
    frames, expected = [], []
    for i, ms in enumerate(stamps):
        painted = clockcode.paint(_picture(1280, 720, i), ms)
        for width, height in ((1280, 720), (854, 480), (640, 360), (284, 160), (208, 117)):
            frames.append(painted if width == 1280 else _scaled(painted, width, height))
            expected.append(ms)
    assert _node_read(frames) == expected


def test_the_js_reader_agrees_with_the_python_reader_and_never_invents_a_time() -> None:
    blank = [_picture(640, 360, seed) for seed in range(5)]
    damaged = clockcode.paint(_picture(640, 360, 9), NOW_MS)
    damaged[:, 300:340] = 128  # a smear across the data cells
    frames = [*blank, damaged, np.zeros((20, 20, 3), np.uint8)]
    js = _node_read(frames)
    assert js[:-1] == [clockcode.read(f.mean(axis=-1).astype(np.uint8)) for f in frames[:-1]]
    assert all(value is None for value in js)
