"""Block modules and their exact costs, one class per block type, attached to its registry entry
by `@implements(name)`. Each builds from a resolved `UnitPlan` and counts its own parameters and
MACs, so the counter never runs a forward pass. Layer names follow timm.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, TypeVar

import torch
from torch import nn

from nas.plan import UnitPlan
from nas.registry import BLOCK_TYPES

M = TypeVar("M", bound=type)


def implements(name: str) -> Callable[[M], M]:
    """Class decorator: this module class (with its static `cost`) is block type `name`."""
    def attach(cls: M) -> M:
        BLOCK_TYPES[name].module = cls
        return cls
    return attach

ACT_LAYERS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "relu6": lambda: nn.ReLU6(inplace=True),
    "selu": lambda: nn.SELU(inplace=True),
    "hardswish": lambda: nn.Hardswish(inplace=True),
    "silu": lambda: nn.SiLU(inplace=True),
    "identity": nn.Identity,
}


def make_act(name: str) -> nn.Module:
    return ACT_LAYERS[name]()


class Cost(NamedTuple):
    """Parameters and multiply-adds (convolutions and linear layers; BN/act/pool excluded), and
    what a training step's time depends on besides the MAC count (nas.campaign.time_model): on
    a CPU a depthwise MAC costs 20-30x a dense one, memory-bound on its outputs."""

    params: int
    macs: int
    depthwise_macs: int = 0  # of depthwise convs (groups == channels)
    grouped_macs: int = 0  # of grouped convs (1 < groups < channels)
    depthwise_outputs: int = 0  # output elements of the depthwise convs
    layers: int = 0  # convolutions and linear layers (a fixed cost each per step)

    def __add__(self, other: "Cost") -> "Cost":  # type: ignore[override]
        return Cost(*(a + b for a, b in zip(self, other)))

    @property
    def dense_macs(self) -> int:
        return self.macs - self.depthwise_macs - self.grouped_macs


ZERO = Cost(0, 0)


def conv_cost(cin: int, cout: int, kernel: int, groups: int, out_size: int, *,
              bias: bool = False) -> Cost:
    per_output = (cin // groups) * kernel * kernel
    params = cout * per_output + (cout if bias else 0)
    outputs = out_size * out_size * cout
    macs = outputs * per_output
    depthwise = groups > 1 and groups == cin == cout
    grouped = groups > 1 and not depthwise
    return Cost(params, macs, macs if depthwise else 0, macs if grouped else 0,
                outputs if depthwise else 0, 1)


def bn_cost(channels: int, present: bool = True) -> Cost:
    return Cost(2 * channels, 0) if present else ZERO


def linear_cost(fin: int, fout: int, bias: bool = True) -> Cost:
    return Cost(fin * fout + (fout if bias else 0), fin * fout, layers=1)


def conv(cin: int, cout: int, kernel: int, stride: int = 1, *, groups: int = 1,
         bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=bias)


def norm(channels: int, present: bool = True) -> nn.Module:
    return nn.BatchNorm2d(channels) if present else nn.Identity()


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's shuffle: (g, c/g) -> (c/g, g), so each group sees every other group's output."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


@implements("ds")
class DepthwiseSeparable(nn.Module):
    """MobileNetV1: dw kxk + BN + act, pw 1x1 + BN + act. Knobs: `bn` off drops both BNs,
    `mid_act` off the act between dw and pw, `bias` gives the pw conv a bias (seed 003's CNN)."""

    def __init__(self, u: UnitPlan):
        super().__init__()
        self.conv_dw = conv(u.in_ch, u.in_ch, u.kernel, u.stride, groups=u.in_ch)
        self.bn1 = norm(u.in_ch, u.bn)
        self.act1 = make_act(u.act if u.mid_act else "identity")
        self.conv_pw = conv(u.in_ch, u.out_ch, 1, bias=u.bias)
        self.bn2 = norm(u.out_ch, u.bn)
        self.act2 = make_act(u.act)
        self.residual = u.residual
        self.last_bn = self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv_dw(x)))
        out = self.act2(self.bn2(self.conv_pw(out)))
        return out + x if self.residual else out

    @staticmethod
    def cost(u: UnitPlan) -> Cost:
        return (conv_cost(u.in_ch, u.in_ch, u.kernel, u.in_ch, u.out_size) + bn_cost(u.in_ch, u.bn)
                + conv_cost(u.in_ch, u.out_ch, 1, 1, u.out_size, bias=u.bias) + bn_cost(u.out_ch, u.bn))


