"""Network specs as frozen dataclasses, loaded from and written to YAML.

A spec says *what* the network is (stem, stages of blocks with their knobs, head); `nas.plan`
resolves it into concrete channel counts and strides; `nas.builder` and `nas.counting` consume
the plan. Field-level checks live here and name the field path and the fix.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nas.errors import SpecError
from nas.schema import from_dict, show, suggest, to_dict

ACTIVATIONS = ("relu", "relu6", "selu", "hardswish", "silu", "identity")
ACT_ALIASES = {"linear": "identity", "none": "identity"}

# Which optional knobs each block type reads, and their defaults when left empty (None).
# Setting a knob on a block that ignores it is an error, so a typo'd ablation cannot silently
# change nothing.
BLOCK_KNOBS: dict[str, dict[str, Any]] = {
    "ds": {"residual": False},
    "ir": {"expansion": 6.0, "proj_act": "identity", "residual": True},
    "shuffle": {"groups": 1, "shuffle": True, "residual": True, "ungrouped_first": False},
    "conv": {"residual": False},
}
OPTIONAL_KNOBS = ("expansion", "groups", "proj_act", "shuffle", "residual", "ungrouped_first")

# Limits that refuse absurd specs before any allocation (width 1e9, repeats 1e6).
MAX_CHANNELS = 16384
MAX_REPEATS = 64
MAX_STAGES = 32
MAX_KERNEL = 15
MAX_RESOLUTION = 2048
MAX_WIDTH = 16.0


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


@dataclass(frozen=True)
class NetSpec:
    name: str = "net"
    input: InputSpec = field(default_factory=InputSpec)
    stem: StemSpec = field(default_factory=StemSpec)
    stages: tuple[StageSpec, ...] = ()
    head: HeadSpec = field(default_factory=HeadSpec)
    num_classes: int = 1000
    width: float = 1.0  # width multiplier: scales stem, stage and (see conv_scaling) head channels
    act: str = "relu"  # default activation of stem, blocks and head
    channel_divisor: int = 8  # scaled channels round to a multiple of this (and of what groups need)
    # The earliest stride-2 layers become stride 1 until the final feature map is at least this
    # size. 4 gives the common CIFAR port at 32x32 and keeps every paper stride at 128-224 px.
    min_final_map: int | None = None

    def replace(self, **changes: Any) -> "NetSpec":
        return dataclasses.replace(self, **changes)


# ----------------------------------------------------------------------------- validation


def canonical_act(name: str) -> str:
    return ACT_ALIASES.get(name, name)


def _check_range(path: str, value: float, low: float, high: float, hint: str = "") -> None:
    if not low <= value <= high:
        extra = f" ({hint})" if hint else ""
        raise SpecError(f"{path}={value} must be between {low} and {high}{extra}")


def _check_choice(path: str, value: str, options: tuple[str, ...] | list[str]) -> None:
    if value not in options:
        raise SpecError(
            f"{path}={show(value)} is not one of {', '.join(options)}{suggest(value, options)}"
        )


def _check_act(path: str, value: str | None) -> None:
    if value is not None and canonical_act(value) not in ACTIVATIONS:
        options = list(ACTIVATIONS) + list(ACT_ALIASES)
        raise SpecError(f"{path}={show(value)} is not one of {', '.join(options)}{suggest(value, options)}")


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
    if stage.repeats < 1 or stage.repeats > MAX_REPEATS:
        raise SpecError(f"{path}.repeats={stage.repeats} must be between 1 and {MAX_REPEATS}")
    _check_stride(f"{path}.stride", stage.stride)
    _check_kernel(f"{path}.kernel", stage.kernel)
    _check_act(f"{path}.act", stage.act)
    _check_act(f"{path}.proj_act", stage.proj_act)
    _check_choice(f"{path}.pool", stage.pool, ("none", "max", "avg"))
    allowed = BLOCK_KNOBS[stage.block]
    for knob in OPTIONAL_KNOBS:
        if getattr(stage, knob) is not None and knob not in allowed:
            users = [b for b, knobs in BLOCK_KNOBS.items() if knob in knobs]
            raise SpecError(
                f"{path}.{knob} does not apply to block '{stage.block}' (only to {', '.join(users)});"
                " remove it"
            )
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


# ----------------------------------------------------------------------------- YAML and overrides

# Short names users type on the command line, mapped to their place in the spec.
OVERRIDE_ALIASES = {
    "resolution": "input.resolution",
    "in_channels": "input.channels",
}


def spec_from_dict(data: Any) -> NetSpec:
    return validate(from_dict(NetSpec, data))


def spec_to_dict(spec: NetSpec) -> dict[str, Any]:
    return to_dict(spec)


def spec_to_yaml(spec: NetSpec) -> str:
    return yaml.safe_dump(spec_to_dict(spec), sort_keys=False)


MAX_YAML_BYTES = 10 * 1024**2  # specs, spaces and configs are a few KB; refuse before reading


class StrictSafeLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` (plain data only: no Python objects are constructed) that also refuses
    a key given twice in one mapping, which plain YAML resolves silently to the last value."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool)):
                continue  # unhashable keys get SafeLoader's own error
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 (PyYAML) reads `1e9` and `1e-3` as strings: a dot and a signed exponent are required.
# Read them as numbers, as YAML 1.2 and OmegaConf do, so `lr: 1e-3` is not "must be a number".
StrictSafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                   |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def safe_load(text: str) -> Any:
    """The one YAML loader: safe (data only) and strict about duplicate keys."""
    return yaml.load(text, Loader=StrictSafeLoader)  # noqa: S506 - a SafeLoader subclass


def read_yaml(path: str | Path) -> Any:
    """Safe-load a YAML file with a one-line error for missing, huge, binary or malformed files."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such file")
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise SpecError(f"{path}: {size:,} bytes is too large for a YAML file"
                            f" (at most {MAX_YAML_BYTES:,}); is it the right file?")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(f"{path}: not a text (UTF-8) file: byte {err.start} is invalid") from None
    except OSError as err:
        raise SpecError(f"{path}: cannot read: {err.strerror or err}") from None
    try:
        return safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(getattr(err, "problem", None) or err).split())
        raise SpecError(f"{path}:{where}: malformed YAML: {problem}") from None


