"""The probe viewer as its own process, so it can watch from inside a namespace behind a link.

`python tests/chaos/probe_child.py URL DURATION_S`: one JSON line per decoded frame,
``{"t": monotonic, "lat": glass-to-glass ms or null}`` (CLOCK_MONOTONIC is the whole machine's,
so the parent compares it with its own), then ``{"report": {...}}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import asdict

from live.selftest.probe import DecodedFrame, probe


def on_frame(frame: DecodedFrame) -> None:
    latency = None if frame.painted_ms is None else round(frame.wallclock * 1000 - frame.painted_ms, 1)
    print(json.dumps({"t": time.monotonic(), "lat": latency}), flush=True)


if __name__ == "__main__":
    report = asyncio.run(probe(sys.argv[1], float(sys.argv[2]), rendition="lowest", on_frame=on_frame))
    print(json.dumps({"report": asdict(report)}), flush=True)