@implements("ir")
class InvertedResidual(nn.Module):
    """MobileNetV2: 1x1 expand (skipped at t=1) + BN + act, dw kxk + BN + act, 1x1 project + BN
    (+ proj_act: identity is the paper's linear bottleneck), identity shortcut when shapes match."""

    def __init__(self, u: UnitPlan):
        super().__init__()
        if u.expand:
            self.conv_pw = conv(u.in_ch, u.mid_ch, 1)
            self.bn1 = nn.BatchNorm2d(u.mid_ch)
            self.act1 = make_act(u.act)
        else:
            self.conv_pw = self.bn1 = self.act1 = nn.Identity()
        self.conv_dw = conv(u.mid_ch, u.mid_ch, u.kernel, u.stride, groups=u.mid_ch)
        self.bn2 = nn.BatchNorm2d(u.mid_ch)
        self.act2 = make_act(u.act)
        self.conv_pwl = conv(u.mid_ch, u.out_ch, 1)
        self.bn3 = nn.BatchNorm2d(u.out_ch)
        self.act3 = make_act(u.proj_act)
        self.residual = u.residual
        self.last_bn = self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv_pw(x)))
        out = self.act2(self.bn2(self.conv_dw(out)))
        out = self.act3(self.bn3(self.conv_pwl(out)))
        return out + x if self.residual else out

    @staticmethod
    def cost(u: UnitPlan) -> Cost:
        expand = conv_cost(u.in_ch, u.mid_ch, 1, 1, u.in_size) + bn_cost(u.mid_ch) if u.expand else ZERO
        return (expand + conv_cost(u.mid_ch, u.mid_ch, u.kernel, u.mid_ch, u.out_size)
                + bn_cost(u.mid_ch) + conv_cost(u.mid_ch, u.out_ch, 1, 1, u.out_size)
                + bn_cost(u.out_ch))


@implements("shuffle")
class ShuffleUnit(nn.Module):
    """ShuffleNet v1: grouped 1x1 to out/4 + BN + act, channel shuffle, dw kxk + BN, grouped 1x1
    + BN; then add the input (same shape) or concatenate it (3x3 avg-pooled when stride 2); act."""

    def __init__(self, u: UnitPlan):
        super().__init__()
        branch_out = u.out_ch - u.in_ch if u.concat else u.out_ch
        self.conv_pw = conv(u.in_ch, u.mid_ch, 1, groups=u.pw1_groups)
        self.bn1 = nn.BatchNorm2d(u.mid_ch)
        self.act1 = make_act(u.act)
        self.conv_dw = conv(u.mid_ch, u.mid_ch, u.kernel, u.stride, groups=u.mid_ch)
        self.bn2 = nn.BatchNorm2d(u.mid_ch)
        self.conv_pwl = conv(u.mid_ch, branch_out, 1, groups=u.groups)
        self.bn3 = nn.BatchNorm2d(branch_out)
        self.act_out = make_act(u.act)
        self.shortcut = nn.AvgPool2d(3, 2, 1) if u.concat and u.stride == 2 else nn.Identity()
        self.groups, self.shuffle = u.groups, u.shuffle
        self.concat, self.residual = u.concat, u.residual
        self.last_bn = self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv_pw(x)))
        if self.shuffle:
            out = channel_shuffle(out, self.groups)
        out = self.bn3(self.conv_pwl(self.bn2(self.conv_dw(out))))
        if self.concat:
            out = torch.cat((self.shortcut(x), out), dim=1)
        elif self.residual:
            out = out + x
        return self.act_out(out)

    @staticmethod
    def cost(u: UnitPlan) -> Cost:
        branch_out = u.out_ch - u.in_ch if u.concat else u.out_ch
        return (conv_cost(u.in_ch, u.mid_ch, 1, u.pw1_groups, u.in_size) + bn_cost(u.mid_ch)
                + conv_cost(u.mid_ch, u.mid_ch, u.kernel, u.mid_ch, u.out_size) + bn_cost(u.mid_ch)
                + conv_cost(u.mid_ch, branch_out, 1, u.groups, u.out_size) + bn_cost(branch_out))


@implements("conv")
class ConvBlock(nn.Module):
    """A full kxk conv + BN + act: the baseline the depthwise-separable ablations compare with.
    Knobs: `bn` off drops the BN, `bias` gives the conv a bias (seed 003's full-conv twin)."""

    def __init__(self, u: UnitPlan):
        super().__init__()
        self.conv = conv(u.in_ch, u.out_ch, u.kernel, u.stride, bias=u.bias)
        self.bn1 = norm(u.out_ch, u.bn)
        self.act1 = make_act(u.act)
        self.residual = u.residual
        self.last_bn = self.bn1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv(x)))
        return out + x if self.residual else out

    @staticmethod
    def cost(u: UnitPlan) -> Cost:
        return conv_cost(u.in_ch, u.out_ch, u.kernel, 1, u.out_size, bias=u.bias) + bn_cost(u.out_ch, u.bn)


_MISSING = [name for name, b in BLOCK_TYPES.items() if b.module is None]
if _MISSING:
    raise ImportError(f"block types without a module class (@implements): {', '.join(_MISSING)}")

# block name -> module class (a view of the registry, filled above)
BLOCKS: dict[str, type[nn.Module]] = {name: b.module for name, b in BLOCK_TYPES.items()}
