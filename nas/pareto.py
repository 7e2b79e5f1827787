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
from nas.mlflow_layout import MACS, PARAMS, VAL_ACC
from nas.status import Status

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
    Status.COMPLETED.value: dict(color="#1b2a49", s=22, alpha=0.85, label="completed"),
    Status.PRUNED.value: dict(color="#b8b8b8", s=16, alpha=0.9, label="pruned (ASHA)"),
}


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


def pareto_front(df: pd.DataFrame, objectives: Sequence[Objective]) -> pd.DataFrame:
    """The front rows (`front_members`: completed, non-dominated over all `objectives`), cheapest
    first (sorted by the first 'min' objective, else the first one)."""
    front = df[front_members(df, objectives)]
    key = next((o for o in objectives if o.direction == "min"), objectives[0])
    return front.sort_values(key.name, ascending=key.direction == "min", kind="mergesort")


def front_members(trials: pd.DataFrame, objectives: Sequence[Objective]) -> np.ndarray:
    """The one front of a search: its completed trials non-dominated over ALL its objectives.

    A boolean mask aligned with `trials` (rows count as completed when there is no `status`
    column). The search's `pareto` column, `nas pareto`'s table and the figure all use this.
    """
    mask = np.zeros(len(trials), dtype=bool)
    if not len(trials):
        return mask
    done = (trials["status"].astype(str).str.upper() == Status.COMPLETED).to_numpy() \
        if "status" in trials.columns else np.ones(len(trials), dtype=bool)
    names = [o.name for o in objectives]
    mask[done] = pareto_mask(_columns(trials[done], names), [o.direction for o in objectives])
    return mask


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
    return refs.assign(name=refs["reference"], val_acc=refs["val_acc"].where(refs["status"] == Status.COMPLETED))


def format_front(front: pd.DataFrame, label: str, labels: Sequence[str]) -> str:
    """The front as a terminal table: trial, MACs, params, val_acc and one `label` column."""
    from nas.table import format_table, millions

    rows = [[int(r["trial"]), millions(r["macs"]), f"{r['params'] / 1e6:.3f}M", f"{r['val_acc']:.4f}", text]
            for (_, r), text in zip(front.iterrows(), labels)]
    return format_table(["trial", "MACs", "params", "val_acc", label], rows, align="rrrrl")


def search_title(name: str) -> str:
    """The title of a search's figure, the same in `nas search` and `nas pareto`."""
    return f"search {name}: validation accuracy vs cost (every trial on the same budget)"


def _axis(name: str) -> tuple[float, str]:
    return _AXES.get(name, (1.0, name))


def _panels(trials: pd.DataFrame, objectives: Sequence[Objective]) -> list[str]:
    """x axes: MACs and params (when the frame has them or they are objectives), then the other
    'min' objectives; a missing objective column fails later with its name."""
    names = [o.name for o in objectives if o.direction == "min"]
    first = [n for n in (MACS, PARAMS) if n in trials.columns or n in names]
    return first + [n for n in names if n not in first]


