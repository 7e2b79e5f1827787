"""Fronts, hypervolume and the Pareto plot: hand-made cases, brute-force cross-checks, properties."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nas.errors import NasError
from nas.pareto import (Objective, default_reference, front_members, hypervolume, parse_objectives,
                        pareto_front, pareto_mask)
from nas.pareto_plot import plot_front

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- brute-force references

def dominates(a: np.ndarray, b: np.ndarray, signs: np.ndarray) -> bool:
    """a dominates b (signs: +1 max, -1 min), written the slow obvious way."""
    a, b = a * signs, b * signs
    return bool(np.all(a >= b) and np.any(a > b))


def grid_hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Exact union-of-boxes volume (minimisation) by coordinate compression: every grid cell between
    consecutive distinct coordinates is either fully dominated or not, tested at its lower corner."""
    pts = np.asarray([p for p in points if np.all(p < reference)])
    if len(pts) == 0:
        return 0.0
    m = pts.shape[1]
    axes = [np.unique(np.append(pts[:, j], reference[j])) for j in range(m)]
    total = 0.0
    for cell in itertools.product(*(range(len(a) - 1) for a in axes)):
        lower = np.array([axes[j][c] for j, c in enumerate(cell)])
        if np.any(np.all(pts <= lower, axis=1)):
            total += float(np.prod([axes[j][c + 1] - axes[j][c] for j, c in enumerate(cell)]))
    return total


# ---------------------------------------------------------------- parse_objectives

def test_parse_objectives_known_and_explicit():
    assert parse_objectives("val_acc,macs") == [Objective("val_acc", "max"), Objective("macs", "min")]
    assert parse_objectives(" val_acc , params , latency_ms ") == [
        Objective("val_acc", "max"), Objective("params", "min"), Objective("latency_ms", "min")]
    assert parse_objectives("test_acc,accuracy:max,latency,energy:min,score:MAX") == [
        Objective("test_acc", "max"), Objective("accuracy", "max"), Objective("latency", "min"),
        Objective("energy", "min"), Objective("score", "max")]


@pytest.mark.parametrize("text, token", [
    ("val_acc,flops", "flops"),
    ("val_acc,macs:smallest", "smallest"),
    ("val_acc,,macs", "empty"),
    ("", "no objectives"),
    ("val_acc,:max", ":max"),
    ("macs,val_acc,macs", "twice"),
])
def test_parse_objectives_errors_name_the_token(text, token):
    with pytest.raises(ValueError) as err:
        parse_objectives(text)
    message = str(err.value)
    assert token in message and "\n" not in message
    assert isinstance(err.value, NasError)  # the CLI prints it as one line, no traceback


def test_objective_rejects_bad_direction():
    with pytest.raises(ValueError, match="direction"):
        Objective("macs", "down")


# ---------------------------------------------------------------- pareto_mask

def test_known_2d_front_max_acc_min_macs():
    # (acc, macs): a, b, c form the front; d is dominated by b; e by c
    values = np.array([[0.70, 10], [0.80, 20], [0.90, 40], [0.75, 25], [0.85, 50]])
    assert pareto_mask(values, ["max", "min"]).tolist() == [True, True, True, False, False]


def test_orientation_flips_the_front():
    values = np.array([[1.0, 1.0], [2.0, 2.0], [1.5, 0.5]])
    assert pareto_mask(values, ["min", "min"]).tolist() == [True, False, True]
    assert pareto_mask(values, ["max", "max"]).tolist() == [False, True, False]
    assert pareto_mask(values, ["max", "min"]).tolist() == [False, True, True]
    assert pareto_mask(values, ["maximize", "minimize"]).tolist() == [False, True, True]


def test_duplicates_both_stay_on_the_front():
    values = np.array([[0.8, 10], [0.8, 10], [0.7, 10], [0.9, 30]])
    assert pareto_mask(values, ["max", "min"]).tolist() == [True, True, False, True]


def test_nan_rows_are_never_on_the_front_and_dominate_nothing():
    values = np.array([[0.8, 10], [np.nan, 5], [0.99, np.nan], [0.7, 20]])
    assert pareto_mask(values, ["max", "min"]).tolist() == [True, False, False, False]
    assert pareto_mask(np.full((3, 2), np.nan), ["max", "min"]).tolist() == [False] * 3


