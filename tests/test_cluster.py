"""A real two-node Ray cluster on this machine, and a node lost in the middle of a search.

A head (`ray start --head`) and a worker node (`ray start --address`) are started as separate
process groups on 127.0.0.1, one CPU each, each with its own short temp dir and ports. `nas search
--address` runs trials on both (checked from the `nas.node` tags the driver writes as results
come in); once both nodes have finished a trial and another one is running on the worker node
past its first epoch, the worker node's whole process group gets SIGKILL. The search must finish: the asked number of trials trained,
the trial lost with the node recorded FAILED (or retried), every trial finished before the kill
still there once, and the store passing tests/integrity.py.

Teardown kills only the process groups this test started (never `ray stop`, which would stop
every Ray on the machine).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from integrity import assert_none_lost, check_store, completed_before, query_live_db

pytestmark = pytest.mark.slow

RAY = Path(sys.executable).with_name("ray")
SYNTH = ["data.name=synthetic", "data.val_size=64", "data.synthetic_train=1100",
         "data.train_subset=1000", "data.synthetic_test=64", "train.batch_size=64",
         "train.epochs=3"]
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
       "PYTHONUNBUFFERED": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """One `ray start --block` in its own process group: killing the group kills the node."""

    def __init__(self, args: list[str], log: Path):
        self.log = open(log, "w")
        self.proc = subprocess.Popen([str(RAY), "start", "--block", *args], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=ENV, start_new_session=True)

    def kill(self) -> None:
        """SIGKILL the node's process group (raylet, GCS, agents; its workers exit with the
        raylet), even when `ray start` itself has already exited."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        self.log.close()


def node_args(temp_dir: Path) -> list[str]:
    return ["--num-cpus", "1", "--num-gpus", "0", "--node-ip-address", "127.0.0.1",
            "--temp-dir", str(temp_dir), "--object-store-memory", str(200 * 1024**2),
            "--dashboard-agent-listen-port", str(free_port()),
            "--metrics-export-port", str(free_port()), "--disable-usage-stats"]


def cluster_nodes(address: str) -> list[dict]:
    """The alive nodes as Ray sees them (asked from a short-lived driver process)."""
    code = ("import json, ray; ray.init(address=%r, log_to_driver=False);"
            "print(json.dumps([{'id': n['NodeID'], 'head': 'node:__internal_head__' in n['Resources'],"
            " 'cpus': n['Resources'].get('CPU', 0)} for n in ray.nodes() if n['Alive']]))" % address)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def trial_nodes(db: Path) -> dict[int, tuple[str, str, int]]:
    """{trial: (node id, MLflow status, last epoch logged)} for child runs that have reported a
    first epoch."""
    rows = query_live_db(db, "select t.value, n.value, r.status, (select max(m.step) from metrics m"
                             " where m.run_uuid = r.run_uuid and m.key = 'val_acc') from runs r"
                             " join tags t on t.run_uuid = r.run_uuid and t.key = 'nas.trial'"
                             " join tags n on n.run_uuid = r.run_uuid and n.key = 'nas.node'")
    return {int(trial): (node, status, int(epoch or 1)) for trial, node, status, epoch in rows}


def start_node(args: list[str], log: Path, ready, nodes: list[Node], attempts: int = 3) -> Node:
    """Start a node, retried: on a loaded machine a raylet can miss Ray's fixed 30 s
    registration window and `ray start` gives up."""
    for attempt in range(attempts):
        node = Node(args, log.with_suffix(f".{attempt}.log"))
        nodes.append(node)
        deadline = time.time() + 150
        while time.time() < deadline and node.proc.poll() is None:
            if ready(node):
                return node
            time.sleep(1)
        node.kill()
    pytest.fail(f"ray start failed {attempts} times: {log.with_suffix(f'.{attempts - 1}.log').read_text()[-3000:]}")


