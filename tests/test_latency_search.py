"""A real search with measured latency as an objective (Optuna + local Ray + SQLite MLflow,
synthetic data, smoke budget), then its front exported and run by ONNX Runtime from a fresh
folder that has nothing of nas in it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nas.pareto import pareto_mask

pytestmark = pytest.mark.slow
pytest.importorskip("onnxruntime")

RUN_ONNX = """import sys, numpy as np, onnxruntime as ort
for path in sys.argv[1:]:
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    shape = [1 if isinstance(d, str) else d for d in s.get_inputs()[0].shape]
    out = s.run(None, {s.get_inputs()[0].name: np.random.rand(*shape).astype(np.float32)})[0]
    assert out.shape == (1, 10) and np.isfinite(out).all()
    print(path, out.shape)
"""


def nas(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([sys.executable, "-m", "nas.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=900, env=env)


def test_a_latency_search_records_latency_and_its_front_runs_in_onnx_runtime(tmp_path):
    done = nas("search", "--space", "shufflenet", "--objectives", "val_acc,latency", "--trials", "6",
               "--budget", "smoke", "--name", "lat", "--no-progress", "data.name=synthetic", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    folder = tmp_path / "searches" / "lat"
    df = pd.read_csv(folder / "trials.csv")
    trained = df[df.status.isin(["COMPLETED", "PRUNED", "FAILED"])]
    assert len(trained) == 6 and trained["latency_ms"].notna().all() and (trained["latency_ms"] > 0).all()
    completed = df[df.status == "COMPLETED"]
    values = completed[["val_acc", "latency_ms"]].to_numpy(dtype=float)
    front = completed[completed["pareto"].astype(bool)]
    assert len(front) and pareto_mask(front[["val_acc", "latency_ms"]].to_numpy(dtype=float), ["max", "min"]).all()
    np.testing.assert_array_equal(pareto_mask(values, ["max", "min"]), completed["pareto"].astype(bool))
    assert (folder / "latency.json").is_file() and (folder / "pareto.png").is_file()

    import mlflow

    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("nas").experiment_id], max_results=100)
    trials = [r for r in runs if r.data.tags.get("nas.kind") == "trial"
              and r.data.tags.get("nas.status") in ("COMPLETED", "PRUNED", "FAILED")]
    assert len(trials) == 6
    assert all("latency_ms" in r.data.metrics and r.data.tags["nas.latency_runtime"] == "onnxruntime"
               and r.data.tags["nas.latency_threads"] == "1" for r in trials)

    exported = nas("export", "--front", str(folder), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr[-2000:]
    files = sorted((folder / "export").glob("trial*.onnx"))
    assert len(files) == len(front) and exported.stdout.count("check ok") == len(front)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for f in files:
        (fresh / f.name).write_bytes(f.read_bytes())
    ran = subprocess.run([sys.executable, "-c", RUN_ONNX, *[f.name for f in files]], cwd=fresh,
                         capture_output=True, text=True, timeout=300, env={"PATH": os.environ["PATH"]})
    assert ran.returncode == 0 and ran.stdout.count("(1, 10)") == len(files), ran.stderr[-2000:]
