from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from twin.cli import main

from .conftest import SCENARIOS


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["compare", "--help"], ["plan", "--help"]])
def test_every_command_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert "usage: twin" in capsys.readouterr().out


def _tiny(tmp_path: Path, name: str, **changes: object) -> Path:
    data = yaml.safe_load((SCENARIOS / "viral-spike-10x.yaml").read_text(encoding="utf-8"))
    data.update(name=name, duration_s=400)
    data["workload"]["tracers"] = 4
    data["faults"][1]["at_s"] = 350  # the ad break, moved inside the shortened run
    data.update(changes)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_run_writes_tables_summary_and_report_then_compare_sets_them_side_by_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    assert main(["run", str(_tiny(tmp_path, "tiny")), "--out", str(a_dir), "--seed", "5", "--quiet"]) == 0
    for name in ("timeseries.csv", "latency.csv", "tiers.csv", "summary.json", "timing.json", "report.html"):
        assert (a_dir / name).is_file(), name
    summary = json.loads((a_dir / "summary.json").read_text())
    assert {s["slo"] for s in summary["slos"]} == {
        "glass_to_glass_p95_s",
        "rebuffer_ratio",
        "availability",
        "chat_delay_p99_s",
    }
    assert summary["peak_egress_tbps"] > 0 and summary["cost"]["per_viewer_hour_usd"] > 0
    report = (a_dir / "report.html").read_text()
    assert report.count("data:image/png;base64,") == 9
    out = capsys.readouterr().out
    for slo in summary["slos"]:  # one line per SLO, with the verdict summary.json holds
        assert f"{'PASS' if slo['pass'] else 'FAIL'}  {slo['slo']}: measured" in out, slo["slo"]
    assert (
        main(["run", str(_tiny(tmp_path, "tiny2", faults=[])), "--out", str(b_dir), "--quiet", "--no-report"])
        == 0
    )
    capsys.readouterr()
    assert main(["compare", str(a_dir), str(b_dir), "--html", str(tmp_path / "cmp.html")]) == 0
    text = capsys.readouterr().out
    assert "A: tiny (seed 5)" in text and "B: tiny2 (seed 1)" in text and "peak origin rps" in text
    assert (tmp_path / "cmp.html").is_file()


def test_bad_scenario_exits_2_naming_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.yaml"
    text = (SCENARIOS / "baseline.yaml").read_text().replace("  tracers: 100", "  tracers: -3")
    path.write_text(text)
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "tracers: -3" in s)
    assert f"broken.yaml:{line}: workload.tracers: must be >= 1" in capsys.readouterr().err


def test_compare_refuses_a_directory_that_is_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compare", str(tmp_path), str(tmp_path)]) == 2
    assert "not a twin run directory" in capsys.readouterr().err


def test_summary_is_identical_across_processes_and_hash_seeds(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    scenario = _tiny(tmp_path, "det", duration_s=200, faults=[])
    outputs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"run{hash_seed}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run(
            [
                sys.executable,
                "-m",
                "twin.cli",
                "run",
                str(scenario),
                "--out",
                str(out),
                "--quiet",
                "--no-report",
                "--seed",
                "9",
            ],
            check=True,
            env=env,
            capture_output=True,
        )
        outputs.append((out / "summary.json").read_bytes())
    assert outputs[0] == outputs[1]