@pytest.fixture
def cluster(tmp_path):
    root = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # unix socket paths must stay short
    nodes: list[Node] = []
    try:
        port = free_port()
        address = f"127.0.0.1:{port}"
        head = start_node(["--head", "--port", str(port), "--include-dashboard=false",
                           *node_args(root / "h")], tmp_path / "head.log",
                          lambda node: "Ray runtime started" in Path(node.log.name).read_text(), nodes)
        worker = start_node(["--address", address, *node_args(root / "w")], tmp_path / "worker.log",
                            lambda node: len(cluster_nodes(address)) == 2, nodes)
        alive = cluster_nodes(address)
        yield {"address": address, "head": head, "worker": worker,
               "head_id": next(n["id"] for n in alive if n["head"]),
               "worker_id": next(n["id"] for n in alive if not n["head"])}
    finally:
        for node in reversed(nodes):
            node.kill()
        shutil.rmtree(root, ignore_errors=True)


def test_search_survives_losing_a_worker_node(cluster, tmp_path, monkeypatch):
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    name, trials = "cl", 8
    cmd = [sys.executable, "-m", "nas.cli", "search", "--space", "shufflenet", "--budget", "smoke",
           "--no-progress", "--no-asha", "--no-references", "--trials", str(trials), "--name", name,
           "--address", cluster["address"], "--cpus-per-trial", "1", "--concurrency", "2", *SYNTH]
    log = open(workdir / "search.log", "w")
    search = subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=ENV,
                              start_new_session=True)
    db = workdir / "mlflow.db"
    try:
        deadline = time.time() + 500
        seen: dict[int, tuple[str, str, int]] = {}
        victim = None
        while time.time() < deadline and search.poll() is None:
            seen = trial_nodes(db)
            finished_on = {node for node, status, _ in seen.values() if status == "FINISHED"}
            # on its first epoch only: two of its three epochs are left, so the kill lands mid-trial
            # (a victim in its last epoch could finish before the kill, as on a loaded machine)
            running_on_worker = [t for t, (node, status, epoch) in seen.items()
                                 if node == cluster["worker_id"] and status == "RUNNING" and epoch == 1]
            # both nodes have finished a trial, and the worker is past epoch 1 of another one
            if {cluster["head_id"], cluster["worker_id"]} <= finished_on and running_on_worker:
                victim = running_on_worker[0]
                break
            time.sleep(0.2)
        assert victim is not None, (f"no trial finished on both nodes with one more running on"
                                    f" the worker before the search ended: {seen}\n"
                                    + (workdir / "search.log").read_text()[-3000:])
        before = completed_before(workdir / "searches" / name)
        cluster["worker"].kill()  # the worker node's raylet, object store, agents: SIGKILL
        killed_at = time.time()
        code = search.wait(timeout=600)
    finally:
        if search.poll() is None:
            os.killpg(search.pid, signal.SIGKILL)
            search.wait()
        log.close()
    output = (workdir / "search.log").read_text()
    assert code == 0, output[-4000:]
    assert "database is locked" not in output
    summary = check_store(workdir, name)
    lost = assert_none_lost(workdir, name, before)
    df = pd.read_csv(workdir / "searches" / name / "trials.csv")
    trained = df[df.status.isin(["COMPLETED", "PRUNED", "FAILED"])]
    assert len(trained) == trials, df[["trial", "status", "error"]]
    assert {cluster["head_id"], cluster["worker_id"]} <= set(df.node.dropna()), df.node
    row = df[df.trial == victim].iloc[0]
    # the trial on the dead node: retried elsewhere (then it finished on the head) or FAILED
    assert row.status == "FAILED" or row.node == cluster["head_id"], row.to_dict()
    print(f"worker node killed with trial {victim} on it, {len(before)} trials finished before;"
          f" search finished {time.time() - killed_at:.0f}s later: {summary}; victim"
          f" {row.status} {row.error if isinstance(row.error, str) else ''}; finished trials lost: {lost}")
