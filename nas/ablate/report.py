"""Results (one row per cell x seed) -> summary (one row per cell, mean ± std over seeds) -> the
printed table, with the paper's reported numbers beside the measured ones.

Accuracies are fractions in the CSVs (as in MLflow) and percent in the printed table, like the
papers. The test accuracy is reported, never used to pick anything.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from nas.ablate.experiment import Experiment, show

RESULT_COLUMNS = ["cell", "seed", "macs", "params", "val_acc", "test_acc", "epochs", "status",
                  "error", "wall_s", "mlflow_run_id"]


def result_row(exp: Experiment, unit, result: dict[str, Any], run_id: str | None) -> dict[str, Any]:
    row: dict[str, Any] = {"cell": unit.cell.label}
    row.update({name: show(value) for name, value in unit.cell.values.items()})
    row.update({"seed": unit.seed, "macs": unit.macs, "params": unit.params,
                "val_acc": result.get("val_acc"), "test_acc": result.get("test_acc"),
                "epochs": result.get("epochs", 0), "status": result["status"],
                "error": result.get("error", ""), "wall_s": round(float(result.get("wall_s") or 0), 2),
                "mlflow_run_id": run_id or ""})
    return row


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


def _std(values: pd.Series) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else math.nan


def summary_frame(exp: Experiment, results: pd.DataFrame, data_note: str = "") -> pd.DataFrame:
    """One row per cell: factors, MACs, params, val/test accuracy mean and std over the seeds
    that completed, how many did, and the paper's number for the cell."""
    rows = []
    for cell in exp.cells():
        mine = results[results["cell"] == cell.label] if len(results) else results
        done = mine[mine["status"] == "COMPLETED"] if len(mine) else mine
        statuses = set(mine["status"]) if len(mine) else set()
        status = ("COMPLETED" if statuses == {"COMPLETED"} else "INVALID" if "INVALID" in statuses
                  else "FAILED" if statuses == {"FAILED"} else "PARTIAL" if statuses else "PENDING")
        errors = [e for e in mine["error"].fillna("") if e] if len(mine) else []
        first = mine.iloc[0] if len(mine) else None
        row = {"cell": cell.label, **{k: show(v) for k, v in cell.values.items()},
               "macs": None if first is None else first["macs"],
               "params": None if first is None else first["params"],
               "val_acc_mean": done["val_acc"].astype(float).mean() if len(done) else math.nan,
               "val_acc_std": _std(done["val_acc"].astype(float)) if len(done) else math.nan,
               "test_acc_mean": done["test_acc"].astype(float).mean() if len(done) else math.nan,
               "test_acc_std": _std(done["test_acc"].astype(float)) if len(done) else math.nan,
               "n_seeds": len(done), "paper": exp.paper_for(cell.label),
               "status": status, "error": errors[0] if errors else "", "data": data_note}
        rows.append(row)
    return pd.DataFrame(rows)


def _pm(mean: float, std: float) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if std is None or math.isnan(std):
        return f"{100 * mean:.1f}"
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def _count(value: Any, scale: float, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{float(value) / scale:.{digits}f}M"


def display_frame(exp: Experiment, summary: pd.DataFrame, n_seeds: int) -> pd.DataFrame:
    """The printed table: factor columns, MACs, params, val/test % mean ± std, seeds, paper."""
    paper_col = f"paper ({exp.paper.table})" if exp.paper else "paper"
    out = pd.DataFrame({f.name: summary[f.name] for f in exp.factors})
    out["MACs"] = [_count(v, 1e6, 1) for v in summary["macs"]]
    out["params"] = [_count(v, 1e6, 2) for v in summary["params"]]
    out["val acc %"] = [_pm(m, s) for m, s in zip(summary["val_acc_mean"], summary["val_acc_std"])]
    out["test acc %"] = [_pm(m, s) for m, s in zip(summary["test_acc_mean"], summary["test_acc_std"])]
    out["seeds"] = [f"{n}/{n_seeds}" if st != "INVALID" else "invalid"
                    for n, st in zip(summary["n_seeds"], summary["status"])]
    out[paper_col] = [p or "-" for p in summary["paper"]]
    return out


def format_report(exp: Experiment, summary: pd.DataFrame, *, n_seeds: int, caption: str) -> str:
    """Title, what was measured, the table, then where the paper column comes from."""
    lines = [f"{exp.name}: {exp.description}".rstrip(": "), caption, ""]
    table = display_frame(exp, summary, n_seeds)
    paper = table.columns[-1]
    width = max(len(paper), *(len(v) for v in table[paper]))
    with pd.option_context("display.max_colwidth", 80, "display.width", 250):  # paper text left-aligned
        text = table.to_string(index=False, formatters={paper: lambda v: f"{v:<{width}}"})
        lines += [line.rstrip() for line in text.splitlines()]
    if exp.paper:
        lines += ["", f"paper column: {exp.paper.source}" + (f"; {exp.paper.metric}" if exp.paper.metric else "")]
        if exp.paper.effect:
            lines.append(f"paper's effect: {exp.paper.effect}")
    problems = summary[summary["error"] != ""]
    for _, row in problems.iterrows():
        lines.append(f"{row['status'].lower()} {row['cell']}: {row['error']}")
    return "\n".join(lines)
