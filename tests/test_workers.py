"""nas.workers: the worker plan for CPU / GPU / NPU clusters, without the hardware.

Unit tests size plans from hand-made resource dicts. The slow test starts a real one-node Ray
cluster on 127.0.0.1 that declares two NPUs (`ray start --resources '{"NPU": 2}'`, the helpers of
tests/test_cluster.py) and checks what Ray hands an NPU task (ASCEND_RT_VISIBLE_DEVICES, its
accelerator ids), that nas refuses NPU work without torch_npu in one line, and, with the test-only
stand-in tests/stubs/torch_npu on that task's PYTHONPATH only, that a small nas model takes one
training step on the `npu` device through nas.workers.worker_device and nas.device.select_device
(the stand-in's tensors live on the CPU: see its docstring for what that does not check).
"""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from nas.device import select_device
from nas.errors import NasError
from nas.workers import ACCELERATORS, SHARE, Workers, check_accelerator, plan_workers, worker_device

STUBS = Path(__file__).resolve().parent / "stubs"


# ----------------------------------------------------------------------------- plans


def test_gpu_cluster_shares_each_gpu_four_ways():
    w = plan_workers({"CPU": 16, "GPU": 2})
    assert w == Workers(concurrency=8, kind="cuda", share=0.25, cpus_each=1.0, cpus=16, accelerators=2)
    assert w.resources() == {"CPU": 1.0, "GPU": 0.25}
    assert w.task_options() == {"num_cpus": 1.0, "num_gpus": 0.25}
    assert w.describe() == "8 at a time on 16 CPUs / 2 GPUs (cuda, 0.25 each)"


def test_npu_cluster_requests_npu():
    w = plan_workers({"CPU": 16, "NPU": 2, "memory": 1e10}, concurrency=2)
    assert (w.kind, w.share, w.concurrency, w.accelerators) == ("npu", SHARE["npu"], 2, 2)
    assert w.resources() == {"CPU": 1.0, "NPU": 0.25}
    assert w.task_options() == {"num_cpus": 1.0, "resources": {"NPU": 0.25}}
    assert w.describe() == "2 at a time on 16 CPUs / 2 NPUs (npu, 0.25 each)"
    assert plan_workers({"CPU": 16, "NPU": 2}).concurrency == 8  # 2 NPUs / 0.25


def test_cpu_cluster_runs_one_trial_per_cpu_each():
    w = plan_workers({"CPU": 4})
    assert (w.kind, w.share, w.concurrency, w.resources()) == ("cpu", 0.0, 4, {"CPU": 1.0})
    assert w.task_options() == {"num_cpus": 1.0}
    assert w.describe() == "4 at a time on 4 CPUs (cpu, 1 CPU each)"
    assert plan_workers({"CPU": 4}, cpus_each=2).concurrency == 2
    assert plan_workers({"CPU": 1}, cpus_each=2).concurrency == 1  # never 0
    assert plan_workers({"CPU": 8, "GPU": 1}, accelerator="cpu").kind == "cpu"


def test_mixed_cluster_auto_prefers_gpu_and_npu_can_be_asked_for():
    mixed = {"CPU": 8, "GPU": 1, "NPU": 4}
    assert plan_workers(mixed).kind == "cuda"
    w = plan_workers(mixed, accelerator="npu")
    assert (w.kind, w.accelerators, w.concurrency) == ("npu", 4, 8)  # 16 by NPU share, 8 by CPU
    assert plan_workers(mixed, accelerator="cuda").concurrency == 4


