"""The search figure and its terminal table: accuracy against each cost with the Pareto front
(computed by `nas.pareto`)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from nas.mlflow_layout import LATENCY_MS, MACS, PARAMS, VAL_ACC
from nas.pareto import Objective, front_members, numeric_columns, parse_objectives
from nas.status import Status
from nas.table import format_table, millions

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


def reference_points(trials: pd.DataFrame) -> pd.DataFrame | None:
    """A search's paper presets (`reference` column) as `plot_front` presets; val_acc only where completed."""
    refs = trials[trials["reference"].fillna("") != ""]
    if not len(refs):
        return None
    return refs.assign(name=refs["reference"], val_acc=refs["val_acc"].where(refs["status"] == Status.COMPLETED))


def format_front(front: pd.DataFrame, label: str = "reference", labels: Sequence[str] | None = None) -> str:
    """The front as a terminal table; the last column is `labels`, else the front's `label` column."""
    labels = [r or "-" for r in front[label]] if labels is None else labels
    rows = [[int(r["trial"]), millions(r["macs"]), f"{r['params'] / 1e6:.3f}M", f"{r['val_acc']:.4f}", text]
            for (_, r), text in zip(front.iterrows(), labels)]
    return format_table(["trial", "MACs", "params", "val_acc", label], rows, align="rrrrl")


def search_title(name: str) -> str:
    """The title of a search's figure, the same in `nas search` and `nas pareto`."""
    return f"search {name}: validation accuracy vs cost (every trial on the same budget)"


def _panels(trials: pd.DataFrame, objectives: Sequence[Objective]) -> list[str]:
    """x axes: MACs and params (when present or objectives), measured latency, the other 'min' objectives."""
    names = [o.name for o in objectives if o.direction == "min"]
    measured = bool(LATENCY_MS in trials.columns and trials[LATENCY_MS].notna().any())
    first = [n for n in (MACS, PARAMS) if n in trials.columns or n in names] + [LATENCY_MS] * measured
    return first + [n for n in names if n not in first]


def plot_front(trials: pd.DataFrame, objectives: Sequence[Objective] | str = "val_acc,macs", *,
               out: str | Path, presets: pd.DataFrame | None = None, title: str = "",
               panels: Sequence[str] | None = None, front_mask=None) -> Path:
    """The search figure: accuracy vs each of `panels` in one PNG, trials by status, the front over
    all `objectives` (or `front_mask`) with its staircase, `presets` as labelled stars. Drawn on an
    Agg canvas without pyplot (no display, no global backend change)."""
    # matplotlib loads here: ~0.3 s that `nas search --help` and the workers do not need
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
    (x_div, x_label), (y_div, y_label) = _AXES.get(x, (1.0, x)), _AXES.get(y, (1.0, y))
    xy = numeric_columns(trials, [x, y]) if len(trials) else np.empty((0, 2))
    xv, yv = xy[:, 0] / x_div, xy[:, 1] / y_div
    has_xy = np.isfinite(xv) & np.isfinite(yv)
    order = {st: i for i, st in enumerate(_STATUS_STYLE)}  # completed, pruned, then the rest
    for st in sorted(set(status[has_xy]), key=lambda st: (order.get(st, len(order)), st)):
        sel = has_xy & (status == st)
        style = _STATUS_STYLE.get(st, dict(color="#7a7a7a", s=16, alpha=0.8, label=st.lower()))
        ax.scatter(xv[sel], yv[sel], marker="o", linewidths=0, zorder=2,
                   **{**style, "label": f"{style['label']} ({int(sel.sum())})"})
    has_presets = presets is not None and len(presets)
    pxy = numeric_columns(presets, [x, y]) / [x_div, y_div] if has_presets else np.empty((0, 2))
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
    for sel, style in ((unfinished, dict(marker="o", facecolors="none", edgecolors="#7a7a7a",
                                         label="interrupted: --resume trains them")),
                       (~unfinished, dict(marker="x", color="#c0392b", linewidths=1.0,
                                          label="no accuracy: failed / infeasible"))):
        sel = sel & np.isfinite(xv) & ~np.isfinite(yv)  # on the bottom edge
        if sel.any():
            ax.scatter(xv[sel], np.full(int(sel.sum()), 0.015), transform=ax.get_xaxis_transform(), s=22,
                       zorder=2, clip_on=False, **{**style, "label": f"{style['label']} ({int(sel.sum())})"})
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.grid(True, which="major", alpha=0.3)
    if not len(trials) and not len(pxy):
        ax.text(0.5, 0.5, "no trials", transform=ax.transAxes, ha="center", va="center", color="grey")


def _staircase(ax, fx: np.ndarray, fy: np.ndarray, right: float) -> None:
    """The best accuracy reachable at this x or less, to the right edge; members below it are on
    the front through another objective."""
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
