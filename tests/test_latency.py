"""`nas.latency`: the stopping rule and its summary (exact, on given times), the cache by plan
signature, and a search's latency limit applied before training (real ONNX Runtime timings,
no assertion on how fast anything is)."""

from __future__ import annotations

import json

import optuna
import pytest

from nas import latency
from nas.presets import load_preset

pytest.importorskip("onnxruntime")
QUICK = latency.LatencySettings(warmup=2, min_runs=10, max_runs=40, max_s=0.3)


def within_spread(got: latency.Latency, median_ms: float) -> bool:
    """Whether another measurement's median lands in `got`'s interquartile range."""
    return got.q1_ms <= median_ms <= got.q3_ms


def test_summary_of_given_times_is_the_median_iqr_and_the_medians_interval():
    times = [float(t) for t in range(1, 101)]  # 1..100 ms
    got = latency.summarize(times, "runs", QUICK)
    assert got.median_ms == 50.5 and got.q1_ms == pytest.approx(25.75) and got.q3_ms == pytest.approx(75.25)
    lo, hi = latency.median_interval(100)  # 50 -+ 1.96 * 10 / 2
    assert (lo, hi) == (40, 60) and (got.ci_low_ms, got.ci_high_ms) == (41.0, 61.0)
    assert within_spread(got, 30.0) and not within_spread(got, 80.0)
    assert "median 50.500 ms, IQR 25.750-75.250 ms" in got.describe()


def test_timing_stops_on_the_interval_the_run_cap_or_the_clock():
    calls = []
    steady = latency.time_calls(lambda: calls.append(1), latency.LatencySettings(warmup=3, min_runs=20))
    assert steady.runs >= 20 and len(calls) == steady.runs + 3
    capped = latency.time_calls(lambda: None, latency.LatencySettings(warmup=0, min_runs=20, max_runs=20,
                                                                      target=0.0))
    assert capped.runs == 20 and capped.stopped.startswith("runs")


def test_the_cache_keys_on_the_plan_not_the_name(tmp_path):
    path = tmp_path / "latency.json"
    cache = latency.LatencyCache(QUICK, path)
    spec = load_preset("shufflenet_v1_g3", resolution=32, num_classes=10)
    first = cache.get(spec)
    assert cache.get(spec.replace(name="renamed")) == first and len(cache.entries) == 1
    cache.get(load_preset("shufflenet_v1_g3", resolution=32, num_classes=10, width=0.5))
    assert len(cache.entries) == 2
    again = latency.LatencyCache(QUICK, path)  # a resumed search: read, not measured again
    assert again.get(spec) == first and json.loads(path.read_text()).keys() == cache.entries.keys()
    other = latency.LatencyCache(latency.LatencySettings(runtime="torch", max_s=0.3), path)
    assert other._key(spec) != cache._key(spec)  # another runtime is another measurement


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_every_installed_runtime_times_a_preset(runtime):
    got = latency.measure(load_preset("dsc_cnn", resolution=32, num_classes=10),
                          latency.LatencySettings(runtime=runtime, warmup=2, min_runs=10, max_s=0.3))
    assert got.runtime == runtime and got.threads == 1 and got.runs >= 10
    assert 0 < got.q1_ms <= got.median_ms <= got.q3_ms


def test_bad_settings_are_one_line():
    with pytest.raises(latency.LatencyError, match="unknown runtime 'tflite'"):
        latency.check_settings(latency.LatencySettings(runtime="tflite"))
    with pytest.raises(latency.LatencyError, match="must be >= 1"):
        latency.check_settings(latency.LatencySettings(threads=0))


def test_max_latency_ms_rejects_slow_architectures_before_training():
    """The two paper nets of the space, timed once (cached): a limit between them schedules the
    faster and records the slower INFEASIBLE, untrained, with its measured latency."""
    from nas.pareto import parse_objectives
    from nas.search.searcher import SAMPLERS, Limits, OptunaSearcher
    from nas.space import load_space

    space = load_space("shufflenet")
    to_spec = lambda p: space.to_spec(p, resolution=32, num_classes=10)
    cache = latency.LatencyCache(QUICK)
    points = [point for name, point in space.references if name.endswith(("0.25x g=3", "1x g=3"))]
    timed = [cache.get(to_spec(p)).median_ms for p in points]
    limit = sum(timed) / 2
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=SAMPLERS["random"](0, 1))
    for _, point in sorted(zip(timed, points), key=lambda pair: -pair[0]):  # the slower asked first
        study.enqueue_trial(point)
    skipped = []
    searcher = OptunaSearcher(study, space, parse_objectives("val_acc,latency_ms"), to_spec=to_spec,
                              limits=Limits(max_latency_ms=limit), max_epochs=2, trials=1,
                              on_infeasible=skipped.append, latency=lambda s: cache.get(s).median_ms)
    config = searcher.suggest("a")
    assert config["_nas_costs"]["latency_ms"] == min(timed) <= limit
    assert [s.latency_ms for s in skipped] == [max(timed)] and skipped[0].status == "INFEASIBLE"
    assert skipped[0].violations[-1] > 0  # over the latency limit, by its relative excess
    rejected = study.trials[0]
    assert rejected.user_attrs["nas_status"] == "INFEASIBLE" and "epochs" not in rejected.user_attrs


def test_auto_sampler_for_latency_is_gp_and_ehvi_takes_it_with_fewer_candidates():
    from nas.pareto import parse_objectives
    from nas.search.searcher import LATENCY_CANDIDATES, SAMPLERS, Limits, OptunaSearcher, pick_sampler
    from nas.space import load_space

    space = load_space("shufflenet")
    assert pick_sampler("auto", parse_objectives("val_acc,latency_ms"), space) == "gp"
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=SAMPLERS["ehvi"](0, 10))
    OptunaSearcher(study, space, parse_objectives("val_acc,latency_ms"),
                   to_spec=lambda p: space.to_spec(p, resolution=32, num_classes=10), limits=Limits(),
                   max_epochs=2, trials=1, on_infeasible=lambda s: None, latency=lambda s: 1.0)
    assert study.sampler.candidates == LATENCY_CANDIDATES
