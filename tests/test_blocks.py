"""Block semantics: channel shuffle, residual rules, linear bottleneck, ShuffleNet details."""

from __future__ import annotations

import torch
from torch import nn

import nas
from nas.blocks import InvertedResidual, ShuffleUnit, channel_shuffle
from nas.plan import plan


def test_channel_shuffle_is_a_permutation_and_g_then_c_over_g_restores():
    x = torch.arange(2 * 12 * 2 * 2, dtype=torch.float32).view(2, 12, 2, 2)
    y = channel_shuffle(x, 3)
    # a permutation of channels: every input channel appears exactly once
    assert sorted(y[0, :, 0, 0].tolist()) == sorted(x[0, :, 0, 0].tolist())
    order = (y[0, :, 0, 0] / 4).long().tolist()
    assert order == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]  # (g, c/g) transposed to (c/g, g)
    assert torch.equal(channel_shuffle(y, 12 // 3), x)


def test_shuffle_can_be_turned_off():
    spec = nas.load_preset("shufflenet_v1_g3", resolution=32, **{"stages.*.shuffle": False})
    assert not any(u.shuffle for s in plan(spec).stages for u in s.units)
    assert all(u.shuffle for s in plan(nas.load_preset("shufflenet_v1_g3")).stages for u in s.units)


def test_shufflenet_first_pointwise_is_not_grouped_and_stride2_concats():
    model = nas.build_model(nas.load_preset("shufflenet_v1_g3"))
    first = model.features.s0[0]
    assert isinstance(first, ShuffleUnit)
    assert first.conv_pw.groups == 1 and first.conv_pwl.groups == 3
    assert model.features.s0[1].conv_pw.groups == 3
    assert first.concat and isinstance(first.shortcut, nn.AvgPool2d)
    assert first.conv_pwl.out_channels == 240 - 24
    assert model.features.s1[1].residual and not model.features.s1[1].concat


def test_inverted_residual_rules():
    model = nas.build_model(nas.load_preset("mobilenet_v2"))
    first = model.features.s0[0]  # t=1: no expansion conv
    assert isinstance(first, InvertedResidual) and isinstance(first.conv_pw, nn.Identity)
    assert first.conv_dw.groups == first.conv_dw.in_channels == 32
    assert isinstance(first.act3, nn.Identity)  # linear bottleneck
    assert isinstance(first.act2, nn.ReLU6)
    residual = [b.residual for s in list(model.features)[1:-1] for b in s]
    # stride 1 and in == out: the second+ blocks of each stage, never the first
    assert residual == [False, False, True, False, True, True, False, True, True, True,
                        False, True, True, False, True, True, False]


def test_proj_act_and_residual_knobs_change_the_block():
    relu6 = nas.build_model(nas.load_preset("mobilenet_v2", **{"stages.*.proj_act": "relu6"}))
    assert isinstance(relu6.features.s1[0].act3, nn.ReLU6)
    noskip = plan(nas.load_preset("mobilenet_v2", **{"stages.*.residual": False}))
    assert not any(u.residual for s in noskip.stages for u in s.units)


def test_depthwise_separable_uses_groups_and_conv_twin_does_not():
    ds = nas.build_model(nas.load_preset("mobilenet_v1"))
    block = ds.features.s1[0]
    assert block.conv_dw.groups == block.conv_dw.in_channels
    conv = nas.build_model(nas.load_preset("mobilenet_v1", **{"stages.*.block": "conv"}))
    assert conv.features.s1[0].conv.groups == 1


def test_activation_knob_reaches_every_layer():
    model = nas.build_model(nas.load_preset("dsc_cnn", act="selu"))
    kinds = {type(m) for m in model.modules() if isinstance(m, (nn.ReLU, nn.SELU, nn.ReLU6))}
    assert kinds == {nn.SELU}


def test_dsc_cnn_matches_the_seed_layout_at_28x28():
    p = plan(nas.load_preset("dsc_cnn"))
    assert [s.out_size for s in p.stages] == [14, 7, 3]
    assert p.head.flat_features == 128 * 3 * 3  # the seed's fc1 input
    assert p.head.hidden == (128,)


def test_dsc_cnn_is_the_seed_network_layer_by_layer():
    model = nas.build_model(nas.load_preset("dsc_cnn"))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    # conv1 (bias), then per ds block: dw (no bias, groups=in) and pw (bias)
    assert [(c.groups > 1, c.bias is not None) for c in convs] == [(False, True)] + [(True, False), (False, True)] * 5
    block = model.features.s1[0]
    assert isinstance(block.act1, nn.Identity) and isinstance(block.act2, nn.ReLU)  # nothing between dw and pw
    plain = nas.build_model(nas.load_preset("plain_cnn"))
    assert all(c.groups == 1 and c.bias is not None for c in plain.modules() if isinstance(c, nn.Conv2d))


def test_shufflenet_stem_follows_megvii_tables():
    # Megvii's stage_out_channels[1]: 12/16 at 0.5x (g=3/g=8), 24 at 1x and 1.5x, 48 at 2x
    for g, expected in ((3, [12, 24, 24, 48]), (8, [16, 24, 24, 48])):
        stems = [plan(nas.load_preset(f"shufflenet_v1_g{g}", width=w)).stem.out_ch for w in (0.5, 1.0, 1.5, 2.0)]
        assert stems == expected
    outs = [s.out_ch for s in plan(nas.load_preset("shufflenet_v1_g3", width=1.5)).stages]
    assert outs == [360, 720, 1440]
