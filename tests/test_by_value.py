"""Workers get everything by value (issue: a second host without the driver's files): a search
whose space file and data root are deleted right after it starts still finishes with no FAILED
trial, and the same for an ablation's data root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from fake_data import fake_cifar10
from integrity import query_live_db

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def _started(db: Path) -> bool:
    rows = query_live_db(db, "select count(*) from trials")
    return bool(rows and rows[0][0])


def test_search_finishes_after_its_space_file_and_data_root_are_deleted(tmp_path):
    space = tmp_path / "inputs" / "my_space.yaml"
    space.parent.mkdir()
    shutil.copy(REPO / "search_spaces" / "shufflenet.yaml", space)
    data_root = tmp_path / "inputs" / "data"
    fake_cifar10(data_root, per_class=40, test_images=40)
    work = tmp_path / "work"
    work.mkdir()
    cmd = [sys.executable, "-m", "nas.cli", "search", "--space", str(space), "--budget", "smoke",
           "--no-progress", "--no-references", "--trials", "4", "--name", "v1", "--concurrency", "2",
           f"data.root={data_root}", "data.download=false", "data.val_size=100", "data.train_subset=200"]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    db = work / "searches" / "v1" / "optuna.db"
    deadline = time.time() + 300
    while time.time() < deadline and not _started(db) and proc.poll() is None:
        time.sleep(0.2)
    shutil.rmtree(tmp_path / "inputs")  # the driver's files are gone: workers must not need them
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    df = pd.read_csv(work / "searches" / "v1" / "trials.csv")
    trained = df[~df.status.isin(["INFEASIBLE", "DUPLICATE"])]
    assert len(trained) == 4 and not (df.status == "FAILED").any(), df[["trial", "status", "error"]]


def test_ablation_finishes_after_its_data_root_is_deleted(tmp_path):
    data_root = tmp_path / "inputs" / "data"
    fake_cifar10(data_root, per_class=40, test_images=40)
    work = tmp_path / "work"
    work.mkdir()
    cmd = [sys.executable, "-m", "nas.cli", "ablate", "shufflenet_shuffle", "--budget", "smoke",
           "--no-progress", "--seeds", "1", "--name", "a1", "--concurrency", "2",
           f"data.root={data_root}", "data.download=false"]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    state = work / "ablations" / "a1" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and not state.exists() and proc.poll() is None:
        time.sleep(0.2)
    shutil.rmtree(tmp_path / "inputs")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    results = pd.read_csv(work / "ablations" / "a1" / "results.csv")
    assert len(results) == 4 and (results.status == "COMPLETED").all(), results[["cell", "status", "error"]]
