"""Run configuration: typed dataclasses, merged base < --config file < key=value overrides.

OmegaConf does the merging and value parsing; `nas.schema.from_dict` then checks every key and
type, so `train.lrr=0.1` fails with "did you mean 'lr'?" instead of being ignored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nas.data import DataConfig
from nas.errors import NasError, SpecError
from nas.schema import from_dict, to_dict
from nas.spec import read_yaml


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1  # peak learning rate (after warm-up)
    optimizer: str = "sgd"  # sgd | adam | adamw
    momentum: float = 0.9  # sgd momentum / adam beta1
    nesterov: bool = True
    weight_decay: float = 5e-4  # not applied to BN weights and biases
    schedule: str = "onecycle"  # onecycle | cosine | step | constant
    warmup_epochs: float = 1.0  # linear warm-up for cosine / step / constant (onecycle: 25% of the run)
    step_size: int = 10  # step schedule: epochs between decays
    gamma: float = 0.1  # step schedule: decay factor
    label_smoothing: float = 0.1
    grad_clip: float = 0.0  # max gradient norm (0: off)
    seed: int = 0  # weights init, batch order, augmentation, dropout
    deterministic: bool = False  # torch.use_deterministic_algorithms (slower on GPU)
    ema: bool = False  # evaluate an exponential moving average of the weights
    ema_decay: float = 0.999
    eval_batch_size: int = 1024
    threads: int = 0  # CPU threads (0: all cores)
    amp: str = "auto"  # auto (bf16 on GPU/NPU) | bf16 | fp16 | off
    channels_last: str = "auto"  # auto (on GPU/NPU) | on | off
    compile: bool = False  # torch.compile the model


@dataclass(frozen=True)
class MlflowConfig:
    enabled: bool = True
    experiment: str = "nas"
    tracking_uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db
    run_name: str | None = None


@dataclass(frozen=True)
class RunConfig:
    preset: str | None = None
    spec: str | None = None  # path to a spec YAML (instead of preset)
    width: float | None = None
    resolution: int | None = None  # None: the data set's image size
    num_classes: int | None = None  # None: the data set's classes
    in_channels: int | None = None  # None: the data set's channels
    model: dict[str, Any] = field(default_factory=dict)  # more spec overrides: {"stages.2.kernel": 5}
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)
    device: str = "auto"  # auto | cpu | cuda[:N] | npu | mps
    resume: bool = False  # continue the interrupted run with this config from its checkpoint
    output_dir: str = "runs"  # checkpoints and run files: OUTPUT_DIR/<spec name>-<config hash>
    progress: bool = True  # progress bar per epoch

    def run_key(self) -> str:
        """Hash of everything that changes the result (not resume/progress/output/mlflow)."""
        data = to_dict(self)
        for key in ("resume", "progress", "output_dir", "mlflow"):
            data.pop(key)
        return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _to_container(cfg: Any) -> Any:
    return OmegaConf.to_container(cfg, resolve=True)


def load_run_config(assignments: list[str] | None = None, config_file: str | None = None,
                    base: dict[str, Any] | None = None) -> RunConfig:
    """Merge defaults < `base` < config file < `key=value` words into a checked RunConfig."""
    try:
        layers = [OmegaConf.create(to_dict(RunConfig()))]
        if base:
            layers.append(OmegaConf.create(base))
        if config_file:
            path = Path(config_file)
            if not path.is_file():
                raise NasError(f"--config {config_file}: no such file")
            data = read_yaml(path)  # safe, strict, one-line errors (OmegaConf.load is neither)
            if data is None:
                data = {}
            if not isinstance(data, dict):
                raise NasError(f"--config {config_file}: must be a mapping of keys (train:, data:,"
                               f" ...), got {type(data).__name__}")
            layers.append(OmegaConf.create(data))
        if assignments:
            for item in assignments:
                if "=" not in item:
                    raise NasError(f"{item!r} is not key=value (e.g. train.epochs=10)")
            model_items = [a for a in assignments if a.startswith("model.")]
            other = [a for a in assignments if not a.startswith("model.")]
            layers.append(OmegaConf.from_dotlist(other))
            if model_items:  # spec paths may contain [i] or dots: keep them as flat keys
                model = {}
                for item in model_items:
                    key, raw = item.split("=", 1)
                    model[key[len("model."):]] = _to_container(OmegaConf.from_dotlist([f"v={raw}"]))["v"]
                layers.append(OmegaConf.create({"model": model}))
        merged = _to_container(OmegaConf.merge(*layers))
    except OmegaConfBaseException as err:
        raise NasError(f"bad configuration: {str(err).splitlines()[0]}") from None
    try:
        return from_dict(RunConfig, merged, root="the config")
    except SpecError as err:
        raise NasError(str(err)) from None