def test_explicit_share_and_concurrency():
    w = plan_workers({"CPU": 16, "NPU": 8}, share=1)
    assert (w.share, w.concurrency, w.resources()) == (1.0, 8, {"CPU": 1.0, "NPU": 1.0})
    assert plan_workers({"CPU": 16, "GPU": 4}, share=2).concurrency == 2
    assert plan_workers({"CPU": 16, "GPU": 1}, share=0.5, cpus_each=4).concurrency == 2
    assert plan_workers({"CPU": 16, "GPU": 1}, share=0.1).concurrency == 10  # no float floor loss
    assert plan_workers({"CPU": 16, "GPU": 4}, concurrency=3).concurrency == 3
    assert set(ACCELERATORS) == {"auto", "cuda", "npu", "cpu"}


@pytest.mark.parametrize("kwargs, words", [
    ({"accelerator": "tpu"}, "--accelerator='tpu' must be one of auto, cuda, npu, cpu"),
    ({"accelerator": "cuda"}, "has no GPU (it has 8 CPUs, 2 NPUs)"),
    ({"accelerator": "npu", "resources": {"CPU": 8}}, "has no NPU (it has 8 CPUs)"),
    ({"share": 0}, "--per-trial=0 must be a share of one NPU"),
    ({"share": -0.5}, "--per-trial=-0.5"),
    ({"share": math.nan}, "--per-trial=nan"),
    ({"share": 1.5}, "above 1 a share must be a whole number of NPUs"),
    ({"share": 3}, "more NPUs than the cluster has (2)"),
    ({"share": 0.5, "accelerator": "cpu"}, "--per-trial=0.5 is a share of an accelerator"),
    ({"cpus_each": 0}, "--cpus-per-trial=0 must be a positive number"),
    ({"concurrency": 0}, "--concurrency=0 must be a whole number >= 1"),
    ({"concurrency": 1.5}, "--concurrency=1.5"),
])
def test_bad_values_are_one_line_errors(kwargs, words):
    resources = kwargs.pop("resources", {"CPU": 8, "NPU": 2})
    with pytest.raises(NasError) as err:
        plan_workers(resources, **kwargs)
    assert words in str(err.value) and "\n" not in str(err.value)


# ----------------------------------------------------------------------------- devices, no Ray


def test_npu_without_torch_npu_names_it_and_the_install():
    for call in (lambda: check_accelerator("npu"), lambda: worker_device("npu"),
                 lambda: select_device("npu:0")):
        with pytest.raises(NasError) as err:
            call()
        message = str(err.value)
        assert "torch_npu" in message and "pip install 'nas[npu]'" in message and "\n" not in message
    assert worker_device("cpu") == "cpu" and select_device("cpu") == torch.device("cpu")
    with pytest.raises(NasError, match="must be one of cuda, npu, cpu"):
        worker_device("auto")


def test_worker_device_numbers_the_npu_among_the_visible_ones(monkeypatch):
    """Ray grants physical ids ("5") and sets ASCEND_RT_VISIBLE_DEVICES; torch_npu, like CANN,
    numbers the visible devices from 0, so the index is the id's position there."""
    import ray

    import nas.workers as workers

    granted: list[str] = []

    class Context:
        def get_accelerator_ids(self):
            return {"GPU": [], "NPU": granted}

    monkeypatch.setattr(workers, "check_accelerator", lambda kind: None)
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "get_runtime_context", Context)
    granted[:] = ["5"]
    monkeypatch.setenv("ASCEND_RT_VISIBLE_DEVICES", "5")
    assert worker_device("npu") == "npu:0"
    monkeypatch.setenv("ASCEND_RT_VISIBLE_DEVICES", "3,5")
    assert worker_device("npu") == "npu:1"
    monkeypatch.delenv("ASCEND_RT_VISIBLE_DEVICES")  # RAY_EXPERIMENTAL_NOSET_...: all visible
    assert worker_device("npu") == "npu:5"
    granted[:] = []
    with pytest.raises(NasError, match="holds no NPU"):
        worker_device("npu")
    assert worker_device("cuda") == "cuda"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_one_line():
    with pytest.raises(NasError) as err:
        check_accelerator("cuda")
    assert "torch.cuda is not available" in str(err.value) and "\n" not in str(err.value)


