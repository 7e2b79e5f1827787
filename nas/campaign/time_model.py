"""Seconds a point trains for (build, training, validation: a trial's `train_s`), predicted from its
plan: its images (`train x epochs + EVAL_COST x (validated + tested)`) times a per-image cost linear
in `nas.blocks.Cost` (a 3x3 depthwise MAC costs 20-40x a grouped 1x1 one on these CPUs: a MAC count
undercounts groups-8 and kernel-5 nets). The prior `REFERENCE` was fitted to 96 trainings of 16
ShuffleNet archs at 6 budgets on the 2-core machine (`benchmarks/time_model_check.py`), scaled per
machine on a few measured steps (`calibrated`); `refit` fits a campaign's finished points, shrunk
toward it. Leave-one-out mean relative error: 0.17-0.22 per study (MACs-only: 0.25-0.31); a fresh
search 0.24 with no trial, 0.15 refitted on 10 (MACs scaled on one net: 0.42)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from nas.blocks import Cost

EVAL_COST = 1 / 3  # an evaluated image costs about a third of a trained one (no backward)
FEATURES = ("dense_macs", "grouped_macs", "depthwise_macs", "depthwise_outputs", "layers")
# seconds per image per unit of each feature (layers: per layer and step), fitted by
# benchmarks/time_model_check.py --fit-prior; only its shape matters once `calibrated`
REFERENCE = (2.6e-10, 2.1e-10, 3.3e-09, 3.9e-08, 1.1e-03)
PRIOR_POINTS = 3.0  # how many finished points the prior weighs in a refit


@dataclass(frozen=True)
class Schedule:
    """The images a point sees: trained per epoch, validated per epoch, tested once; its batch."""
    train_images: int
    val_images: int
    batch_size: int
    test_images: int = 0


@dataclass(frozen=True)
class Work:
    """One point's cost (`nas.count(spec).cost`), schedule and epochs (a mean under early stopping)."""
    cost: Cost
    schedule: Schedule
    epochs: float

    @property
    def images(self) -> float:
        """Trained-image equivalents."""
        s = self.schedule
        return s.train_images * self.epochs + EVAL_COST * (s.val_images * self.epochs + s.test_images)

    def per_image(self) -> np.ndarray:
        """The features of one image, in FEATURES order."""
        c = self.cost
        return np.array([c.dense_macs, c.grouped_macs, c.depthwise_macs, c.depthwise_outputs,
                         c.layers / max(self.schedule.batch_size, 1)], dtype=float)


@dataclass(frozen=True)
class TimeModel:
    coefficients: tuple[float, ...] = REFERENCE  # seconds per image per unit of each FEATURES
    prior: tuple[float, ...] = REFERENCE

    def seconds(self, work: Work) -> float:
        """Predicted seconds of build, training and evaluation (no per-point overhead)."""
        return float(work.images * (work.per_image() @ np.array(self.coefficients)))

    @staticmethod
    def calibrated(measured: Sequence[tuple[Cost, float]], batch_size: int) -> "TimeModel":
        """REFERENCE scaled by the geometric mean of measured over predicted seconds per image."""
        reference = TimeModel()
        ratios = [math.log(s / reference.seconds(Work(c, Schedule(1, 0, batch_size), 1.0)))
                  for c, s in measured if s > 0]
        scale = math.exp(sum(ratios) / len(ratios)) if ratios else 1.0
        prior = tuple(scale * c for c in REFERENCE)
        return TimeModel(prior, prior)

    def refit(self, observed: Sequence[tuple[Work, float]]) -> "TimeModel":
        """Coefficients (never negative) fitted to finished points' relative errors, plus the
        prior's PRIOR_POINTS pseudo-points."""
        done = [(w, s) for w, s in observed if s > 0 and w.images > 0]
        if not done:
            return replace(self, coefficients=self.prior)
        prior = np.array(self.prior)
        rows = np.array([w.images * w.per_image() for w, _ in done])
        seconds = np.array([s for _, s in done])
        ratio = np.log(seconds / np.maximum(rows @ prior, 1e-300))
        base = prior * math.exp(ratio.sum() / (len(done) + PRIOR_POINTS))  # the scale, shrunk
        mean = rows.mean(0) / np.mean([w.images for w, _ in done])
        seen = mean > 0  # a feature no point has keeps its prior
        share = mean[seen] / float(base @ mean)  # a coefficient x share: its part of a point's time
        design = rows[:, seen] / seconds[:, None] / share  # relative error per point, in shares
        shares = _shrunk_nnls(design, base[seen] * share, PRIOR_POINTS)
        fitted = base.copy()
        fitted[seen] = shares / share
        return replace(self, coefficients=tuple(float(c) for c in fitted))


def _shrunk_nnls(design: np.ndarray, prior: np.ndarray, weight: float) -> np.ndarray:
    """argmin over v >= 0 of |design v - 1|^2 + weight |v - prior|^2, exactly: strictly convex, so
    every support's unconstrained optimum is tried (coordinate descent crawls on collinear features)."""
    gram = design.T @ design + weight * np.eye(len(prior))
    target = design.T @ np.ones(len(design)) + weight * prior
    best, best_loss = np.zeros(len(prior)), 0.0  # the empty support: v = 0
    for size in range(1, len(prior) + 1):
        for support in itertools.combinations(range(len(prior)), size):
            idx = list(support)
            v = np.zeros(len(prior))
            v[idx] = np.linalg.solve(gram[np.ix_(idx, idx)], target[idx])
            loss = v @ gram @ v - 2 * target @ v
            if v.min() >= 0 and loss < best_loss:
                best, best_loss = v, loss
    return best
