"""A real search (Optuna + local Ray + SQLite MLflow) on synthetic data, a tiny budget."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from integrity import query_live_db
from nas.pareto import pareto_mask

pytestmark = pytest.mark.slow

SYNTH = ["data.name=synthetic", "data.val_size=64", "data.synthetic_train=320",
         "data.synthetic_test=64", "train.batch_size=64"]


def nas_search(workdir: Path, *args: str, env: dict | None = None, timeout: int = 600):
    cmd = [sys.executable, "-m", "nas.cli", "search", "--space", "shufflenet", "--budget", "smoke",
           "--no-progress", *args, *SYNTH]
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def runs_of(workdir: Path, experiment: str = "nas"):
    import mlflow
    client = mlflow.tracking.MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    return client, client.search_runs([exp.experiment_id], max_results=1000)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def test_search_records_parent_children_front_and_plot(workdir):
    done = nas_search(workdir, "--trials", "5", "--name", "s1", "--concurrency", "2",
                      "--retrain-top", "1", "train.epochs=2",
                      env={"NAS_FAIL_TRIALS": "1", "NAS_STOP_TUNE_AT": "3"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Pareto front" in done.stdout
    # --sampler auto: val_acc against MACs on a finite space is ehvi's, and the folder says so
    assert "sampler ehvi" in done.stdout
    assert json.loads((workdir / "searches" / "s1" / "state.json").read_text())["settings"]["plan"]["sampler"] == "ehvi"
    # Tune itself stopped when trial 3 started (as on a worker OOM): recorded, search went on
    assert "Ray Tune stopped" in done.stdout
    folder = workdir / "searches" / "s1"
    df = pd.read_csv(folder / "trials.csv")
    trained = df[~df.status.isin(["INFEASIBLE", "INTERRUPTED"])]
    assert len(trained) == 5
    assert set(df.status) <= {"COMPLETED", "PRUNED", "FAILED", "INFEASIBLE", "DUPLICATE", "INTERRUPTED"}
    # a point Tune was handed but had not started when it stopped did not run: not counted, and
    # trained later (its own test: test_faults.py::test_tune_stop_fails_started_trials_and_requeues_unstarted_ones)
    choices = [c for c in df.columns if c.startswith("choice.")]
    for _, row in df[df.status == "INTERRUPTED"].iterrows():
        assert "not started" in row.error
        later = df[(df.trial > row.trial) & (df[choices].fillna("-") == row[choices].fillna("-")).all(axis=1)]
        assert set(later.status) & {"COMPLETED", "PRUNED", "FAILED"}
    failed = df[df.trial == 1].iloc[0]
    assert failed.status == "FAILED" and "injected fault in trial 1" in failed.error
    lost = df[df.trial == 3].iloc[0]
    assert lost.status == "FAILED" and "injected Tune stop at trial 3" in lost.error
    assert (df.status == "COMPLETED").sum() >= 1
    # the front recomputed from the CSV equals the tagged one
    completed = df[df.status == "COMPLETED"]
    mask = pareto_mask(completed[["val_acc", "macs"]].to_numpy(float), ["max", "min"])
    assert set(completed.trial[mask]) == set(df.trial[df.pareto])
    assert (folder / "pareto.png").stat().st_size > 10_000
    # MLflow and this folder are the record: no Tune CSV/JSON/TensorBoard files, no spec log line
    assert not [p.name for p in (folder / "ray").rglob("*") if p.name in ("result.json", "progress.csv")
                or p.name.startswith("events.out")]
    assert "Removed the following hyperparameter" not in done.stdout + done.stderr
    for trial in df.trial[df.pareto]:
        assert (folder / "front" / f"trial{trial:03d}.yaml").exists()
    client, runs = runs_of(workdir)
    parents = [r for r in runs if r.data.tags.get("nas.kind") == "search"]
    children = [r for r in runs if r.data.tags.get("nas.kind") == "trial"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == len(df)
    assert all(c.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for c in children)
    by_trial = {int(c.data.tags["nas.trial"]): c for c in children}
    for _, row in df.iterrows():
        child = by_trial[row.trial]
        assert child.data.tags["nas.status"] == row.status
        assert (child.data.tags.get("pareto") == "true") == bool(row.pareto)
        if row.status in ("COMPLETED", "PRUNED"):
            assert child.data.metrics["macs"] == row.macs and "val_acc" in child.data.metrics
    assert by_trial[1].info.status == "FAILED" and by_trial[3].info.status == "FAILED"
    trained_runs = [c for c in children if c.data.tags["nas.status"] in ("COMPLETED", "PRUNED")]
    assert all(c.data.metrics["train_s"] > 0 for c in trained_runs)  # for the overhead benchmark
    artifacts = {a.path for a in client.list_artifacts(parents[0].info.run_id)}
    assert {"trials.csv", "pareto.png", "retrained.csv"} <= artifacts
    # the paper's reference nets were evaluated first, on the same budget
    assert list(df.reference.fillna("")[:3]) == ["ShuffleNet 0.25x g=3", "ShuffleNet 0.5x g=3", "ShuffleNet 1x g=3"]
    # --retrain-top 1: the best front member retrained from its YAML, test accuracy beside val
    retrained = pd.read_csv(folder / "retrained.csv")
    best = df[df.pareto].sort_values("val_acc", ascending=False).iloc[0]
    assert list(retrained.trial) == [best.trial]
    assert 0 <= retrained.retrain_test_acc[0] <= 1
    retrain_runs = [r for r in runs if r.data.tags.get("nas.kind") == "retrain"]
    assert len(retrain_runs) == 1 and "test_acc" in retrain_runs[0].data.metrics
    assert "retrain_test_acc" in by_trial[int(best.trial)].data.metrics


def test_infeasible_limit_spends_no_training(workdir):
    done = nas_search(workdir, "--trials", "2", "--name", "s2", "max_macs=5e6")
    assert done.returncode == 0, done.stderr[-3000:]
    df = pd.read_csv(workdir / "searches" / "s2" / "trials.csv")
    infeasible = df[df.status == "INFEASIBLE"]
    assert len(infeasible) >= 1 and (infeasible.macs > 5e6).all()
    assert infeasible.epochs.isna().all()  # never trained
    assert (df[df.status != "INFEASIBLE"].macs <= 5e6).all()
    client, runs = runs_of(workdir)
    infeasible_runs = [r for r in runs if r.data.tags.get("nas.status") == "INFEASIBLE"]
    assert len(infeasible_runs) == len(infeasible)
    for run in infeasible_runs:
        assert "val_acc" not in run.data.metrics and "train_loss" not in run.data.metrics


def _completed(db: Path) -> int:
    rows = query_live_db(db, "select count(*) from trials where state = 'COMPLETE'")
    return rows[0][0] if rows else 0


def test_killed_search_resumes_without_losing_or_duplicating(workdir):
    cmd = [sys.executable, "-m", "nas.cli", "search", "--space", "shufflenet", "--budget", "smoke",
           "--no-progress", "--trials", "6", "--name", "s3", "--concurrency", "1", "--no-asha", *SYNTH]
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    db = workdir / "searches" / "s3" / "optuna.db"
    deadline = time.time() + 300
    while time.time() < deadline and _completed(db) < 2:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _completed(db)
    assert 2 <= before < 6
    done = nas_search(workdir, "--trials", "6", "--name", "s3", "--resume", "--concurrency", "1", "--no-asha")
    assert done.returncode == 0, done.stderr[-3000:]
    df = pd.read_csv(workdir / "searches" / "s3" / "trials.csv")
    trained = df[df.status.isin(["COMPLETED", "PRUNED", "FAILED"])]
    assert len(trained) == 6
    assert (df.status == "COMPLETED").sum() >= before
    _, runs = runs_of(workdir)
    children = [r for r in runs if r.data.tags.get("nas.kind") == "trial"]
    numbers = [int(c.data.tags["nas.trial"]) for c in children]
    assert len(numbers) == len(set(numbers))  # one MLflow run per trial, never duplicated
    assert not [c for c in children if c.info.status == "RUNNING"]
    parents = [r for r in runs if r.data.tags.get("nas.kind") == "search"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"


def test_interrupted_search_prints_the_command_that_goes_on(workdir):
    """Ctrl-C (SIGINT) mid-search: the summary says how far it got and gives the resume
    command, with the words it needs (budget, data); running that command finishes the search."""
    import shlex

    cmd = [sys.executable, "-m", "nas.cli", "search", "--space", "shufflenet", "--budget", "smoke",
           "--no-progress", "--trials", "5", "--name", "s5", "--concurrency", "1", "--no-asha", *SYNTH]
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    db = workdir / "searches" / "s5" / "optuna.db"
    deadline = time.time() + 300
    while time.time() < deadline and _completed(db) < 1:
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=300)
    hint = [line for line in out.splitlines() if line.startswith("interrupted at ")]
    assert len(hint) == 1, out[-3000:]
    words = shlex.split(hint[0].split("go on with: nas ", 1)[1])
    assert words[:7] == ["search", "--space", "shufflenet", "--name", "s5", "--resume", "--trials"]
    assert "--budget" in words and "--no-asha" in words and all(w in words for w in SYNTH)
    done = subprocess.run([sys.executable, "-m", "nas.cli", *words, "--no-progress", "--concurrency", "1"],
                          cwd=workdir, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "interrupted at" not in done.stdout
    df = pd.read_csv(workdir / "searches" / "s5" / "trials.csv")
    assert df.status.isin(["COMPLETED", "PRUNED", "FAILED"]).sum() == 5
