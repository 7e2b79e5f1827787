"""Run configuration: typed dataclasses, merged base < --config file < key=value overrides by
OmegaConf, then checked by `nas.schema.from_dict` (`train.lrr=0.1`: "did you mean 'lr'?").
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
from nas.errors import NasError, SpecError, UnknownNameError
from nas.schema import from_dict, to_dict
from nas.words import RunOverrides, parse_words
from nas.yaml_io import read_yaml

OPTIMIZER_NAMES = ("sgd", "adam", "adamw")  # nas.optim.OPTIMIZERS builds each
SCHEDULE_NAMES = ("onecycle", "cosine", "step", "constant")  # nas.optim.SCHEDULES: their LR shapes


@dataclass(frozen=True)
class TrainConfig:
    """Valid by construction (`__post_init__`): a loaded config is checked once, before torch."""

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
    eval_batch_size: int = 0  # 0: the device type's fastest (nas.train.EVAL_BATCH: CPU 128, GPU/NPU 1024)
    threads: int = 0  # CPU threads (0: all cores)
    # number format: both auto on a CPU -> the fastest for this net, measured once per shape and
    # cached (nas.formats); auto elsewhere: bf16 (fp16 on older NPUs) and channels_last on CUDA.
    # Either one set forces it (the other takes the device's default) and nothing is measured.
    amp: str = "auto"  # auto | bf16 | fp16 | off
    channels_last: str = "auto"  # auto | on | off
    compile: bool = False  # torch.compile the model (never chosen by auto: nas.formats says why)
    # replay forward + backward as CUDA graphs (few kernel launches: small nets are launch-bound);
    # CUDA only, eager elsewhere; with compile=true: torch.compile mode="reduce-overhead"
    cuda_graphs: bool = False

    def __post_init__(self) -> None:
        """One-line errors for settings the training loop cannot use."""
        rules = ((self.optimizer in OPTIMIZER_NAMES,
                  f"train.optimizer={self.optimizer!r} must be one of {', '.join(OPTIMIZER_NAMES)}"),
                 (self.schedule in SCHEDULE_NAMES,
                  f"train.schedule={self.schedule!r} must be one of {', '.join(SCHEDULE_NAMES)}"),
                 (self.epochs >= 1, f"train.epochs={self.epochs} must be >= 1"),
                 (self.batch_size >= 1, f"train.batch_size={self.batch_size} must be >= 1"),
                 (self.eval_batch_size >= 0, f"train.eval_batch_size={self.eval_batch_size} must be >= 1,"
                                             " or 0 for the device's default"),
                 (self.lr > 0, f"train.lr={self.lr:g} must be > 0"),
                 (0 <= self.label_smoothing < 1,
                  f"train.label_smoothing={self.label_smoothing:g} must be in [0, 1)"),
                 (0 < self.ema_decay < 1, f"train.ema_decay={self.ema_decay:g} must be in (0, 1)"))
        for holds, message in rules:
            if not holds:
                raise NasError(message)


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
        """Hash of everything that changes the result (not resume/progress/output/mlflow, nor
        train.cuda_graphs: how the same steps are launched, so a run may resume with it switched)."""
        data = run_params(self)
        data["train"].pop("cuda_graphs")
        return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:10]


def nest(settings: dict[str, Any]) -> dict[str, Any]:
    """{"data.resize": 24, "model.stages.*.block": "conv"} -> nested config layers (spec paths
    under `model` stay flat keys: they contain dots, stars and [i])."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if key.startswith("model."):
            out.setdefault("model", {})[key[len("model."):]] = value
            continue
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise NasError(f"{key}= conflicts with {'.'.join(parents)}= given as a value")
        node[leaf] = value
    return out


def merge(*layers: dict[str, Any]) -> dict[str, Any]:
    """Deep merge, later layers win (mappings merge, anything else replaces)."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
            else:
                out[key] = dict(value) if isinstance(value, dict) else value
    return out


def _file_layer(config_file: str) -> dict[str, Any]:
    path = Path(config_file)
    if not path.is_file():
        raise NasError(f"--config {config_file}: no such file")
    data = read_yaml(path)  # safe, strict, one-line errors (OmegaConf.load is neither)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise NasError(f"--config {config_file}: must be a mapping of keys (train:, data:,"
                       f" ...), got {type(data).__name__}")
    return data


def load_run_config(assignments: list[str] | None = None, config_file: str | None = None,
                    base: dict[str, Any] | None = None, overrides: RunOverrides | None = None) -> RunConfig:
    """Merge defaults < `base` < config file < a campaign's `overrides` < `key=value` words into
    a checked RunConfig: the one place a run config is built and validated (unknown keys get the
    closest match, training settings their `TrainConfig` checks), so no caller checks it again."""
    layers = [to_dict(RunConfig()), base or {}]
    if config_file:
        layers.append(_file_layer(config_file))
    layers += [nest((overrides or RunOverrides()).values), nest(parse_words(assignments))]
    try:
        merged = OmegaConf.to_container(OmegaConf.merge(*map(OmegaConf.create, layers)), resolve=True)
    except (OmegaConfBaseException, TypeError, ValueError) as err:  # e.g. a list merged into a mapping
        raise NasError(f"bad configuration: {(str(err).splitlines() or [type(err).__name__])[0]}") from None
    try:
        return from_dict(RunConfig, merged, root="the config")
    except SpecError as err:
        raise (UnknownNameError if isinstance(err, UnknownNameError) else NasError)(str(err)) from None


def run_params(cfg: RunConfig, data: Any = None) -> dict[str, Any]:
    """The config as MLflow params (what changes the result), with the data sizes."""
    params = to_dict(cfg)
    for key in ("resume", "progress", "mlflow", "output_dir"):
        params.pop(key, None)
    if data is not None:
        params["data_sizes"] = {k: data.describe()[k] for k in ("train", "val", "test")}
    return params


def spec_overrides(cfg: RunConfig, data: Any = None) -> dict[str, Any]:
    """The spec overrides a run config stands for: `model.*` field paths, then width and the
    input/output sizes (those default to the data set's when `data` is given). The one
    function run, search, retrain and ablate build their specs with."""
    sizes = {"width": cfg.width, "resolution": cfg.resolution, "num_classes": cfg.num_classes,
             "in_channels": cfg.in_channels}
    if data is not None:
        sizes.update(resolution=cfg.resolution or data.resolution, num_classes=cfg.num_classes or data.num_classes,
                     in_channels=cfg.in_channels or data.channels)
    return {**cfg.model, **{k: v for k, v in sizes.items() if v is not None}}


def resolve_spec(cfg: RunConfig, data: Any = None) -> Any:
    """The preset or spec file of `cfg` with its overrides (a checked NetSpec)."""
    # lazy: presets bring torch (~3 s); a config loads and errs without it
    from nas.presets import spec_from_assignments

    return spec_from_assignments({"preset": cfg.preset, "spec": cfg.spec, **spec_overrides(cfg, data)})
