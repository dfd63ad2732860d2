from __future__ import annotations

import copy

import pytest
import yaml

from twin.calibration.parameters import CalibrationError, parse_calibration, shipped_text


def _raw() -> dict:
    return yaml.safe_load(shipped_text())


def test_every_parameter_names_its_provenance(cal) -> None:
    names = {name for name, _ in cal.sources}
    assert "part_s" in names and "ladder.source" in names
    assert all(source.strip() for _, source in cal.sources)


def test_ladder_is_ordered_highest_first(cal) -> None:
    rates = [r.bitrate_bps for r in cal.ladder]
    assert rates == sorted(rates, reverse=True)


def test_parameter_without_source_is_refused() -> None:
    data = _raw()
    del data["params"]["origin_rtt_s"]["source"]
    with pytest.raises(CalibrationError, match=r"origin_rtt_s\.source"):
        parse_calibration(data)


def test_missing_parameter_is_refused() -> None:
    data = _raw()
    del data["params"]["edge_server_gbps"]
    with pytest.raises(CalibrationError, match="edge_server_gbps"):
        parse_calibration(data)


@pytest.mark.parametrize("bad", [0, -1, "fast", True, float("inf")])
def test_non_positive_or_non_numeric_value_is_refused(bad: object) -> None:
    data = copy.deepcopy(_raw())
    data["params"]["origin_rtt_s"]["value"] = bad
    with pytest.raises(CalibrationError, match=r"origin_rtt_s\.value"):
        parse_calibration(data)
