"""What a run does not do: import torch for `nas --help`, import torch._dynamo without
train.deterministic / train.compile, sync per evaluation batch, wait for MLflow's start-up.
And what it still does: the optimizers' update rules are torch.optim's, evaluation counts the
same at any batch size, and every MLflow write reaches the store, also from a killed process.
(No timings are asserted: benchmarks/train_throughput.py measures them.)"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import nas
from nas.config import TrainConfig
from nas.data import DataConfig, load_data
from nas.device import precision_for
from nas.optim import OPTIMIZERS, param_groups
from nas.train import EVAL_BATCH, eval_batch_size, evaluate, train
from nas.tracking import Tracker
from nas.tracking.writer import _coalesce

REPO = Path(__file__).resolve().parents[1]


def _python(code: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)


# ----------------------------------------------------------------------------- start-up


def test_import_nas_and_help_do_not_import_torch():
    code = ("import sys, nas, nas.cli\n"
            "try:\n    nas.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "assert 'mlflow' not in sys.modules and 'ray' not in sys.modules\n"
            "print(type(nas.count(nas.load_preset('dsc_cnn'))).__name__, callable(nas.build_model))")
    done = _python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["Count", "True"]


def test_lazy_names_are_the_real_ones():
    from nas.builder import build_model
    from nas.spec import NetSpec

    assert nas.build_model is build_model and nas.NetSpec is NetSpec
    assert set(nas.__all__) <= set(dir(nas))
    with pytest.raises(AttributeError):
        nas.no_such_name  # noqa: B018


def test_a_training_run_does_not_import_dynamo():
    code = ("import sys, torch, nas\n"
            "from nas.config import TrainConfig\nfrom nas.data import DataConfig, load_data\n"
            "from nas.device import precision_for\nfrom nas.train import train\n"
            "dc = DataConfig(name='synthetic', val_size=32, synthetic_train=160, synthetic_test=32)\n"
            "m = nas.build_model(nas.load_preset('dsc_cnn', resolution=32, in_channels=3, num_classes=10))\n"
            "for opt in ('sgd', 'adamw'):\n"
            "    train(m, load_data(dc), TrainConfig(epochs=1, batch_size=64, optimizer=opt, grad_clip=1.0),\n"
            "          data_cfg=dc, precision=precision_for(torch.device('cpu')), progress=False)\n"
            "print('torch._dynamo' in sys.modules)")
    done = _python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "False"


# ----------------------------------------------------------------------------- optimizers


@pytest.mark.parametrize("kind", ["sgd", "sgd_plain", "adam", "adamw"])
def test_optimizers_follow_torch_optim(kind):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.LazyLinear(4))
    net(torch.randn(2, 3, 8, 8))
    twin = [p.detach().clone().requires_grad_() for p in net.parameters()]
    cfg = TrainConfig(optimizer=kind.split("_")[0], lr=0.05, nesterov=kind == "sgd",
                      momentum=0.9 if kind != "sgd_plain" else 0.0)
    ours = OPTIMIZERS[cfg.optimizer](param_groups(net, 5e-4), cfg)
    groups = [{"params": [t for t, p in zip(twin, net.parameters()) if (p.ndim > 1) == decay],
               "weight_decay": 5e-4 if decay else 0.0} for decay in (True, False)]
    ref = {"sgd": lambda: torch.optim.SGD(groups, lr=0.05, momentum=cfg.momentum, nesterov=cfg.nesterov),
           "adam": lambda: torch.optim.Adam(groups, lr=0.05, betas=(0.9, 0.999)),
           "adamw": lambda: torch.optim.AdamW(groups, lr=0.05, betas=(0.9, 0.999))}[cfg.optimizer]()
    for step in range(5):
        grads = [torch.randn_like(p) for p in twin]
        for p, t, g in zip(net.parameters(), twin, grads):
            p.grad, t.grad = g.clone(), g.clone()
        for group, rgroup in zip(ours.param_groups, ref.param_groups):
            group["lr"] = rgroup["lr"] = 0.05 * (step + 1) / 5
        ours.step()
        ref.step()
    for p, t in zip(net.parameters(), twin):
        torch.testing.assert_close(p.detach(), t.detach(), rtol=1e-5, atol=1e-6)
    state = ours.state_dict()
    again = OPTIMIZERS[cfg.optimizer](param_groups(net, 5e-4), cfg)
    again.load_state_dict(state)
    assert again.steps == 5 and again.state.keys() == ours.state.keys()


# ----------------------------------------------------------------------------- evaluation


def test_eval_batch_auto_per_device_and_same_counts():
    assert TrainConfig().eval_batch_size == 0
    assert eval_batch_size(0, torch.device("cpu")) == EVAL_BATCH["cpu"]
    assert eval_batch_size(0, torch.device("cuda")) == 1024
    assert eval_batch_size(37, torch.device("cpu")) == 37
    dc = DataConfig(name="synthetic", val_size=100, synthetic_train=300, synthetic_test=130)
    data = load_data(dc)
    torch.manual_seed(0)
    model = nas.build_model(nas.load_preset("dsc_cnn", resolution=32, in_channels=3, num_classes=10))
    prec = precision_for(torch.device("cpu"))
    train(model, data, TrainConfig(epochs=1, batch_size=64), data_cfg=dc, precision=prec, progress=False)
    accs = {bs: evaluate(model, data.test, data, bs, prec) for bs in (0, 1, 7, 1024)}
    assert len(set(accs.values())) == 1, accs


def test_evaluate_syncs_once(monkeypatch):
    dc = DataConfig(name="synthetic", val_size=0, synthetic_train=64, synthetic_test=100)
    data = load_data(dc)
    model = nas.build_model(nas.load_preset("dsc_cnn", resolution=32, in_channels=3, num_classes=10))
    calls = []
    item = torch.Tensor.item
    monkeypatch.setattr(torch.Tensor, "item", lambda self: calls.append(1) or item(self))
    evaluate(model, data.test, data, 10, precision_for(torch.device("cpu")))
    assert len(calls) == 1


# ----------------------------------------------------------------------------- MLflow


def _store_rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as con:
        return con.execute(sql).fetchall()


def test_tracker_writes_everything_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAS_CACHE", str(tmp_path / "cache"))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker("exp", "r", uri=uri, tags={"a": "1"})
    tracker.log_params({"train": {"lr": 0.1}, "x": list(range(3))})
    tracker.set_tags({"b": 2})
    tracker.log_text("hello", "spec.yaml")
    for epoch in range(1, 4):
        tracker.log_metrics({"loss": 1 / epoch, "none": None}, step=epoch)
    run_id = tracker.run_id
    tracker.end("FINISHED")
    run = tracker.client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"train.lr": "0.1", "x": "[0, 1, 2]"}
    assert run.data.tags["a"] == "1" and run.data.tags["b"] == "2"
    assert [m.step for m in tracker.client.get_metric_history(run_id, "loss")] == [1, 2, 3]
    assert [a.path for a in tracker.client.list_artifacts(run_id)] == ["spec.yaml"]
    # the store came from the cached template; MLflow's Default experiment points at this folder
    assert list((tmp_path / "cache" / "mlflow").glob("empty-store-mlflow-*.db"))
    default = tracker.client.get_experiment("0")
    assert default.name == "Default" and str(tmp_path) in default.artifact_location
    # a second tracker on the same store (resume) reopens the run
    again = Tracker("exp", uri=uri, run_id=run_id)
    again.log_metrics({"loss": 0.1}, step=4)
    again.end("FINISHED")
    assert len(tracker.client.get_metric_history(run_id, "loss")) == 4


def test_killed_process_loses_no_logged_metric(tmp_path):
    code = ("import os, signal, sys\nfrom nas.tracking import Tracker\n"
            f"t = Tracker('exp', 'killed', uri='sqlite:///{tmp_path / 'mlflow.db'}')\n"
            "t.log_params({'p': 1})\nt.log_metrics({'early': 1.0})\nprint(t.run_id, flush=True)\n"
            "for step in range(1, 4):\n    t.log_metrics({'loss': float(step)}, step=step)\n"
            "os.kill(os.getpid(), signal.SIGKILL)")
    done = _python(code, cwd=tmp_path, NAS_CACHE=str(tmp_path / "cache"))
    assert done.returncode == -signal.SIGKILL, done.stderr
    rows = _store_rows(tmp_path / "mlflow.db", "SELECT key, step FROM metrics ORDER BY key, step")
    assert rows == [("early", 0), ("loss", 1), ("loss", 2), ("loss", 3)]
    assert _store_rows(tmp_path / "mlflow.db", "SELECT key FROM params") == [("p",)]


def test_coalesce_keeps_order_and_mlflow_limits():
    batch = lambda **kw: ("batch", kw)  # noqa: E731
    ops = [batch(params=[("a", "1")]), batch(tags=[("t", "1")]), batch(params=[("a", "1")]),
           ("text", "x", "f.txt"), batch(metrics=[("m", 1.0, 0, i) for i in range(1500)]),
           batch(params=[(f"p{i}", "v") for i in range(250)])]
    out = _coalesce(ops)
    assert out[0] == batch(params=[("a", "1")], tags=[("t", "1")])
    assert out[1] == batch(params=[("a", "1")])  # a key twice in one log_batch: kept apart
    assert out[2] == ("text", "x", "f.txt")
    sizes = [(len(o[1].get("metrics", [])), len(o[1].get("params", []))) for o in out[3:]]
    assert all(m <= 1000 and p <= 100 and m + p <= 1000 for m, p in sizes)
    assert sum(m for m, _ in sizes) == 1500 and sum(p for _, p in sizes) == 250


def test_checkpoint_extra_state_may_be_a_callable(tmp_path):
    dc = DataConfig(name="synthetic", val_size=0, synthetic_train=64, synthetic_test=16)
    data = load_data(dc)
    model = nas.build_model(nas.load_preset("dsc_cnn", resolution=32, in_channels=3, num_classes=10))
    seen = []
    train(model, data, TrainConfig(epochs=2, batch_size=32), data_cfg=dc,
          precision=precision_for(torch.device("cpu")), progress=False,
          checkpoint_path=tmp_path / "c.pt", extra_state=lambda: seen.append(1) or {"run": "later"})
    assert len(seen) == 2  # read at each checkpoint, not when training starts
    assert torch.load(tmp_path / "c.pt", weights_only=True)["extra"] == {"run": "later"}


def test_cpu_autocast_is_bf16_only_where_the_cpu_has_it(monkeypatch):
    """benchmarks/cpu_formats.py: native bf16 (AVX512-BF16, AMX) made training steps 0.45-0.84x
    and evaluation 0.33-0.81x fp32's for 3 of 4 nets; emulated bf16 is slower than fp32."""
    import nas.device as device

    cpu = torch.device("cpu")
    monkeypatch.setattr(device, "native_cpu_bf16", lambda: True)
    assert precision_for(cpu).amp_dtype is torch.bfloat16 and precision_for(cpu).describe() == "bf16"
    assert precision_for(cpu, amp="off").describe() == "fp32"
    monkeypatch.setattr(device, "native_cpu_bf16", lambda: False)
    assert precision_for(cpu).amp_dtype is None
    assert precision_for(cpu, amp="bf16", channels_last="on").describe() == "bf16+channels_last"


