"""A search's results from its study: `trials.csv` (a row per trial), the Pareto front over all its
objectives (`front/trialNNN.yaml`, tagged `pareto=true` in MLflow), pareto.png and the summary."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import optuna
import pandas as pd

from nas import mlflow_layout as ml
from nas.pareto import Objective, default_reference, dominates, front_members, hypervolume, oriented
from nas.search.searcher import trial_status
from nas.spec import spec_to_yaml
from nas.status import Status


@dataclass
class SearchOutcome:
    name: str
    folder: Path
    trials: pd.DataFrame
    front: pd.DataFrame
    parent_run_id: str | None
    wall_s: float
    objectives: list[Objective] | None = None
    retrained: pd.DataFrame | None = None
    interrupted: bool = False  # Ctrl-C stopped it; --resume goes on


def status_of(trial: optuna.trial.FrozenTrial, closed: dict[str, dict[str, str]]) -> tuple[Status, str]:
    """A trial's status and error: the driver's when it closed it (the state's `closed`: a kill, a
    lost worker), else the searcher's."""
    entry = closed.get(str(trial.number))
    if entry is not None:
        return Status(entry["status"]), entry.get("error", "")
    return trial_status(trial), trial.user_attrs.get("error", "")


def trials_frame(study: optuna.Study, objectives: list[Objective], run_ids: dict[int, str],
                 closed: dict[str, dict[str, str]]) -> pd.DataFrame:
    """One row per trial: status, objectives, choices, MLflow run id (pandas-readable CSV)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.state == optuna.trial.TrialState.WAITING:
            continue  # a queued reference point the trial budget did not reach: never sampled
        status, error = status_of(t, closed)
        attrs = t.user_attrs
        row: dict[str, Any] = {"trial": t.number, "status": status.value, "macs": attrs.get("macs"),
                               "params": attrs.get("params"), "val_acc": attrs.get("val_acc"),
                               "epochs": attrs.get("epochs"), "error": error,
                               **{k: attrs.get(k, "") for k in ("reference", "node", "device")},
                               "duplicate_of": attrs.get("duplicate_of"), "latency_ms": attrs.get("latency_ms"),
                               "train_s": attrs.get("train_s")}  # what the time model refits on
        if status is Status.COMPLETED and t.values is not None:
            row.update({o.name: v for o, v in zip(objectives, t.values)})
        row.update({f"{ml.CHOICE_PREFIX}{k}": v for k, v in t.params.items()})
        row["mlflow_run_id"] = run_ids.get(t.number, "")
        rows.append(row)
    return pd.DataFrame(rows)


def mark_front(df: pd.DataFrame, objectives: list[Objective]) -> pd.DataFrame:
    """The `pareto` column (completed trials non-dominated over all the objectives); the front, cheapest first."""
    df["pareto"] = front_members(df, objectives)
    return df[df["pareto"]].sort_values("macs")


def choices_of(row: pd.Series) -> dict[str, Any]:
    """The sampled choices of a trials.csv row (numpy scalars back to Python values)."""
    missing = lambda v: v is None or (isinstance(v, float) and math.isnan(v))
    plain = lambda v: v.item() if hasattr(v, "item") else v
    return {c[len(ml.CHOICE_PREFIX):]: plain(row[c]) for c in row.index
            if c.startswith(ml.CHOICE_PREFIX) and not missing(row[c])}


def write_front(front: pd.DataFrame, folder: Path, name: str, to_spec: Callable, campaign) -> None:
    """`front/trialNNN.yaml` per front member (retrain any with `nas run spec=...`), tagged in MLflow."""
    front_dir = folder / "front"
    front_dir.mkdir(exist_ok=True)
    for _, row in front.iterrows():
        number = int(row["trial"])
        path = front_dir / f"trial{number:03d}.yaml"
        path.write_text(spec_to_yaml(to_spec(choices_of(row)).replace(name=f"{name}-t{number:03d}")))
        if row["mlflow_run_id"] and campaign.tracking:
            campaign.parent.client.set_tag(row["mlflow_run_id"], ml.PARETO, ml.PARETO_TRUE)
            campaign.parent.client.log_artifact(row["mlflow_run_id"], str(path))
        campaign.parent.log_artifact(path, "front")


def found_summary(outcome: SearchOutcome, objectives: list[Objective]) -> list[str]:
    """The front's hypervolume (its reference point stated) and, for each paper reference net, the
    front members that dominate it on the same budget."""
    df, front = outcome.trials, outcome.front
    if not len(front):
        return ["no trial completed: no front"]
    completed = df[df["status"] == Status.COMPLETED.value]
    ref = default_reference(completed, objectives)
    values = front[[o.name for o in objectives]].to_numpy(dtype=float)
    hv = hypervolume(values, [o.direction for o in objectives], ref)
    shown = ", ".join(f"{o.name}={r:.4g}" for o, r in zip(objectives, ref))
    lines = [f"front hypervolume {hv:.4g} (reference point {shown}: just worse than every completed trial)"]
    for _, ref_row in df[df["reference"].fillna("") != ""].iterrows():
        lines.append(f"  {ref_row['reference']}: {_beaten_by(ref_row, front, objectives)}")
    return lines


def _beaten_by(ref_row: pd.Series, front: pd.DataFrame, objectives: list[Objective]) -> str:
    status = ref_row["status"]
    if status != Status.COMPLETED.value:
        return {Status.INFEASIBLE.value: "over the limits, not trained",
                Status.PRUNED.value: f"pruned after {ref_row['epochs']:.0f} epoch(s): not comparable"}.get(
                    status, status.lower())
    if bool(ref_row.get("pareto")):
        return "on the front itself"
    names, directions = [o.name for o in objectives], [o.direction for o in objectives]
    members = oriented(front[names].to_numpy(dtype=float), directions)
    beaten = dominates(members, oriented([ref_row[names].to_numpy(dtype=float)], directions))
    better = [int(t) for t in front["trial"][beaten]]
    return ("dominated by front trial(s) " + ", ".join(map(str, better))) if better else "no front member dominates it"
