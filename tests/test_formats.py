"""The per-net format probe (nas.formats): it picks what the timer says is fastest, measures a
shape once, leaves forced formats and accelerators alone, and survives a corrupt cache file.
Timings are injected; no real time is asserted (benchmarks/format_probe.py measures them)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
from pathlib import Path

import pytest
import torch

import nas
from nas import formats
from nas.config import RunConfig, TrainConfig, load_run_config
from nas.data import DataConfig, load_data
from nas.formats import FormatCache, choose, probe_key, probe_steps
from nas.job import Job, execute
from nas.status import Status

CPU = torch.device("cpu")
LONG = 10**6  # planned steps: long enough for any probe to pay back
STEP_S = {"fp32": 0.50, "fp32+channels_last": 0.31, "bf16": 0.54, "bf16+channels_last": 0.49}


def _spec(width: float = 0.25) -> nas.NetSpec:
    return nas.load_preset("shufflenet_v1_g3", width=width, resolution=32, num_classes=10)


class FakeTimer:
    """A timer factory whose steps take `STEP_S[format]` seconds; counts what it measured."""

    def __init__(self, seconds: dict[str, float] = STEP_S):
        self.seconds, self.built, self.steps = seconds, [], 0

    def __call__(self, spec, batch, precision):
        self.built.append((spec.width, batch, precision.describe()))

        def step() -> float:
            self.steps += 1
            return self.seconds[precision.describe()]

        return step


@pytest.fixture(autouse=True)
def native_bf16(monkeypatch):
    """Four candidates, whatever this CPU has."""
    monkeypatch.setattr(formats, "native_cpu_bf16", lambda: True)


@pytest.fixture
def cache(tmp_path) -> FormatCache:
    return FormatCache(tmp_path / "formats.json")


def test_the_probe_picks_the_fastest_format(cache):
    timer = FakeTimer()
    choice = choose(_spec(), CPU, TrainConfig(), LONG, cache=cache, timer=timer)
    assert (choice.precision.describe(), choice.source) == ("fp32+channels_last", "probe")
    assert choice.precision.amp_dtype is None and choice.precision.channels_last
    assert sorted(b[2] for b in timer.built) == sorted(STEP_S)  # every candidate, at the run's batch
    assert {b[1] for b in timer.built} == {128} and timer.steps == probe_steps()
    assert "fp32+channels_last (probe" in choice.describe()
    slow_cl = {**STEP_S, "fp32+channels_last": 0.9, "bf16": 0.2}
    other = choose(_spec(0.5), CPU, TrainConfig(), LONG, cache=cache, timer=FakeTimer(slow_cl))
    assert other.precision.describe() == "bf16" and other.precision.amp_dtype is torch.bfloat16


def test_without_native_bf16_only_fp32_formats_are_tried(cache, monkeypatch):
    monkeypatch.setattr(formats, "native_cpu_bf16", lambda: False)
    timer = FakeTimer({**STEP_S, "bf16": 0.01})
    choice = choose(_spec(), CPU, TrainConfig(), LONG, cache=cache, timer=timer)
    assert {b[2] for b in timer.built} == {"fp32", "fp32+channels_last"}
    assert choice.precision.describe() == "fp32+channels_last"


def test_a_shape_is_measured_once_and_another_shape_again(cache):
    first = choose(_spec(), CPU, TrainConfig(), LONG, cache=cache, timer=FakeTimer())
    again = FakeTimer()
    second = choose(_spec(), CPU, TrainConfig(), LONG, cache=cache, timer=again)
    assert (again.built, again.steps) == ([], 0)
    assert (second.precision, second.source) == (first.precision, "cache")
    for spec, cfg in ((_spec(0.5), TrainConfig()), (_spec(), TrainConfig(batch_size=64))):
        timer = FakeTimer()
        assert choose(spec, CPU, cfg, LONG, cache=cache, timer=timer).source == "probe"
        assert timer.steps == probe_steps()
    assert len(cache.entries()) == 3
    entry = cache.get(probe_key(_spec(), 128, torch.get_num_threads()))
    assert entry["format"] == "fp32+channels_last" and entry["step_ms"]["fp32"] == 500.0


def test_the_key_holds_the_plan_threads_batch_and_torch():
    key = probe_key(_spec(), 128, 2)
    assert key != probe_key(_spec(), 128, 1) and key != probe_key(_spec(), 64, 2)
    assert key != probe_key(_spec(0.5), 128, 2) and torch.__version__ in key
    renamed = dataclasses.replace(_spec(), name="renamed")
    assert probe_key(renamed, 128, 2) == key  # the plan, not the name (nas.latency.plan_signature)


def test_a_forced_format_skips_the_probe(cache):
    cfg = load_run_config(["train.amp=off", "train.channels_last=on"]).train
    timer = FakeTimer({**STEP_S, "fp32+channels_last": 9.0})
    choice = choose(_spec(), CPU, cfg, LONG, cache=cache, timer=timer)
    assert (choice.precision.describe(), choice.source) == ("fp32+channels_last", "config")
    assert timer.built == [] and not cache.path.exists()
    half = choose(_spec(), CPU, TrainConfig(amp="bf16"), LONG, cache=cache, timer=timer)
    assert (half.precision.describe(), half.source, timer.built) == ("bf16", "config", [])


@pytest.mark.parametrize("device", ["cuda", "mps", "meta"])
def test_other_devices_never_probe(cache, device):
    timer = FakeTimer()
    choice = choose(_spec(), torch.device(device), TrainConfig(), LONG, cache=cache, timer=timer)
    assert choice.source == "device default" and timer.built == [] and not cache.path.exists()
    if device == "cuda":  # today's measured CUDA default
        assert choice.precision.describe() == "bf16+channels_last"


def test_a_run_too_short_to_pay_back_keeps_the_default(cache):
    timer = FakeTimer()
    choice = choose(_spec(), CPU, TrainConfig(), formats.PAYBACK * probe_steps() - 1, cache=cache,
                    timer=timer)
    assert choice.source == "run too short to probe" and timer.built == []
    choose(_spec(), CPU, TrainConfig(), LONG, cache=cache, timer=FakeTimer())
    cached = choose(_spec(), CPU, TrainConfig(), 1, cache=cache, timer=timer)  # a known shape is free
    assert (cached.source, cached.precision.describe(), timer.built) == ("cache", "fp32+channels_last", [])


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"%s": "bf16"}', '{"%s": {"format": "fp64"}}'])
def test_a_corrupt_cache_is_measured_again_and_rewritten(cache, text):
    key = probe_key(_spec(), 128, torch.get_num_threads())
    cache.path.write_text(text.replace("%s", key))
    timer = FakeTimer()
    choice = choose(_spec(), CPU, TrainConfig(), LONG, cache=cache, timer=timer)
    assert choice.source == "probe" and timer.steps == probe_steps()
    assert json.loads(cache.path.read_text())[key]["format"] == "fp32+channels_last"


def test_a_writer_keeps_what_another_run_cached_meanwhile(cache):
    choose(_spec(), CPU, TrainConfig(), LONG, cache=cache, timer=FakeTimer())
    other_run = FormatCache(cache.path)
    other_run.put("someone-else", {"format": "fp32"})
    choose(_spec(0.5), CPU, TrainConfig(), LONG, cache=cache, timer=FakeTimer())
    assert len(cache.entries()) == 3 and "someone-else" in cache.entries()


def test_a_job_records_the_cached_pick(tmp_path, monkeypatch):
    """The one place a job decides its format: nas run, search trials and ablation cells all
    go through nas.job.execute, and record what it picked (the nas.precision tag)."""
    monkeypatch.setenv("NAS_CACHE", str(tmp_path))
    data_cfg = DataConfig(name="synthetic", synthetic_train=96, synthetic_test=32, val_size=32)
    cfg = RunConfig(data=data_cfg, train=TrainConfig(epochs=1, batch_size=32, threads=1), device="cpu")
    spec = _spec()
    FormatCache(tmp_path / "formats.json").put(probe_key(spec, 32, 1), {"format": "fp32+channels_last"})
    result = execute(Job(spec, cfg), load_data(data_cfg)).result
    assert result.status is Status.COMPLETED, result.error
    assert (result.precision, result.precision_source) == ("fp32+channels_last", "cache")
    forced = RunConfig(data=data_cfg, device="cpu",
                       train=TrainConfig(epochs=1, batch_size=32, threads=1, amp="off", channels_last="off"))
    result = execute(Job(spec, forced), load_data(data_cfg)).result
    assert (result.precision, result.precision_source) == ("fp32", "config")


def test_the_benchmark_prints_a_pick_and_a_count_per_space(capsys):
    """benchmarks/format_probe.py's plumbing at batch 4 (its numbers need a quiet machine)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "format_probe.py"
    loaded = importlib.util.spec_from_file_location("bench_format_probe", path)
    bench = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(bench)
    before = torch.get_num_threads()
    try:
        assert bench.main(["--archs", "1", "--batch", "4", "--steps", "1", "--warmup", "0",
                           "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(before)
    out = capsys.readouterr().out
    for space in ("shufflenet", "mobilenet_v2"):
        assert re.search(rf"^{space}: within_10pct=[01]/1$", out, re.M), out
    assert any(line.split()[-5] in formats.candidates() for line in out.splitlines() if "1/1:" in line), out


def test_the_probe_leaves_the_global_rng_alone():
    """Its nets are seeded and train with dropout; the run's seed alone still decides the run."""
    spec = nas.load_preset("mobilenet_v2", width=0.25, resolution=32, num_classes=10)
    assert spec.head.dropout > 0
    torch.manual_seed(7)
    state = torch.get_rng_state()
    step_s = formats.probe(spec, 4)
    assert set(step_s) == set(formats.candidates()) and torch.equal(torch.get_rng_state(), state)