def plot_front(trials: pd.DataFrame, objectives: Sequence[Objective] | str = "val_acc,macs", *,
               out: str | Path, presets: pd.DataFrame | None = None, title: str = "",
               panels: Sequence[str] | None = None, front_mask=None) -> Path:
    """The search figure: accuracy vs each of `panels` (default MACs, params) in one PNG.

    Every trial by status (completed dark, pruned grey; no accuracy: x marks on the bottom edge),
    the front over all `objectives` (`front_members`, or `front_mask` aligned with `trials`) as
    orange rings with its staircase in each panel, the reference nets (`presets`: name and the
    columns) as labelled stars. One legend names the objectives the front is over. Drawn on an
    Agg canvas without pyplot (no display, no global backend change).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    objectives = parse_objectives(objectives) if isinstance(objectives, str) else list(objectives)
    y = next((o.name for o in objectives if o.direction == "max"), VAL_ACC)
    panels = list(panels) if panels is not None else _panels(trials, objectives)
    if front_mask is None:
        front = front_members(trials, objectives)
    else:
        front = np.asarray(front_mask, dtype=bool).reshape(-1)
        if front.shape != (len(trials),):
            raise ValueError(f"front_mask has {front.size} entries for {len(trials)} rows")
    status = (trials["status"].astype(str).str.upper().to_numpy() if "status" in trials.columns
              else np.full(len(trials), Status.COMPLETED.value, dtype=object))
    fig = Figure(figsize=(7.5 * len(panels), 5.0), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    over = ", ".join(o.name for o in objectives)
    for i, x in enumerate(panels):
        _panel(fig.add_subplot(1, len(panels), i + 1), trials, x, y, status=status, front=front,
               presets=presets, front_label=f"Pareto front over {over}")
    handles, labels = fig.axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=3 if len(panels) < 2 else min(len(handles), 6),
                   fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, format="png")
    return out


def _panel(ax, trials: pd.DataFrame, x: str, y: str, *, status: np.ndarray, front: np.ndarray,
           presets: pd.DataFrame | None, front_label: str) -> None:
    """One panel of `plot_front`: y (maximised) against x (minimised)."""
    x_div, x_label = _axis(x)
    y_div, y_label = _axis(y)
    xy = _columns(trials, [x, y]) if len(trials) else np.empty((0, 2))
    xv, yv = xy[:, 0] / x_div, xy[:, 1] / y_div
    has_xy = np.isfinite(xv) & np.isfinite(yv)
    order = {st: i for i, st in enumerate(_STATUS_STYLE)}  # completed, pruned, then the rest
    for st in sorted(set(status[has_xy]), key=lambda st: (order.get(st, len(order)), st)):
        sel = has_xy & (status == st)
        style = _STATUS_STYLE.get(st, dict(color="#7a7a7a", s=16, alpha=0.8, label=st.lower()))
        ax.scatter(xv[sel], yv[sel], marker="o", linewidths=0, zorder=2,
                   **{**style, "label": f"{style['label']} ({int(sel.sum())})"})
    pxy = _columns(presets, [x, y]) / [x_div, y_div] if presets is not None and len(presets) else np.empty((0, 2))
    all_x = np.concatenate([xv[np.isfinite(xv)], pxy[:, 0][np.isfinite(pxy[:, 0])]])
    if len(all_x) and all_x.min() > 0 and all_x.max() / all_x.min() > 10:
        _log_x(ax, all_x)
    on = front & has_xy
    if on.any():
        _staircase(ax, xv[on], yv[on], all_x.max())
        ax.scatter(xv[on], yv[on], s=60, facecolors="#fdb863", edgecolors="#d95f02", linewidths=1.4,
                   zorder=4, label=f"{front_label} ({int(on.sum())})")
    if len(pxy):
        names = presets["name"].astype(str).tolist() if "name" in presets.columns else [""] * len(pxy)
        _presets(ax, pxy[:, 0], pxy[:, 1], names)
    unfinished = np.isin(status, [s.value for s in Status if s.unfinished])
    stopped = np.isfinite(xv) & ~np.isfinite(yv) & unfinished
    if stopped.any():
        ax.scatter(xv[stopped], np.full(int(stopped.sum()), 0.015), transform=ax.get_xaxis_transform(),
                   marker="o", s=22, facecolors="none", edgecolors="#7a7a7a", zorder=2, clip_on=False,
                   label=f"interrupted: --resume trains them ({int(stopped.sum())})")
    lost = np.isfinite(xv) & ~np.isfinite(yv) & ~unfinished
    if lost.any():
        ax.scatter(xv[lost], np.full(int(lost.sum()), 0.015), transform=ax.get_xaxis_transform(),
                   marker="x", s=22, color="#c0392b", linewidths=1.0, zorder=2, clip_on=False,
                   label=f"no accuracy: failed / infeasible ({int(lost.sum())})")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.grid(True, which="major", alpha=0.3)
    if not len(trials) and not len(pxy):
        ax.text(0.5, 0.5, "no trials", transform=ax.transAxes, ha="center", va="center", color="grey")


def _staircase(ax, fx: np.ndarray, fy: np.ndarray, right: float) -> None:
    """The attainment staircase of the front members in this plane: the best accuracy reachable
    at this x or less, drawn to the right edge. Members below it are on the front through
    another objective."""
    order = np.lexsort((-fy, fx))
    fx, fy = fx[order], np.maximum.accumulate(fy[order])
    ax.plot(np.append(fx, max(right, fx[-1])), np.append(fy, fy[-1]), drawstyle="steps-post",
            color="#d95f02", linewidth=1.4, zorder=3, label="front staircase: best accuracy at this cost or less")


def _presets(ax, px: np.ndarray, py: np.ndarray, names: Sequence[str]) -> None:
    """Reference nets: labelled stars; one with no accuracy (pruned) as a dotted line at its cost."""
    ok = np.isfinite(px) & np.isfinite(py)
    if ok.any():
        ax.scatter(px[ok], py[ok], marker="*", s=170, color="#1b9e77", edgecolors="black",
                   linewidths=0.6, zorder=5, label="paper reference nets")
    for x, y, name, good in zip(px, py, names, ok):
        if good:
            ax.annotate(name, (x, y), xytext=(6, 5), textcoords="offset points", fontsize=8,
                        color="#0b5d45", zorder=6)
        elif np.isfinite(x):
            ax.axvline(x, color="#1b9e77", linestyle=":", linewidth=1.0, zorder=1)
            ax.annotate(name, (x, 0.98), xycoords=("data", "axes fraction"), rotation=90, va="top",
                        ha="right", fontsize=8, color="#0b5d45")


def _log_x(ax, all_x: np.ndarray) -> None:
    """A log x axis with plain tick labels (2x, 3x, 5x minor labels over few decades)."""
    from matplotlib import ticker

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    if all_x.max() / all_x.min() < 100:
        ax.xaxis.set_minor_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "235" else ""))
    else:
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.tick_params(axis="x", which="minor", labelsize=7)
