"""Integrity check of a search's durable state: the MLflow store and the Optuna study agree, and
nothing is left half-written. Used by the fault, cluster and load tests after they break things.

`check_store(workdir, name)` raises AssertionError naming the first inconsistency, else returns
counts. What it asserts:
- every MLflow run of the experiment is readable (run, params, metrics, tags, artifact list) and
  none is RUNNING/SCHEDULED; the search's parent run is FINISHED;
- each trial number has exactly one child run (`nas.kind=trial`, `mlflow.parentRunId`), and every
  child belongs to an Optuna trial; every Optuna trial except those a kill interrupted before
  they started (`KILLED`) has one;
- every Optuna trial is COMPLETE, PRUNED or FAIL (none RUNNING/WAITING);
- trials.csv has one row per Optuna trial, same numbers and statuses;
- COMPLETE Optuna trials are exactly the COMPLETED child runs, and their val_acc matches;
- each child's MLflow status agrees with its `nas.status` tag.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

DONE_STATES = {"COMPLETE", "PRUNED", "FAIL"}
TERMINAL = {"KILLED": "KILLED", "INTERRUPTED": "KILLED", "FAILED": "FAILED"}  # nas.status -> MLflow status (else FINISHED)


def _client(workdir: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")


def _all_runs(client, experiment: str) -> list:
    from mlflow.entities import ViewType

    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no MLflow experiment {experiment!r}"
    runs, token = [], None
    while True:
        page = client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL,
                                  max_results=1000, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def _status(t: optuna.trial.FrozenTrial, closed: dict[str, dict] | None = None) -> str:
    """The trial's nas status: what the driver recorded when it closed the trial after a kill or
    a lost worker (state.json `closed`), else the searcher's user attribute."""
    entry = (closed or {}).get(str(t.number))
    if entry is not None:
        return entry["status"]
    return t.user_attrs.get("nas_status", "FAILED" if t.state.name == "FAIL" else t.state.name)


def check_store(workdir: str | Path, name: str, experiment: str = "nas",
                output_dir: str = "searches") -> dict[str, Any]:
    workdir = Path(workdir)
    folder = workdir / output_dir / name
    state = json.loads((folder / "state.json").read_text())
    parent_id = state["parent_run_id"]
    closed = state.get("closed", {})
    client = _client(workdir)

    # MLflow: every run readable, none left RUNNING
    runs = _all_runs(client, experiment)
    for run in runs:
        again = client.get_run(run.info.run_id)
        _ = again.data.params, again.data.metrics, again.data.tags
        client.list_artifacts(run.info.run_id)
        assert again.info.status not in ("RUNNING", "SCHEDULED"), (
            f"MLflow run {run.info.run_id} ({again.data.tags.get('mlflow.runName')}) is left"
            f" {again.info.status}")
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED", f"parent run is {parent.info.status}"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_id
                and r.data.tags.get("nas.kind") == "trial"]
    numbers = [int(r.data.tags["nas.trial"]) for r in children]
    duplicated = sorted({n for n in numbers if numbers.count(n) > 1})
    assert not duplicated, f"trials with more than one MLflow child run: {duplicated}"
    by_number = {int(r.data.tags["nas.trial"]): client.get_run(r.info.run_id) for r in children}

    # Optuna: every trial finished, the study's history and MLflow agree
    storage = f"sqlite:///{folder / 'optuna.db'}"
    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    open_trials = [t.number for t in trials if t.state.name not in DONE_STATES]
    assert not open_trials, f"Optuna trials not finished: {open_trials}"
    optuna_numbers = {t.number for t in trials}
    orphans = sorted(set(by_number) - optuna_numbers)
    assert not orphans, f"MLflow child runs without an Optuna trial: {orphans}"
    missing = sorted(t.number for t in trials if _status(t, closed) != "KILLED" and t.number not in by_number)
    assert not missing, f"Optuna trials without an MLflow child run: {missing}"
    for number, run in by_number.items():
        tag = run.data.tags.get("nas.status")
        want = TERMINAL.get(tag, "FINISHED")
        assert run.info.status == want, f"trial {number}: nas.status {tag} but MLflow {run.info.status}"

    # trials.csv: one row per Optuna trial, same statuses
    df = pd.read_csv(folder / "trials.csv")
    assert len(df) == len(trials), f"trials.csv has {len(df)} rows, Optuna {len(trials)} trials"
    assert sorted(df.trial) == sorted(optuna_numbers), "trials.csv numbers differ from Optuna's"
    by_row = df.set_index("trial")
    for t in trials:
        assert by_row.status[t.number] == _status(t, closed), (
            f"trial {t.number}: trials.csv {by_row.status[t.number]}, Optuna {_status(t, closed)}")
        if t.number in by_number:
            tag = by_number[t.number].data.tags.get("nas.status")
            assert tag == _status(t, closed), f"trial {t.number}: MLflow nas.status {tag}, Optuna {_status(t, closed)}"

    # COMPLETE trials == COMPLETED child runs, same val_acc
    complete = {t.number: t for t in trials if t.state.name == "COMPLETE"
                and _status(t, closed) == "COMPLETED"}
    completed_runs = {n for n, r in by_number.items() if r.data.tags.get("nas.status") == "COMPLETED"}
    assert set(complete) == completed_runs, (
        f"COMPLETE in Optuna {sorted(complete)} vs COMPLETED in MLflow {sorted(completed_runs)}")
    objective_names = parent.data.tags.get("nas.objectives", "val_acc,macs").split(",")
    if "val_acc" in objective_names:
        k = objective_names.index("val_acc")
        for number, t in complete.items():
            logged = by_number[number].data.metrics.get("val_acc")
            assert logged is not None and math.isclose(logged, t.values[k], rel_tol=1e-6, abs_tol=1e-9), (
                f"trial {number}: MLflow val_acc {logged}, Optuna {t.values[k]}")

    counts = df.status.value_counts().to_dict()
    return {"optuna_trials": len(trials), "child_runs": len(by_number), "mlflow_runs": len(runs),
            **{k.lower(): int(v) for k, v in counts.items()}}


