"""benchmarks/search_efficiency.py: its arithmetic on hand-made trials (no timings asserted), its
reading of a search's records (trials.csv, search.json, the trials' MLflow runs), and the bare
step's processes; and `cpu_s`, the per-epoch metric it reads, from nas.train to MLflow."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

import nas
from nas import mlflow_layout as ml
from nas.config import TrainConfig
from nas.data import DataConfig, load_data
from nas.device import precision_for
from nas.spec import spec_to_dict, spec_to_yaml
from nas.tracking import new_sqlite_store
from nas.train import train

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it runs
    spec.loader.exec_module(module)
    return module


eff = _load("search_efficiency")
TINY = nas.load_preset("dsc_cnn", width=0.25, resolution=16, num_classes=10, in_channels=3)


# ----------------------------------------------------------------------------- arithmetic


def test_epoch_images_drops_the_last_partial_batch_like_train():
    assert eff.epoch_images(15000, 128) == 14976
    assert eff.epoch_images(1000, 128) == 896
    assert eff.epoch_images(100, 128) == 100  # one batch smaller than batch_size: kept


def test_trial_rate_is_images_over_pass_seconds_and_cpu_share():
    epochs = [eff.Epoch(100.0, 8.96), eff.Epoch(50.0, 8.96)]  # 8.96 s and 17.92 s passes of 896
    rate = eff.trial_rate(epochs, 896, threads=1)
    assert rate.images == 1792
    assert rate.img_per_s == pytest.approx(1792 / 26.88)  # 66.7: not the mean of 100 and 50
    assert rate.core == pytest.approx(17.92 / 26.88)
    assert rate.img_per_cpu_s == pytest.approx(100.0)
    assert eff.trial_rate(epochs, 896, threads=2).core == pytest.approx(17.92 / 26.88 / 2)


def test_trial_rate_without_cpu_s_has_no_share():
    rate = eff.trial_rate([eff.Epoch(100.0, None), eff.Epoch(100.0, 9.0)], 900, threads=1)
    assert rate.img_per_s == pytest.approx(100.0)
    assert rate.core is None and rate.img_per_cpu_s is None


def _row(trial: int, rates: list[float], cpus: list[float], bare=(80.0, 100.0), corun=(70.0, 90.0)):
    rate = eff.trial_rate([eff.Epoch(r, c) for r, c in zip(rates, cpus)], 896, threads=1)
    return eff.Row(trial, "8/0.5", 10e6, rate, eff.Bare(*bare), eff.Bare(*corun) if corun else None)


def test_ratios_medians_and_whole_run_on_a_hand_made_table():
    rows = [_row(0, [100.0, 50.0], [8.96, 8.96]),  # 66.67 img/s, 100 img/cpu-s
            _row(1, [90.0], [896 / 90]),  # 90 img/s, 90 img/cpu-s
            _row(2, [40.0], [896 / 40], bare=(50.0, 50.0), corun=None)]  # 40 img/s
    got = [eff.ratios(r) for r in rows]
    assert got[0]["ratio"] == pytest.approx(66.667 / 80, rel=1e-4)
    assert got[0]["cpu"] == pytest.approx(1.0) and got[0]["corun"] == pytest.approx(66.667 / 70, rel=1e-4)
    assert got[1]["ratio"] == pytest.approx(90 / 80) and got[1]["cpu"] == pytest.approx(0.9)
    assert got[2]["ratio"] == pytest.approx(0.8) and got[2]["corun"] is None
    assert eff.median_of(rows, "ratio") == pytest.approx(66.667 / 80, rel=1e-4)  # 0.8, 0.833, 1.125
    assert eff.median_of(rows, "corun") == pytest.approx((66.667 / 70 + 90 / 70) / 2, rel=1e-4)
    run = eff.whole_run(rows, wall_s=100.0, concurrency=2)
    assert run.images == 1792 + 896 + 896
    assert run.img_per_s == pytest.approx(35.84)
    assert (run.best_bare, run.ceiling) == (80.0, 160.0)


# ----------------------------------------------------------------------------- a search's records


def _search_folder(tmp_path: Path) -> tuple[Path, str]:
    """A finished 3-trial search as `nas search` leaves it: two trained trials of one net (one
    of them without cpu_s, as older records are), one infeasible."""
    from mlflow.tracking import MlflowClient

    db = tmp_path / "mlflow.db"
    new_sqlite_store(db)
    uri = f"sqlite:///{db}"
    client = MlflowClient(uri)
    exp = client.create_experiment("s")
    parent = client.create_run(exp).info.run_id
    client.log_param(parent, "data_sizes.train", "1000")
    client.log_metric(parent, ml.WALL_TIME_S, 100.0)
    runs = []
    for epochs in ([(100.0, 8.96), (50.0, 8.96)], [(90.0, None)]):
        run = client.create_run(exp, tags={ml.PRECISION: "fp32"}).info.run_id
        client.log_text(run, spec_to_yaml(TINY), "spec.yaml")
        for step, (rate, cpu) in enumerate(epochs, 1):
            client.log_metric(run, "img_per_s", rate, step=step)
            if cpu is not None:
                client.log_metric(run, "cpu_s", cpu, step=step)
        runs.append(run)
    folder = tmp_path / "searches" / "s"
    folder.mkdir(parents=True)
    settings = {"budget": "cpu", "overrides": [f"mlflow.tracking_uri={uri}"], "cpus_per_trial": 1.0,
                "concurrency": 2}
    (folder / "search.json").write_text(json.dumps({"parent_run_id": parent, "settings": settings}))
    (folder / ml.TRIALS_CSV).write_text(
        "trial,status,macs,choice.groups,choice.width,mlflow_run_id\n"
        f"0,COMPLETED,1000000,8,0.5,{runs[0]}\n1,INFEASIBLE,9e7,8,1.0,\n2,COMPLETED,1000000,8,0.25,{runs[1]}\n")
    return folder, uri


def test_report_reads_the_records_and_measures_each_net_once(tmp_path, monkeypatch, capsys):
    folder, uri = _search_folder(tmp_path)
    calls = []

    def fake_bare(spec, fmt, train_fields, threads, *, copies=1, steps=6, repeats=3):
        calls.append((fmt, threads, copies, train_fields["batch_size"], spec == spec_to_dict(TINY)))
        return eff.Bare(80.0, 100.0) if copies == 1 else eff.Bare(70.0, 90.0)

    monkeypatch.setattr(eff, "measure_bare", fake_bare)
    found = eff.open_search(folder, None)
    assert (found.uri, found.threads, found.concurrency) == (uri, 1, 2)
    args = argparse.Namespace(tracking_uri=None, corun=None, steps=6, repeats=3)
    assert eff.report(folder, args) == 0
    out = capsys.readouterr().out
    assert calls == [("fp32", 1, 1, 128, True), ("fp32", 1, 2, 128, True)]  # one net: once, alone and x2
    assert "net = groups/width" in out and "8/0.5" in out and "8/0.25" in out
    assert "median ratio trial / bare: 0.979 over 2 trials" in out and "PASS" in out  # 0.833, 1.125
    assert "median cpu ratio (per CPU second): 1.000" in out  # trial 2 has no cpu_s
    assert "2,688 images trained in 100 s = 26.9 img/s" in out
    assert "x2 trials at a time 160.0 img/s" in out


def test_bare_step_runs_in_side_by_side_processes():
    fields = {"batch_size": 8, "lr": 0.05}
    alone = eff.measure_bare(spec_to_dict(TINY), "bf16", fields, 1, steps=1, repeats=1)
    paired = eff.measure_bare(spec_to_dict(TINY), "fp32", fields, 1, copies=2, steps=1, repeats=2)
    assert alone.img_per_s > 0 and alone.img_per_cpu_s > 0
    assert paired.img_per_s > 0 and paired.img_per_cpu_s > 0


# ----------------------------------------------------------------------------- cpu_s


def test_every_epoch_reports_its_cpu_seconds_and_mlflow_logs_them():
    data = load_data(DataConfig(name="synthetic", val_size=16, synthetic_train=96, synthetic_test=16,
                                synthetic_shape=(3, 16, 16)))
    model = nas.build_model(TINY)
    seen = []
    train(model, data, TrainConfig(epochs=2, batch_size=32), seen.append, data_cfg=DataConfig(),
          precision=precision_for(torch.device("cpu"), "off"), progress=False)
    assert [m["epoch"] for m in seen] == [1, 2]
    assert all(m["cpu_s"] > 0 for m in seen)
    assert "cpu_s" in ml.EPOCH_METRICS  # what run, search and ablate log per epoch


# ----------------------------------------------------------------------------- a trial's threads


@pytest.mark.parametrize("threads", [1, 2])
def test_a_trial_job_trains_with_the_threads_its_worker_was_given(threads):
    """A search trial runs `execute(Job(..., threads=cpus_per_trial))` in its Ray worker (the
    thread count the bare step is compared at): torch's pool is set to that, whatever it was."""
    from nas.config import load_run_config
    from nas.job import Job, execute

    cfg = load_run_config(["data.name=synthetic", "data.val_size=16", "data.synthetic_train=96",
                           "data.synthetic_test=16", "data.synthetic_shape=[3,16,16]", "train.epochs=1",
                           "train.batch_size=32", "mlflow.enabled=false"])
    before = torch.get_num_threads()
    torch.set_num_threads(3 - threads)  # the other value: the job must change it
    seen = []
    try:
        result = execute(Job(TINY, cfg, device="cpu", threads=threads, test=False),
                         load_data(cfg.data), lambda metrics: seen.append(torch.get_num_threads())).result
    finally:
        torch.set_num_threads(before)
    assert not result.error, result.error
    assert seen == [threads]