def test_three_objectives():
    # (acc max, macs min, params min)
    values = np.array([
        [0.80, 10, 5],   # front
        [0.80, 10, 6],   # dominated by the first (worse params only)
        [0.85, 30, 1],   # front: best params
        [0.90, 50, 9],   # front: best acc
        [0.79, 11, 5],   # dominated by the first
        [0.79, 9, 9],    # front: cheapest MACs
    ])
    assert pareto_mask(values, ["max", "min", "min"]).tolist() == [True, False, True, True, False, True]


def test_edge_shapes_and_errors():
    assert pareto_mask(np.empty((0, 2)), ["max", "min"]).tolist() == []
    assert pareto_mask([3.0, 1.0, 1.0, 2.0], ["min"]).tolist() == [False, True, True, False]
    assert pareto_mask([[5.0, 1.0]], ["max", "min"]).tolist() == [True]
    with pytest.raises(ValueError, match="directions"):
        pareto_mask(np.zeros((3, 2)), ["max"])
    with pytest.raises(ValueError, match="direction"):
        pareto_mask(np.zeros((3, 2)), ["max", "down"])


def test_large_input_is_chunked_and_matches_the_2d_sweep():
    rng = np.random.default_rng(0)
    values = rng.random((3000, 2))
    mask = pareto_mask(values, ["min", "min"])
    order = np.lexsort((values[:, 1], values[:, 0]))  # x ascending: front iff y beats all before it
    ys = values[order, 1]
    expected = np.zeros(len(values), bool)
    expected[order] = ys < np.concatenate([[np.inf], np.minimum.accumulate(ys)[:-1]])
    assert mask.tolist() == expected.tolist()


@st.composite
def point_sets(draw):
    m = draw(st.integers(1, 4))
    n = draw(st.integers(0, 25))
    # a small integer grid gives plenty of ties and duplicates; NaN now and then
    cells = st.one_of(st.integers(0, 4).map(float), st.just(float("nan")))
    values = draw(hnp.arrays(float, (n, m), elements=cells))
    directions = draw(st.lists(st.sampled_from(["max", "min"]), min_size=m, max_size=m))
    return values, directions


@settings(max_examples=200, deadline=None)
@given(point_sets())
def test_front_property(data):
    values, directions = data
    signs = np.array([1.0 if d == "max" else -1.0 for d in directions])
    mask = pareto_mask(values, directions)
    valid = ~np.isnan(values).any(axis=1)
    assert not mask[~valid].any()
    front = values[mask]
    for i in np.flatnonzero(valid):
        dominated = any(dominates(values[j], values[i], signs) for j in np.flatnonzero(valid))
        assert mask[i] == (not dominated)
        if not mask[i]:  # dominance is transitive, so some front member dominates it too
            assert any(dominates(f, values[i], signs) for f in front)


def test_pareto_front_frame_sorted_by_first_min_objective():
    df = pd.DataFrame({"trial": range(5), "val_acc": [0.9, 0.7, 0.8, 0.6, 0.85],
                       "macs": [40e6, 10e6, 20e6, 30e6, 50e6]}, index=[10, 11, 12, 13, 14])
    front = pareto_front(df, parse_objectives("val_acc,macs"))
    assert front["trial"].tolist() == [1, 2, 0]
    assert front.index.tolist() == [11, 12, 10]
    only_max = pareto_front(df, [Objective("val_acc", "max")])
    assert only_max["trial"].tolist() == [0]
    with pytest.raises(ValueError, match="latency_ms"):
        pareto_front(df, parse_objectives("val_acc,latency_ms"))


# ---------------------------------------------------------------- hypervolume

def test_hypervolume_known_2d():
    pts = np.array([[1, 3], [2, 2], [3, 1]])
    assert hypervolume(pts, ["min", "min"], [4, 4]) == pytest.approx(6.0)
    # the same set oriented as (accuracy max, MACs min)
    acc = np.array([[3, 3], [2, 2], [1, 1]])  # acc = 4 - x
    assert hypervolume(acc, ["max", "min"], [0, 4]) == pytest.approx(6.0)
    assert hypervolume([[0.5, 0.5]], ["min", "min"], [1, 1]) == pytest.approx(0.25)


