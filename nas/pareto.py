"""Multi-objective bookkeeping for searches: objectives, non-dominated fronts, hypervolume (the plot: `nas.pareto_plot`).

Everything here works on plain arrays / DataFrames (one row per trial) so it can be used on a finished
`trials.csv` as well as inside the search driver. Directions are explicit ("max" / "min") everywhere;
internally values are oriented so that one convention holds (bigger is better for dominance, smaller is
better for hypervolume) and the rest of the code never branches on direction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from nas.errors import NasError
from nas.status import Status

# Objectives whose direction is known from the name alone (the `--objectives val_acc,macs` short form).
KNOWN_DIRECTIONS: dict[str, str] = {
    "val_acc": "max", "test_acc": "max", "accuracy": "max",
    "macs": "min", "params": "min", "latency": "min", "latency_ms": "min",
}
_DIRECTION_WORDS = {"max": "max", "maximize": "max", "min": "min", "minimize": "min"}

# Axis conventions for the plot: (divide by, label).

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


def _as_matrix(values, directions: Sequence[str] | None) -> np.ndarray:
    """N x M float matrix; a 1-D input is N points of one objective (directions None: one)."""
    v = np.asarray(values, dtype=float)
    if v.ndim == 1:
        n_dirs = 1 if directions is None or isinstance(directions, str) else len(directions)
        v = v.reshape(-1, 1) if n_dirs == 1 else v.reshape(1, -1)
    if v.ndim != 2:
        raise ValueError(f"values must be N x M, got shape {v.shape}")
    return v


def oriented(values, directions: Sequence[str] | None) -> np.ndarray:
    """N x M float matrix with bigger = better everywhere (directions None: already so)."""
    v = _as_matrix(values, directions)
    return v if directions is None else v * _signs(directions, v.shape[1])


def dominates(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The one dominance rule, on oriented values (`oriented`: bigger is better), broadcast over
    leading axes: `a` is at least as good as `b` in every objective and strictly better in one."""
    return (a >= b).all(axis=-1) & (a > b).any(axis=-1)


def pareto_mask(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """True where no other point is at least as good in every objective and strictly better in one.

    Equal points do not dominate each other (both stay), and rows with a NaN are never on the front
    and dominate nothing (a trial without a result must not hide real ones). Work is chunked so that
    a few thousand points stay within a few tens of MB.
    """
    pts = oriented(values, directions)  # now bigger is better everywhere
    n, m = pts.shape
    valid = ~np.isnan(pts).any(axis=1)
    mask = np.zeros(n, dtype=bool)
    pts = pts[valid]
    k = len(pts)
    if k == 0:
        return mask
    dominated = np.zeros(k, dtype=bool)
    chunk = max(1, 4_000_000 // max(1, k * m))
    for start in range(0, k, chunk):
        cand = pts[start:start + chunk]  # c x M
        dominated[start:start + chunk] = dominates(pts[None, :, :], cand[:, None, :]).any(axis=1)
    mask[np.flatnonzero(valid)] = ~dominated
    return mask


def numeric_columns(df: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
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
    mask[done] = pareto_mask(numeric_columns(trials[done], names), [o.direction for o in objectives])
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
    values = numeric_columns(df, [o.name for o in objectives]) if len(df) else np.empty((0, len(objectives)))
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
