"""Network specs as frozen dataclasses, their field checks, and `key=value` overrides.

The bottom of the model core (`nas.plan` resolves a spec, `nas.loading` runs the full check):
it never imports the plan, the counter or torch.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from nas.errors import SpecError, UnknownNameError
from nas.limits import MAX_CHANNELS, MAX_KERNEL, MAX_REPEATS, MAX_RESOLUTION, MAX_STAGES, MAX_WIDTH
from nas.registry import ACT_ALIASES, ACTIVATIONS, BLOCK_KNOBS
from nas.schema import from_dict, show, suggest, to_dict
from nas.yaml_io import dump_yaml

# Setting a knob on a block that ignores it is an error (the registry says which block reads
# which), so a typo'd ablation cannot silently change nothing.
OPTIONAL_KNOBS = tuple(dict.fromkeys(k for knobs in BLOCK_KNOBS.values() for k in knobs))


@dataclass(frozen=True)
class InputSpec:
    channels: int = 3
    resolution: int = 224


@dataclass(frozen=True)
class StemSpec:
    """First conv (+BN+act), optionally followed by a 3x3 stride-2 max pool (ShuffleNet)."""

    channels: int = 32
    kernel: int = 3
    stride: int = 2
    pool: str = "none"  # none | max
    act: str | None = None  # None: the network's act
    bn: bool = True  # BatchNorm after the conv
    bias: bool = False  # the conv has a bias (small CNNs without BN)
    # How width scales the stem: full (c * width, rounded) | pow2 (c * the width rounded down to
    # a power of two: Megvii's ShuffleNet v1 tables, 0.5x -> 12, 1x and 1.5x -> 24, 2x -> 48)
    scaling: str = "full"


@dataclass(frozen=True)
class StageSpec:
    """`repeats` blocks of one type; the first has `stride`, the rest stride 1."""

    block: str
    channels: int
    repeats: int = 1
    stride: int = 1
    kernel: int = 3
    act: str | None = None  # None: the network's act
    expansion: float | None = None  # ir: expansion ratio t (default 6; 1 skips the expand conv)
    groups: int | None = None  # shuffle: groups of the 1x1 convs (default 1)
    proj_act: str | None = None  # ir: activation after the projection (default identity = linear)
    shuffle: bool | None = None  # shuffle: channel shuffle on/off (default on)
    residual: bool | None = None  # shortcut where stride 1 and in == out (ir/shuffle on, ds/conv off)
    ungrouped_first: bool | None = None  # shuffle: first block's first 1x1 is not grouped
    bn: bool | None = None  # ds/conv: BatchNorm after each conv (default on)
    mid_act: bool | None = None  # ds: activation between the dw and the pw conv (default on)
    bias: bool | None = None  # ds/conv: the pw (ds) or full (conv) conv has a bias (default off)
    pool: str = "none"  # none | max | avg: a 2x2 stride-2 pool after the stage (small CNNs)

    def knob(self, name: str) -> Any:
        """The knob's value, or the block type's default when left empty."""
        value = getattr(self, name)
        return BLOCK_KNOBS[self.block].get(name) if value is None else value


@dataclass(frozen=True)
class HeadSpec:
    """Optional last 1x1 conv, adaptive pool, optional hidden FC layers, dropout, classifier."""

    conv: int = 0  # channels of the last 1x1 conv (0: none)
    conv_scaling: str = "up_only"  # width scales the head conv: up_only (MobileNetV2) | full | none
    pool: str = "avg"  # avg | max
    pool_size: int = 1  # adaptive pool output side (1: global pool; 3 keeps a 3x3 map to flatten)
    hidden: tuple[int, ...] = ()  # widths of hidden fully-connected layers (with act)
    dropout: float = 0.0
    act: str | None = None
    bias: bool = True  # the fully-connected layers have biases (Megvii's ShuffleNet v1: none)


@dataclass(frozen=True)
class NetSpec:
    """Valid by construction (`validate` runs in `__post_init__`): a spec is checked once where
    it is built, then travels by value (pickled into a worker, a Tune config) unchecked."""

    name: str = "net"
    input: InputSpec = field(default_factory=InputSpec)
    stem: StemSpec = field(default_factory=StemSpec)
    stages: tuple[StageSpec, ...] = ()
    head: HeadSpec = field(default_factory=HeadSpec)
    num_classes: int = 1000
    width: float = 1.0  # width multiplier: scales stem, stage and (see conv_scaling) head channels
    act: str = "relu"  # default activation of stem, blocks and head
    channel_divisor: int = 8  # scaled channels round to a multiple of this (and of what groups need)
    # The small-input rule (`nas.plan`): the earliest stride-2 layers become stride 1 until the
    # final feature map is at least this size (each preset sets its family's CIFAR port).
    min_final_map: int | None = None

    def __post_init__(self) -> None:
        validate(self)

    def replace(self, **changes: Any) -> "NetSpec":
        return dataclasses.replace(self, **changes)


def _check_range(path: str, value: float, low: float, high: float, hint: str = "") -> None:
    if not low <= value <= high:
        raise SpecError(f"{path}={value} must be between {low} and {high}" + (f" ({hint})" if hint else ""))


def _check_choice(path: str, value: str, options: tuple[str, ...] | list[str]) -> None:
    if value not in options:
        raise UnknownNameError(f"{path}={show(value)} is not one of {', '.join(options)}{suggest(value, options)}")


def _check_act(path: str, value: str | None) -> None:
    if value is not None:
        _check_choice(path, value, (*ACTIVATIONS, *ACT_ALIASES))


def _check_kernel(path: str, value: int) -> None:
    if value < 1 or value > MAX_KERNEL or value % 2 == 0:
        raise SpecError(f"{path}={value} must be an odd kernel size between 1 and {MAX_KERNEL}")


def _check_stride(path: str, value: int) -> None:
    if value not in (1, 2):
        raise SpecError(f"{path}={value} must be 1 or 2 (use more stages to downsample further)")


def _validate_stage(i: int, stage: StageSpec) -> None:
    path = f"stages[{i}]"
    _check_choice(f"{path}.block", stage.block, list(BLOCK_KNOBS))
    _check_range(f"{path}.channels", stage.channels, 1, MAX_CHANNELS)
    _check_range(f"{path}.repeats", stage.repeats, 1, MAX_REPEATS)
    _check_stride(f"{path}.stride", stage.stride)
    _check_kernel(f"{path}.kernel", stage.kernel)
    _check_act(f"{path}.act", stage.act)
    _check_act(f"{path}.proj_act", stage.proj_act)
    _check_choice(f"{path}.pool", stage.pool, ("none", "max", "avg"))
    allowed = BLOCK_KNOBS[stage.block]
    for knob in OPTIONAL_KNOBS:
        if getattr(stage, knob) is not None and knob not in allowed:
            users = [b for b, knobs in BLOCK_KNOBS.items() if knob in knobs]
            raise SpecError(f"{path}.{knob} does not apply to block '{stage.block}' (only to {', '.join(users)});"
                            " remove it")
    if stage.expansion is not None:
        _check_range(f"{path}.expansion", stage.expansion, 1.0, 16.0)
    if stage.groups is not None:
        _check_range(f"{path}.groups", stage.groups, 1, 64)


def validate(spec: NetSpec) -> NetSpec:
    """Field-level checks (ranges, choices, knobs that apply). Channel arithmetic is `nas.plan`'s."""
    _check_range("input.channels", spec.input.channels, 1, 64)
    _check_range("input.resolution", spec.input.resolution, 8, MAX_RESOLUTION)
    _check_range("stem.channels", spec.stem.channels, 1, MAX_CHANNELS)
    _check_kernel("stem.kernel", spec.stem.kernel)
    _check_stride("stem.stride", spec.stem.stride)
    _check_choice("stem.pool", spec.stem.pool, ("none", "max"))
    _check_act("stem.act", spec.stem.act)
    _check_choice("stem.scaling", spec.stem.scaling, ("full", "pow2"))
    if not spec.stages:
        raise SpecError("stages is empty: add at least one stage (block, channels, repeats, stride)")
    if len(spec.stages) > MAX_STAGES:
        raise SpecError(f"stages has {len(spec.stages)} entries; at most {MAX_STAGES} are allowed")
    for i, stage in enumerate(spec.stages):
        _validate_stage(i, stage)
    head = spec.head
    _check_range("head.conv", head.conv, 0, MAX_CHANNELS, "0 means no head conv")
    _check_choice("head.conv_scaling", head.conv_scaling, ("up_only", "full", "none"))
    _check_choice("head.pool", head.pool, ("avg", "max"))
    _check_range("head.pool_size", head.pool_size, 1, 16)
    for j, width in enumerate(head.hidden):
        _check_range(f"head.hidden[{j}]", width, 1, 65536)
    if not 0.0 <= head.dropout < 1.0:
        raise SpecError(f"head.dropout={head.dropout} must be in [0, 1)")
    _check_act("head.act", head.act)
    _check_range("num_classes", spec.num_classes, 1, 100000)
    if not 0.0 < spec.width <= MAX_WIDTH:
        raise SpecError(f"width={spec.width} must be > 0 and <= {MAX_WIDTH} (1.0 is the paper's net)")
    _check_act("act", spec.act)
    _check_range("channel_divisor", spec.channel_divisor, 1, 64)
    if spec.min_final_map is not None:
        _check_range("min_final_map", spec.min_final_map, 1, 64, "or leave empty for paper strides")
    return spec


