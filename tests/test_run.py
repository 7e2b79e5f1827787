"""`nas run` end to end on synthetic data: MLflow records, resume, NaN, bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

import nas
from nas.cli import main
from nas.config import OPTIMIZER_NAMES, SCHEDULE_NAMES, TrainConfig, load_run_config
from nas.data import DataConfig, load_data
from nas.device import precision_for
from nas.errors import NasError
from nas.optim import OPTIMIZERS, SCHEDULES
from nas.train import Diverged, train

SYNTH = ["data.name=synthetic", "data.val_size=64", "data.synthetic_train=384",
         "data.synthetic_test=128", "progress=false", "train.batch_size=64", "train.threads=1"]
MODEL = ["preset=shufflenet_v1_g3", "width=0.25"]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def mlflow_runs(workdir: Path, experiment: str = "nas"):
    import mlflow
    client = mlflow.tracking.MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    return client, client.search_runs([exp.experiment_id])


def test_run_logs_everything_to_a_sqlite_mlflow_store(workdir, capsys):
    assert main(["run", *MODEL, *SYNTH, "train.epochs=2", "mlflow.experiment=t"]) == 0
    out = capsys.readouterr().out
    assert "test_acc (report only)" in out and "val_acc (selection)" in out
    client, runs = mlflow_runs(workdir, "t")
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    m, p, tags = run.data.metrics, run.data.params, run.data.tags
    for key in ("train_loss", "val_acc", "lr", "img_per_s", "test_acc", "macs", "params", "wall_time_s"):
        assert key in m, key
    assert m["cpu_s"] > 0  # CPU seconds of the last training pass (nas.train)
    assert 0.0 <= m["val_acc"] <= 1.0 and 0.0 <= m["test_acc"] <= 1.0
    counted = nas.count(nas.load_preset("shufflenet_v1_g3", width=0.25, resolution=32, num_classes=10))
    assert (m["macs"], m["params"]) == (counted.macs, counted.params)
    assert [x.step for x in client.get_metric_history(run.info.run_id, "train_loss")] == [1, 2]
    assert p["train.epochs"] == "2" and p["train.seed"] == "0" and p["data.val_size"] == "64"
    assert p["preset"] == "shufflenet_v1_g3" and p["data.name"] == "synthetic"
    for tag in ("nas.git_commit", "torch.version", "device", "nas.precision", "nas.selection_metric"):  # the names users filter on
        assert tag in tags
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id)]
    assert "spec.yaml" in artifacts
    spec_text = Path(client.download_artifacts(run.info.run_id, "spec.yaml")).read_text()
    assert "shufflenet" in spec_text and "groups: 3" in spec_text


def test_a_front_member_is_retrained_as_a_job_under_its_search(workdir):
    """`--retrain-top`'s step: a Job executed in process (not the `nas run` command), its
    folder as `nas run`'s, its child run under the search's parent."""
    from nas import mlflow_layout as ml
    from nas.campaign.recorder import CampaignRecorder
    from nas.job import run_folder
    from nas.search.retrain import retrain

    cfg = load_run_config([*MODEL, *SYNTH, "train.epochs=1"])
    campaign = CampaignRecorder(cfg.mlflow, "s")
    tags = {ml.KIND: ml.KIND_RETRAIN, ml.TRIAL: "4", ml.RETRAIN_OF: "r0"}
    spec, done = retrain(cfg, load_data(cfg.data), campaign, "s-retrain-t004", tags)
    assert done.result.test_acc is not None and done.model is not None
    assert (run_folder(cfg, spec) / "spec.yaml").is_file() and (run_folder(cfg, spec) / "checkpoint.pt").is_file()
    campaign.parent.end()
    _, runs = mlflow_runs(workdir)
    [child] = [r for r in runs if r.data.tags.get(ml.KIND) == ml.KIND_RETRAIN]
    assert child.data.tags[ml.PARENT_RUN_ID] == campaign.parent.run_id and child.info.status == "FINISHED"
    assert child.data.tags[ml.STATUS] == "COMPLETED" and "test_acc" in child.data.metrics
    assert child.data.params["preset"] == "shufflenet_v1_g3"


def _tiny_setup(epochs: int = 3):
    data_cfg = DataConfig(name="synthetic", val_size=64, synthetic_train=384, synthetic_test=64)
    data = load_data(data_cfg)
    cfg = TrainConfig(epochs=epochs, batch_size=64, threads=1, ema=True)
    torch.manual_seed(0)
    spec = nas.load_preset("mobilenet_v2", width=0.35, resolution=32, num_classes=10,
                           **{"head.dropout": 0.2})
    return data_cfg, data, cfg, nas.build_model(spec)


def test_resume_after_interrupt_gives_identical_weights(tmp_path):
    torch.set_num_threads(1)
    data_cfg, data, cfg, model = _tiny_setup()
    prec = precision_for(torch.device("cpu"))
    straight = train(model, data, cfg, data_cfg=data_cfg, precision=prec, progress=False,
                     checkpoint_path=tmp_path / "a.pt")

    def interrupt_after_first_epoch(metrics):
        if metrics["epoch"] == 1:
            raise KeyboardInterrupt

    _, _, _, model2 = _tiny_setup()
    with pytest.raises(KeyboardInterrupt):
        train(model2, data, cfg, interrupt_after_first_epoch, data_cfg=data_cfg, precision=prec,
              progress=False, checkpoint_path=tmp_path / "b.pt")
    _, _, _, model3 = _tiny_setup()  # a fresh process would rebuild the model from scratch
    resumed = train(model3, data, cfg, data_cfg=data_cfg, precision=prec, progress=False,
                    checkpoint_path=tmp_path / "b.pt", resume=True)
    assert resumed.resumed_from_epoch == 1
    a, b = straight.model.state_dict(), resumed.model.state_dict()  # EMA weights
    assert all(torch.equal(a[k], b[k]) for k in a)
    raw_a, raw_b = model.state_dict(), model3.state_dict()
    assert all(torch.equal(raw_a[k], raw_b[k]) for k in raw_a)
    assert [h["train_loss"] for h in straight.history] == [h["train_loss"] for h in resumed.history]


def test_killed_cli_run_resumes_into_the_same_mlflow_run(workdir):
    args = [sys.executable, "-m", "nas.cli", "run", *MODEL, *SYNTH, "train.epochs=6"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(args, cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    ckpts: list[Path] = []
    while time.time() < deadline and not ckpts:
        ckpts = list(workdir.glob("runs/*/checkpoint.pt"))
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpts, "no checkpoint appeared"
    first_epochs = torch.load(ckpts[0], weights_only=True)["epoch"]
    assert first_epochs < 6
    done = subprocess.run(args + ["resume=true"], cwd=workdir, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    client, runs = mlflow_runs(workdir)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(runs[0].info.run_id, "train_loss")]
    assert sorted(set(steps)) == [1, 2, 3, 4, 5, 6]
    # and the resumed weights equal an uninterrupted run's
    straight = subprocess.run(args + ["output_dir=straight", "mlflow.enabled=false"], cwd=workdir,
                              env=env, capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr[-2000:]
    a = torch.load(ckpts[0], weights_only=True)["model"]
    b = torch.load(next(workdir.glob("straight/*/checkpoint.pt")), weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


class NanNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 10)

    def forward(self, x):
        return self.fc(x.mean((2, 3))) * float("nan")


def test_nan_loss_stops_training_with_a_clear_message():
    data_cfg = DataConfig(name="synthetic", val_size=64, synthetic_train=384)
    data = load_data(data_cfg)
    with pytest.raises(Diverged, match=r"loss became NaN/inf in epoch 1 .* lower train.lr"):
        train(NanNet(), data, TrainConfig(epochs=2, batch_size=64), data_cfg=data_cfg,
              precision=precision_for(torch.device("cpu")), progress=False)


def test_diverging_cli_run_is_recorded_failed(workdir, capsys):
    code = main(["run", *MODEL, *SYNTH, "train.epochs=2", "train.lr=1e30", "train.schedule=constant"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: loss became NaN/inf") and err.count("\n") == 1
    _, runs = mlflow_runs(workdir)
    assert runs[0].info.status == "FAILED"
    assert "loss became NaN/inf" in runs[0].data.tags["error"]


def test_missing_cifar_gives_one_line_with_the_path(workdir, capsys):
    code = main(["run", "preset=mobilenet_v1", f"data.root={workdir / 'nowhere'}", "data.download=false",
                 "mlflow.enabled=false"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(workdir / "nowhere" / "cifar-10-batches-py") in err


@pytest.mark.parametrize("argv,message", [
    (["train.lrr=0.1"], "train.lrr is not a field of train; did you mean 'lr'?"),
    (["trian.epochs=3"], "did you mean 'train'?"),
    (["train.epochs=three"], "train.epochs must be an integer, got 'three'"),
    (["train.optimizer=sgdd"], "train.optimizer='sgdd' must be one of sgd, adam, adamw"),
    (["width=1.0", "model.stages.1.groups=7"], "stages[1].groups=7 does not divide"),
    (["width=-1"], "width=-1.0 must be > 0"),
    (["epochs=3"], "epochs is not a field of the config"),
])
def test_override_errors(workdir, capsys, argv, message):
    code = main(["run", *MODEL, "mlflow.enabled=false", *argv])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_train_settings_are_checked_once_where_the_config_is_built():
    """A TrainConfig is valid by construction: load_run_config refuses, nothing checks again."""
    with pytest.raises(NasError, match=r"^train.lr=-1 must be > 0$"):
        load_run_config(["train.lr=-1"])
    with pytest.raises(NasError, match="train.schedule='cos' must be one of onecycle, cosine"):
        TrainConfig(schedule="cos")
    assert set(OPTIMIZERS) == set(OPTIMIZER_NAMES) and set(SCHEDULES) == set(SCHEDULE_NAMES)


def test_config_file_and_precedence(tmp_path):
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text("preset: mobilenet_v2\ntrain: {epochs: 7, lr: 0.05}\nmodel: {head.dropout: 0.1}\n")
    cfg = load_run_config(["train.lr=0.2"], str(cfg_file))
    assert (cfg.preset, cfg.train.epochs, cfg.train.lr, cfg.model) == ("mobilenet_v2", 7, 0.2, {"head.dropout": 0.1})
    with pytest.raises(NasError, match="no such file"):
        load_run_config([], str(tmp_path / "missing.yaml"))


def test_run_help_shows_examples(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "nas run preset=mobilenet_v1" in out and "train.epochs=" in out


def test_run_logs_wildcard_spec_overrides_under_mlflow_safe_names(tmp_path, monkeypatch):
    """`model.stages.*.kernel=5` is a valid override; MLflow refuses `*` in a param name."""
    import mlflow

    from nas.config import load_run_config
    from nas.run import run

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = load_run_config(["preset=dsc_cnn", "model.stages.*.kernel=5", "data.name=synthetic",
                           "data.synthetic_shape=[1,28,28]", "data.val_size=20",
                           "data.synthetic_train=80", "data.synthetic_test=20",
                           "train.epochs=1", "train.batch_size=20", "progress=false"])
    done = run(cfg)
    params = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(done.run_id).data.params
    assert params["model.stages.all.kernel"] == "5"
