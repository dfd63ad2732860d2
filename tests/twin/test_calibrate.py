"""`twin calibrate`: the fit recovers known costs, keeps what it cannot identify, writes provenance."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.calibration.fit import fit_costs, nnls
from twin.calibration.parameters import Calibration, load_calibration
from twin.cli import main
from twin.validation.rundir import run_dir_hash

from .twin_runs import real_spec, write_twin_run


@settings(max_examples=40, deadline=None)
@given(
    idle=st.floats(0.01, 0.5),
    per_request=st.floats(1e-5, 5e-3),
    per_delivery=st.floats(1e-6, 1e-3),
    noise=st.floats(0.0, 0.01),
    seed=st.integers(0, 2**32 - 1),
)
def test_fit_recovers_known_coefficients_from_noisy_rows(
    idle: float, per_request: float, per_delivery: float, noise: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    n = 200
    rps = rng.uniform(10, 600, n)
    deliveries = rng.uniform(0, 400, n)
    y_true = idle + per_request * rps + per_delivery * deliveries
    y = y_true + rng.normal(0.0, noise, n)
    cols = {"idle": np.ones(n), "per_request": rps, "per_delivery": deliveries}
    fit = fit_costs(cols, y, {"idle": 1.0, "per_request": 1.0, "per_delivery": 1.0})
    # the recovered model explains the rows to within the noise
    assert (
        np.sqrt(np.mean((sum(fit.coef[k] * cols[k] for k in cols) - y_true) ** 2))
        <= 3 * noise / np.sqrt(n / 4) + 1e-9
    )
    assert fit.coef["per_request"] == pytest.approx(per_request, abs=6 * noise / 590 / np.sqrt(n / 12) + 1e-9)
    if 20 * noise < min(per_request * rps.std(), per_delivery * deliveries.std()):
        # every term well above the noise: all three are fitted, each within a few standard errors
        assert set(fit.fitted) == {"idle", "per_request", "per_delivery"}
        assert fit.coef["per_delivery"] == pytest.approx(
            per_delivery, abs=6 * noise / deliveries.std() / np.sqrt(n) + 1e-12
        )
        assert fit.r2 > 0.99


def test_constant_and_proportional_regressors_keep_their_base_value_and_say_why() -> None:
    rng = np.random.default_rng(1)
    n = 100
    rps = rng.uniform(10, 600, n)
    cols = {
        "idle": np.ones(n),
        "per_request": rps,
        "per_delivery": np.full(n, 40.0),  # chat load constant in every row
        "held": rps / 6.0,  # held requests proportional to requests
        "zero": np.zeros(n),
    }
    y = 0.05 + 0.001 * rps + 1e-4 * 40.0 + 0.123 * rps / 6.0
    base = {"idle": 9.0, "per_request": 9.0, "per_delivery": 1e-4, "held": 0.123, "zero": 0.5}
    fit = fit_costs(cols, y, base)
    assert fit.fitted == ("idle", "per_request")
    assert fit.coef["per_delivery"] == 1e-4 and "did not vary" in fit.kept["per_delivery"]
    assert fit.coef["held"] == 0.123 and "follows the others" in fit.kept["held"]
    assert "zero in every row" in fit.kept["zero"]
    # the kept contributions are taken out before the rest is fitted
    assert fit.coef["idle"] == pytest.approx(0.05) and fit.coef["per_request"] == pytest.approx(0.001)
    assert fit.r2 == pytest.approx(1.0)


def test_a_cost_that_fits_negative_is_held_at_its_base_not_written_as_zero() -> None:
    rng = np.random.default_rng(2)
    n = 80
    a, b = rng.uniform(0, 10, n), rng.uniform(0, 10, n)
    y = 4.0 + 0.5 * a - 0.3 * b
    fit = fit_costs({"idle": np.ones(n), "a": a, "b": b}, y, {"idle": 1.0, "a": 1.0, "b": 0.01})
    assert "b" not in fit.fitted and fit.coef["b"] == 0.0 and "bound 0" in fit.kept["b"]
    assert set(fit.fitted) == {"idle", "a"}


def test_nnls_matches_least_squares_when_unconstrained_and_never_goes_negative() -> None:
    rng = np.random.default_rng(3)
    a = rng.uniform(0, 1, (50, 3))
    y = a @ np.array([1.0, 2.0, 3.0])
    assert nnls(a, y) == pytest.approx([1.0, 2.0, 3.0])
    assert np.all(nnls(a, a @ np.array([1.0, -2.0, 3.0])) >= 0.0)


def _true_costs(cal: Calibration) -> Calibration:
    return dataclasses.replace(
        cal,
        origin_cpu_s_per_request=0.0003,  # near what the real runs measure: the platform stays below a core
        platform_idle_cores=0.07,
        transcode_core_s_per_mpixel=0.013,
        transcode_latency_s=0.3,
        publisher_encode_s=0.25,
    )


def test_calibrate_recovers_the_costs_of_a_known_twin_and_writes_a_loadable_file(
    cal: Calibration, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = _true_costs(cal)
    run = write_twin_run(tmp_path / "run-a", real_spec(), truth, run_id="run-a")
    out = tmp_path / "cal.yaml"
    assert main(["calibrate", str(run), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "cpu_platform: R^2" in text and "base kept" in text
    fitted = load_calibration(out)
    assert fitted.origin_cpu_s_per_request == pytest.approx(truth.origin_cpu_s_per_request, rel=0.02)
    assert fitted.transcode_core_s_per_mpixel == pytest.approx(0.013, rel=0.01)
    assert fitted.transcode_latency_s == pytest.approx(0.3)
    assert fitted.publisher_encode_s == pytest.approx(0.25, abs=0.05)
    # chat and ingest load never varied in the run: not identifiable, base and source kept
    assert fitted.chat_cpu_s_per_delivery == cal.chat_cpu_s_per_delivery
    assert fitted.source_of("chat_cpu_s_per_delivery") == cal.source_of("chat_cpu_s_per_delivery")
    source = fitted.source_of("origin_cpu_s_per_request")
    assert source.startswith("measured: twin calibrate run-a on testbox, twin, 2 CPUs")
    assert "command: twin calibrate" in source and "R^2" in source
    assert f"run directories sha256 run-a={run_dir_hash(run)[:16]}" in source
    assert fitted.source_of("origin_rps_per_server").startswith("derived:")
    raw = yaml.safe_load(out.read_text())
    assert raw["params"]["origin_cpu_s_per_request"]["unit"] == "core-s/request"


def test_calibrate_refuses_a_directory_that_is_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["calibrate", str(tmp_path), "--out", str(tmp_path / "c.yaml")]) == 2
    assert "run.json: missing" in capsys.readouterr().err
    assert not (tmp_path / "c.yaml").exists()


def test_calibrate_names_a_bad_timeseries_cell(
    cal: Calibration, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = write_twin_run(tmp_path / "r", real_spec(), cal)
    lines = (run / "timeseries.csv").read_text().splitlines()
    lines[3] = lines[3].replace(lines[3].split(",")[3], "fast", 1)
    (run / "timeseries.csv").write_text("\n".join(lines) + "\n")
    assert main(["calibrate", str(run), "--out", str(tmp_path / "c.yaml")]) == 2
    assert "timeseries.csv:4: origin_rps: not a number: 'fast'" in capsys.readouterr().err


def test_a_latency_residual_below_the_publisher_floor_lowers_the_assumed_decode_share(
    cal: Calibration, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real runs measure less glass-to-glass than the twin's assumed parts add up to even with
    the publisher at zero; the fit then takes the rest from the probe's assumed decode time."""
    truth = dataclasses.replace(
        _true_costs(cal), publisher_encode_s=0.005, display_s=0.02, transcode_latency_s=0.004
    )
    run = write_twin_run(tmp_path / "run-b", real_spec(), truth, clock="decode", run_id="run-b")
    out = tmp_path / "cal.yaml"
    assert main(["calibrate", str(run), "--out", str(out)]) == 0
    assert "display_s lowered" in capsys.readouterr().out
    fitted = load_calibration(out)
    assert fitted.publisher_encode_s == pytest.approx(0.005)
    assert fitted.display_s == pytest.approx(0.02, abs=0.01)
    assert fitted.source_of("display_s").startswith("measured: twin calibrate run-b")
