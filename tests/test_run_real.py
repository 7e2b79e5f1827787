"""A real CIFAR-10 run (about a minute of CPU) learns well above chance and is fully tracked."""

from __future__ import annotations

import pytest

from nas.cli import main

# Measured on 2 CPU cores: test_acc 0.394 (4 epochs, 4,000 training images, 70 s). Chance is 0.10.
MIN_TEST_ACC = 0.28


@pytest.mark.realdata
def test_small_shufflenet_learns_cifar10(cifar10_root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code = main(["run", "preset=shufflenet_v1_g3", "width=0.25", f"data.root={cifar10_root}",
                 "data.train_subset=4000", "data.val_size=1000", "train.epochs=4", "progress=false",
                 "mlflow.experiment=real"])
    assert code == 0
    import mlflow
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("real").experiment_id])[0]
    metrics = run.data.metrics
    assert run.info.status == "FINISHED"
    assert metrics["test_acc"] >= MIN_TEST_ACC, metrics
    assert metrics["val_acc"] >= MIN_TEST_ACC, metrics
    assert run.data.params["data.train_subset"] == "4000" and run.data.params["data.name"] == "cifar10"
    history = client.get_metric_history(run.info.run_id, "val_acc")
    assert len(history) >= 4  # one per epoch, plus the final value
    losses = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "train_loss"),
                                      key=lambda m: m.step)]
    assert losses[-1] < losses[0]
