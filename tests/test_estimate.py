"""The campaigns' time estimate: a measured rate, scaled by MACs and images, spread over workers."""

from __future__ import annotations

import pytest

import nas
from nas.blocks import Cost
from nas.campaign import estimate
from nas.campaign.budget import get_budget
from nas.campaign.time_model import Schedule, TimeModel, Work


def test_early_stopping_share_of_epochs():
    cpu = get_budget("search", "cpu").with_epochs(4)  # rungs 1, 2, 4: all train 1, half 2, a quarter 4
    assert estimate.mean_epochs(cpu, early_stopping=True) == pytest.approx(1 + 0.5 + 0.25 * 2)
    assert estimate.mean_epochs(cpu, early_stopping=False) == cpu.epochs


COST = Cost(100_000, 10_000_000, depthwise_macs=1_000_000, grouped_macs=6_000_000,
            depthwise_outputs=100_000, layers=30)


def test_estimate_scales_with_macs_images_and_workers():
    model = TimeModel.calibrated([(COST, 1e-9 * COST.macs)], 64)
    work = [Work(COST, Schedule(3000, 500, 64), 4)] * 4  # 2,000 evaluated images
    one = estimate.estimate_s(work, model, 1, "ablation")
    assert estimate.estimate_s(work, model, 2, "ablation") == pytest.approx(one / 2)
    bigger = [Work(COST + COST, Schedule(3000, 500, 64), 4)] * 4  # every kind of MAC twice
    overhead = 4 * estimate.POINT_OVERHEAD_S["ablation"]
    assert estimate.estimate_s(bigger, model, 1, "ablation") - overhead == pytest.approx(2 * (one - overhead))


def test_calibration_times_the_nets_in_their_chosen_format(monkeypatch, tmp_path):
    from nas.config import TrainConfig
    from nas.device import Precision

    monkeypatch.setenv("NAS_CACHE", str(tmp_path))
    spec = nas.load_preset("dsc_cnn")
    chosen = []
    real_steps = estimate._steps
    monkeypatch.setattr(estimate, "_steps", lambda s, b, p, out: chosen.append(p) or real_steps(s, b, p, out))
    model = estimate.calibrate([spec, spec], TrainConfig(batch_size=16, amp="off", channels_last="on"), threads=1)
    assert chosen == [Precision(None, True)] * 2  # the forced format, not fp32 contiguous
    seconds_per_image = model.seconds(Work(nas.count(spec).cost, Schedule(1, 0, 16), 1.0))
    assert 1e-6 < seconds_per_image < 1.0


def test_the_ablation_estimate_is_the_one_estimate_over_its_cells_and_seeds(monkeypatch):
    import types

    from nas.ablate import cells
    from nas.ablate.experiment import load_experiment
    from nas.ablate.grid import build_grid, load_key, resolve_data

    from nas.words import RunOverrides, parse_words

    smoke, words = get_budget("ablation", "smoke"), RunOverrides(parse_words(["data.name=synthetic"]))
    exp = load_experiment("shufflenet_groups")
    data = resolve_data(exp, smoke, words)
    todo = build_grid(exp, smoke, words, exp.seeds[:2], data)
    model = TimeModel.calibrated([], 32)
    measured = []
    monkeypatch.setattr(estimate, "calibrate", lambda specs, *a, **k: measured.append(specs) or model)
    a = types.SimpleNamespace(data=data, test_images=None)
    line = cells._estimate_line(a, todo, types.SimpleNamespace(kind="cpu", concurrency=2), threads=1)
    work = []
    for p in todo:
        bundle = data.bundles[load_key(p.cfg)]
        work.append(Work(nas.count(p.spec).cost, Schedule(len(bundle.train), len(bundle.val),
                                                          p.cfg.train.batch_size, len(bundle.test)),
                         p.cfg.train.epochs))
    assert line == f"; estimated {estimate.describe(estimate.estimate_s(work, model, 2, 'ablation'))} (measured here)"
    assert len(measured[0]) == estimate.side_by_side(2, 1)
