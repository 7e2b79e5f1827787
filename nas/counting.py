"""Parameters and multiply-adds computed from the spec alone, without building or running it.

Convention: multiply-adds (MACs) of convolutions and linear layers, bias additions excluded;
BatchNorm, activations, pooling, shuffles and residual adds count zero. This is the papers'
"mult-adds" (ShuffleNet's "FLOPs") and half of what `torch.utils.flop_counter.FlopCounterMode`
reports. Parameters are trainable ones: conv/linear weights and biases, BN weight and bias.
"""

from __future__ import annotations

from dataclasses import dataclass

from nas.blocks import BLOCKS, ZERO, Cost, bn_cost, conv_cost, linear_cost
from nas.errors import SpecError
from nas.plan import HeadPlan, NetPlan, StemPlan, plan
from nas.spec import NetSpec

# Sanity caps checked from the plan before a module is allocated: every field can be within its
# own range while the whole is absurd (width 16 at 2048 px is 11 TMACs). Far above any net here
# (MobileNetV2 at 224: 3.5M params, 0.3 GMACs, 1.2M-element largest map).
MAX_PARAMS = 1_000_000_000  # 4 GB of float32 weights, before gradients and optimizer state
MAX_MACS = 1_000_000_000_000  # multiply-adds per image
MAX_MAP = 2**30  # elements of the largest feature map of one image (4 GiB in float32)


@dataclass(frozen=True)
class PartCount:
    """One row of a summary: a stem, a stage or the head."""

    name: str
    out_shape: tuple[int, int, int]  # C, H, W after this part
    params: int
    macs: int
    detail: str = ""


@dataclass(frozen=True)
class Count:
    params: int
    macs: int
    parts: tuple[PartCount, ...] = ()

    def as_dict(self) -> dict[str, int]:
        return {"params": self.params, "macs": self.macs}


def _stem_cost(p: StemPlan) -> Cost:
    return conv_cost(p.in_ch, p.out_ch, p.kernel, 1, p.conv_size) + bn_cost(p.out_ch)


def _head_cost(p: HeadPlan) -> Cost:
    cost = conv_cost(p.in_ch, p.conv_ch, 1, 1, p.in_size) + bn_cost(p.conv_ch) if p.conv_ch else ZERO
    features = p.flat_features
    for width in (*p.hidden, p.num_classes):
        cost += linear_cost(features, width)
        features = width
    return cost


def count_plan(net: NetPlan) -> Count:
    stem = _stem_cost(net.stem)
    parts = [PartCount("stem", (net.stem.out_ch, net.stem.out_size, net.stem.out_size), *stem,
                       f"conv{net.stem.kernel}x{net.stem.kernel}/{net.stem.stride}"
                       + (" + maxpool/2" if net.stem.pool else ""))]
    for stage in net.stages:
        cost = ZERO
        for unit in stage.units:
            cost += BLOCKS[unit.block].cost(unit)  # type: ignore[attr-defined]
        first = stage.units[0]
        detail = f"{first.block} x{len(stage.units)} /{first.stride}"
        if stage.pool != "none":
            detail += f" + {stage.pool}pool/2"
        parts.append(PartCount(f"s{stage.index}", (stage.out_ch, stage.out_size, stage.out_size),
                               *cost, detail))
    head = _head_cost(net.head)
    conv_detail = f"conv1x1 {net.head.conv_ch} + " if net.head.conv_ch else ""
    fcs = "-".join(str(w) for w in (*net.head.hidden, net.head.num_classes))
    parts.append(PartCount("head", (net.head.num_classes, 1, 1), *head,
                           f"{conv_detail}{net.head.pool}pool{net.head.pool_size} fc {fcs}"))
    return Count(sum(p.params for p in parts), sum(p.macs for p in parts), tuple(parts))


def count(spec: NetSpec) -> Count:
    """Exact params and MACs of `spec` (see the module docstring for the convention)."""
    return count_plan(plan(spec))


def _field(part: str) -> str:
    """Summary part name -> spec field path: `s2` -> `stages[2]`."""
    return f"stages[{part[1:]}]" if part[:1] == "s" and part[1:].isdigit() else part


def largest_map(net: NetPlan) -> tuple[int, str]:
    """(elements, field path) of the biggest activation one image makes (an upper bound per
    block: its widest channel count at its input size)."""
    sizes = [(net.stem.in_ch * net.stem.in_size**2, "input"),
              (net.stem.out_ch * net.stem.conv_size**2, "stem")]
    for stage in net.stages:
        for u in stage.units:
            sizes.append((max(u.in_ch, u.mid_ch, u.out_ch) * u.in_size**2, f"stages[{stage.index}]"))
    if net.head.conv_ch:
        sizes.append((net.head.conv_ch * net.head.in_size**2, "head.conv"))
    return max(sizes)


def check_size(net: NetPlan) -> Count:
    """The plan's count, or SpecError (one line, naming the largest part) when the network is
    over MAX_PARAMS, MAX_MACS or MAX_MAP: refused before any tensor is allocated."""
    counted = count_plan(net)
    for what, attr, cap, hint in (
            ("parameters", "params", MAX_PARAMS, "width, channels, repeats or head sizes"),
            ("multiply-adds per image", "macs", MAX_MACS, "input.resolution, width, channels or repeats")):
        total = getattr(counted, attr)
        if total > cap:
            worst = max(counted.parts, key=lambda part: getattr(part, attr))
            raise SpecError(f"the network has {total:.3g} {what}, over the {cap:.0e} cap (most in"
                            f" {_field(worst.name)}); lower {hint}")
    elements, where = largest_map(net)
    if elements > MAX_MAP:
        raise SpecError(f"{where} makes a {elements:.3g}-element feature map per image, over the"
                        f" {MAX_MAP:.3g} cap; lower input.resolution, width or channels")
    return counted