def test_hypervolume_known_3d_and_1d():
    assert hypervolume([[0, 0, 0]], ["min"] * 3, [1, 2, 3]) == pytest.approx(6.0)
    # two unit-overlapping boxes: 2*1*1 + 1*2*1 - 1*1*1 = 3
    assert hypervolume([[0, 1, 0], [1, 0, 0]], ["min"] * 3, [2, 2, 1]) == pytest.approx(3.0)
    assert hypervolume([3.0, 1.0, 2.0], ["min"], [5.0]) == pytest.approx(4.0)


def test_hypervolume_ignores_points_outside_reference_and_nan():
    base = hypervolume([[1, 3], [2, 2], [3, 1]], ["min", "min"], [4, 4])
    extra = [[1, 3], [2, 2], [3, 1], [5, 0], [0, 4], [np.nan, 0.0], [4, 4]]
    assert hypervolume(extra, ["min", "min"], [4, 4]) == pytest.approx(base)
    assert hypervolume(np.empty((0, 3)), ["min"] * 3, [1, 1, 1]) == 0.0
    with pytest.raises(ValueError, match="reference"):
        hypervolume([[1, 2]], ["min", "min"], [1, 2, 3])


def test_hypervolume_invariant_under_dominated_points():
    rng = np.random.default_rng(1)
    for m in (2, 3, 4):
        pts = rng.random((12, m))
        ref = np.full(m, 1.1)
        hv = hypervolume(pts, ["min"] * m, ref)
        worse = pts[rng.integers(0, len(pts), 10)] + rng.random((10, m)) * 0.2  # each dominated
        assert hypervolume(np.vstack([pts, worse, pts[:3]]), ["min"] * m, ref) == pytest.approx(hv)


@pytest.mark.parametrize("m, n", [(2, 30), (3, 12), (3, 25), (4, 8)])
def test_hypervolume_matches_grid_brute_force(m, n):
    rng = np.random.default_rng(100 * m + n)
    for _ in range(3):
        pts = rng.random((n, m))
        ref = rng.uniform(0.8, 1.2, m)  # some points fall outside the reference box
        assert hypervolume(pts, ["min"] * m, ref) == pytest.approx(grid_hypervolume(pts, ref), rel=1e-9)


def test_hypervolume_matches_monte_carlo_3d():
    rng = np.random.default_rng(7)
    pts = rng.random((25, 3))
    pts[:, 0] = 1 - pts[:, 0]  # first objective maximised
    ref = np.array([0.0, 1.0, 1.0])
    hv = hypervolume(pts, ["max", "min", "min"], ref)
    samples = rng.random((200_000, 3))  # the box [0,1]^3 between the best corner and the reference
    covered = np.zeros(len(samples), bool)
    for p in pts:
        covered |= (samples[:, 0] <= p[0]) & (samples[:, 1] >= p[1]) & (samples[:, 2] >= p[2])
    assert hv == pytest.approx(covered.mean(), abs=0.01)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(float, st.tuples(st.integers(1, 10), st.just(3)), elements=st.integers(0, 5).map(float)),
       hnp.arrays(float, 3, elements=st.integers(0, 5).map(float)))
def test_hypervolume_monotone_and_exact_3d(pts, extra):
    ref = np.full(3, 5.5)
    hv = hypervolume(pts, ["min"] * 3, ref)
    assert hv == pytest.approx(grid_hypervolume(pts, ref))
    assert hypervolume(np.vstack([pts, extra]), ["min"] * 3, ref) >= hv - 1e-9


def test_hypervolume_3d_scales_to_thousands_of_points():
    rng = np.random.default_rng(3)
    pts = rng.random((2000, 3))
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)  # on a sphere: most points are non-dominated
    hv = hypervolume(pts, ["min"] * 3, [1.0, 1.0, 1.0])
    assert 1 - np.pi / 6 - 0.03 < hv < 1 - np.pi / 6  # approaches the unit cube minus the sphere octant


def test_default_reference():
    df = pd.DataFrame({"val_acc": [0.5, 0.9, np.nan], "macs": [10e6, 50e6, 30e6], "loss": [-1.0, -3.0, -2.0]})
    ref = default_reference(df, parse_objectives("val_acc,macs,loss:max"))
    assert ref == pytest.approx([0.0, 55e6, -3.2])
    values = df[["val_acc", "macs"]].dropna().to_numpy()
    assert hypervolume(values, ["max", "min"], ref[:2]) > 0
    empty = default_reference(df.iloc[0:0], parse_objectives("val_acc,macs"))
    assert empty == [0.0, 1.0]


# ---------------------------------------------------------------- plot_front

