"""The pure parts of `loadgen run`: the viewer schedule, channel picking, CPU deltas and the summary."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadgen.measure import CpuDelta, glass_to_glass, quantile, summarize
from loadgen.realrun.launch import RealRunError, check_chat_rate
from loadgen.schedule import Spike, ViewerSchedule, _apportion, pick_channel
from twin.scenario.reader import parse_scenario

SCENARIOS = Path(__file__).parents[2] / "scenarios"
BASE = (SCENARIOS / "baseline.yaml").read_text(encoding="utf-8").split("\nreal:")[0].rstrip("\n") + "\n"


def _spec(real: str):
    spec = parse_scenario(BASE + real, "t.yaml").real
    assert spec is not None
    return spec


@given(total=st.integers(0, 5000), shares=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=16))
def test_apportion_keeps_the_total_and_stays_within_one_of_the_exact_share(
    total: int, shares: list[float]
) -> None:
    if sum(shares) == 0:
        shares = [1.0, *shares[1:]]
    norm = [s / sum(shares) for s in shares]
    counts = _apportion(total, tuple(norm))
    assert sum(counts) == total
    assert all(abs(c - total * s) < 1 + 1e-9 for c, s in zip(counts, norm, strict=True))


def test_spike_ramps_holds_and_returns() -> None:
    spike = Spike(rank=1, at_s=50, ramp_s=30, hold_s=60, factor=5)
    assert [spike.multiplier(t) for t in (0, 49.9, 50, 65, 80, 139.9, 140)] == [1, 1, 1, 3, 5, 5, 1]


def test_schedule_from_the_spike_scenario() -> None:
    spec = _spec(
        "real:\n  duration_s: 150\n  channels: 2\n  viewers: 20\n  viewer_shares: [0.8, 0.2]\n"
        "  faults:\n    - {kind: viral_spike, at_s: 50, factor: 5, ramp_s: 30, duration_s: 60}\n"
    )
    schedule = ViewerSchedule.from_spec(spec)
    assert schedule.base == (16, 4)
    assert schedule.viewers(10) == 20 and schedule.viewers(80) == 84 and schedule.peak_viewers() == 84
    assert schedule.targets(80) == (80.0, 4.0)
    assert ViewerSchedule.from_json(schedule.to_json()) == schedule


@given(targets=st.lists(st.floats(0, 100), min_size=1, max_size=8), u=st.floats(0, 1, exclude_max=True))
def test_pick_channel_only_picks_channels_with_viewers(targets: list[float], u: float) -> None:
    index = pick_channel(tuple(targets), u)
    assert 0 <= index < len(targets)
    if sum(targets) > 0:
        assert targets[index] > 0


def test_cpu_delta_counts_increases_new_processes_and_forgets_dead_ones() -> None:
    cpu = CpuDelta()
    assert cpu.step({"platform": {1: 10.0}, "transcode": {2: 5.0}}) == {
        "platform": 10.0,
        "transcode": 5.0,
        "loadgen": 0.0,
    }
    # the worker (2) was killed and a new one (3) started with 0.25 s of CPU
    assert cpu.step({"platform": {1: 10.5}, "transcode": {3: 0.25}}) == {
        "platform": 0.5,
        "transcode": 0.25,
        "loadgen": 0.0,
    }


def test_quantile_interpolates_like_numpy() -> None:
    assert quantile([], 0.5) is None
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert quantile([0.0, 10.0], 0.95) == pytest.approx(9.5)


def _row(t: float, viewers: int, rps: float, platform: float) -> dict:
    return {
        "t_s": t,
        "dt_s": 1.0,
        "viewers": viewers,
        "origin_rps": rps,
        "held_requests": viewers,
        "chat_deliveries_per_s": 2.0,
        "cpu_platform": platform,
        "cpu_transcode": 0.3,
        "cpu_loadgen": 0.2,
        "transcode_delay_p50_s": 0.01,
        "transcode_delay_p95_s": 0.02,
    }


def test_summary_covers_the_window_only() -> None:
    rows = [_row(t, 10 if t < 20 else 50, 60.0 if t < 20 else 300.0, 0.1) for t in range(1, 40)]
    events = [
        {"t": 1000.0 + 25, "type": "REBUFFER", "name": "stall", "value_ms": 500.0},
        {"t": 1000.0 + 5, "type": "REBUFFER", "name": "stall", "value_ms": 9000.0},  # warm-up: ignored
        {"t": 1000.0 + 30, "type": "STARTUP", "name": "360p30", "value_ms": 800.0},
    ]
    probe = {
        "latency_ms": {"p50": 300.0, "p95": 450.0, "p99": 500.0},
        "playout_latency_ms": {"p50": 700.0, "p95": 700.0, "p99": 710.0},
    }
    m = summarize(rows, events, probe, t0=1000.0, window=(20.0, 40.0))
    assert m["origin_rps"] == 300.0 and m["origin_rps_peak"] == 300.0
    assert m["viewer_seconds"] == 50 * 20
    assert m["rebuffer_ratio"] == pytest.approx(0.5 / (50 * 20))
    assert m["startup_s"]["p50"] == pytest.approx(0.8)
    assert m["glass_to_glass_s"] == {
        "clock": "decode",
        "p50": 0.3,
        "p95": 0.45,
        "p99": 0.5,
        "playout_p50": 0.7,
        "playout_p95": 0.7,
        "playout_p99": 0.71,
    }
    with pytest.raises(ValueError, match="window"):
        summarize(rows, events, probe, t0=1000.0, window=(100.0, 200.0))
    assert glass_to_glass(None)["p50"] is None


def test_a_chat_load_over_the_platform_rate_limit_is_refused_up_front() -> None:
    ok = _spec("real:\n  duration_s: 60\n  viewers: 5\n  chatters: 12\n  chat_messages_per_s: 2.5\n")
    check_chat_rate(ok)
    too_fast = _spec("real:\n  duration_s: 60\n  viewers: 5\n  chatters: 12\n  chat_messages_per_s: 6\n")
    with pytest.raises(RealRunError, match="chat_messages_per_s"):
        check_chat_rate(too_fast)
