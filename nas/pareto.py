"""Multi-objective bookkeeping for searches: objectives, non-dominated fronts, hypervolume, the Pareto plot.

Everything here works on plain arrays / DataFrames (one row per trial) so it can be used on a finished
`trials.csv` as well as inside the search driver. Directions are explicit ("max" / "min") everywhere;
internally values are oriented so that one convention holds (bigger is better for dominance, smaller is
better for hypervolume) and the rest of the code never branches on direction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from nas.errors import NasError

# Objectives whose direction is known from the name alone (the `--objectives val_acc,macs` short form).
KNOWN_DIRECTIONS: dict[str, str] = {
    "val_acc": "max", "test_acc": "max", "accuracy": "max",
    "macs": "min", "params": "min", "latency": "min", "latency_ms": "min",
}
_DIRECTION_WORDS = {"max": "max", "maximize": "max", "min": "min", "minimize": "min"}

# Axis conventions for the plot: (divide by, label).
_AXES: dict[str, tuple[float, str]] = {
    "macs": (1e6, "MACs (M)"), "params": (1e6, "parameters (M)"),
    "latency_ms": (1.0, "latency (ms)"), "latency": (1.0, "latency (ms)"),
    "val_acc": (1.0, "validation accuracy"), "test_acc": (1.0, "test accuracy"),
    "accuracy": (1.0, "accuracy"),
}
_STATUS_STYLE = {  # status -> scatter kwargs; dark = trained to the end, light = stopped early
    "COMPLETED": dict(color="#1b2a49", s=22, alpha=0.85, label="completed"),
    "PRUNED": dict(color="#b8b8b8", s=16, alpha=0.9, label="pruned (ASHA)"),
}
_NO_RESULT = ("FAILED", "INFEASIBLE")


class ObjectiveError(NasError, ValueError):
    """A bad `--objectives` string; a NasError so the CLI prints the one line without a traceback."""


@dataclass(frozen=True)
class Objective:
    name: str
    direction: str  # "max" | "min"

    def __post_init__(self) -> None:
        if self.direction not in ("max", "min"):
            raise ObjectiveError(f"objective {self.name!r}: direction must be 'max' or 'min', got {self.direction!r}")


def parse_objectives(text: str) -> list[Objective]:
    """'val_acc,macs' or 'val_acc,energy:min' -> objectives; unknown names need an explicit ':max'/':min'."""
    tokens = [t.strip() for t in str(text).split(",")]
    if not any(tokens):
        raise ObjectiveError("no objectives given: use e.g. --objectives val_acc,macs")
    known = ", ".join(KNOWN_DIRECTIONS)
    out: list[Objective] = []
    for token in tokens:
        if not token:
            raise ObjectiveError(f"empty objective in {text!r}: separate names with single commas, e.g. val_acc,macs")
        name, sep, word = (part.strip() for part in token.partition(":"))
        if not name:
            raise ObjectiveError(f"objective {token!r} has no name: write NAME:max or NAME:min")
        if sep:
            direction = _DIRECTION_WORDS.get(word.lower())
            if direction is None:
                raise ObjectiveError(f"objective {token!r}: direction must be 'max' or 'min', got {word!r}")
        else:
            direction = KNOWN_DIRECTIONS.get(name)
            if direction is None:
                raise ObjectiveError(f"unknown objective {name!r}: use one of {known}, or {name}:max / {name}:min")
        if any(o.name == name for o in out):
            raise ObjectiveError(f"objective {name!r} is given twice in {text!r}")
        out.append(Objective(name, direction))
    return out


def _signs(directions: Sequence[str], m: int) -> np.ndarray:
    """+1 for 'max', -1 for 'min' (accepting 'maximize'/'minimize'), checked against the column count."""
    if isinstance(directions, str):
        directions = [directions]
    if len(directions) != m:
        raise ValueError(f"{len(directions)} directions for {m} objective columns")
    signs = []
    for d in directions:
        word = _DIRECTION_WORDS.get(str(d).lower())
        if word is None:
            raise ValueError(f"direction must be 'max' or 'min', got {d!r}")
        signs.append(1.0 if word == "max" else -1.0)
    return np.asarray(signs)


def _as_matrix(values, directions: Sequence[str]) -> np.ndarray:
    """N x M float matrix; a 1-D input is N points of one objective."""
    v = np.asarray(values, dtype=float)
    if v.ndim == 1:
        n_dirs = 1 if isinstance(directions, str) else len(directions)
        v = v.reshape(-1, 1) if n_dirs == 1 else v.reshape(1, -1)
    if v.ndim != 2:
        raise ValueError(f"values must be N x M, got shape {v.shape}")
    return v


def pareto_mask(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """True where no other point is at least as good in every objective and strictly better in one.

    Equal points do not dominate each other (both stay), and rows with a NaN are never on the front
    and dominate nothing (a trial without a result must not hide real ones). Work is chunked so that
    a few thousand points stay within a few tens of MB.
    """
    v = _as_matrix(values, directions)
    n, m = v.shape
    oriented = v * _signs(directions, m)  # now bigger is better everywhere
    valid = ~np.isnan(oriented).any(axis=1)
    mask = np.zeros(n, dtype=bool)
    pts = oriented[valid]
    k = len(pts)
    if k == 0:
        return mask
    dominated = np.zeros(k, dtype=bool)
    chunk = max(1, 4_000_000 // max(1, k * m))
    for start in range(0, k, chunk):
        cand = pts[start:start + chunk]                       # c x M
        ge = (pts[None, :, :] >= cand[:, None, :]).all(axis=2)  # c x k: other >= cand everywhere
        gt = (pts[None, :, :] > cand[:, None, :]).any(axis=2)   # c x k: other > cand somewhere
        dominated[start:start + chunk] = (ge & gt).any(axis=1)
    mask[np.flatnonzero(valid)] = ~dominated
    return mask


def _columns(df: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise ValueError(f"column(s) {', '.join(missing)} not in the trials table (have: {', '.join(map(str, df.columns))})")
    return df[list(names)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def pareto_front(df: pd.DataFrame, objectives: list[Objective]) -> pd.DataFrame:
    """The non-dominated rows, cheapest first (sorted by the first 'min' objective, else the first one)."""
    names = [o.name for o in objectives]
    mask = pareto_mask(_columns(df, names), [o.direction for o in objectives]) if len(df) else np.zeros(0, bool)
    front = df[mask]
    key = next((o for o in objectives if o.direction == "min"), objectives[0])
    return front.sort_values(key.name, ascending=key.direction == "min", kind="mergesort")


# ---------------------------------------------------------------- hypervolume (minimisation convention)

def _hv2d(p: np.ndarray, ref: np.ndarray) -> float:
    """Area dominated by points (all strictly inside ref) in 2-D: sweep along x, running minimum of y."""
    order = np.lexsort((p[:, 1], p[:, 0]))
    xs, ys = p[order, 0], p[order, 1]
    best_y = np.minimum.accumulate(ys)
    widths = np.diff(np.append(xs, ref[0]))
    return float(np.sum(widths * (ref[1] - best_y)))


def _hv(p: np.ndarray, ref: np.ndarray) -> float:
    """Exact volume by slicing along the last objective (HSO): each slab is an (M-1)-D hypervolume.

    M=2 is a sort + sweep, M=3 is N sweeps (fine for thousands of points), higher M is exponential
    in M and polynomial in N, so meant for small sets.
    """
    m = p.shape[1]
    if len(p) == 0:
        return 0.0
    if m == 1:
        return float(ref[0] - p[:, 0].min())
    if m == 2:
        return _hv2d(p, ref)
    order = np.argsort(p[:, -1], kind="mergesort")
    p = p[order]
    z = np.append(p[:, -1], ref[-1])
    total = 0.0
    for i in range(len(p)):
        depth = z[i + 1] - z[i]
        if depth > 0:
            total += depth * _hv(p[: i + 1, :-1], ref[:-1])
    return total


def hypervolume(values, directions: Sequence[str], reference: Sequence[float]) -> float:
    """Volume of objective space dominated by the points and bounded by `reference` (bigger is better).

    Exact for any M (see `_hv`). Points that do not strictly beat the reference in every objective
    add nothing, and NaN rows are ignored, so the value only ever grows as trials are added.
    """
    v = _as_matrix(values, directions)
    m = v.shape[1]
    signs = _signs(directions, m)
    ref = np.asarray(reference, dtype=float).reshape(-1)
    if ref.shape != (m,):
        raise ValueError(f"reference has {ref.size} values for {m} objectives")
    if np.isnan(ref).any():
        raise ValueError(f"reference contains NaN: {list(reference)}")
    pts, r = -v * signs, -ref * signs  # minimisation convention: smaller is better
    pts = pts[~np.isnan(pts).any(axis=1)]
    pts = pts[(pts < r).all(axis=1)]
    if len(pts) == 0:
        return 0.0
    if m >= 3:  # dominated points never change the volume; dropping them keeps the recursion small
        pts = np.unique(pts[pareto_mask(pts, ["min"] * m)], axis=0)
    return _hv(pts, r)


def default_reference(df: pd.DataFrame, objectives: list[Objective]) -> list[float]:
    """A reference point a bit worse than every trial, so that extreme front points still count.

    'max' objectives: 0 when all values are >= 0 (accuracy), else 10% of the range below the minimum.
    'min' objectives: 1.1 x the maximum when it is positive (MACs, params), else 10% of the range above.
    A column with no finite values falls back to 0 / 1 (the hypervolume of no points is 0 anyway).
    """
    values = _columns(df, [o.name for o in objectives]) if len(df) else np.empty((0, len(objectives)))
    ref = []
    for j, o in enumerate(objectives):
        col = values[:, j]
        col = col[np.isfinite(col)]
        if len(col) == 0:
            ref.append(0.0 if o.direction == "max" else 1.0)
            continue
        lo, hi = float(col.min()), float(col.max())
        pad = 0.1 * (hi - lo) or 0.1 * abs(hi) or 1.0
        if o.direction == "max":
            ref.append(0.0 if lo >= 0 else lo - pad)
        else:
            ref.append(1.1 * hi if hi > 0 else hi + pad)
    return ref


# ---------------------------------------------------------------- plot

def reference_points(trials: pd.DataFrame) -> pd.DataFrame | None:
    """The paper presets evaluated in a search (`reference` column) as `plot_front` presets:
    name, their counts, and val_acc only where they completed (a pruned one shows no accuracy)."""
    refs = trials[trials["reference"].fillna("") != ""]
    if not len(refs):
        return None
    return refs.assign(name=refs["reference"], val_acc=refs["val_acc"].where(refs["status"] == "COMPLETED"))


def format_front(front: pd.DataFrame, label: str, labels: Sequence[str]) -> str:
    """The front as a terminal table: trial, MACs, params, val_acc and one `label` column."""
    from nas.table import format_table, millions

    rows = [[int(r["trial"]), millions(r["macs"]), f"{r['params'] / 1e6:.3f}M", f"{r['val_acc']:.4f}", text]
            for (_, r), text in zip(front.iterrows(), labels)]
    return format_table(["trial", "MACs", "params", "val_acc", label], rows, align="rrrrl")


def _axis(name: str) -> tuple[float, str]:
    return _AXES.get(name, (1.0, name))


def plot_front(df: pd.DataFrame, x: str = "macs", y: str = "val_acc", *, front_mask=None,
               presets: pd.DataFrame | None = None, title: str = "", out: str | Path) -> Path:
    """Scatter every trial, draw the front as its attainment staircase, mark the presets; write a PNG.

    Colours follow `status` when present (completed dark, pruned light grey); FAILED / INFEASIBLE rows
    have no accuracy, so they appear as x marks along the bottom edge at their cost when it is known.
    `front_mask` (aligned with `df`) defaults to the non-dominated completed rows with x minimised and
    y maximised (directions from the known objective names). The figure is drawn on an Agg canvas
    without pyplot, so no display and no global backend change are needed.
    """
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib import ticker, transforms

    out = Path(out)
    xs_div, x_label = _axis(x)
    ys_div, y_label = _axis(y)
    xy = _columns(df, [x, y]) if len(df) else np.empty((0, 2))
    xv, yv = xy[:, 0] / xs_div, xy[:, 1] / ys_div
    status = (df["status"].astype(str).str.upper().to_numpy() if "status" in df.columns
              else np.full(len(df), "COMPLETED", dtype=object))
    has_xy = np.isfinite(xv) & np.isfinite(yv)
    no_result = np.isin(status, _NO_RESULT)

    x_dir, y_dir = KNOWN_DIRECTIONS.get(x, "min"), KNOWN_DIRECTIONS.get(y, "max")
    if front_mask is None:
        eligible = has_xy & (status == "COMPLETED")
        front = np.zeros(len(df), dtype=bool)
        front[eligible] = pareto_mask(np.column_stack([xv, yv])[eligible], [x_dir, y_dir])
    else:
        front = np.asarray(front_mask, dtype=bool).reshape(-1)
        if front.shape != (len(df),):
            raise ValueError(f"front_mask has {front.size} entries for {len(df)} rows")
        front = front & has_xy

    fig = Figure(figsize=(7.5, 5.0), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()

    shown = has_xy & ~no_result
    for st in np.unique(status[shown]):
        sel = shown & (status == st)
        style = _STATUS_STYLE.get(st, dict(color="#7a7a7a", s=16, alpha=0.8, label=st.lower()))
        ax.scatter(xv[sel], yv[sel], marker="o", linewidths=0, zorder=2,
                   **{**style, "label": f"{style['label']} ({int(sel.sum())})"})

    preset_x = preset_y = np.empty(0)
    if presets is not None and len(presets):
        pxy = _columns(presets, [x, y])
        preset_x, preset_y = pxy[:, 0] / xs_div, pxy[:, 1] / ys_div
        names = presets["name"].astype(str).tolist() if "name" in presets.columns else [""] * len(presets)

    # Axis ranges first, so failed marks and the staircase end can be placed at the edges.
    all_x = np.concatenate([xv[np.isfinite(xv) & (shown | no_result)], preset_x[np.isfinite(preset_x)]])
    log_x = bool(len(all_x)) and all_x.min() > 0 and all_x.max() / all_x.min() > 10
    if log_x:
        ax.set_xscale("log")

    if front.any():
        idx = np.flatnonzero(front)
        order = np.lexsort((-yv[idx] if y_dir == "max" else yv[idx], xv[idx] if x_dir == "min" else -xv[idx]))
        fx, fy = xv[idx][order], yv[idx][order]
        edge_x = (all_x.max() if x_dir == "min" else all_x.min()) if len(all_x) else fx[-1]
        ax.plot(np.append(fx, edge_x), np.append(fy, fy[-1]), drawstyle="steps-post", color="#d95f02",
                linewidth=1.6, zorder=3, label="Pareto front (attainment)")
        ax.scatter(fx, fy, s=60, facecolors="#fdb863", edgecolors="#d95f02", linewidths=1.4, zorder=4,
                   label=f"front members ({len(idx)})")

    if len(preset_x):
        ok = np.isfinite(preset_x) & np.isfinite(preset_y)
        if ok.any():
            ax.scatter(preset_x[ok], preset_y[ok], marker="*", s=170, color="#1b9e77", edgecolors="black",
                       linewidths=0.6, zorder=5, label="presets")
        for px, py, name, good in zip(preset_x, preset_y, names, ok):
            if good:
                ax.annotate(name, (px, py), xytext=(6, 5), textcoords="offset points", fontsize=8,
                            color="#0b5d45", zorder=6)
            elif np.isfinite(px):  # cost known, accuracy not: a vertical guide at its cost
                ax.axvline(px, color="#1b9e77", linestyle=":", linewidth=1.0, zorder=1)
                ax.annotate(name, (px, 0.98), xycoords=("data", "axes fraction"), rotation=90, va="top",
                            ha="right", fontsize=8, color="#0b5d45")

    fails = no_result & np.isfinite(xv)
    if fails.any():
        trans = transforms.blended_transform_factory(ax.transData, ax.transAxes)
        ax.scatter(xv[fails], np.full(int(fails.sum()), 0.015), transform=trans, marker="x", s=22,
                   color="#c0392b", linewidths=1.0, zorder=2, clip_on=False,
                   label=f"failed / infeasible, no accuracy ({int(fails.sum())})")

    if log_x:
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        if all_x.max() / all_x.min() < 100:  # few decades: label 2x, 3x, 5x minor ticks too
            ax.xaxis.set_minor_formatter(ticker.FuncFormatter(
                lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "235" else ""))
        else:
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    if title:
        ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    if not len(df) and not len(preset_x):
        ax.text(0.5, 0.5, "no trials", transform=ax.transAxes, ha="center", va="center", color="grey")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, format="png")
    return out
