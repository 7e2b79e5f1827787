"""Results (one row per cell x seed) -> summary (one row per cell, mean ± std over seeds) -> the
printed table beside the paper's numbers. Accuracies are fractions in the CSVs, percent in the
table; the test accuracy is reported, never used to pick anything. Each cell gets a 95% t-interval
and Welch's p-value against its reference cell (`reference_cell`); `reproduced` says whether the
difference has the paper's direction (`paper_direction`) at p < ALPHA."""

from __future__ import annotations

import math
import re
from typing import Any, Callable

import pandas as pd

from nas.ablate.experiment import Cell, Experiment, show
from nas.stats import ci95, welch_p_value
from nas.status import Status

ALPHA = 0.05  # the significance level `reproduced` uses

RESULT_COLUMNS = ["cell", "seed", "macs", "params", "val_acc", "test_acc", "epochs", "status",
                  "error", "wall_s", "device", "node", "mlflow_run_id"]


def result_row(exp: Experiment, point, result: dict[str, Any], run_id: str | None) -> dict[str, Any]:
    """One results.csv row: a cell x seed with where it ran (device kind and Ray node)."""
    return {"cell": point.cell.label, **{name: show(value) for name, value in point.cell.values.items()},
            "seed": point.seed, "macs": point.macs, "params": point.params,
            "val_acc": result.get("val_acc"), "test_acc": result.get("test_acc"),
            "epochs": result.get("epochs", 0), "status": result["status"],
            "error": result.get("error", ""), "wall_s": round(float(result.get("wall_s") or 0), 2),
            "device": result.get("device") if result.get("device") != "?" else "",
            "node": result.get("node", ""), "mlflow_run_id": run_id or ""}


