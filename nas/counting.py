"""Parameters and multiply-adds computed from the spec alone, without building or running it.
The convention (README, "Counting convention"): MACs of convolutions and linear layers, half of
`FlopCounterMode`'s FLOPs; trainable parameters (BN weight and bias included)."""

from __future__ import annotations

from dataclasses import dataclass

from nas.blocks import BLOCKS, ZERO, Cost, bn_cost, conv_cost, linear_cost
from nas.plan import HeadPlan, NetPlan, StemPlan, plan
from nas.spec import NetSpec


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
    cost: Cost = ZERO  # the whole net's, with the MACs by kind of convolution (time_model reads it)

    def as_dict(self) -> dict[str, int]:
        return {"params": self.params, "macs": self.macs}


def _stem_cost(p: StemPlan) -> Cost:
    return conv_cost(p.in_ch, p.out_ch, p.kernel, 1, p.conv_size, bias=p.bias) + bn_cost(p.out_ch, p.bn)


def _head_cost(p: HeadPlan) -> Cost:
    cost = conv_cost(p.in_ch, p.conv_ch, 1, 1, p.in_size) + bn_cost(p.conv_ch) if p.conv_ch else ZERO
    widths = (p.flat_features, *p.hidden, p.num_classes)
    return sum((linear_cost(fin, fout, p.bias) for fin, fout in zip(widths, widths[1:])), cost)


def count_plan(net: NetPlan) -> Count:
    stem = total = _stem_cost(net.stem)
    parts = [PartCount("stem", (net.stem.out_ch, net.stem.out_size, net.stem.out_size), stem.params, stem.macs,
                       f"conv{net.stem.kernel}x{net.stem.kernel}/{net.stem.stride}"
                       + (" + maxpool/2" if net.stem.pool else ""))]
    for stage in net.stages:
        cost = sum((BLOCKS[u.block].cost(u) for u in stage.units), ZERO)  # type: ignore[attr-defined]
        first = stage.units[0]
        pool = f" + {stage.pool}pool/2" if stage.pool != "none" else ""
        parts.append(PartCount(f"s{stage.index}", (stage.out_ch, stage.out_size, stage.out_size),
                               cost.params, cost.macs, f"{first.block} x{len(stage.units)} /{first.stride}{pool}"))
        total += cost
    head = _head_cost(net.head)
    conv_detail = f"conv1x1 {net.head.conv_ch} + " if net.head.conv_ch else ""
    fcs = "-".join(str(w) for w in (*net.head.hidden, net.head.num_classes))
    parts.append(PartCount("head", (net.head.num_classes, 1, 1), head.params, head.macs,
                           f"{conv_detail}{net.head.pool}pool{net.head.pool_size} fc {fcs}"))
    total += head
    return Count(total.params, total.macs, tuple(parts), total)


def count(spec: NetSpec) -> Count:
    """Exact params and MACs of `spec` (see the module docstring for the convention)."""
    return count_plan(plan(spec))
