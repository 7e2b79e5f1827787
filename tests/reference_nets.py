"""Test-only re-implementations of the reference networks the presets are pinned against, written
from each reference's layer list (not copied), counted the same way as `nas.count`:
parameters = `sum(p.numel())`, multiply-adds = FlopCounterMode / 2 (bias adds excluded).

- seed 003's CNN (/work/shared/seeds/003_*.txt): conv3x3 1->32 with bias, five
  depthwise-separable convs (dw 3x3 without bias, pw 1x1 with bias, nothing between them), an
  activation after each conv, 2x2 max pools after conv2/conv4/conv6, fc 1152->128->10. Its
  activation switch is `relu` or else SELU (so relu6 silently ran SELU): here the name is honoured.
- kuangliu/pytorch-cifar `models/mobilenet.py`: conv3x3/1 3->32 + BN + ReLU, 13 (dw + BN + ReLU,
  pw + BN + ReLU) blocks (stride 2 at 128, 256, 512, 1024), 2x2 avg pool, linear 1024->10.
- chenyaofo/pytorch-cifar-models `mobilenetv2.py`: torchvision's MobileNetV2 with the stem and
  the 24-channel stage at stride 1, last conv 1280 * max(1, width), dropout + linear.
- kuangliu `models/shufflenet.py` (G2, G3): 1x1 stem conv 3->24 + BN (no pool), units whose
  first 1x1 is ungrouped when its input has 24 channels, and whose bottleneck is a quarter of the
  unit's *own* output (out - in for the concatenating first unit), ReLU after the dw conv,
  avg pool 4, linear with bias. (`out_planes/4` is a float there; read as integer division.)
- megvii-model/ShuffleNet-Series `ShuffleNetV1/network.py` (g=3, 8 at 0.5x/1.0x/1.5x/2.0x):
  its stage_out_channels tables, conv3x3/2 + BN + ReLU, max pool, ShuffleV1 units (bottleneck
  = out // 4), avg pool 7, linear without bias.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def measure(model: nn.Module, channels: int, resolution: int) -> tuple[int, int]:
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, channels, resolution, resolution))
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() // 2


def _cbr(cin: int, cout: int, k: int, stride: int = 1, *, groups: int = 1,
         relu: nn.Module | None = None) -> list[nn.Module]:
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return layers + ([relu] if relu is not None else [])


# ----------------------------------------------------------------------------- seed 003

class Seed003CNN(nn.Module):
    """`full=True`: each depthwise-separable conv replaced by one full 3x3 conv with a bias."""

    def __init__(self, activation: str = "relu", full: bool = False):
        super().__init__()
        self.act = {"relu": nn.ReLU(), "relu6": nn.ReLU6(), "selu": nn.SELU()}[activation]
        widths = [(1, 32), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128)]
        convs = [nn.Conv2d(1, 32, 3, padding=1)]
        for cin, cout in widths[1:]:
            if full:
                convs.append(nn.Conv2d(cin, cout, 3, padding=1))
            else:
                convs.append(nn.Sequential(nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
                                           nn.Conv2d(cin, cout, 1)))
        self.convs = nn.ModuleList(convs)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1, self.fc2 = nn.Linear(128 * 3 * 3, 128), nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            x = self.act(conv(x))
            if i % 2 == 1:
                x = self.pool(x)
        return self.fc2(self.act(self.fc1(torch.flatten(x, 1))))


# ----------------------------------------------------------------------------- MobileNets

def kuangliu_mobilenet(num_classes: int = 10) -> nn.Module:
    layers = _cbr(3, 32, 3, 1, relu=nn.ReLU())
    cin = 32
    for cout, stride in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 \
            + [(1024, 2), (1024, 1)]:
        layers += _cbr(cin, cin, 3, stride, groups=cin, relu=nn.ReLU())
        layers += _cbr(cin, cout, 1, relu=nn.ReLU())
        cin = cout
    return nn.Sequential(*layers, nn.AvgPool2d(2), nn.Flatten(1), nn.Linear(1024, num_classes))


def _divisible(v: float, d: int = 8) -> int:
    new = max(d, int(v + d / 2) // d * d)
    return new + d if new < 0.9 * v else new


class _InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, t: int):
        super().__init__()
        hidden = int(round(cin * t))
        layers = _cbr(cin, hidden, 1, relu=nn.ReLU6()) if t != 1 else []
        layers += _cbr(hidden, hidden, 3, stride, groups=hidden, relu=nn.ReLU6()) + _cbr(hidden, cout, 1)
        self.body, self.skip = nn.Sequential(*layers), stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.skip else self.body(x)


def chenyaofo_mobilenet_v2(width: float, num_classes: int = 10) -> nn.Module:
    cin, last = _divisible(32 * width), _divisible(1280 * max(1.0, width))
    layers = _cbr(3, cin, 3, 1, relu=nn.ReLU6())
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1)]:
        cout = _divisible(c * width)
        for i in range(n):
            layers.append(_InvertedResidual(cin, cout, s if i == 0 else 1, t))
            cin = cout
    layers += _cbr(cin, last, 1, relu=nn.ReLU6())
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Dropout(0.2),
                         nn.Linear(last, num_classes))


# ----------------------------------------------------------------------------- ShuffleNets

class _ShuffleUnit(nn.Module):
    """Both references' unit: grouped 1x1, shuffle, dw 3x3 (stride), grouped 1x1, then add
    (stride 1) or concatenate the 3x3/2 avg-pooled input (stride 2)."""

    def __init__(self, cin: int, branch: int, mid: int, *, stride: int, g1: int, g: int,
                 dw_relu: bool):
        super().__init__()
        self.g1, self.stride = g1, stride
        self.pw1 = nn.Sequential(*_cbr(cin, mid, 1, groups=g1, relu=nn.ReLU()))
        self.dw = nn.Sequential(*_cbr(mid, mid, 3, stride, groups=mid, relu=nn.ReLU() if dw_relu else None))
        self.pw2 = nn.Sequential(*_cbr(mid, branch, 1, groups=g))
        self.pool = nn.AvgPool2d(3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pw1(x)
        n, c, h, w = out.shape
        out = out.view(n, self.g1, c // self.g1, h, w).transpose(1, 2).reshape(n, c, h, w)
        out = self.pw2(self.dw(out))
        if self.stride == 2:
            return torch.relu(torch.cat([out, self.pool(x)], 1))
        return torch.relu(out + x)


def kuangliu_shufflenet(groups: int, num_classes: int = 10) -> nn.Module:
    widths = {2: [200, 400, 800], 3: [240, 480, 960]}[groups]
    layers = _cbr(3, 24, 1, relu=nn.ReLU())
    cin = 24
    for cout, repeats in zip(widths, [4, 8, 4]):
        for i in range(repeats):
            branch = cout - cin if i == 0 else cout
            g1 = 1 if cin == 24 else groups
            layers.append(_ShuffleUnit(cin, branch, branch // 4, stride=2 if i == 0 else 1, g1=g1,
                                       g=groups, dw_relu=True))
            cin = cout
    return nn.Sequential(*layers, nn.AvgPool2d(4), nn.Flatten(1), nn.Linear(cin, num_classes))


MEGVII_CHANNELS = {  # (group, model size) -> stage_out_channels[1:] of network.py
    (3, "0.5x"): [12, 120, 240, 480], (3, "1.0x"): [24, 240, 480, 960],
    (3, "1.5x"): [24, 360, 720, 1440], (3, "2.0x"): [48, 480, 960, 1920],
    (8, "0.5x"): [16, 192, 384, 768], (8, "1.0x"): [24, 384, 768, 1536],
    (8, "1.5x"): [24, 576, 1152, 2304], (8, "2.0x"): [48, 768, 1536, 3072],
}


def megvii_shufflenet_v1(group: int, model_size: str, num_classes: int = 1000) -> nn.Module:
    stem, *widths = MEGVII_CHANNELS[(group, model_size)]
    layers = _cbr(3, stem, 3, 2, relu=nn.ReLU()) + [nn.MaxPool2d(3, 2, 1)]
    cin = stem
    for stage, (cout, repeats) in enumerate(zip(widths, [4, 8, 4])):
        for i in range(repeats):
            branch = cout - cin if i == 0 else cout
            g1 = 1 if stage == 0 and i == 0 else group
            layers.append(_ShuffleUnit(cin, branch, cout // 4, stride=2 if i == 0 else 1, g1=g1,
                                       g=group, dw_relu=False))
            cin = cout
    return nn.Sequential(*layers, nn.AvgPool2d(7), nn.Flatten(1),
                         nn.Linear(cin, num_classes, bias=False))
