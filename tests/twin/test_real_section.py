"""The `real:` section of a scenario: the scaled-down run `loadgen run` performs, `twin validate` checks."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.scenario.nodes import ScenarioError
from twin.scenario.reader import load_scenario, parse_scenario
from twin.scenario.schema import MAX_REAL_EDGES, MAX_REAL_SHIELDS, Bands, RealCdn

from .conftest import SCENARIOS

BASELINE = (SCENARIOS / "baseline.yaml").read_text(encoding="utf-8").split("\nreal:")[0].rstrip("\n") + "\n"

REAL = """real:
  duration_s: 90
  warmup_s: 15
  channels: 2
  ladder: full
  source: {width: 640, height: 360, fps: 30, bitrate_kbps: 1200}
  viewers: 40
  viewer_shares: [0.75, 0.25]
  spawn_rate: 8
  chatters: 10
  chat_messages_per_s: 4
  locust_processes: 2
  faults:
    - {kind: viral_spike, at_s: 40, stream_rank: 1, factor: 5, ramp_s: 30, duration_s: 20}
    - {kind: worker_kill, at_s: 60, stream_rank: 2}
  bands: {throughput: 0.1, latency: 0.3}
"""


def _parse(real: str):
    return parse_scenario(BASELINE + real, "demo.yaml")


def _error(real: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        _parse(real)
    return info.value


def test_a_scenario_without_real_section_has_none() -> None:
    assert parse_scenario(BASELINE, "demo.yaml").real is None


def test_real_section_is_parsed_with_defaults() -> None:
    spec = _parse(REAL).real
    assert spec is not None
    assert (spec.duration_s, spec.warmup_s, spec.channels, spec.ladder) == (90, 15, 2, "full")
    assert (spec.source.width, spec.source.height, spec.source.fps, spec.source.bitrate_kbps) == (
        640,
        360,
        30,
        1200,
    )
    assert spec.viewer_shares == (0.75, 0.25)
    assert [f.kind for f in spec.faults] == ["viral_spike", "worker_kill"]
    assert spec.faults[0].factor == 5 and spec.faults[0].ramp_s == 30
    assert spec.faults[1].stream_rank == 2
    assert spec.bands == Bands(
        throughput=0.1, utilization=0.15, latency=0.3, rebuffer_abs=0.01, hit_ratio_abs=0.03
    )


def test_minimal_real_section_puts_every_viewer_on_channel_one() -> None:
    spec = _parse("real:\n  duration_s: 60\n  viewers: 10\n  channels: 3\n").real
    assert spec is not None and spec.viewer_shares == (1.0, 0.0, 0.0)
    assert spec.bands == Bands()


@pytest.mark.parametrize(
    ("real", "field"),
    [
        ("real:\n  duration_s: 60\n  viewers: 10\n  viewerz: 3\n", "real.viewerz"),
        (
            "real:\n  duration_s: 60\n  viewers: 10\n  channels: 2\n  viewer_shares: [1.0]\n",
            "real.viewer_shares",
        ),
        (
            "real:\n  duration_s: 60\n  viewers: 10\n  channels: 2\n  viewer_shares: [0.5, 0.2]\n",
            "real.viewer_shares",
        ),
        ("real:\n  duration_s: 60\n  viewers: 10\n  ladder: half\n", "real.ladder"),
        (
            "real:\n  duration_s: 60\n  viewers: 10\n  faults:\n"
            "    - {kind: worker_kill, at_s: 10, stream_rank: 2}\n",
            "real.faults[0].stream_rank",
        ),
        (
            "real:\n  duration_s: 60\n  viewers: 10\n  faults:\n    - {kind: worker_kill, at_s: 500}\n",
            "real.faults[0].at_s",
        ),
        (
            "real:\n  duration_s: 60\n  viewers: 10\n  faults:\n    - {kind: meteor, at_s: 5}\n",
            "real.faults[0].kind",
        ),
        ("real:\n  duration_s: 60\n  viewers: 99999\n", "real.viewers"),
        ("real:\n  duration_s: 60\n  viewers: 10\n  source: {width: 641}\n", "real.source"),
        ("real:\n  duration_s: 60\n  viewers: 10\n  bands: {latency: 0}\n", "real.bands.latency"),
    ],
)
def test_bad_real_section_names_field_and_line(real: str, field: str) -> None:
    err = _error(real)
    assert err.field == field
    assert err.line > BASELINE.count("\n")


def test_the_three_shipped_real_scenarios_steady_spike_and_worker_kill() -> None:
    from twin.scenario.reader import load_scenario

    steady = load_scenario(SCENARIOS / "baseline.yaml").real
    spike = load_scenario(SCENARIOS / "viral-spike-5x.yaml").real
    kill = load_scenario(SCENARIOS / "transcoder-loss.yaml").real
    assert steady is not None and spike is not None and kill is not None
    assert steady.faults == ()
    (s,) = spike.faults
    assert (s.kind, s.factor, s.ramp_s) == ("viral_spike", 5, 30)
    (k,) = kill.faults
    assert k.kind == "worker_kill" and spike.warmup_s < k.at_s < kill.warmup_s + kill.duration_s
    for spec in (steady, spike, kill):  # a few minutes each on this machine
        assert spec.warmup_s + spec.duration_s <= 200 and spec.locust_processes == 2


def test_a_cdn_section_puts_shields_and_edges_in_front_of_the_origin() -> None:
    spec = _parse("real:\n  duration_s: 60\n  viewers: 10\n  cdn: {shields: 1, edges: 2}\n").real
    assert spec is not None and spec.cdn == RealCdn(shields=1, edges=2)
    assert _parse("real:\n  duration_s: 60\n  viewers: 10\n").real.cdn is None  # type: ignore[union-attr]
    shipped = load_scenario(SCENARIOS / "cdn-baseline.yaml").real
    assert shipped is not None and shipped.cdn == RealCdn(shields=1, edges=2)


@pytest.mark.parametrize(
    ("cdn", "field", "says"),
    [
        ("cdn: {shields: 1}", "real.cdn.edges", "missing"),
        ("cdn: {edges: 2}", "real.cdn.shields", "missing"),
        ("cdn: {shields: 0, edges: 2}", "real.cdn.shields", ">= 1"),
        ("cdn: {shields: 1, edges: 0}", "real.cdn.edges", ">= 1"),
        (f"cdn: {{shields: {MAX_REAL_SHIELDS + 1}, edges: 2}}", "real.cdn.shields",
         f"<= {MAX_REAL_SHIELDS}"),
        (f"cdn: {{shields: 1, edges: {MAX_REAL_EDGES + 1}}}", "real.cdn.edges", f"<= {MAX_REAL_EDGES}"),
        ("cdn: {shields: 1.5, edges: 2}", "real.cdn.shields", "integer"),
        ("cdn: {shields: true, edges: 2}", "real.cdn.shields", "integer"),
        ("cdn: {shields: 1, edges: 2, regions: 3}", "real.cdn.regions", ""),
        ("cdn: 3", "real.cdn", ""),
    ],
)
def test_a_bad_cdn_section_names_field_and_line(cdn: str, field: str, says: str) -> None:
    err = _error(f"real:\n  duration_s: 60\n  viewers: 10\n  {cdn}\n")
    assert err.field == field
    assert says in str(err)
    assert err.line == BASELINE.count("\n") + 4


@settings(max_examples=60, deadline=None)
@given(
    shields=st.one_of(st.integers(-3, 12), st.floats(allow_nan=True), st.text(max_size=4), st.none()),
    edges=st.one_of(st.integers(-3, 12), st.floats(allow_nan=True), st.text(max_size=4), st.none()),
)
def test_any_cdn_section_parses_to_its_bounds_or_names_the_field(shields: object, edges: object) -> None:
    cdn = json.dumps({"shields": shields, "edges": edges})
    text = f"real:\n  duration_s: 60\n  viewers: 10\n  cdn: {cdn}\n"
    ok = all(
        isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= hi
        for v, hi in ((shields, MAX_REAL_SHIELDS), (edges, MAX_REAL_EDGES))
    )
    if ok:
        spec = _parse(text).real
        assert spec is not None and spec.cdn == RealCdn(int(shields), int(edges))  # type: ignore[call-overload]
    else:
        assert _error(text).field in ("real.cdn.shields", "real.cdn.edges")


def test_a_run_dump_of_the_cdn_section_reads_back() -> None:
    import dataclasses

    from twin.validation.rundir import spec_from_mapping

    for real in ("real:\n  duration_s: 60\n  viewers: 10\n  cdn: {shields: 2, edges: 3}\n",
                 "real:\n  duration_s: 60\n  viewers: 10\n"):
        spec = _parse(real).real
        assert spec is not None
        assert spec_from_mapping(json.loads(json.dumps(dataclasses.asdict(spec))), "run.json") == spec
