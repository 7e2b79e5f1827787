"""Resolve a NetSpec into concrete integers: channels per block, strides, feature-map sizes.

The one place for the width-rounding rule and the small-input stride rule (README, "Rules stated
once"); the builder and the counter both read the plan, so a module and its count cannot disagree.
The size caps are `nas.limits`; `nas.loading.checked` applies them (it needs the counter).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nas.errors import SpecError
from nas.limits import MAX_CHANNELS
from nas.registry import BLOCK_TYPES, UnitSite, canonical_act
from nas.spec import NetSpec


def make_divisible(value: float, divisor: int) -> int:
    """Nearest multiple of `divisor` to `value`, at least `divisor`, never below 90% of `value`."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def conv_out_size(size: int, stride: int) -> int:
    """Output side of an odd-kernel conv (or 3x3 pool) with 'same' padding k//2."""
    return (size - 1) // stride + 1


@dataclass(frozen=True)
class UnitPlan:
    """One block with every number resolved."""

    path: str
    block: str
    in_ch: int
    out_ch: int
    mid_ch: int  # ir: expanded width; shuffle: bottleneck; ds/conv: in_ch
    stride: int
    kernel: int
    act: str
    in_size: int
    out_size: int
    groups: int = 1  # shuffle: groups of the 1x1 convs
    pw1_groups: int = 1  # shuffle: groups of the first 1x1 (1 when ungrouped_first)
    expand: bool = True  # ir: whether the 1x1 expansion conv exists (t != 1)
    proj_act: str = "identity"
    shuffle: bool = False
    residual: bool = False  # identity shortcut added
    concat: bool = False  # shuffle: shortcut (avg-pooled when stride 2) concatenated
    bn: bool = True  # ds/conv: BatchNorm after each conv
    mid_act: bool = True  # ds: activation between the dw and the pw conv
    bias: bool = False  # ds: the pw conv has a bias; conv: the conv has one


@dataclass(frozen=True)
class StemPlan:
    in_ch: int
    out_ch: int
    kernel: int
    stride: int
    act: str
    pool: bool
    in_size: int
    conv_size: int
    out_size: int
    bn: bool = True
    bias: bool = False


@dataclass(frozen=True)
class StagePlan:
    index: int
    units: tuple[UnitPlan, ...]
    pool: str  # none | max | avg (2x2, stride 2) after the last unit
    out_ch: int
    out_size: int


@dataclass(frozen=True)
class HeadPlan:
    in_ch: int
    in_size: int
    conv_ch: int  # 0: no head conv
    act: str
    pool: str
    pool_size: int
    flat_features: int
    hidden: tuple[int, ...]
    dropout: float
    num_classes: int
    bias: bool = True  # of the fully-connected layers


@dataclass(frozen=True)
class NetPlan:
    spec: NetSpec
    stem: StemPlan
    stages: tuple[StagePlan, ...]
    head: HeadPlan


def _scale(path: str, written: int, spec: NetSpec, multiple: int, width: float | None = None) -> int:
    """`written` at the width, rounded (README); refused past the per-field cap (16384 x width 16)."""
    width = spec.width if width is None else width
    scaled = written if width == 1.0 else make_divisible(written * width, math.lcm(spec.channel_divisor, multiple))
    return _check_scaled(path, written, scaled, spec)


def _check_scaled(path: str, written: int, scaled: int, spec: NetSpec) -> int:
    if scaled > MAX_CHANNELS:
        raise SpecError(f"{path}={written} at width={spec.width} gives {scaled} channels, over the"
                        f" {MAX_CHANNELS} cap; lower width or {path}")
    return scaled


def _head_conv_channels(spec: NetSpec) -> int:
    conv, mode = spec.head.conv, spec.head.conv_scaling
    if conv == 0 or mode == "none" or spec.width == 1.0:
        return conv
    factor = max(1.0, spec.width) if mode == "up_only" else spec.width
    return conv if factor == 1.0 else make_divisible(conv * factor, spec.channel_divisor)


def _strides(spec: NetSpec) -> list[int]:
    """Every downsampling point in network order: stem conv, stem pool, per stage: block, pool."""
    strides = [spec.stem.stride, 2 if spec.stem.pool == "max" else 1]
    for stage in spec.stages:
        strides += [stage.stride, 1 if stage.pool == "none" else 2]
    return strides