# Short names users type on the command line, mapped to their place in the spec.
OVERRIDE_ALIASES = {"resolution": "input.resolution", "in_channels": "input.channels"}


def spec_from_dict(data: Any) -> NetSpec:
    return from_dict(NetSpec, data)


def spec_to_dict(spec: NetSpec) -> dict[str, Any]:
    return to_dict(spec)


def spec_to_yaml(spec: NetSpec) -> str:
    return dump_yaml(spec_to_dict(spec))


_PATH_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|(\d+)")


def _split_path(key: str) -> list[str | int]:
    return [name or int(bracket or bare) for name, bracket, bare in _PATH_PART.findall(key)]


def apply_overrides(data: Any, overrides: dict[str, Any]) -> Any:
    """A copy of spec dict `data` with overrides applied. Keys are field paths (`head.dropout`,
    `stages.2.groups` or `stages[2].groups`), the aliases above, or `stages.*.knob` (every stage)."""
    if overrides and not isinstance(data, dict):
        raise SpecError("spec must be a mapping of fields")
    result = copy.deepcopy(data)
    for key, value in overrides.items():
        if key.startswith(("stages.*.", "stages[*].")):
            for stage in result.get("stages", []):
                stage[key.split("*", 1)[1].lstrip("].")] = value
            continue
        path = _split_path(OVERRIDE_ALIASES.get(key, key))
        if not path:
            raise SpecError(f"override {key!r} is not a field path")
        node = result
        for part in path[:-1]:
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    raise UnknownNameError(f"override {key}: there is no stage {part}")
                node = node[part]
            else:
                node = node.setdefault(part, {}) if isinstance(node, dict) else None
                if node is None:
                    raise UnknownNameError(f"override {key} does not name a field")
        if isinstance(path[-1], int) or not isinstance(node, dict):
            raise UnknownNameError(f"override {key} does not name a field")
        node[path[-1]] = value
    return result
