"""`loadgen run` through real CDN tiers, and `twin validate` on what it measured (issue 15).

scenarios/cdn-baseline.yaml puts `live cdn` (1 nginx shield, 2 nginx edges) in front of the
platform's origin: Locust viewers spread over both edges, the probe watches through the first.
The run directory holds the shields' requests/s and the edges' hit ratio beside the origin's
requests/s; the twin, calibrated from the run as docs/validation.md does, predicts the origin
and shield requests/s, the edge hit ratio, glass-to-glass and rebuffering within the scenario's
bands. The same twin without its CDN model (viewers on the origin) is out of band: the check
can fail.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from twin.calibration.parameters import load_calibration
from twin.scenario.reader import load_scenario
from twin.validation.checks import compare
from twin.validation.deployment import predict

from .conftest import require_nginx

pytestmark = pytest.mark.slow

SCENARIO = Path(__file__).parents[2] / "scenarios" / "cdn-baseline.yaml"
VALIDATED = (
    "origin requests/s",
    "shield requests/s",
    "edge hit ratio",
    "glass-to-glass p50 (s)",
    "glass-to-glass p95 (s)",
    "rebuffer ratio",
)


def _cli(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def cdn_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_nginx()
    out = tmp_path_factory.mktemp("cdn-run") / "run"
    run = _cli("loadgen.cli", "run", str(SCENARIO), "--out", str(out))
    assert run.returncode == 0, run.stderr[-4000:]
    return out


def test_the_run_measures_the_tiers(cdn_run: Path) -> None:
    run = json.loads((cdn_run / "run.json").read_text())
    assert run["real"]["cdn"] == {"shields": 1, "edges": 2}
    assert len(run["cdn"]["edges"]) == 2 and run["probe"]["via"] == run["cdn"]["edges"][0]
    assert "shield http://" in (cdn_run / "cdn.log").read_text()
    m = json.loads((cdn_run / "measured.json").read_text())["measured"]
    print(f"edge {m['edge_rps']:.1f} req/s, hit ratio {m['edge_hit_ratio']:.4f}; shield "
          f"{m['shield_rps']:.1f} req/s; origin {m['origin_rps']:.1f} req/s")
    # every viewer request reaches an edge; the tiers coalesce them: far fewer go upstream
    assert m["edge_rps"] > 5 * m["shield_rps"] > 0
    assert m["origin_rps"] <= m["shield_rps"]
    assert 0.5 < m["edge_hit_ratio"] < 1.0
    assert m["glass_to_glass_s"]["p50"] is not None


def test_twin_validate_puts_the_cdn_metrics_in_band(cdn_run: Path, tmp_path: Path) -> None:
    calibration = tmp_path / "cal.yaml"
    fit = _cli("twin.cli", "calibrate", str(cdn_run), "--out", str(calibration))
    assert fit.returncode == 0, fit.stderr[-4000:]
    out = tmp_path / "validation"
    proc = _cli(
        "twin.cli", "validate", str(SCENARIO), "--run", str(cdn_run), "--calibration", str(calibration),
        "--out", str(out),
    )
    print(proc.stdout)
    assert proc.returncode in (0, 1), proc.stderr[-4000:]
    checks = {c["metric"]: c for c in json.loads((out / "validation.json").read_text())["checks"]}
    for metric in VALIDATED:
        assert checks[metric]["in_band"], checks[metric]


def test_a_twin_without_its_cdn_model_is_out_of_band(cdn_run: Path) -> None:
    scenario = load_scenario(SCENARIO)
    assert scenario.real is not None
    measured = json.loads((cdn_run / "measured.json").read_text())["measured"]
    direct = predict(dataclasses.replace(scenario.real, cdn=None), load_calibration(None))
    checks = {c.metric: c for c in compare(direct.measured, measured, scenario.real.bands, cdn=True)}
    assert not checks["origin requests/s"].ok  # every viewer request on the origin
    assert not checks["shield requests/s"].ok and checks["shield requests/s"].note == "not predicted"
