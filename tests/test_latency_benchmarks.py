"""benchmarks/latency_vs_macs.py and latency_check.py in small versions: they run end to end and
report what they promise (no assertion on any timing)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow
pytest.importorskip("onnxruntime")
BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def bench(name: str, *args: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, str(BENCH / name), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_latency_vs_macs_small_run_and_resume(tmp_path):
    args = ["--archs", "3", "--presets", "1", "--accuracy-archs", "6", "--runtimes", "onnxruntime,torch",
            "--max-s", "0.3", "--out", str(tmp_path / "q")]
    out = bench("latency_vs_macs.py", *args, cwd=tmp_path)
    rows = pd.read_csv(tmp_path / "q" / "latencies.csv")
    assert len(rows) == (3 * 3 + 1 + 6) * 2 and set(rows["runtime"]) == {"onnxruntime", "torch"}
    assert "Kendall tau-b between MACs and measured latency" in out and "val_acc from shufflenet_curves.csv" in out
    assert "MAC front" in out and (tmp_path / "q" / "latency_vs_macs.png").is_file()
    again = bench("latency_vs_macs.py", *args, cwd=tmp_path)  # everything measured: nothing again
    assert len(pd.read_csv(tmp_path / "q" / "latencies.csv")) == len(rows) and "measured," not in again


def test_latency_check_small_run(tmp_path):
    out = bench("latency_check.py", "--archs", "3", "--repeats", "2", cwd=tmp_path)
    assert "repeatability:" in out and "inside the first run's IQR" in out
    assert "ranking: Kendall tau-b" in out and "over 3 archs" in out