def query_live_db(db: Path, sql: str) -> list[tuple]:
    """Rows of `sql` on a SQLite file another process may be writing, opened read-only so a
    test can watch a running search; empty while the file is absent or not yet readable."""
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute(sql).fetchall()
    except sqlite3.Error:
        return []


def completed_before(folder: Path) -> dict[int, list[float]]:
    """{trial number: objective values} of the COMPLETED trials in a (possibly live) study (told
    COMPLETE and marked COMPLETED: a pruned trial is told COMPLETE with its rung's values too),
    read with plain SQL so a kill can be timed against it; empty while the study is absent."""
    rows = query_live_db(folder / "optuna.db",
                         "select t.number, v.objective, v.value from trials t join trial_values v"
                         " on v.trial_id = t.trial_id join trial_user_attributes a on a.trial_id ="
                         " t.trial_id and a.key = 'nas_status' and a.value_json = '\"COMPLETED\"'"
                         " where t.state = 'COMPLETE'")
    values: dict[int, dict[int, float]] = {}
    for number, objective, value in rows:
        values.setdefault(number, {})[objective] = value
    return {n: [v[k] for k in sorted(v)] for n, v in values.items()}


def assert_none_lost(workdir: Path, name: str, before: dict[int, list[float]],
                     experiment: str = "nas", output_dir: str = "searches") -> int:
    """Every trial COMPLETE before a fault is still COMPLETE with the same values, and has one
    COMPLETED MLflow child run. Returns the number lost (always 0, or this raises)."""
    folder = Path(workdir) / output_dir / name
    after = completed_before(folder)
    lost = sorted(n for n in before if n not in after or not all(
        math.isclose(a, b, rel_tol=1e-9) for a, b in zip(before[n], after[n])))
    client = _client(Path(workdir))
    parent_id = json.loads((folder / "state.json").read_text())["parent_run_id"]
    runs = _all_runs(client, experiment)
    completed = [int(r.data.tags["nas.trial"]) for r in runs
                 if r.data.tags.get("mlflow.parentRunId") == parent_id
                 and r.data.tags.get("nas.status") == "COMPLETED"]
    lost += sorted(n for n in before if completed.count(n) != 1 and n not in lost)
    assert not lost, f"finished trials lost or duplicated after the fault: {lost}"
    return len(lost)
