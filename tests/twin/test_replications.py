"""Replications on Dask: deterministic per seed whatever the worker count, and intervals that
cover the true value of a model with a known answer (M/M/c, Erlang C)."""

from __future__ import annotations

from functools import partial

import pytest

from twin.model.queueing import mmc, simulate_mmc
from twin.replications import replicate, seeds, slo_results, twin_metrics
from twin.stats import Interval, Verdict, mean_interval, t_quantile, verdict

from .conftest import shortened

# Student t 0.975 quantiles (any statistics table)
T975 = {1: 12.706, 2: 4.303, 5: 2.571, 9: 2.262, 19: 2.093, 29: 2.045, 100: 1.984}


@pytest.mark.parametrize(("df", "expected"), sorted(T975.items()))
def test_t_quantile_matches_the_table(df: int, expected: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-3)
    assert t_quantile(0.025, df) == pytest.approx(-expected, abs=1e-3)


def test_verdict_is_pass_only_when_the_bad_end_meets_the_slo() -> None:
    def iv(low: float, high: float) -> Interval:
        return Interval((low + high) / 2, low, high, 10, 0.95)

    assert verdict(iv(0.004, 0.008), "<", 0.01) is Verdict.PASS
    assert verdict(iv(0.008, 0.012), "<", 0.01) is Verdict.UNCERTAIN
    assert verdict(iv(0.011, 0.012), "<", 0.01) is Verdict.FAIL
    assert verdict(iv(0.9996, 0.9999), ">=", 0.9995) is Verdict.PASS
    assert verdict(iv(0.9990, 0.9999), ">=", 0.9995) is Verdict.UNCERTAIN
    assert verdict(iv(0.9980, 0.9990), ">=", 0.9995) is Verdict.FAIL
    assert verdict(mean_interval([0.005]), "<", 0.01) is Verdict.UNCERTAIN  # one sample: no interval


def test_interval_over_dask_replications_covers_the_erlang_c_mean_wait() -> None:
    servers, arrival, service = 2, 1.2, 1.0  # utilization 0.6
    exact = mmc(servers, arrival, service).mean_wait
    # a function of an installed module: pytest's importlib mode leaves this test module
    # unimportable by name in Dask's worker processes
    task = partial(simulate_mmc, servers, arrival, service, 4_000)
    runs = replicate(task, seeds(100, 12), workers=2)
    interval = mean_interval([r.mean_wait for r in runs])
    assert interval.low <= exact <= interval.high
    assert interval.half_width < 0.2 * exact  # and it is informative, not just wide


def test_intervals_cover_the_erlang_c_mean_wait_at_their_stated_rate() -> None:
    servers, arrival, service = 2, 1.0, 1.0  # utilization 0.5
    exact = mmc(servers, arrival, service).mean_wait
    experiments, covered = 40, 0
    for e in range(experiments):
        waits = [simulate_mmc(servers, arrival, service, 1_000, 1000 * e + s).mean_wait for s in range(6)]
        i = mean_interval(waits)
        covered += i.low <= exact <= i.high
    # 95 % nominal; 40 experiments: below 0.85 would be 3 standard errors off
    assert covered / experiments >= 0.85


def test_replications_are_deterministic_per_seed_and_independent_of_worker_count(cal) -> None:
    sc = shortened("baseline", 60.0, tracers=4)
    task = partial(twin_metrics, sc, cal)
    one = replicate(task, seeds(7, 3), workers=1)
    two = replicate(task, seeds(7, 3), workers=2)
    assert one == two
    assert one[1] == twin_metrics(sc, cal, 8)  # the second replication is seed 8, in-process too
    assert one[0] != one[1]
    results = slo_results(sc, one)
    assert {r.slo for r in results} == {
        "glass_to_glass_p95_s",
        "rebuffer_ratio",
        "availability",
        "chat_delay_p99_s",
    }
    assert all(r.interval.n == 3 for r in results)


def test_run_with_replications_writes_intervals_and_verdicts(tmp_path, capsys) -> None:
    import json

    import yaml

    from twin.cli import main

    from .conftest import SCENARIOS

    data = yaml.safe_load((SCENARIOS / "baseline.yaml").read_text(encoding="utf-8"))
    data.update(duration_s=60)
    data["workload"]["tracers"] = 4
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out), "--replications", "3", "--quiet", "--no-report"]) == 0
    rep = json.loads((out / "replications.json").read_text())
    assert rep["replications"] == 3 and rep["seeds"] == [1, 2, 3]
    assert rep["twin_hours"] == pytest.approx(3 * 60 / 3600)
    for slo in rep["slos"]:
        assert slo["verdict"] in ("PASS", "FAIL", "uncertain")
        assert slo["ci_low"] is None or slo["ci_low"] <= slo["mean"] <= slo["ci_high"]
    assert "95 % confidence" in capsys.readouterr().out


def test_an_existing_cluster_runs_the_same_replications_given_its_scheduler_address(cal) -> None:
    from distributed import LocalCluster

    sc = shortened("baseline", 30.0, tracers=2)
    task = partial(twin_metrics, sc, cal)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        remote = replicate(task, seeds(3, 2), scheduler=cluster.scheduler_address)
    assert remote == [twin_metrics(sc, cal, 3), twin_metrics(sc, cal, 4)]
