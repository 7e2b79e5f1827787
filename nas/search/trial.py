"""What one search trial runs, inside a Ray worker: build the sampled net, train, report.

Exceptions are caught and reported as a final `nas_error` result, so the driver records the
trial FAILED with its message and Ray's retries stay reserved for lost workers.
"""

from __future__ import annotations

import socket
import statistics
import time
import traceback
from dataclasses import dataclass
from typing import Any

import torch

from nas.builder import build_model
from nas.config import TrainConfig
from nas.counting import count
from nas.data import DataBundle, DataConfig, to_device
from nas.device import configure_threads, precision_for, select_device, synchronize
from nas.space import load_space
from nas.search.searcher import TRIAL_KEY
from nas.train import train


@dataclass(frozen=True)
class TrialSetup:
    """Everything a worker needs besides the sampled choices (picklable, small)."""

    space: str
    spec_overrides: dict[str, Any]
    train: TrainConfig
    data: DataConfig
    device: str
    threads: int
    measure_latency: bool
    fail_trials: tuple[int, ...] = ()  # fault injection for tests: these trial numbers raise


@torch.inference_mode()
def latency_ms(model: torch.nn.Module, shape: tuple[int, ...], device: torch.device,
               repeats: int = 15) -> float:
    """Median forward time of one batch-1 image on the trial's device (MACs are not speed for
    depthwise and grouped convs)."""
    model.eval()
    x = torch.zeros(shape, device=device)
    for _ in range(3):
        model(x)
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        model(x)
        synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    model.train()
    return statistics.median(times)


def node_id() -> str:
    """The Ray node running this trial (its hex id; the hostname outside Ray), so a search on a
    cluster records where each trial ran (`nas.node` tag, trials.csv `node`)."""
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:  # not inside a Ray worker
        return socket.gethostname()


class _FromRay(BaseException):
    """Carries Ray's own control-flow exceptions (a trial stopped by ASHA) past `except Exception`."""


def run_trial(config: dict[str, Any], *, setup: TrialSetup, data: DataBundle) -> None:
    from ray import tune

    params = {k: v for k, v in config.items() if k != TRIAL_KEY}
    node = node_id()
    try:
        device = select_device(setup.device)
        if device.type == "cpu":
            configure_threads(setup.threads)
        if config.get(TRIAL_KEY) in setup.fail_trials:
            raise RuntimeError(f"injected fault in trial {config[TRIAL_KEY]}")
        spec = load_space(setup.space).to_spec(params, **setup.spec_overrides)
        counted = count(spec)
        torch.manual_seed(setup.train.seed)
        model = build_model(spec).to(device)
        bundle = to_device(data, device)
        fixed = {"macs": counted.macs, "params": counted.params, "node": node}
        if setup.measure_latency:
            res = spec.input.resolution
            fixed["latency_ms"] = latency_ms(model, (1, spec.input.channels, res, res), device)
        precision = precision_for(device, setup.train.amp, setup.train.channels_last)

        clock = {"start": time.perf_counter(), "reporting": 0.0}

        def report(metrics: dict[str, Any]) -> None:
            """`train_s`: time spent training and validating so far, without Tune's reporting, so
            the overhead benchmark can split trial time into training and framework."""
            begun = time.perf_counter()
            train_s = begun - clock["start"] - clock["reporting"]
            try:
                tune.report({**metrics, **fixed, "train_s": train_s})
            except BaseException as err:
                raise _FromRay(err) from err
            finally:
                clock["reporting"] += time.perf_counter() - begun

        train(model, bundle, setup.train, report, data_cfg=setup.data, precision=precision,
              progress=False)
    except _FromRay as wrapped:
        raise wrapped.args[0] from None
    except Exception as err:  # recorded FAILED by the driver, the search goes on
        message = f"{type(err).__name__}: {err}".strip()
        tune.report({"nas_error": message[:2000], "traceback": traceback.format_exc()[-4000:],
                     "epoch": 0, "val_acc": 0.0, "node": node})  # ASHA needs its metric in every result
