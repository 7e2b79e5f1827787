"""`nas search --address` on a real Ray cluster on 127.0.0.1 that declares NPUs
(`ray start --resources '{"NPU": 2}'`), as an Ascend node does: the trials are planned as NPU
trials (Ray's NPU resource), a node without torch_npu fails each trial with one line naming
torch_npu, and with the test stand-in (tests/stubs/torch_npu on the node's PYTHONPATH) the
trials train through nas's real NPU path and trials.csv says npu."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from test_cluster import ENV, RAY, free_port, node_args

pytestmark = pytest.mark.slow

STUBS = Path(__file__).resolve().parent / "stubs"
SYNTH = ["data.name=synthetic", "data.val_size=64", "data.synthetic_train=320",
         "data.synthetic_test=64", "train.batch_size=64", "train.epochs=1"]


def _head(root: Path, env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    args = node_args(root / "h")
    args[args.index("--num-cpus") + 1] = "2"
    log = open(root / "head.log", "w")
    proc = subprocess.Popen([str(RAY), "start", "--block", "--head", "--port", str(port),
                             "--include-dashboard=false", "--resources", '{"NPU": 2}', *args],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    import time

    deadline = time.time() + 150
    while time.time() < deadline and "Ray runtime started" not in (root / "head.log").read_text():
        assert proc.poll() is None, (root / "head.log").read_text()[-3000:]
        time.sleep(1)
    return proc, f"127.0.0.1:{port}"


def _search(workdir: Path, address: str, name: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "nas.cli", "search", "--space", "shufflenet", "--budget", "smoke",
           "--no-progress", "--no-references", "--trials", "2", "--name", name, "--address", address,
           "--accelerator", "npu", *SYNTH]
    env = {k: v for k, v in ENV.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.parametrize("stand_in", [False, True])
def test_search_on_an_npu_cluster(tmp_path, stand_in):
    import signal

    root = Path(tempfile.mkdtemp(prefix="rn", dir="/tmp"))  # unix socket paths must stay short
    env = dict(ENV)
    if stand_in:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(STUBS), env.get("PYTHONPATH")]))
    proc, address = _head(root, env)
    try:
        done = _search(tmp_path, address, "n1")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
    # without torch_npu every trial fails: the search says so in one line and exits 1 (issue 34)
    assert done.returncode == (0 if stand_in else 1), done.stderr[-3000:]
    assert stand_in or done.stderr.strip().splitlines()[-1].startswith("error: no trial produced a result")
    assert "(npu, 0.25 each)" in done.stdout  # planned as NPU trials: Ray's NPU resource
    df = pd.read_csv(tmp_path / "searches" / "n1" / "trials.csv", keep_default_na=False)
    trained = df[~df.status.isin(["INFEASIBLE", "DUPLICATE"])]
    assert len(trained) == 2
    if stand_in:
        assert (trained.status == "COMPLETED").all(), trained[["status", "error"]]
        assert trained.device.str.startswith("npu").all()
    else:
        assert (trained.status == "FAILED").all()
        assert trained.error.str.contains("torch_npu").all() and not trained.error.str.contains("\n").any()
