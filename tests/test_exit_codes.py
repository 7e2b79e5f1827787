"""Exit codes that tell (issue 34, item 2): 0 only when a point of the campaign produced a
result; every point failed or infeasible -> exit 1 with one line saying why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import nas.ablate.driver
from nas.ablate.driver import AblationOutcome
from nas.campaign.progress import no_result_reason
from nas.cli import main


def frame(*rows: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame([{"status": s, "error": e} for s, e in rows])


def test_no_result_reason():
    assert no_result_reason(frame(("FAILED", "x"), ("COMPLETED", "")), "trial") is None
    assert no_result_reason(frame(("PRUNED", "")), "trial") is None
    assert no_result_reason(frame(), "cell") == "no cell ran"
    reason = no_result_reason(frame(("FAILED", "loss is nan"), ("FAILED", "loss is nan"),
                                    ("INFEASIBLE", "too big")), "trial")
    assert reason == "no trial produced a result (2 failed, 1 infeasible); most common error: loss is nan"


@pytest.mark.parametrize("statuses, code", [(["FAILED", "INFEASIBLE"], 1), (["FAILED", "COMPLETED"], 0)])
def test_ablation_exit_code_says_whether_anything_worked(tmp_path, monkeypatch, capsys, statuses, code):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    results = frame(*[(s, "diverged" if s == "FAILED" else "") for s in statuses])
    outcome = AblationOutcome("a", tmp_path / "a", results, pd.DataFrame(), "table", None, 1.0)
    monkeypatch.setattr(nas.ablate.driver, "ablate", lambda settings: outcome)
    assert main(["ablate", "dsc_cnn_act_conv", "mlflow.enabled=false"]) == code
    err = capsys.readouterr().err.strip()
    if code:
        assert err == "error: no cell produced a result (1 failed, 1 infeasible); most common error: diverged"
    else:
        assert err == ""


@pytest.mark.slow
def test_search_where_every_trial_fails_exits_1(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run([sys.executable, "-m", "nas.cli", "search", "--space", "shufflenet",
                           "--budget", "smoke", "--trials", "2", "--no-references", "--no-progress",
                           "data.name=synthetic", "data.val_size=64", "train.lr=1e30"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no trial produced a result (2 failed)"), done.stderr[-2000:]
    assert "Traceback" not in done.stdout + done.stderr
    assert Path(tmp_path / "searches").is_dir()  # the record of what failed is kept
