"""benchmarks/gpu_check.py, gpu_check_launch.py and gpu_check_report.py (issue 32): the parsing of the check's own
output and of the tools it drives, the share and placement arithmetic, and (slow) the whole dry
run of gpu_check.sh on the CPU."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # gpu_check imports gpu_check_report by name, as when run there
    spec.loader.exec_module(module)
    return module


rep = _load("gpu_check_report")
_load("gpu_check_launch")
gc = _load("gpu_check")

# train_throughput.py --part loop's table, as it printed it (a CPU dry run)
THROUGHPUT = """\
what                                               img/s  s/epoch  wall s/ep   ratio  range  wall ratio   target  result
------------------------------------------------  ------  -------  ---------  ------  -----  ----------  -------  ------
bare loop (pre-made batches)                          19    8.523     15.192
nas train() loop                                  12,028    5.674      6.887
seeds' pipeline (tv CIFAR10+PIL+DataLoader)           18    8.700      9.115
  nas Loader alone (no training)                  82,597    0.002      0.002
1. nas img/s / bare img/s                                                      0.962      -       2.206  >= 0.95    pass
2a. (nas - bare) / nas epoch                                                  -50.2%      -     -120.6%    <= 3%    pass
3. nas epoch / seeds epoch (target set for CPU)                                0.252      -       0.756   <= 0.9    pass
3b. (bare + Loader) / (bare + seeds' DataLoader)                               0.989      -       0.994   <= 0.9    FAIL
"""

# `nas run`'s epoch lines and summary table, as it printed them
NAS_RUN = """\
epoch 1/2  loss 2.3024  val_acc 0.1000  11 img/s  17.6s
epoch 2/2  loss 2.2567  val_acc 0.1000  25 img/s  7.8s

----------------------  ----------------------------------------------
model                   shufflenet_v1_g3 (width 0.25, 32px)
test_acc (report only)  0.9312
wall time               28.4s
"""


def _line(result) -> str:
    return rep.MARK + json.dumps(asdict(result))


def test_throughput_table_is_read_by_its_labels():
    assert rep.parse_throughput(THROUGHPUT) == {"nas_img_s": 12028.0, "vs_bare": 0.962, "vs_seeds": 0.252}
    with pytest.raises(ValueError, match="vs_seeds"):
        rep.parse_throughput(THROUGHPUT.replace("3. nas epoch", "4. other"))


def test_nas_run_output_gives_epochs_training_time_and_test_accuracy():
    got = rep.parse_nas_run(NAS_RUN)
    assert got == {"epochs": 2, "train_s": pytest.approx(25.4), "test_acc": 0.9312, "wall_s": 28.4}
    with pytest.raises(ValueError):
        rep.parse_nas_run(NAS_RUN.replace("test_acc", "val_acc"))


def test_step_log_last_result_wins_and_a_killed_or_crashed_step_fails():
    partial = rep.StepResult("overhead", "pass", "eager 1.0s/ep", {"x": 1})
    done = rep.StepResult("overhead", "pass", "eager 1.0s/ep; graphs 0.5s/ep", {"x": 2})
    text = f"noise\n{_line(partial)}\nmore\n{_line(done)}\n"
    assert rep.parse_step_log("overhead", text, 0, 45) == done
    killed = rep.parse_step_log("overhead", f"{_line(partial)}\n", 124, 45)
    assert killed.status == "FAIL"
    assert killed.summary == "timed out after 45s (last figures: eager 1.0s/ep)"
    crashed = rep.parse_step_log("share", "Traceback ...\nRuntimeError: CUDA error\n", 1, 60)
    assert crashed.status == "FAIL" and crashed.summary == "exit 1: RuntimeError: CUDA error"


def test_final_line_names_failed_steps_and_keeps_every_figure():
    ok = rep.StepResult("throughput", "pass", "x0.97 bare")
    skipped = rep.StepResult("table", "skip", "no space_table.py")
    bad = rep.StepResult("accuracy", "FAIL", "test 91.20%")
    assert rep.final_line([ok, skipped]) == "PASS | throughput: x0.97 bare; table: no space_table.py"
    assert rep.final_line([ok, bad, skipped]) == ("FAIL accuracy | throughput: x0.97 bare; "
                                                  "accuracy: test 91.20%; table: no space_table.py")


def test_report_reads_the_files_the_script_writes(tmp_path, capsys):
    (tmp_path / "throughput.log").write_text(_line(rep.StepResult("throughput", "pass", "fast")) + "\n")
    (tmp_path / "throughput.rc").write_text("0\n")
    (tmp_path / "throughput.time").write_text("61 75\n")
    (tmp_path / "search.log").write_text("started\n")
    (tmp_path / "search.rc").write_text("124\n")
    (tmp_path / "search.time").write_text("105 105\n")
    assert rep.report(tmp_path, ["throughput", "search", "share"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == ("FAIL search, share | throughput: fast; search: timed out after 105s; "
                       "share: did not run")
    assert any(ln.split()[:4] == ["throughput", "pass", "61", "75"] for ln in out)


def test_share_plans_give_each_of_k_trials_a_1_over_k_share():
    plans = gc.share_plans({"CPU": 16.0, "GPU": 1.0}, "cuda", (1, 2, 4, 8))
    assert [(p.concurrency, p.share) for p in plans.values()] == [(1, 1.0), (2, 0.5), (4, 0.25), (8, 0.125)]
    assert plans[8].task_options() == {"num_cpus": 1.0, "num_gpus": 0.125}
    cpu = gc.share_plans({"CPU": 2.0}, "cpu", (1, 2))
    assert [(p.kind, p.concurrency, p.cpus_each) for p in cpu.values()] == [("cpu", 1, 2.0), ("cpu", 2, 1.0)]


def test_aggregate_rate_counts_only_the_window_where_every_trial_trains():
    # trial a: epochs [0,2] (start-up, ignored) [2,4] [4,6], 100 images each; trial b starts later
    a = [(0.0, 2.0, 100), (2.0, 4.0, 100), (4.0, 6.0, 100)]
    b = [(1.0, 3.0, 100), (3.0, 5.0, 100), (5.0, 7.0, 100)]
    # window [3, 6]: a's 2nd epoch half in (50) + 3rd whole (100); b's 2nd whole (100) + 3rd half (50)
    assert rep.aggregate_rate([a, b]) == pytest.approx(300 / 3)
    assert rep.aggregate_rate([a]) == pytest.approx(50.0)
    late = [(7.0, 8.0, 100), (8.0, 9.0, 100)]
    assert math.isnan(rep.aggregate_rate([a, late]))


def test_share_result_fails_outside_a_dry_run_when_trials_never_overlapped():
    rates = {1: 1000.0, 2: 1800.0, 4: float("nan")}
    res = gc.share_result(rates, 4, dry_run=False)
    assert res.status == "FAIL" and "4: no overlap" in res.summary and "1 sizes not run" in res.summary
    assert res.figures["best_trials_per_device"] == 2
    assert gc.share_result({1: 1000.0, 2: 1800.0}, 2, dry_run=False).status == "pass"
    oom = gc.share_result({1: 1000.0, 2: float("nan")}, 2, dry_run=False,
                          errors={2: "OutOfMemoryError: CUDA"})
    assert oom.status == "FAIL" and "2: OutOfMemoryError: CUDA" in oom.summary


def test_most_at_once_and_affordable_epochs():
    assert rep.most_at_once([(0, 10), (5, 15), (10, 20), (12, 13)]) == 3
    assert rep.most_at_once([(0, 1), (1, 2)]) == 1
    assert gc.affordable_epochs(30, 10_000.0, 300, 45_000) == 30  # 135 s fit
    assert gc.affordable_epochs(30, 3_000.0, 300, 45_000) == 20  # 450 s do not
    assert gc.affordable_epochs(30, None, 300, 45_000) == 30


def test_within_stops_what_overruns_its_seconds():
    import time

    assert gc.within(5, lambda: 7) == 7
    with pytest.raises(TimeoutError, match="not done within 1s"):
        gc.within(1, lambda: time.sleep(5))


def test_the_recipe_is_the_gpu_budgets_run_layer():
    settings, epochs = gc.recipe_settings()
    assert settings == {"data.val_size": 5000, "train.epochs": 30, "train.batch_size": 256}
    assert epochs == 30


def test_the_device_runs_commands_are_valid_arguments(tmp_path):
    """What only a GPU run executes: its words are valid `nas run` settings and its flags parse."""
    from nas.config import load_run_config

    args = argparse.Namespace(dry_run=False, data_root=str(tmp_path), device="cuda", out=str(tmp_path))
    settings, recipe = gc.accuracy_settings(args, tmp_path)
    cfg = load_run_config(gc.as_words({k: v for k, v in settings.items() if k != "preset"}))
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.data.val_size, cfg.device) == (30, 256, 5000, "cuda")
    search = gc.search_command(args, tmp_path, "x", 12)
    cfg = load_run_config([w for w in search if "=" in w and not w.startswith("-")])
    assert (cfg.train.epochs, cfg.data.train_subset, cfg.data.root) == (3, 10_000, str(tmp_path))
    assert search[search.index("--per-trial") + 1] == "0.25" and search[search.index("--budget") + 1] == "gpu"
    throughput = _load("train_throughput")
    parsed = throughput.parse_args(gc.throughput_command(args, gc.NETS[1])[2:])
    assert (parsed.device, parsed.preset, parsed.width, parsed.batch, parsed.images) == (
        "cuda", "mobilenet_v2", 1.0, 256, 5120)


@pytest.mark.slow
def test_dry_run_passes_end_to_end(tmp_path):
    # a hang guard, not a speed check: the dry run takes about 9 min alone on a 2-core machine
    # (stop 37) and passed 10 beside a background job
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=1200)
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert lines[-1].startswith("PASS | throughput: "), lines[-1]
    for step in ("throughput", "overhead", "share", "accuracy", "search", "table"):
        assert any(ln.startswith(step + " ") for ln in lines), step
