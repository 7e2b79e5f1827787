"""Interrupted means resumable (issue 34, item 6). A real `nas search` gets Ctrl-C (SIGINT) while
its paper reference trials train: the trials it was running are INTERRUPTED (not RUNNING, not
FAILED) in trials.csv and the summary, Ray's own `Tuner.restore` hint is not shown, and the exit
code is 130; `--resume` then trains those reference points (still marked as references), and
pareto.png draws interrupted points apart from failed ones."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from nas.pareto import Objective
from nas.pareto_plot import plot_front

SEARCH = ["--space", "shufflenet", "--budget", "smoke", "--trials", "3", "--concurrency", "2",
          "--name", "r", "--no-progress", "data.name=synthetic", "data.val_size=64", "train.epochs=2"]


def running_trials(db: Path) -> int:
    """Trials the study shows RUNNING (Optuna's SQLite storage), 0 while it does not exist."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute("SELECT COUNT(*) FROM trials WHERE state = 'RUNNING'").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_ctrl_c_during_references_then_resume_trains_them(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    cmd = [sys.executable, "-m", "nas.cli", "search", *SEARCH]
    log = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
    db = tmp_path / "searches" / "r" / "optuna.db"
    deadline = time.time() + 300
    while running_trials(db) < 1 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends the driver
    code = proc.wait(timeout=300)
    log.close()
    first = (tmp_path / "first.log").read_text()
    assert code == 130, first[-3000:]
    assert "Tuner.restore" not in first and "Traceback" not in first, first[-3000:]
    assert "search r interrupted in" in first and "running" not in first.split("search r interrupted")[1].splitlines()[0]
    df = pd.read_csv(tmp_path / "searches" / "r" / "trials.csv")
    assert "RUNNING" not in set(df.status) and "FAILED" not in set(df.status), df
    stopped = df[df.status == "INTERRUPTED"]
    assert len(stopped) >= 1 and (stopped.reference.fillna("") != "").all(), df

    done = subprocess.run(cmd + ["--resume"], cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"{len(stopped)} interrupted (run again)" in done.stdout, done.stdout[-3000:]
    after = pd.read_csv(tmp_path / "searches" / "r" / "trials.csv")
    trained_refs = set(after[(after.status == "COMPLETED") | (after.status == "PRUNED")].reference.dropna())
    assert set(stopped.reference) <= trained_refs, after


def test_pareto_draws_interrupted_points_apart_from_failed(tmp_path):
    matplotlib.use("Agg")
    trials = pd.DataFrame({"trial": [0, 1, 2, 3], "status": ["COMPLETED", "INTERRUPTED", "FAILED", "KILLED"],
                           "macs": [1e6, 2e6, 3e6, 4e6], "params": [1e5, 2e5, 3e5, 4e5],
                           "val_acc": [0.5, np.nan, np.nan, np.nan]})
    captured = {}
    import nas.pareto_plot as pareto

    original = pareto._panel

    def spy(ax, *args, **kwargs):
        original(ax, *args, **kwargs)
        captured.setdefault("labels", []).extend(ax.get_legend_handles_labels()[1])

    pareto._panel = spy
    try:
        plot_front(trials, [Objective("val_acc", "max"), Objective("macs", "min")], out=tmp_path / "p.png")
    finally:
        pareto._panel = original
    labels = captured["labels"]
    assert "no accuracy: failed / infeasible (1)" in labels
    assert "interrupted: --resume trains them (2)" in labels


def test_summary_says_which_stopped_trials_ran_again():
    from nas.campaign.progress import summary_line
    from nas.search.interrupted import shown_statuses

    trials = pd.DataFrame({"trial": [0, 1, 2, 3], "status": ["INTERRUPTED", "INTERRUPTED", "COMPLETED", "KILLED"],
                           "choice.groups": [3, 8, 3, 4], "choice.width": [0.5, 0.5, 0.5, 1.0]})
    assert summary_line(shown_statuses(trials)) == "1 completed, 1 killed, 1 interrupted, 1 interrupted (run again)"


def test_summary_handles_choices_a_trial_was_not_asked():
    """A conditional space (`mixed`) leaves the choices a trial was not asked empty (NaN)."""
    from nas.search.interrupted import shown_statuses

    trials = pd.DataFrame({"trial": [0, 1, 2], "status": ["INTERRUPTED", "COMPLETED", "COMPLETED"],
                           "choice.s2.block": ["ds", "ds", "ir"], "choice.s2.exp": [np.nan, np.nan, 6.0]})
    assert shown_statuses(trials) == ["INTERRUPTED (RUN AGAIN)", "COMPLETED", "COMPLETED"]
