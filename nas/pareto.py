"""Multi-objective bookkeeping for searches: objectives, non-dominated fronts, hypervolume (the plot:
`nas.pareto_plot`), on plain arrays / DataFrames with one row per trial. Directions are explicit
("max" / "min"); values are oriented internally (bigger is better for dominance, smaller for
hypervolume), so no other code branches on direction."""

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


class ObjectiveError(NasError, ValueError):
    """A bad `--objectives` string; a NasError so the CLI prints the one line without a traceback."""


@dataclass(frozen=True)
class Objective:
    name: str
    direction: str  # "max" | "min"

    def __post_init__(self) -> None:
        if self.direction not in ("max", "min"):
            raise ObjectiveError(f"objective {self.name!r}: direction must be 'max' or 'min', got {self.direction!r}")


def _objective(token: str, text: str) -> Objective:
    if not token:
        raise ObjectiveError(f"empty objective in {text!r}: separate names with single commas, e.g. val_acc,macs")
    name, sep, word = (part.strip() for part in token.partition(":"))
    if not name:
        raise ObjectiveError(f"objective {token!r} has no name: write NAME:max or NAME:min")
    if sep and (direction := _DIRECTION_WORDS.get(word.lower())) is None:
        raise ObjectiveError(f"objective {token!r}: direction must be 'max' or 'min', got {word!r}")
    if not sep and (direction := KNOWN_DIRECTIONS.get(name)) is None:
        raise ObjectiveError(f"unknown objective {name!r}: use one of {', '.join(KNOWN_DIRECTIONS)}, or "
                             f"{name}:max / {name}:min")
    return Objective(name, direction)


def parse_objectives(text: str) -> list[Objective]:
    """'val_acc,macs' or 'val_acc,energy:min' -> objectives; unknown names need an explicit ':max'/':min'."""
    tokens = [t.strip() for t in str(text).split(",")]
    if not any(tokens):
        raise ObjectiveError("no objectives given: use e.g. --objectives val_acc,macs")
    out: list[Objective] = []
    for token in tokens:
        objective = _objective(token, text)
        if any(o.name == objective.name for o in out):
            raise ObjectiveError(f"objective {objective.name!r} is given twice in {text!r}")
        out.append(objective)
    return out


def _signs(directions: Sequence[str], m: int) -> np.ndarray:
    """+1 for 'max', -1 for 'min' (accepting 'maximize'/'minimize'), checked against the column count."""
    directions = [directions] if isinstance(directions, str) else directions
    if len(directions) != m:
        raise ValueError(f"{len(directions)} directions for {m} objective columns")
    words = [_DIRECTION_WORDS.get(str(d).lower()) for d in directions]
    if None in words:
        raise ValueError(f"direction must be 'max' or 'min', got {directions[words.index(None)]!r}")
    return np.asarray([1.0 if w == "max" else -1.0 for w in words])


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
    """The one dominance rule, on oriented values, broadcast over leading axes: `a` is at least as
    good as `b` in every objective and strictly better in one."""
    return (a >= b).all(axis=-1) & (a > b).any(axis=-1)


def pareto_mask(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """True where no other point dominates. Equal points both stay; rows with a NaN are never on the
    front and dominate nothing. Chunked: a few thousand points stay within tens of MB."""
    pts = oriented(values, directions)
    valid = ~np.isnan(pts).any(axis=1)
    mask = np.zeros(len(pts), dtype=bool)
    pts = pts[valid]
    dominated = np.zeros(len(pts), dtype=bool)
    chunk = max(1, 4_000_000 // max(1, pts.size))
    for start in range(0, len(pts), chunk):
        cand = pts[start:start + chunk]  # c x M
        dominated[start:start + chunk] = dominates(pts[None, :, :], cand[:, None, :]).any(axis=1)
    mask[np.flatnonzero(valid)] = ~dominated
    return mask


def numeric_columns(df: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise ValueError(f"column(s) {', '.join(missing)} not in the trials table "
                         f"(have: {', '.join(map(str, df.columns))})")
    return df[list(names)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def pareto_front(df: pd.DataFrame, objectives: Sequence[Objective]) -> pd.DataFrame:
    """The `front_members` rows, cheapest first (by the first 'min' objective, else the first one)."""
    front = df[front_members(df, objectives)]
    key = next((o for o in objectives if o.direction == "min"), objectives[0])
    return front.sort_values(key.name, ascending=key.direction == "min", kind="mergesort")


def front_members(trials: pd.DataFrame, objectives: Sequence[Objective]) -> np.ndarray:
    """The one front of a search (its `pareto` column, `nas pareto`'s table, the figure): a mask of
    the completed trials (all, without a `status` column) non-dominated over ALL its objectives."""
    mask = np.zeros(len(trials), dtype=bool)
    if not len(trials):
        return mask
    done = (trials["status"].astype(str).str.upper() == Status.COMPLETED).to_numpy() \
        if "status" in trials.columns else np.ones(len(trials), dtype=bool)
    names = [o.name for o in objectives]
    mask[done] = pareto_mask(numeric_columns(trials[done], names), [o.direction for o in objectives])
    return mask


# ---------------------------------------------------------------- hypervolume (minimisation convention)

def _hv(p: np.ndarray, ref: np.ndarray) -> float:
    """Exact volume by slicing along the last objective (HSO): M=2 is a sort and a sweep, M=3 N
    sweeps (fine for thousands of points), higher M exponential in M, so for small sets."""
    m = p.shape[1]
    if len(p) == 0:
        return 0.0
    if m == 1:
        return float(ref[0] - p[:, 0].min())
    if m == 2:  # sweep along x with the running minimum of y
        p = p[np.lexsort((p[:, 1], p[:, 0]))]
        return float(np.sum(np.diff(np.append(p[:, 0], ref[0])) * (ref[1] - np.minimum.accumulate(p[:, 1]))))
    p = p[np.argsort(p[:, -1], kind="mergesort")]
    z = np.append(p[:, -1], ref[-1])
    return sum((z[i + 1] - z[i]) * _hv(p[: i + 1, :-1], ref[:-1]) for i in range(len(p)) if z[i + 1] > z[i])


def hypervolume(values, directions: Sequence[str], reference: Sequence[float]) -> float:
    """Volume of objective space dominated by the points and bounded by `reference` (bigger is better).
    Points not strictly beating the reference everywhere add nothing and NaN rows are ignored, so
    the value only grows as trials are added."""
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
    if m >= 3 and len(pts):  # dominated points never change the volume; dropping them keeps the recursion small
        pts = np.unique(pts[pareto_mask(pts, ["min"] * m)], axis=0)
    return float(_hv(pts, r))


def default_reference(df: pd.DataFrame, objectives: list[Objective]) -> list[float]:
    """A reference point a bit worse than every trial, so extreme front points still count: 'max'
    objectives 0 when all values are >= 0 (accuracy), 'min' ones 1.1 x a positive maximum (MACs),
    else 10% of the range beyond; a column without finite values 0 / 1."""
    values = numeric_columns(df, [o.name for o in objectives]) if len(df) else np.empty((0, len(objectives)))
    ref = []
    for j, o in enumerate(objectives):
        col = values[:, j][np.isfinite(values[:, j])]
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