def fake_trials(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    macs = np.exp(rng.uniform(np.log(5e6), np.log(500e6), n))
    acc = 0.5 + 0.1 * np.log10(macs / 5e6) + rng.normal(0, 0.03, n)
    status = np.array(["COMPLETED"] * n, dtype=object)
    status[rng.choice(n, 10, replace=False)] = "PRUNED"
    status[:3] = ["FAILED", "INFEASIBLE", "FAILED"]
    acc[:3] = np.nan
    return pd.DataFrame({"trial": range(n), "status": status, "macs": macs, "val_acc": acc})


PRESETS = pd.DataFrame({"name": ["mobilenet_v1", "mobilenet_v2", "shufflenet_v1_g3"],
                        "macs": [47e6, 98e6, 38e6], "val_acc": [0.79, 0.82, np.nan]})


def assert_png(path, min_bytes: int = 10_000):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > min_bytes


@pytest.mark.parametrize("presets", [None, PRESETS], ids=["no-presets", "presets"])
def test_plot_front_writes_png(tmp_path, presets):
    out = plot_front(fake_trials(), presets=presets, title="t", out=tmp_path / "sub" / "pareto.png")
    assert out == tmp_path / "sub" / "pareto.png"
    assert_png(out)


def test_plot_front_with_given_mask_no_status_and_linear_axis(tmp_path):
    df = pd.DataFrame({"macs": [10e6, 12e6, 15e6, 18e6], "val_acc": [0.6, 0.7, 0.65, 0.8]})
    mask = pareto_mask(df[["val_acc", "macs"]].to_numpy(), ["max", "min"])
    assert_png(plot_front(df, front_mask=mask, out=tmp_path / "a.png"))
    assert_png(plot_front(df.assign(params=df.macs / 50), panels=["params"], front_mask=pd.Series(mask),
                          out=tmp_path / "b.png"))
    with pytest.raises(ValueError, match="front_mask"):
        plot_front(df, front_mask=mask[:2], out=tmp_path / "c.png")
    with pytest.raises(ValueError, match="latency_ms"):
        plot_front(df, panels=["latency_ms"], out=tmp_path / "d.png")


def test_plot_front_empty_and_all_failed(tmp_path):
    empty = pd.DataFrame({"status": [], "macs": [], "val_acc": []})
    assert plot_front(empty, out=tmp_path / "empty.png").read_bytes()[:8] == PNG_MAGIC
    failed = pd.DataFrame({"status": ["FAILED", "INFEASIBLE"], "macs": [1e6, 5e7], "val_acc": [np.nan, np.nan]})
    assert plot_front(failed, presets=PRESETS, out=tmp_path / "failed.png").read_bytes()[:8] == PNG_MAGIC


def test_front_members_is_the_front_over_all_objectives_of_completed_trials():
    # (val_acc max, macs min, params min); trial 2 is off the 2-D (val_acc, macs) front, on the 3-D one
    df = pd.DataFrame({"status": ["COMPLETED", "COMPLETED", "COMPLETED", "PRUNED", "FAILED"],
                       "val_acc": [0.80, 0.85, 0.75, 0.99, np.nan],
                       "macs": [10e6, 20e6, 20e6, 1e6, 1e6], "params": [500e3, 600e3, 100e3, 1e3, 1e3]})
    three = parse_objectives("val_acc,macs,params")
    assert front_members(df, three).tolist() == [True, True, True, False, False]
    assert front_members(df, three[:2]).tolist() == [True, True, False, False, False]
    assert pareto_front(df, three).index.tolist() == [0, 1, 2]  # cheapest MACs first (stable)
    assert front_members(df.iloc[0:0], three).tolist() == []


def test_plot_front_one_figure_with_a_panel_per_cost(tmp_path):
    from matplotlib import image

    df = fake_trials().assign(params=lambda d: d.macs / 40)
    out = plot_front(df, "val_acc,macs,params", presets=PRESETS.assign(params=PRESETS.macs / 40),
                     title="search t", out=tmp_path / "p.png")
    height, width = image.imread(out).shape[:2]
    assert (width, height) == (1800, 600)  # two 7.5 x 5 in panels, one figure at 120 dpi
    one = image.imread(plot_front(df, parse_objectives("val_acc,macs"), panels=["macs"], out=tmp_path / "one.png"))
    assert one.shape[:2] == (600, 900)