def _final_size(resolution: int, strides: list[int]) -> int:
    size = resolution
    for i, stride in enumerate(strides):  # a stage's pool (odd i from 3) halves exactly
        size = size // stride if i >= 2 and i % 2 == 1 else conv_out_size(size, stride)
    return size


def effective_strides(spec: NetSpec) -> list[int]:
    """Apply the small-input rule: drop the earliest stride-2s until the final map is big enough."""
    strides = _strides(spec)
    if spec.min_final_map is None:
        return strides
    for i, stride in enumerate(strides):
        if _final_size(spec.input.resolution, strides) >= spec.min_final_map:
            break
        if stride == 2:
            strides[i] = 1
    return strides


def _stem(spec: NetSpec, strides: list[int]) -> StemPlan:
    # pow2: the width rounded down to a power of two (1.5 -> 1, 0.75 -> 0.5), Megvii's ShuffleNet v1
    width = 2.0 ** math.floor(math.log2(spec.width)) if spec.stem.scaling == "pow2" else spec.width
    first = spec.stages[0]
    out_ch = _scale("stem.channels", spec.stem.channels, spec, BLOCK_TYPES[first.block].in_multiple(first), width)
    res, stride, pool = spec.input.resolution, strides[0], strides[1] == 2
    conv_size = conv_out_size(res, stride)
    size = conv_out_size(conv_size, 2) if pool else conv_size
    return StemPlan(spec.input.channels, out_ch, spec.stem.kernel, stride,
                    canonical_act(spec.stem.act or spec.act), pool, res, conv_size, size,
                    bn=spec.stem.bn, bias=spec.stem.bias)


def _stage(spec: NetSpec, i: int, strides: list[int], in_ch: int, size: int) -> StagePlan:
    stage = spec.stages[i]
    after = spec.stages[i + 1] if i + 1 < len(spec.stages) else None
    next_in = BLOCK_TYPES[after.block].in_multiple(after) if after else 1
    multiple = math.lcm(BLOCK_TYPES[stage.block].out_multiple(stage), next_in)
    out_ch = _scale(f"stages[{i}].channels", stage.channels, spec, multiple)
    act = canonical_act(stage.act or spec.act)
    units = []
    for b in range(stage.repeats):
        site = UnitSite(path=f"stages[{i}].block{b}", stage_path=f"stages[{i}]", block_index=b,
                        in_ch=in_ch, out_ch=out_ch, stride=strides[2 + 2 * i] if b == 0 else 1)
        out_size = conv_out_size(size, site.stride)
        # the common numbers here, the block's own (bottleneck, groups, shortcut) from its registry entry
        units.append(UnitPlan(path=site.path, block=stage.block, in_ch=in_ch, out_ch=out_ch, stride=site.stride,
                              kernel=stage.kernel, act=act, in_size=size, out_size=out_size,
                              **BLOCK_TYPES[stage.block].plan(stage, site)))
        in_ch, size = out_ch, out_size
    pool = stage.pool if strides[3 + 2 * i] == 2 else "none"
    if pool != "none":
        size //= 2
        if size < 1:
            raise SpecError(
                f"input.resolution={spec.input.resolution} is too small: the feature map"
                f" vanishes at stages[{i}].pool; raise the resolution or set min_final_map")
    return StagePlan(i, tuple(units), pool, out_ch, size)


def plan(spec: NetSpec) -> NetPlan:
    """`spec` as a NetPlan; SpecError naming the field when its channel arithmetic fails."""
    strides = effective_strides(spec)
    stem = _stem(spec, strides)
    in_ch, size = stem.out_ch, stem.out_size
    stage_plans = []
    for i in range(len(spec.stages)):
        stage_plans.append(_stage(spec, i, strides, in_ch, size))
        in_ch, size = stage_plans[-1].out_ch, stage_plans[-1].out_size
    conv_ch = _check_scaled("head.conv", spec.head.conv, _head_conv_channels(spec), spec)
    hd = spec.head
    head = HeadPlan(in_ch, size, conv_ch, canonical_act(hd.act or spec.act), hd.pool,
                    hd.pool_size, (conv_ch or in_ch) * hd.pool_size**2, tuple(hd.hidden),
                    hd.dropout, spec.num_classes, bias=hd.bias)
    return NetPlan(spec, stem, tuple(stage_plans), head)
