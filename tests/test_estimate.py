"""The campaigns' time estimate: a measured rate, scaled by MACs and images, spread over workers."""

from __future__ import annotations

import pytest

import nas
from nas.campaign import estimate
from nas.campaign.budget import get_budget


def test_early_stopping_share_of_epochs():
    cpu = get_budget("search", "cpu").with_epochs(4)  # rungs 1, 2, 4: all train 1, half 2, a quarter 4
    assert estimate.mean_epochs(cpu, early_stopping=True) == pytest.approx(1 + 0.5 + 0.25 * 2)
    assert estimate.mean_epochs(cpu, early_stopping=False) == cpu.epochs


def test_estimate_scales_with_macs_images_and_workers():
    work = [estimate.Work(10_000_000, 3000, 4, 2000)] * 4
    one = estimate.estimate_s(work, 1e-9, 1, "ablation")
    assert estimate.estimate_s(work, 1e-9, 2, "ablation") == pytest.approx(one / 2)
    bigger = [estimate.Work(20_000_000, 3000, 4, 2000)] * 4
    overhead = 4 * estimate.POINT_OVERHEAD_S["ablation"]
    assert estimate.estimate_s(bigger, 1e-9, 1, "ablation") - overhead == pytest.approx(2 * (one - overhead))


def test_measured_rate_is_per_image_per_multiply_add():
    spec = nas.load_preset("dsc_cnn")
    rate = estimate.measure_rate(spec, 16, threads=1, parallel=2)
    seconds_per_image = rate * nas.count(spec).macs
    assert 1e-6 < seconds_per_image < 1.0
