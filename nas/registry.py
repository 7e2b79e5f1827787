"""The block registry: one `BlockType` per block type (knobs and defaults, the channel multiples
its groups need, its plan), and the activation names. Torch-free, so `nas.spec` validates knobs
without it; each module class (which also counts its cost) attaches itself in `nas.blocks` with
`@implements("ds")`. A new block is an entry here plus its class there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from nas.errors import SpecError

ACTIVATIONS = ("relu", "relu6", "selu", "hardswish", "silu", "identity")
ACT_ALIASES = {"linear": "identity", "none": "identity"}


def canonical_act(name: str) -> str:
    return ACT_ALIASES.get(name, name)


class Knobs(Protocol):
    """A stage spec: `knob(name)` is its value, or the block type's default."""

    def knob(self, name: str) -> Any: ...


@dataclass(frozen=True, kw_only=True)
class UnitSite:
    """Where a block sits: its field path and the channels and stride the network gives it."""

    path: str  # stages[1].block0
    stage_path: str  # stages[1]
    block_index: int
    in_ch: int
    out_ch: int
    stride: int

    @property
    def same_shape(self) -> bool:
        return self.stride == 1 and self.in_ch == self.out_ch


@dataclass
class BlockType:
    name: str
    knobs: dict[str, Any]  # optional knobs it reads -> default when the spec leaves them empty
    plan: Callable[[Knobs, UnitSite], dict[str, Any]]  # -> the block's UnitPlan fields
    out_multiple: Callable[[Knobs], int] = lambda _: 1  # its output channels must divide by this
    in_multiple: Callable[[Knobs], int] = lambda _: 1  # and its input channels by this
    module: Any = None  # the nn.Module class, with a static cost(UnitPlan) -> Cost (nas.blocks)


def _plain_plan(k: Knobs, site: UnitSite) -> dict[str, Any]:
    """ds and conv: no bottleneck; BN, conv bias and (ds) the dw-pw activation are knobs."""
    fields = dict(mid_ch=site.in_ch, residual=k.knob("residual") and site.same_shape,
                  bn=k.knob("bn"), bias=k.knob("bias"))
    if k.knob("mid_act") is not None:
        fields["mid_act"] = k.knob("mid_act")
    return fields


def _ir_plan(k: Knobs, site: UnitSite) -> dict[str, Any]:
    t = k.knob("expansion")
    expand = t != 1
    return dict(mid_ch=int(round(site.in_ch * t)) if expand else site.in_ch, expand=expand,
                proj_act=canonical_act(k.knob("proj_act")),
                residual=k.knob("residual") and site.same_shape)


def _check_shuffle(site: UnitSite, g: int, pw1_groups: int, concat: bool) -> None:
    in_ch, out_ch, where = site.in_ch, site.out_ch, site.stage_path
    mid = out_ch // 4
    if mid < 1 or mid % g:
        step = 4 * g
        low, high = max(step, out_ch // step * step), (out_ch // step + 1) * step
        raise SpecError(
            f"{where}.groups={g} does not divide {out_ch} channels (the {mid}-channel"
            f" bottleneck, channels/4, must split into {g} groups); use a multiple of {step},"
            f" e.g. {low} or {high}")
    if in_ch % pw1_groups:
        raise SpecError(
            f"{where}.groups={g} does not divide the {in_ch} input channels of {site.path};"
            f" make the previous stage's channels a multiple of {g} or set ungrouped_first: true")
    if concat and out_ch - in_ch < 1:
        raise SpecError(
            f"{where}.channels={out_ch} must exceed the {in_ch} input channels: a ShuffleNet"
            " block that downsamples or widens concatenates its input")
    if concat and (out_ch - in_ch) % g:
        raise SpecError(
            f"{where}.groups={g} does not divide the {out_ch - in_ch}-channel branch of"
            f" {site.path} ({out_ch} out - {in_ch} in); make both channel counts multiples of {g}")


def _shuffle_plan(k: Knobs, site: UnitSite) -> dict[str, Any]:
    g = k.knob("groups")
    pw1_groups = 1 if k.knob("ungrouped_first") and site.block_index == 0 else g
    concat = not site.same_shape
    _check_shuffle(site, g, pw1_groups, concat)
    return dict(mid_ch=site.out_ch // 4, groups=g, pw1_groups=pw1_groups,
                shuffle=k.knob("shuffle") and g > 1,
                residual=k.knob("residual") and site.same_shape, concat=concat)


BLOCK_TYPES: dict[str, BlockType] = {b.name: b for b in (
    # MobileNetV1: dw kxk (+BN) (+act), pw 1x1 (+bias) (+BN) + act
    BlockType("ds", {"residual": False, "bn": True, "mid_act": True, "bias": False}, _plain_plan),
    # MobileNetV2: 1x1 expand, dw kxk, 1x1 project (+proj_act)
    BlockType("ir", {"expansion": 6.0, "proj_act": "identity", "residual": True}, _ir_plan),
    # ShuffleNet v1: the out/4 bottleneck splits into g groups (4g); the input into g
    BlockType("shuffle", {"groups": 1, "shuffle": True, "residual": True, "ungrouped_first": False},
              _shuffle_plan, out_multiple=lambda k: 4 * k.knob("groups"),
              in_multiple=lambda k: k.knob("groups")),
    # a full kxk conv (+bias) (+BN) + act: the depthwise ablations' baseline
    BlockType("conv", {"residual": False, "bn": True, "bias": False}, _plain_plan),
)}

# block -> its optional knobs and defaults (a view of BLOCK_TYPES)
BLOCK_KNOBS: dict[str, dict[str, Any]] = {name: b.knobs for name, b in BLOCK_TYPES.items()}