def results_frame(exp: Experiment, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows in grid order (cells as the file lists them, then seeds)."""
    factors = [f.name for f in exp.factors]
    columns = ["cell", *factors] + [c for c in RESULT_COLUMNS if c != "cell"]
    if not rows:
        return pd.DataFrame(columns=columns)
    order = {c.label: i for i, c in enumerate(exp.cells())}
    df = pd.DataFrame(rows, columns=columns)
    df["_order"] = df["cell"].map(order)
    return df.sort_values(["_order", "seed"]).drop(columns="_order").reset_index(drop=True)


def reference_cell(exp: Experiment, cell: Cell) -> Cell | None:
    """The cell this one is compared with: its last factor not at its first (reference) level
    moved there; None for the cell with every factor at its reference level."""
    values = dict(cell.values)
    for factor in reversed(exp.factors):
        first = factor.levels[0].value
        if show(values[factor.name]) != show(first):
            values[factor.name] = first
            by_values = {tuple(show(v) for v in c.values.values()): c for c in exp.cells()}
            return by_values[tuple(show(v) for v in values.values())]
    return None


_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_ERROR = re.compile(r"\berr(or)?\b", re.IGNORECASE)
_UP = re.compile(r"\b(higher|better)\b", re.IGNORECASE)
_DOWN = re.compile(r"\b(lower|worse|slower)\b", re.IGNORECASE)


def paper_direction(exp: Experiment, label: str, reference: str) -> int | None:
    """+1 if the paper reports higher accuracy for `label` than for `reference`, -1 if lower,
    None if its cells do not say (no numbers or words, identical text, "not in the paper")."""
    mine, ref = exp.paper_for(label), exp.paper_for(reference)
    if not mine or not ref or mine == ref or "not in the paper" in mine + ref:
        return None
    metric = exp.paper.metric if exp.paper else ""
    flip = -1 if (_ERROR.search(mine) or _ERROR.search(ref) or _ERROR.search(metric)) else 1
    a, b = _PERCENT.search(mine), _PERCENT.search(ref)
    if a and b:
        diff = float(a.group(1)) - float(b.group(1))
        return None if diff == 0 else flip * (1 if diff > 0 else -1)
    if _UP.search(mine) or _DOWN.search(ref):
        return flip
    if _DOWN.search(mine) or _UP.search(ref):
        return -flip
    return None


def _reproduced(direction: int | None, diff: float, p: float) -> str:
    if direction is None:
        return ""
    if math.isnan(p):
        return "too few seeds"
    if p >= ALPHA:
        return "not significant"
    return "yes" if (diff > 0) == (direction > 0) else "opposite"


def cell_status(statuses: set[str]) -> str:
    """A cell's status over its seeds (PARTIAL when some failed, PENDING before any ran)."""
    if statuses == {Status.COMPLETED}:
        return Status.COMPLETED.value
    if Status.INFEASIBLE in statuses:
        return Status.INFEASIBLE.value
    if statuses == {Status.FAILED}:
        return Status.FAILED.value
    return "PARTIAL" if statuses else "PENDING"


def summary_frame(exp: Experiment, results: pd.DataFrame, data_note: str = "") -> pd.DataFrame:
    """One row per cell: factors, counts, val/test mean, std and 95% interval over its completed
    seeds, the paper's number and the comparison with its reference cell."""
    def completed(label: str) -> pd.DataFrame:  # val_acc, test_acc of the cell's completed seeds
        done = results[(results["cell"] == label) & (results["status"] == Status.COMPLETED)] if len(results) else ()
        return pd.DataFrame({k: (done[k].astype(float) if len(done) else []) for k in ("val_acc", "test_acc")},
                            dtype=float)

    rows = []
    for cell in exp.cells():
        mine = results[results["cell"] == cell.label] if len(results) else results
        accs = completed(cell.label)
        errors = [e for e in mine["error"].fillna("") if e] if len(mine) else []
        first = mine.iloc[0] if len(mine) else {}
        row = {"cell": cell.label, **{k: show(v) for k, v in cell.values.items()},
               "macs": first.get("macs"), "params": first.get("params")}
        for metric in ("val_acc", "test_acc"):  # std: NaN under two seeds
            row.update({f"{metric}_mean": accs[metric].mean(), f"{metric}_std": float(accs[metric].std())})
        row.update(n_seeds=len(accs), paper=exp.paper_for(cell.label),
                   status=cell_status(set(mine["status"]) if len(mine) else set()),
                   error=errors[0] if errors else "", data=data_note)
        for metric in ("val_acc", "test_acc"):
            row[f"{metric}_ci95_low"], row[f"{metric}_ci95_high"] = ci95(accs[metric])
        row.update(_comparison(exp, cell, accs["test_acc"], completed))
        rows.append(row)
    return pd.DataFrame(rows)


def _comparison(exp: Experiment, cell: Cell, mine: pd.Series,
                completed: Callable[[str], pd.DataFrame]) -> dict[str, Any]:
    """`reference`, `test_acc_diff`, `p_value`, `paper_direction`, `reproduced` of one cell."""
    ref = reference_cell(exp, cell)
    if ref is None:
        return dict(reference="", test_acc_diff=math.nan, p_value=math.nan, paper_direction="", reproduced="")
    theirs = completed(ref.label)["test_acc"]
    diff = float(mine.mean() - theirs.mean()) if len(mine) and len(theirs) else math.nan
    p = welch_p_value(mine, theirs)
    direction = paper_direction(exp, cell.label, ref.label)
    return dict(reference=ref.label, test_acc_diff=diff, p_value=p,
                paper_direction={1: "higher", -1: "lower", None: ""}[direction],
                reproduced=_reproduced(direction, diff, p))


def _missing(value: Any) -> bool:
    """None, or NaN (a number or a string cell that came back from a CSV empty)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _pm(mean: float, std: float) -> str:
    if _missing(mean):
        return "-"
    return f"{100 * mean:.1f}" if _missing(std) else f"{100 * mean:.1f} ± {100 * std:.1f}"


def _count(value: Any, scale: float, digits: int) -> str:
    return "-" if _missing(value) else f"{float(value) / scale:.{digits}f}M"


def _ci(low: float, high: float) -> str:
    return "-" if _missing(low) or _missing(high) else f"[{100 * low:.1f}, {100 * high:.1f}]"


def _text(value: Any) -> str:
    return "" if _missing(value) else str(value)


def _p(p: float, reference: str, label: str) -> str:
    """"0.012 vs shuffle=true": the p-value and the factor level of the reference cell."""
    if not reference:
        return "ref"
    mine = label.split(" ")
    where = " ".join(w for w in reference.split(" ") if w not in mine)
    shown = "-" if _missing(p) else "<0.001" if p < 0.001 else f"{p:.3f}"
    return f"{shown} vs {where}"


def display_frame(exp: Experiment, summary: pd.DataFrame, n_seeds: int, *,
                  stats: bool = False) -> pd.DataFrame:
    """The printed table: factors, MACs, params, val/test % mean ± std, seeds, (with `stats`: 95%
    intervals, p-value, reproduced), and the paper column last."""
    paper_col = f"paper ({exp.paper.table})" if exp.paper else "paper"
    out = pd.DataFrame({f.name: summary[f.name] for f in exp.factors})
    out["MACs"] = [_count(v, 1e6, 1) for v in summary["macs"]]
    out["params"] = [_count(v, 1e6, 2) for v in summary["params"]]
    for short in ("val", "test"):
        out[f"{short} acc %"] = [_pm(m, s) for m, s in zip(summary[f"{short}_acc_mean"], summary[f"{short}_acc_std"])]
    out["seeds"] = [f"{n}/{n_seeds}" if st != Status.INFEASIBLE else "invalid"
                    for n, st in zip(summary["n_seeds"], summary["status"])]
    if stats:
        for short in ("val", "test"):
            out[f"{short} 95% CI"] = [_ci(lo, hi) for lo, hi in
                                      zip(summary[f"{short}_acc_ci95_low"], summary[f"{short}_acc_ci95_high"])]
        out["p (test)"] = [_p(p, _text(r), c) for p, r, c in
                           zip(summary["p_value"], summary["reference"], summary["cell"])]
        out["reproduced (paper)"] = [
            f"{_text(r) or '-'}" + (f" ({_text(d)})" if _text(d) else "")
            for r, d in zip(summary["reproduced"], summary["paper_direction"])]
    out[paper_col] = [p or "-" for p in summary["paper"]]
    return out


def format_report(exp: Experiment, summary: pd.DataFrame, *, n_seeds: int, caption: str) -> str:
    """Title, caption, the table, how many of the paper's directions are reproduced, its source."""
    lines = [f"{exp.name}: {exp.description}".rstrip(": "), caption, ""]
    table = display_frame(exp, summary, n_seeds, stats=True)
    paper = table.columns[-1]
    width = max(len(paper), *(len(v) for v in table[paper]))
    with pd.option_context("display.max_colwidth", 80, "display.width", 250):  # paper text left-aligned
        text = table.to_string(index=False, formatters={paper: lambda v: f"{v:<{width}}"})
        lines += [line.rstrip() for line in text.splitlines()]
    lines += ["", "95% CI: t-interval of the mean over completed seeds; p (test): Welch's t-test on test "
                  "accuracy against the same cell with one factor at its first level (ref: every factor "
                  f"there); reproduced: the measured difference has the paper's direction at p < {ALPHA:g}"]
    judged = [_text(r) for r in summary["reproduced"] if _text(r)]
    if judged:
        lines.append(f"paper's direction reproduced in {judged.count('yes')} of {len(judged)} "
                     f"comparisons (" + ", ".join(f"{judged.count(k)} {k}" for k in
                                                   ("yes", "not significant", "opposite", "too few seeds")
                                                   if judged.count(k)) + ")")
    if exp.paper:
        lines += ["", f"paper column: {exp.paper.source}" + (f"; {exp.paper.metric}" if exp.paper.metric else "")]
        if exp.paper.effect:
            lines.append(f"paper's effect: {exp.paper.effect}")
    problems = summary[summary["error"] != ""]
    for _, row in problems.iterrows():
        lines.append(f"{row['status'].lower()} {row['cell']}: {row['error']}")
    return "\n".join(lines)