def load_spec(path: str | Path, **overrides: Any) -> NetSpec:
    """Load a spec YAML (a NetSpec mapping, or a preset file with a `spec:` section)."""
    data = read_yaml(path)
    if data is None:
        raise SpecError(f"{path}: the file is empty; write a spec (see presets/ for examples)")
    if isinstance(data, dict) and "spec" in data and "stages" not in data:
        data = data["spec"]
    try:
        return checked(spec_from_dict(apply_overrides(data, overrides)))
    except SpecError as err:
        raise SpecError(f"{path}: {err}") from None


def checked(spec: NetSpec) -> NetSpec:
    """Run the full check (channel arithmetic and size caps included) so loading refuses what
    cannot build."""
    from nas.counting import check_size
    from nas.plan import plan

    check_size(plan(spec))
    return spec


_PATH_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|(\d+)")


def _split_path(key: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in key.split("."):
        for name, bracket, bare in _PATH_PART.findall(piece):
            parts.append(name if name else int(bracket or bare))
    return parts


def apply_overrides(data: Any, overrides: dict[str, Any]) -> Any:
    """Return a copy of spec dict `data` with `key=value` overrides applied.

    Keys are field paths (`head.dropout`, `stages.2.groups` or `stages[2].groups`) or the short
    aliases `resolution` and `in_channels`. `stages.*.kernel` sets a knob on every stage.
    """
    if not overrides:
        return _deep_copy(data)
    if not isinstance(data, dict):
        raise SpecError("spec must be a mapping of fields")
    result = _deep_copy(data)
    for key, value in overrides.items():
        path = _split_path(OVERRIDE_ALIASES.get(key, key))
        if key.startswith("stages.*.") or key.startswith("stages[*]."):
            knob = key.split("*", 1)[1].lstrip("].").lstrip(".")
            for stage in result.get("stages", []):
                stage[knob] = value
            continue
        if not path:
            raise SpecError(f"override {key!r} is not a field path")
        node = result
        for depth, part in enumerate(path[:-1]):
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    raise SpecError(f"override {key}: there is no stage {part}")
                node = node[part]
            else:
                node = node.setdefault(part, {}) if isinstance(node, dict) else None
                if node is None:
                    raise SpecError(f"override {key} does not name a field")
        last = path[-1]
        if isinstance(last, int) or not isinstance(node, dict):
            raise SpecError(f"override {key} does not name a field")
        node[last] = value
    return result


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data