# ----------------------------------------------------------------------------- a real Ray cluster


def _probe(kind: str) -> dict:
    """In a Ray task: what Ray granted, and what nas makes of it."""
    import os

    import ray

    out = {"visible": os.environ.get("ASCEND_RT_VISIBLE_DEVICES"),
           "ids": ray.get_runtime_context().get_accelerator_ids().get("NPU")}
    try:
        out["device"] = worker_device(kind)
    except NasError as err:
        out["error"] = str(err)
    return out


def _one_step() -> dict:
    """In a Ray task with the torch_npu stand-in: one SGD step of a small nas model on `npu`."""
    import torch_npu

    import nas
    from nas.device import precision_for, synchronize

    device = select_device(worker_device("npu"))
    precision = precision_for(device)
    spec = nas.load_preset("dsc_cnn", num_classes=10, in_channels=3, resolution=16)
    model = nas.build_model(spec).to(device)
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(0)).to(device)
    y = torch.arange(8, device=device) % 10
    with precision.autocast(device):
        loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    synchronize(device)
    return {"device": str(device), "stand_in": getattr(torch_npu, "STAND_IN", False),
            "amp": str(precision.amp_dtype), "channels_last": precision.channels_last,
            "loss": float(loss), "moved": any(not torch.equal(a, b.detach())
                                              for a, b in zip(before, model.parameters()))}


@pytest.fixture
def npu_cluster():
    from test_cluster import free_port, node_args, start_node

    import ray
    from ray import cloudpickle

    root = Path(tempfile.mkdtemp(prefix="rn", dir="/tmp"))  # unix socket paths must stay short
    nodes = []
    try:
        port = free_port()
        args = node_args(root / "h")
        args[args.index("--num-cpus") + 1] = "2"
        start_node(["--head", "--port", str(port), "--include-dashboard=false",
                    "--resources", '{"NPU": 2}', *args], root / "head.log",
                   lambda node: "Ray runtime started" in Path(node.log.name).read_text(), nodes)
        cloudpickle.register_pickle_by_value(sys.modules[__name__])  # tasks defined in this file
        yield f"127.0.0.1:{port}"
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for node in reversed(nodes):
            node.kill()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_ray_npu_cluster_plan_ids_and_a_training_step(npu_cluster):
    import ray

    from nas.workers import init_ray

    resources = init_ray(npu_cluster)
    plan = plan_workers(resources)
    assert (plan.kind, plan.accelerators, plan.cpus, plan.concurrency) == ("npu", 2, 2, 2)
    assert plan.describe() == "2 at a time on 2 CPUs / 2 NPUs (npu, 0.25 each)"

    probe = ray.remote(_probe)
    whole = ray.get(probe.options(num_cpus=1, resources={"NPU": 1}).remote("npu"), timeout=300)
    assert whole["ids"] and len(whole["ids"]) == 1 and whole["visible"] == whole["ids"][0]
    assert whole["ids"][0] in ("0", "1")
    message = whole["error"]  # no torch_npu on this node
    assert "torch_npu" in message and "pip install 'nas[npu]'" in message and "\n" not in message

    shared = ray.get(probe.options(**plan.task_options()).remote("npu"), timeout=300)
    assert len(shared["ids"]) == 1 and shared["visible"] == shared["ids"][0]  # a 0.25 share: one NPU

    stand_in = {"env_vars": {"PYTHONPATH": str(STUBS)}}
    step = ray.get(ray.remote(_one_step).options(runtime_env=stand_in, **plan.task_options())
                   .remote(), timeout=300)
    assert step["stand_in"] and step["device"] == "npu:0"  # the task's one visible NPU
    # nas's NPU precision: bf16 autocast; channels_last stays off until measured on an NPU
    assert (step["amp"], step["channels_last"]) == ("torch.bfloat16", False)
    assert math.isfinite(step["loss"]) and step["moved"]
