from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin.scenario.nodes import ScenarioError
from twin.scenario.reader import load_scenario, parse_scenario
from twin.scenario.schema import Scenario

from .conftest import SCENARIOS

REQUIRED = (
    "baseline",
    "peak-100m",
    "viral-spike-5x",
    "viral-spike-10x",
    "region-outage",
    "transcoder-loss",
    "chat-storm",
    "origin-loss",
    "shield-loss",
    "edge-loss",
    "packet-loss",
    "chat-broker-failover",
)
BASELINE = (SCENARIOS / "baseline.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", REQUIRED)
def test_every_required_scenario_is_shipped_and_valid(name: str) -> None:
    sc = load_scenario(SCENARIOS / f"{name}.yaml")
    assert sc.name == name
    assert sc.slos.glass_to_glass_p95_s == 5.0
    assert sc.slos.rebuffer_ratio == 0.01
    assert sc.slos.availability == 0.9995


def test_peak_scenario_states_the_design_scale() -> None:
    sc = load_scenario(SCENARIOS / "peak-100m.yaml")
    assert sc.workload.streamers == 1_000_000
    assert sc.workload.viewers == 100_000_000
    assert sc.workload.top1_share == 0.01
    assert [f.kind for f in sc.faults] == ["viral_spike"]
    assert sc.faults[0].factor == 10 and sc.faults[0].ramp_s <= 60


def _error(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "demo.yaml")
    return info.value


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_unknown_field_is_named_with_its_line() -> None:
    text = BASELINE.replace("  tracers: 100", "  tracers: 100\n  tracerz: 5")
    err = _error(text)
    assert err.field == "workload.tracerz"
    assert err.line == _line_of(text, "tracerz")
    assert str(err).startswith(f"demo.yaml:{err.line}: workload.tracerz: unknown field")


def test_wrong_type_names_field_and_line() -> None:
    text = BASELINE.replace("  viewers: 2000000", "  viewers: lots")
    err = _error(text)
    assert (err.field, err.line) == ("workload.viewers", _line_of(text, "viewers: lots"))


def test_missing_required_field_is_reported() -> None:
    text = BASELINE.replace("  streamers: 20000\n", "")
    assert _error(text).field == "workload.streamers"


def test_fault_referring_to_unknown_region_is_rejected() -> None:
    text = BASELINE.replace(
        "faults: []", "faults:\n  - {kind: region_outage, at_s: 10, region: mars, duration_s: 5}"
    )
    err = _error(text)
    assert err.field == "faults[0].region" and err.line == _line_of(text, "mars")


def test_unknown_fault_kind_lists_the_choices() -> None:
    text = BASELINE.replace("faults: []", "faults:\n  - {kind: meteor, at_s: 10}")
    err = _error(text)
    assert err.field == "faults[0].kind" and "viral_spike" in str(err)


def test_region_shares_must_sum_to_one() -> None:
    text = BASELINE.replace("viewer_share: 0.05", "viewer_share: 0.5")
    assert "sum to 1" in str(_error(text))


def test_fault_after_the_end_is_rejected() -> None:
    text = BASELINE.replace(
        "faults: []", "faults:\n  - {kind: transcoder_loss, at_s: 99999, node_type: gpu, share: 0.1}"
    )
    assert _error(text).field == "faults[0].at_s"


def test_invalid_yaml_names_the_line() -> None:
    err = _error("name: x\nregions: [\n")
    assert err.line >= 2 and "not valid YAML" in str(err)


def test_load_scenario_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BASELINE.replace("step_s: 1", "step_s: -1"), encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"bad\.yaml:\d+: step_s: must be >= 0\.1"):
        load_scenario(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_arbitrary_text_gives_a_scenario_error_never_a_crash(text: str) -> None:
    try:
        parse_scenario(text, "fuzz.yaml")
    except ScenarioError as exc:
        assert exc.source == "fuzz.yaml" and exc.line >= 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutating_one_value_of_a_valid_file_is_either_valid_or_a_located_error(data: st.DataObject) -> None:
    lines = BASELINE.splitlines()
    index = data.draw(
        st.sampled_from([i for i, line in enumerate(lines) if ": " in line and not line.startswith("#")])
    )
    key = lines[index].split(": ", 1)[0]
    value = data.draw(
        st.one_of(
            st.integers(-(10**9), 10**9).map(str),
            st.floats(allow_nan=True, allow_infinity=True).map(repr),
            st.sampled_from(["", "~", "[]", "{}", "yes", "'x'", ".nan", "-.inf", "[1, 2]"]),
        )
    )
    lines[index] = f"{key}: {value}"
    try:
        sc = parse_scenario("\n".join(lines), "mut.yaml")
    except ScenarioError as exc:
        assert 1 <= exc.line <= len(lines) + 1
    else:
        assert isinstance(sc, Scenario)


def test_unreachable_popularity_law_is_a_scenario_error() -> None:
    text = BASELINE.replace(
        "  top_k_share: 0.75", "  top_k_share: 0.02"
    )  # below the uniform share 1000/20000
    err = _error(text)
    assert err.field == "workload.top_k_share" and "unreachable" in str(err)


def test_overlapping_outages_of_one_region_are_rejected() -> None:
    text = BASELINE.replace(
        "faults: []",
        "faults:\n  - {kind: region_outage, at_s: 10, region: eu, duration_s: 100}\n"
        "  - {kind: region_outage, at_s: 50, region: eu, duration_s: 100}",
    )
    err = _error(text)
    assert err.field == "faults[1].at_s" and "overlaps" in str(err)
