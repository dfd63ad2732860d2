"""`twin validate`: the comparison marks metrics in and out of band, and a mis-calibrated twin fails."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import yaml

from twin.calibration.parameters import Calibration, shipped_text
from twin.cli import main
from twin.scenario.schema import Bands
from twin.validation.checks import all_in_band, check, compare, format_table

from .twin_runs import real_spec, scenario_text, write_twin_run


@pytest.mark.parametrize(
    ("predicted", "measured", "band", "ok"),
    [
        (115.0, 100.0, 0.15, True),
        (115.1, 100.0, 0.15, False),
        (85.0, 100.0, 0.15, True),
        (84.9, 100.0, 0.15, False),
        (0.0, 0.0, 0.15, True),
        (0.1, 0.0, 0.15, False),
    ],
)
def test_relative_band_is_inclusive_and_symmetric(
    predicted: float, measured: float, band: float, ok: bool
) -> None:
    c = check("x", predicted, measured, band, absolute=False)
    assert c.ok is ok


def test_rebuffer_band_is_absolute() -> None:
    # 0.009 vs 0.001 is +800 % relative, but within 0.01 absolute
    assert check("rebuffer ratio", 0.009, 0.001, 0.01, absolute=True).ok
    c = check("rebuffer ratio", 0.025, 0.001, 0.01, absolute=True)
    assert not c.ok and c.error == pytest.approx(0.024)


def test_an_unmeasured_or_unpredicted_metric_is_out_of_band() -> None:
    assert not check("x", 1.0, math.nan, 0.5, absolute=False).ok
    assert check("x", 1.0, math.nan, 0.5, absolute=False).note == "not measured"
    assert not check("x", math.nan, 1.0, 0.5, absolute=False).ok


def test_compare_uses_each_metrics_band_kind() -> None:
    measured = {
        "origin_rps": 100.0,
        "cpu_cores": {"platform": 0.5, "transcode": 1.0},
        "glass_to_glass_s": {"p50": 1.0, "p95": 2.0},
        "rebuffer_ratio": 0.0,
    }
    predicted = {
        "origin_rps": 112.0,  # +12 %: in the throughput band 0.15
        "cpu_cores": {"platform": 0.56, "transcode": 1.2},  # +12 % in, +20 % out of utilization 0.15
        "glass_to_glass_s": {"p50": 1.2, "p95": 2.6},  # +20 % in, +30 % out of latency 0.25
        "rebuffer_ratio": 0.005,  # 0.005 absolute: in
    }
    checks = compare(predicted, measured, Bands())
    verdicts = {c.metric: c.ok for c in checks}
    assert verdicts == {
        "origin requests/s": True,
        "CPU platform (cores)": True,
        "CPU transcode (cores)": False,
        "glass-to-glass p50 (s)": True,
        "glass-to-glass p95 (s)": False,
        "rebuffer ratio": True,
    }
    assert not all_in_band(checks)
    text = format_table(checks)
    assert "+20.0 %" in text and "OUT" in text and "+0.0050 abs" in text


def _scenario(tmp_path: Path) -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text(scenario_text(), encoding="utf-8")
    return path


def _calibration_file(tmp_path: Path, name: str, **scale: float) -> Path:
    data = yaml.safe_load(shipped_text())
    for key, factor in scale.items():
        data["params"][key]["value"] *= factor
        data["params"][key]["source"] = f"test: deliberately x{factor:g}"
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_correct_twin_is_in_band_and_a_miscalibrated_twin_is_reported_out_of_band(
    cal: Calibration, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = write_twin_run(tmp_path / "run", real_spec(), cal, seed=11)  # the "measurement"
    scenario = _scenario(tmp_path)
    good = tmp_path / "good"
    assert main(["validate", str(scenario), "--run", str(run), "--out", str(good)]) == 0
    out = capsys.readouterr().out
    assert "every metric in band" in out and "OUT" not in out
    result = json.loads((good / "validation.json").read_text())
    assert result["all_in_band"] and len(result["checks"]) == 6
    assert result["clock"] == "playout" and result["run_id"] == "twin-run"
    html = (good / "validation.html").read_text()
    assert "CPU platform (cores)" in html and "data:image/png;base64," in html
    assert (good / "predicted_timeseries.csv").is_file() and (good / "validation.txt").is_file()

    wrong = _calibration_file(tmp_path, "wrong.yaml", origin_cpu_s_per_request=3.0)
    bad = tmp_path / "bad"
    assert (
        main(["validate", str(scenario), "--run", str(run), "--calibration", str(wrong), "--out", str(bad)])
        == 1
    )
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("CPU platform"))
    assert line.rstrip().endswith("OUT")
    assert "OUT OF BAND" in out
    checks = {c["metric"]: c for c in json.loads((bad / "validation.json").read_text())["checks"]}
    assert checks["CPU platform (cores)"]["error"] > 0.15
    assert checks["origin requests/s"]["in_band"]  # the load itself is still predicted right


def test_a_twin_with_slow_transcoding_misses_latency_and_transcode_cpu(
    cal: Calibration, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = write_twin_run(tmp_path / "run", real_spec(), cal, seed=11)
    wrong = _calibration_file(tmp_path, "slow.yaml", transcode_latency_s=4.0, transcode_core_s_per_mpixel=2.0)
    assert (
        main(
            [
                "validate",
                str(_scenario(tmp_path)),
                "--run",
                str(run),
                "--calibration",
                str(wrong),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 1
    )
    checks = {c["metric"]: c for c in json.loads((tmp_path / "o" / "validation.json").read_text())["checks"]}
    assert not checks["CPU transcode (cores)"]["in_band"]
    assert not checks["glass-to-glass p50 (s)"]["in_band"]
    capsys.readouterr()


def test_validate_refuses_bad_input_with_exit_2(
    cal: Calibration, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_real = tmp_path / "plain.yaml"
    no_real.write_text(scenario_text(real=""), encoding="utf-8")
    assert main(["validate", str(no_real), "--run", str(tmp_path)]) == 2
    assert "has no real: section" in capsys.readouterr().err
    assert main(["validate", str(_scenario(tmp_path)), "--run", str(tmp_path / "nowhere")]) == 2
    assert "not a directory" in capsys.readouterr().err
    # a run of another real: section is not a run of this scenario
    other = dataclasses.replace(real_spec(), viewers=7)
    run = write_twin_run(tmp_path / "other", other, cal)
    assert main(["validate", str(_scenario(tmp_path)), "--run", str(run), "--out", str(tmp_path / "o")]) == 2
    assert "different real: section" in capsys.readouterr().err


def test_validate_help_names_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("validate", "calibrate"):
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0
    out = capsys.readouterr().out
    assert "Exit 0: every metric in band; 1: one or more out of band" in " ".join(out.split())


def test_validate_without_run_performs_loadgen_run_in_a_child_and_validates_its_directory(
    cal: Calibration, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess
    import sys

    scenario = _scenario(tmp_path)
    out = tmp_path / "validate"
    calls: list[list[str]] = []

    def fake_loadgen_run(argv: list[str], check: bool) -> subprocess.CompletedProcess[bytes]:
        calls.append(argv)
        write_twin_run(Path(argv[argv.index("--out") + 1]), real_spec(), cal, seed=11)
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr("twin.cli.subprocess.run", fake_loadgen_run)
    assert main(["validate", str(scenario), "--out", str(out), "--seed", "11"]) == 0
    assert calls == [
        [
            sys.executable,
            "-m",
            "loadgen.cli",
            "run",
            str(scenario),
            "--out",
            str(out / "real"),
            "--seed",
            "11",
        ]
    ]
    assert "every metric in band" in capsys.readouterr().out
    assert (out / "validation.html").is_file()

    def failed_run(argv: list[str], check: bool) -> subprocess.CompletedProcess[bytes]:
        return subprocess.CompletedProcess(argv, 1)

    monkeypatch.setattr("twin.cli.subprocess.run", failed_run)
    assert main(["validate", str(scenario), "--out", str(tmp_path / "again")]) == 2
    assert "loadgen run` exited with status 1" in capsys.readouterr().err


def test_twin_imports_neither_loadgen_nor_reports_outside_its_cli() -> None:
    import ast

    root = Path(__file__).parents[2] / "twin"
    for path in root.rglob("*.py"):
        if path == root / "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            assert not [n for n in names if n.split(".")[0] in ("loadgen", "reports")], path
