"""Spec -> plain PyTorch `nn.Module`: stem, stages of registered blocks, head."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from nas.blocks import BLOCKS, conv, make_act, norm
from nas.counting import count_plan
from nas.limits import check_size
from nas.plan import HeadPlan, NetPlan, StagePlan, StemPlan, plan
from nas.spec import NetSpec

POOLS = {"avg": nn.AdaptiveAvgPool2d, "max": nn.AdaptiveMaxPool2d}
STAGE_POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


def _stem(p: StemPlan) -> nn.Sequential:
    layers = [conv(p.in_ch, p.out_ch, p.kernel, p.stride, bias=p.bias), norm(p.out_ch, p.bn),
              make_act(p.act)]
    if p.pool:
        layers.append(nn.MaxPool2d(3, 2, 1))
    return nn.Sequential(*layers)


def _stage(p: StagePlan) -> nn.Sequential:
    pool = [STAGE_POOLS[p.pool](2, 2)] if p.pool != "none" else []
    return nn.Sequential(*(BLOCKS[u.block](u) for u in p.units), *pool)


def _head_features(p: HeadPlan) -> nn.Module:
    if not p.conv_ch:
        return nn.Identity()
    return nn.Sequential(conv(p.in_ch, p.conv_ch, 1), nn.BatchNorm2d(p.conv_ch), make_act(p.act))


def _classifier(p: HeadPlan) -> nn.Sequential:
    layers: list[nn.Module] = [POOLS[p.pool](p.pool_size), nn.Flatten(1)]
    features = p.flat_features
    for width in p.hidden:
        layers += [nn.Linear(features, width, bias=p.bias), make_act(p.act)]
        features = width
    if p.dropout > 0:
        layers.append(nn.Dropout(p.dropout))
    layers.append(nn.Linear(features, p.num_classes, bias=p.bias))
    return nn.Sequential(*layers)


class Net(nn.Module):
    """`features` (stem, stages, head conv) then `classifier` (pool, flatten, FCs), like torchvision."""

    def __init__(self, net_plan: NetPlan):
        super().__init__()
        self.spec = net_plan.spec
        self.features = nn.Sequential(OrderedDict([
            ("stem", _stem(net_plan.stem)), *((f"s{stage.index}", _stage(stage)) for stage in net_plan.stages),
            ("head_conv", _head_features(net_plan.head))]))
        self.classifier = _classifier(net_plan.head)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def init_weights(model: nn.Module) -> None:
    """torchvision's MobileNet init (kaiming fan-out convs, unit BN, small normal linear), and
    every block with an identity shortcut starts as the identity: its last BN scale is zero
    (Goyal et al. 2017). Without it, ShuffleNet's stacked shortcuts feed the classifier large
    features and the first SGD steps blow the logits up."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for m in model.modules():
        if getattr(m, "residual", False) and isinstance(m.last_bn, nn.BatchNorm2d):
            nn.init.zeros_(m.last_bn.weight)


def build_model(spec: NetSpec) -> Net:
    """Validate and build; raises SpecError (one line, names the field) for an invalid spec or
    one over the size caps (`nas.limits.check_size`), before any tensor is allocated."""
    net_plan = plan(spec)
    check_size(net_plan, count_plan(net_plan))
    return Net(net_plan)
