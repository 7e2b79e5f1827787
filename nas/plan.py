"""Resolve a NetSpec into concrete integers: channels per block, strides, feature-map sizes.

This is the one place for the width-rounding rule and the small-input stride rule; the builder
and the counter both read the plan, so a module and its count cannot disagree about a channel.
The size caps the plan is checked against are `nas.limits`; the check itself, `checked`, is in
`nas.loading` (it needs the counter).

Width rounding: at width 1.0 channels are taken as written (and checked); otherwise a channel
count c becomes `make_divisible(c * width, d)` (torchvision's rule: nearest multiple of d, never
below 90% of the target), where d = lcm(channel_divisor, what the groups need): a ShuffleNet
stage with g groups needs its output divisible by 4g (the out/4 bottleneck splits into g groups)
and its input by g (the stride-2 concat branch has out - in channels in g groups). A stem with
`scaling: pow2` scales by the width rounded down to a power of two (Megvii's ShuffleNet v1).

Small-input rule (`min_final_map`): walking the network from the input, the earliest stride-2
layers (stem conv, stem pool, then each stage's first block and pool) become stride 1 until the
final feature map is at least `min_final_map` pixels on a side. Each preset sets the value that
gives its family's widely used CIFAR port at 32x32: 2 for MobileNetV1 (kuangliu's port: only
the stem stride goes, the body ends on 2x2), 4 for MobileNetV2 (the stem and 24-channel strides
go: kuangliu / chenyaofo) and ShuffleNet (the stem conv and pool strides go: kuangliu). At
128-224 px it changes nothing, so the paper numbers hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nas.errors import SpecError
from nas.limits import MAX_CHANNELS
from nas.registry import BLOCK_TYPES, UnitSite, canonical_act
from nas.spec import NetSpec, StageSpec


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


# ----------------------------------------------------------------------------- channel rules


def _out_multiple(stage: StageSpec) -> int:
    return BLOCK_TYPES[stage.block].out_multiple(stage)


def _in_multiple(stage: StageSpec) -> int:
    return BLOCK_TYPES[stage.block].in_multiple(stage)


def _scale(channels: int, spec: NetSpec, multiple: int, width: float | None = None) -> int:
    width = spec.width if width is None else width
    if width == 1.0:
        return channels
    return make_divisible(channels * width, math.lcm(spec.channel_divisor, multiple))


def _stem_width(spec: NetSpec) -> float:
    """`full`: the width; `pow2`: the width rounded down to a power of two (1.5 -> 1, 0.75 -> 0.5)."""
    if spec.stem.scaling == "pow2":
        return 2.0 ** math.floor(math.log2(spec.width))
    return spec.width


def _check_scaled(path: str, written: int, scaled: int, spec: NetSpec) -> int:
    """Width scales channels past the per-field cap (16384 x width 16): refuse before building."""
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


# ----------------------------------------------------------------------------- strides


def _strides(spec: NetSpec) -> list[int]:
    """Every downsampling point in network order: stem conv, stem pool, per stage: block, pool."""
    strides = [spec.stem.stride, 2 if spec.stem.pool == "max" else 1]
    for stage in spec.stages:
        strides += [stage.stride, 1 if stage.pool == "none" else 2]
    return strides


def _final_size(resolution: int, strides: list[int]) -> int:
    size = resolution
    for i, stride in enumerate(strides):
        is_stage_pool = i >= 2 and i % 2 == 1
        size = size // stride if is_stage_pool else conv_out_size(size, stride)
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


# ----------------------------------------------------------------------------- units


def _unit(spec: NetSpec, stage: StageSpec, site: UnitSite, in_size: int) -> UnitPlan:
    """One block: the common numbers here, the block's own from its registry entry's plan."""
    out_size = conv_out_size(in_size, site.stride)
    own = BLOCK_TYPES[stage.block].plan(stage, site)
    return UnitPlan(path=site.path, block=stage.block, in_ch=site.in_ch, out_ch=site.out_ch,
                    stride=site.stride, kernel=stage.kernel,
                    act=canonical_act(stage.act or spec.act), in_size=in_size,
                    out_size=out_size, **own)


def _stem(spec: NetSpec, strides: list[int]) -> StemPlan:
    written = spec.stem.channels
    out_ch = _check_scaled("stem.channels", written,
                           _scale(written, spec, _in_multiple(spec.stages[0]), _stem_width(spec)),
                           spec)
    res, stride, pool = spec.input.resolution, strides[0], strides[1] == 2
    conv_size = conv_out_size(res, stride)
    size = conv_out_size(conv_size, 2) if pool else conv_size
    return StemPlan(spec.input.channels, out_ch, spec.stem.kernel, stride,
                    canonical_act(spec.stem.act or spec.act), pool, res, conv_size, size,
                    bn=spec.stem.bn, bias=spec.stem.bias)


def _stage(spec: NetSpec, i: int, strides: list[int], in_ch: int, size: int) -> StagePlan:
    stages = spec.stages
    stage = stages[i]
    next_in = _in_multiple(stages[i + 1]) if i + 1 < len(stages) else 1
    out_ch = _check_scaled(f"stages[{i}].channels", stage.channels,
                           _scale(stage.channels, spec, math.lcm(_out_multiple(stage), next_in)),
                           spec)
    units = []
    for b in range(stage.repeats):
        stride = strides[2 + 2 * i] if b == 0 else 1
        site = UnitSite(path=f"stages[{i}].block{b}", stage_path=f"stages[{i}]", block_index=b,
                        in_ch=in_ch, out_ch=out_ch, stride=stride)
        unit = _unit(spec, stage, site, size)
        units.append(unit)
        in_ch, size = out_ch, unit.out_size
    pool = stage.pool if strides[3 + 2 * i] == 2 else "none"
    if pool != "none":
        size //= 2
        if size < 1:
            raise SpecError(
                f"input.resolution={spec.input.resolution} is too small: the feature map"
                f" vanishes at stages[{i}].pool; raise the resolution or set min_final_map")
    return StagePlan(i, tuple(units), pool, out_ch, size)


def plan(spec: NetSpec) -> NetPlan:
    """Resolve `spec` (field-checked when it was built) into a NetPlan; SpecError naming the
    field when its channel arithmetic does not work out."""
    strides = effective_strides(spec)
    stem = _stem(spec, strides)
    in_ch, size = stem.out_ch, stem.out_size
    stage_plans = []
    for i in range(len(spec.stages)):
        stage_plan = _stage(spec, i, strides, in_ch, size)
        stage_plans.append(stage_plan)
        in_ch, size = stage_plan.out_ch, stage_plan.out_size
    conv_ch = _check_scaled("head.conv", spec.head.conv, _head_conv_channels(spec), spec)
    hd = spec.head
    head = HeadPlan(in_ch, size, conv_ch, canonical_act(hd.act or spec.act), hd.pool,
                    hd.pool_size, (conv_ch or in_ch) * hd.pool_size**2, tuple(hd.hidden),
                    hd.dropout, spec.num_classes, bias=hd.bias)
    return NetPlan(spec, stem, tuple(stage_plans), head)