def test_on_and_off_words_reach_string_settings(tmp_path):
    """YAML reads `off` as false: train.amp=off and train.channels_last=on still mean what they say."""
    from nas.config import load_run_config

    cfg = load_run_config(["train.amp=off", "train.channels_last=on"])
    assert (cfg.train.amp, cfg.train.channels_last) == ("off", "on")


def test_cuda_graphs_flag_runs_eagerly_off_cuda():
    """train.cuda_graphs=true on a CPU steps the model itself (no dynamo, no capture): the same
    losses, bit for bit, as without it; and the run keeps its key (it may resume either way)."""
    from nas.config import RunConfig, load_run_config
    from nas.train import step_module

    cfg = load_run_config(["train.cuda_graphs=true"])
    assert cfg.train.cuda_graphs is True
    assert cfg.run_key() == RunConfig().run_key()
    net = nn.Linear(2, 2)
    assert step_module(net, cfg.train, torch.device("cpu")) is net
    dc = DataConfig(name="synthetic", val_size=32, synthetic_train=160, synthetic_test=32)
    losses = []
    for graphs in (False, True):
        torch.manual_seed(0)
        m = nas.build_model(nas.load_preset("dsc_cnn", resolution=32, in_channels=3, num_classes=10))
        tc = TrainConfig(epochs=2, batch_size=64, cuda_graphs=graphs)
        out = train(m, load_data(dc), tc, data_cfg=dc, precision=precision_for(torch.device("cpu")),
                    progress=False)
        losses.append([h["train_loss"] for h in out.history])
    assert losses[0] == losses[1]


def test_cuda_graphs_flag_compiles_for_cuda():
    """On a CUDA device the flag wraps the model for capture (compiled lazily: no GPU needed here)."""
    from nas.train import step_module

    net = nn.Linear(2, 2)
    for cfg in (TrainConfig(cuda_graphs=True), TrainConfig(cuda_graphs=True, compile=True)):
        wrapped = step_module(net, cfg, torch.device("cuda"))
        assert wrapped is not net and wrapped._orig_mod is net
