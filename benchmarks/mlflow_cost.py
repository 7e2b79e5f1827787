"""What MLflow costs a `nas run`, step by step, and how much of it the run still waits for.

Each row runs in a fresh interpreter (imports are the biggest part, and a process imports once)
in a fresh folder, and prints a table:

  raw MlflowClient, as the code before nas.tracking's background writer did it, in order:
    import mlflow, open a new SQLite store (MLflow's own schema migrations), open an existing
    store, create experiment + run, log ~60 params / 12 tags / spec.yaml, one epoch's metrics,
    end the run
  nas.tracking.Tracker: the seconds the calling thread is blocked for the same calls (the
    constructor, the logging calls, `run_id`, per-epoch `log_metrics`, `end`), with 1.5 s of
    simulated work (data loading) between `preflight` and `run_id`, new and existing store

    python benchmarks/mlflow_cost.py            # ~1 min on 2 cores
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

RAW = r'''
import json, os, sys, time
T = {}
t = time.perf_counter(); from mlflow.tracking import MlflowClient; from mlflow.entities import Metric, Param, RunTag
T["import mlflow"] = time.perf_counter() - t
uri = f"sqlite:///{os.getcwd()}/mlflow.db"
t = time.perf_counter(); c = MlflowClient(tracking_uri=uri); c.search_experiments()
T["new store (MLflow migrations)" if sys.argv[1] == "new" else "open existing store"] = time.perf_counter() - t
t = time.perf_counter()
e = c.get_experiment_by_name("nas")
eid = e.experiment_id if e else c.create_experiment("nas")
run = c.create_run(eid, run_name="r").info.run_id
T["create experiment + run"] = time.perf_counter() - t
t = time.perf_counter()
c.log_batch(run, params=[Param(f"p{i}", str(i)) for i in range(60)])
c.log_batch(run, tags=[RunTag(f"t{i}", str(i)) for i in range(12)])
T["log 60 params + 12 tags"] = time.perf_counter() - t
t = time.perf_counter(); c.log_text(run, "a: 1\n" * 50, "spec.yaml"); T["log_text artifact"] = time.perf_counter() - t
t = time.perf_counter(); c.log_batch(run, metrics=[Metric(k, 1.0, 0, 1) for k in "abcd"]); T["one epoch's metrics"] = time.perf_counter() - t
t = time.perf_counter(); c.set_terminated(run, "FINISHED"); T["end run"] = time.perf_counter() - t
print(json.dumps(T))
'''

TRACKER = r'''
import json, os, time
T = {}
t = time.perf_counter(); from nas.tracking import Tracker, preflight; preflight(None, {})
T["preflight (starts the store)"] = time.perf_counter() - t
time.sleep(1.5)  # the run loads its data meanwhile
t = time.perf_counter(); tr = Tracker("nas", "r"); T["Tracker()"] = time.perf_counter() - t
t = time.perf_counter()
tr.log_params({f"p{i}": i for i in range(60)}); tr.set_tags({f"t{i}": i for i in range(12)})
tr.log_text("a: 1\n" * 50, "spec.yaml")
T["log params, tags, spec.yaml (queued)"] = time.perf_counter() - t
t = time.perf_counter(); tr.run_id; T["run_id (waits for the run)"] = time.perf_counter() - t
t = time.perf_counter(); tr.log_metrics({k: 1.0 for k in "abcd"}, step=1); T["one epoch's metrics (durable)"] = time.perf_counter() - t
t = time.perf_counter(); tr.end(); T["end run"] = time.perf_counter() - t
T["(background: " + ", ".join(f"{k} {v:.2f}s" for k, v in tr.seconds.items()) + ")"] = 0.0
print(json.dumps(T))
'''


def run(code: str, arg: str, cwd: Path, cache: Path) -> dict[str, float]:
    env = {**os.environ, "NAS_CACHE": str(cache)}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run([sys.executable, "-c", code, arg], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print(f"load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}; {repeats} repeat(s), medians")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        cache = tmp_path / "cache"
        results: dict[str, list[dict[str, float]]] = {}
        for r in range(repeats):
            for name, code, arg in (("raw MlflowClient, new store", RAW, "new"),
                                    ("raw MlflowClient, existing store", RAW, "old"),
                                    ("nas Tracker, new store", TRACKER, "new"),
                                    ("nas Tracker, existing store", TRACKER, "old")):
                folder = tmp_path / f"{name.replace(' ', '_').replace(',', '')}-{r}"
                if arg == "old":
                    folder = tmp_path / f"{name.replace(' ', '_').replace(',', '')}"
                    if not folder.exists():
                        folder.mkdir()
                        run(code, "new", folder, cache)  # make the store once
                else:
                    folder.mkdir()
                if name.startswith("nas") and not r and arg == "new":
                    run(code, "new", tmp_path, cache)  # the template, once per machine
                results.setdefault(name, []).append(run(code, arg, folder, cache))
        for name, rows in results.items():
            print(f"\n{name}")
            total = 0.0
            for key in rows[0]:
                value = statistics.median(row.get(key, 0.0) for row in rows)
                total += value if "(background" not in key else 0.0
                print(f"  {key:48s} {value:7.3f} s" if "(background" not in key else f"  {key}")
            print(f"  {'total, calling thread' :48s} {total:7.3f} s"
                  + ("  (preflight + the 1.5 s sleep overlap the store)" if "Tracker" in name else ""))


if __name__ == "__main__":
    main()
