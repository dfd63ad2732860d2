"""`loadgen run` end to end on the real platform, and the validation loop closed on its run directory.

One short real run (a channel with the full ladder, Locust viewers and chatters in distributed
mode, the probe, a transcode worker killed mid-run) feeds `twin calibrate`; the twin calibrated
from it predicts transcode CPU in band, and the same twin with a transcode cost three times
too high is reported out of band (exit 1): the loop can fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

SCENARIOS = Path(__file__).parents[2] / "scenarios"
REAL = """real:
  duration_s: 24
  warmup_s: 8
  channels: 1
  source: {width: 640, height: 360, fps: 30, bitrate_kbps: 800}
  viewers: 6
  spawn_rate: 6
  chatters: 2
  chat_messages_per_s: 1
  locust_processes: 2
  faults:
    - {kind: worker_kill, at_s: 18}
"""


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("real")
    base = (SCENARIOS / "baseline.yaml").read_text(encoding="utf-8").split("\nreal:")[0].rstrip("\n")
    scenario = root / "tiny.yaml"
    scenario.write_text(base + "\n" + REAL, encoding="utf-8")
    out = root / "run"
    run = subprocess.run(
        [sys.executable, "-m", "loadgen.cli", "run", str(scenario), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return scenario, out


def test_the_run_directory_holds_what_the_contract_says(real_run: tuple[Path, Path]) -> None:
    _, out = real_run
    for name in (
        "run.json",
        "measured.json",
        "timeseries.csv",
        "locust_stats.csv",
        "probe.json",
        "platform.log",
        "report.html",
    ):
        assert (out / name).is_file(), name
    run = json.loads((out / "run.json").read_text())
    assert run["machine"]["cpus"] and run["real"]["viewers"] == 6 and run["command"].startswith("loadgen run")
    (kill,) = run["events"]
    assert kill["kind"] == "worker_kill" and kill["pid"] > 0
    measured = json.loads((out / "measured.json").read_text())
    m = measured["measured"]
    assert measured["kind"] == "real" and measured["window_s"] == [8.0, 32.0]
    assert m["origin_rps"] > 10 and m["origin_rps_by_kind"]["part"] > 0
    assert m["held_requests_mean"] > 0
    assert (
        m["cpu_cores"]["platform"] > 0 and m["cpu_cores"]["transcode"] > 0 and m["cpu_cores"]["loadgen"] > 0
    )
    assert 0 < m["glass_to_glass_s"]["p50"] < 2.5
    assert m["chat_deliveries_per_s"] > 0
    last = (out / "timeseries.csv").read_text().strip().splitlines()[-1].split(",")
    header = (out / "timeseries.csv").read_text().splitlines()[0].split(",")
    assert float(last[header.index("transcode_restarts")]) >= 1  # the supervisor restarted the killed worker


def _validate(scenario: Path, run: Path, calibration: Path, out: Path) -> tuple[int, dict[str, dict]]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "twin.cli",
            "validate",
            str(scenario),
            "--run",
            str(run),
            "--calibration",
            str(calibration),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode in (0, 1), proc.stderr[-4000:]
    checks = json.loads((out / "validation.json").read_text())["checks"]
    return proc.returncode, {c["metric"]: c for c in checks}


def test_a_mis_calibrated_twin_is_reported_out_of_band(real_run: tuple[Path, Path], tmp_path: Path) -> None:
    scenario, run = real_run
    fitted = tmp_path / "fitted.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "twin.cli", "calibrate", str(run), "--out", str(fitted)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    cal = yaml.safe_load(fitted.read_text())
    assert cal["params"]["transcode_core_s_per_mpixel"]["source"].startswith("measured")
    _, good = _validate(scenario, run, fitted, tmp_path / "good")
    transcode = next(k for k in good if "transcode" in k.lower())
    assert good[transcode]["in_band"], good[transcode]
    cal["params"]["transcode_core_s_per_mpixel"]["value"] *= 3
    cal["params"]["transcode_core_s_per_mpixel"]["source"] = "deliberately wrong: 3x the fitted value"
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump(cal, sort_keys=False))
    status, bad = _validate(scenario, run, wrong, tmp_path / "bad")
    assert status == 1
    assert not bad[transcode]["in_band"], bad[transcode]
