"""Load: more concurrent trials than cores.

`nas search --concurrency 8 --cpus-per-trial 0.25` on this 2-core machine (local Ray, smoke
budget, synthetic data): 12 trials, up to 8 training at once, every result written by the one
driver process into SQLite (MLflow and Optuna). Checked: the search finishes, every trial is
recorded once (tests/integrity.py), more trials overlapped in time than there are cores, and no
"database is locked" anywhere in the output.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from integrity import check_store

pytestmark = pytest.mark.slow

SYNTH = ["data.name=synthetic", "data.val_size=64", "data.synthetic_train=320",
         "data.synthetic_test=64", "train.batch_size=64"]


def peak_overlap(intervals: list[tuple[int, int]]) -> int:
    """Most intervals open at one instant (start and end in ms)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    peak = now = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def test_eight_concurrent_trials_on_two_cores(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    trials, name = 12, "load"
    cmd = [sys.executable, "-m", "nas.cli", "search", "--space", "mixed", "--budget", "smoke",
           "--no-progress", "--no-references", "--trials", str(trials), "--name", name,
           "--concurrency", "8", "--cpus-per-trial", "0.25", *SYNTH]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "database is locked" not in output.lower()
    assert "8 at a time" in done.stdout
    summary = check_store(tmp_path, name)
    df = pd.read_csv(tmp_path / "searches" / name / "trials.csv")
    trained = df[df.status.isin(["COMPLETED", "PRUNED", "FAILED"])]
    assert len(trained) == trials and not (df.status == "FAILED").any(), df[["trial", "status", "error"]]

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    children = [client.get_run(run_id) for run_id in df.mlflow_run_id.dropna()]
    spans = [(r.info.start_time, r.info.end_time) for r in children
             if r.data.tags.get("nas.status") != "INFEASIBLE"]
    peak = peak_overlap(spans)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert peak > min(cores, 2), f"at most {peak} trials overlapped on {cores} cores"
    print(f"load: {trials} trials, up to {peak} at once on {cores} cores: {summary};"
          " no 'database is locked'")
