"""Resolve a NetSpec into concrete integers: channels per block, strides, feature-map sizes.

This is the one place for the width-rounding rule and the small-input stride rule; the builder
and the counter both read the plan, so a module and its count cannot disagree about a channel.

Width rounding: at width 1.0 channels are taken as written (and checked); otherwise a channel
count c becomes `make_divisible(c * width, d)` (torchvision's rule: nearest multiple of d, never
below 90% of the target), where d = lcm(channel_divisor, what the groups need): a ShuffleNet
stage with g groups needs its output divisible by 4g (the out/4 bottleneck splits into g groups)
and its input by g (the stride-2 concat branch has out - in channels in g groups).

Small-input rule (`min_final_map`): walking the network from the input, the earliest stride-2
layers (stem conv, stem pool, then each stage's first block and pool) become stride 1 until the
final feature map is at least `min_final_map` pixels on a side. With 4 at 32x32 this is the
common CIFAR port (MobileNetV1/V2 and ShuffleNet end on a 4x4 map); at 128-224 px it changes
nothing, so the paper numbers hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nas.errors import SpecError
from nas.spec import MAX_CHANNELS, NetSpec, StageSpec, canonical_act, validate


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


@dataclass(frozen=True)
class NetPlan:
    spec: NetSpec
    stem: StemPlan
    stages: tuple[StagePlan, ...]
    head: HeadPlan


# ----------------------------------------------------------------------------- channel rules


def _out_multiple(stage: StageSpec) -> int:
    return 4 * stage.knob("groups") if stage.block == "shuffle" else 1


def _in_multiple(stage: StageSpec) -> int:
    return stage.knob("groups") if stage.block == "shuffle" else 1


def _scale(channels: int, spec: NetSpec, multiple: int) -> int:
    if spec.width == 1.0:
        return channels
    return make_divisible(channels * spec.width, math.lcm(spec.channel_divisor, multiple))


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


def _check_shuffle(path: str, stage_path: str, g: int, pw1_groups: int, in_ch: int, out_ch: int,
                   concat: bool) -> None:
    mid = out_ch // 4
    if mid < 1 or mid % g:
        step = 4 * g
        low, high = max(step, out_ch // step * step), (out_ch // step + 1) * step
        raise SpecError(
            f"{stage_path}.groups={g} does not divide {out_ch} channels (the {mid}-channel"
            f" bottleneck, channels/4, must split into {g} groups); use a multiple of {step},"
            f" e.g. {low} or {high}"
        )
    if in_ch % pw1_groups:
        raise SpecError(
            f"{stage_path}.groups={g} does not divide the {in_ch} input channels of {path};"
            f" make the previous stage's channels a multiple of {g} or set ungrouped_first: true"
        )
    if concat:
        branch = out_ch - in_ch
        if branch < 1:
            raise SpecError(
                f"{stage_path}.channels={out_ch} must exceed the {in_ch} input channels: a"
                " ShuffleNet block that downsamples or widens concatenates its input"
            )
        if branch % g:
            raise SpecError(
                f"{stage_path}.groups={g} does not divide the {branch}-channel branch of {path}"
                f" ({out_ch} out - {in_ch} in); make both channel counts multiples of {g}"
            )


def _unit(spec: NetSpec, stage: StageSpec, stage_index: int, block_index: int, in_ch: int,
          out_ch: int, stride: int, in_size: int) -> UnitPlan:
    stage_path = f"stages[{stage_index}]"
    path = f"{stage_path}.block{block_index}"
    act = canonical_act(stage.act or spec.act)
    out_size = conv_out_size(in_size, stride)
    same_shape = stride == 1 and in_ch == out_ch
    common = dict(path=path, block=stage.block, in_ch=in_ch, out_ch=out_ch, stride=stride,
                  kernel=stage.kernel, act=act, in_size=in_size, out_size=out_size)
    if stage.block == "ir":
        t = stage.knob("expansion")
        expand = t != 1
        mid = int(round(in_ch * t)) if expand else in_ch
        return UnitPlan(**common, mid_ch=mid, expand=expand,
                        proj_act=canonical_act(stage.knob("proj_act")),
                        residual=stage.knob("residual") and same_shape)
    if stage.block == "shuffle":
        g = stage.knob("groups")
        pw1_groups = 1 if stage.knob("ungrouped_first") and block_index == 0 else g
        concat = not same_shape
        _check_shuffle(path, stage_path, g, pw1_groups, in_ch, out_ch, concat)
        return UnitPlan(**common, mid_ch=out_ch // 4, groups=g, pw1_groups=pw1_groups,
                        shuffle=stage.knob("shuffle") and g > 1,
                        residual=stage.knob("residual") and same_shape, concat=concat)
    return UnitPlan(**common, mid_ch=in_ch, residual=stage.knob("residual") and same_shape)


def plan(spec: NetSpec) -> NetPlan:
    """Validate `spec` and resolve it into a NetPlan (raises SpecError naming the field)."""
    validate(spec)
    strides = effective_strides(spec)
    stages = spec.stages
    res = spec.input.resolution

    stem_ch = _check_scaled("stem.channels", spec.stem.channels,
                            _scale(spec.stem.channels, spec, _in_multiple(stages[0])), spec)
    stem_stride, stem_pool = strides[0], strides[1] == 2
    conv_size = conv_out_size(res, stem_stride)
    size = conv_out_size(conv_size, 2) if stem_pool else conv_size
    stem = StemPlan(spec.input.channels, stem_ch, spec.stem.kernel, stem_stride,
                    canonical_act(spec.stem.act or spec.act), stem_pool, res, conv_size, size)

    in_ch = stem_ch
    stage_plans = []
    for i, stage in enumerate(stages):
        next_in = _in_multiple(stages[i + 1]) if i + 1 < len(stages) else 1
        out_ch = _check_scaled(f"stages[{i}].channels", stage.channels,
                               _scale(stage.channels, spec, math.lcm(_out_multiple(stage), next_in)), spec)
        units = []
        for b in range(stage.repeats):
            stride = strides[2 + 2 * i] if b == 0 else 1
            unit = _unit(spec, stage, i, b, in_ch, out_ch, stride, size)
            units.append(unit)
            in_ch, size = out_ch, unit.out_size
        pool = stage.pool if strides[3 + 2 * i] == 2 else "none"
        if pool != "none":
            size //= 2
            if size < 1:
                raise SpecError(
                    f"input.resolution={res} is too small: the feature map vanishes at"
                    f" stages[{i}].pool; raise the resolution or set min_final_map"
                )
        stage_plans.append(StagePlan(i, tuple(units), pool, out_ch, size))

    conv_ch = _check_scaled("head.conv", spec.head.conv, _head_conv_channels(spec), spec)
    head_in = conv_ch or in_ch
    hd = spec.head
    head = HeadPlan(in_ch, size, conv_ch, canonical_act(hd.act or spec.act), hd.pool,
                    hd.pool_size, head_in * hd.pool_size**2, tuple(hd.hidden), hd.dropout,
                    spec.num_classes)
    return NetPlan(spec, stem, tuple(stage_plans), head)
