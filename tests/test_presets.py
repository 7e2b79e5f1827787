"""Presets reproduce the papers' published parameter and multiply-add counts."""

from __future__ import annotations

import pytest
import torch

import nas
from nas.plan import plan
from nas.presets import get_preset, preset_names

# Published numbers pinned here literally (the YAML `expected` rows are checked separately).
# (preset, overrides, exact params or None, MACs in millions, allowed relative MAC error)
PUBLISHED = [
    ("mobilenet_v1", {}, 4_231_976, 568.7, 0.0001),
    ("mobilenet_v1", {"width": 0.75}, None, 325, 0.002),
    ("mobilenet_v1", {"width": 0.5}, None, 149, 0.004),
    ("mobilenet_v1", {"width": 0.25}, None, 41, 0.012),
    ("mobilenet_v1", {"resolution": 192}, 4_231_976, 418, 0.002),
    ("mobilenet_v1", {"resolution": 160}, 4_231_976, 290, 0.003),
    ("mobilenet_v1", {"resolution": 128}, 4_231_976, 186, 0.003),
    ("mobilenet_v2", {}, 3_504_872, 300.8, 0.0001),
    ("shufflenet_v1_g1", {}, None, 143, 0.03),
    ("shufflenet_v1_g2", {}, None, 140, 0.03),
    ("shufflenet_v1_g3", {}, None, 137, 0.03),
    ("shufflenet_v1_g4", {}, None, 133, 0.03),
    ("shufflenet_v1_g8", {}, None, 137, 0.03),
]
# MobileNetV1 paper Table 6 parameter counts (millions, 1 decimal) by width.
V1_PARAMS_BY_WIDTH = {1.0: 4.2, 0.75: 2.6, 0.5: 1.3, 0.25: 0.5}


@pytest.mark.parametrize("name,overrides,params,macs_m,rel", PUBLISHED)
def test_published_counts(name, overrides, params, macs_m, rel):
    got = nas.count(nas.load_preset(name, **overrides))
    if params is not None:
        assert got.params == params
    assert abs(got.macs / 1e6 - macs_m) <= rel * macs_m, got.macs


@pytest.mark.parametrize("width,params_m", V1_PARAMS_BY_WIDTH.items())
def test_mobilenet_v1_params_by_width(width, params_m):
    assert round(nas.count(nas.load_preset("mobilenet_v1", width=width)).params / 1e6, 1) == params_m


def test_mobilenet_v1_full_conv_body_matches_table4():
    got = nas.count(nas.load_preset("mobilenet_v1", **{"stages.*.block": "conv"}))
    assert round(got.params / 1e6, 1) == 29.3
    assert abs(got.macs / 1e6 - 4866) / 4866 < 0.001


@pytest.mark.parametrize("name", preset_names())
def test_yaml_expected_rows_hold(name):
    preset = get_preset(name)
    for row in preset.expected:
        assert row.mismatches(nas.count(preset.spec(**row.overrides))) == []


def test_mobilenet_v2_matches_torchvision_layer_by_layer():
    torchvision = pytest.importorskip("torchvision")
    ours = nas.build_model(nas.load_preset("mobilenet_v2"))
    theirs = torchvision.models.mobilenet_v2()
    assert [tuple(p.shape) for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    # same number and kind of convolution groups, layer by layer
    conv_groups = lambda m: [c.groups for c in m.modules() if isinstance(c, torch.nn.Conv2d)]
    assert conv_groups(ours) == conv_groups(theirs)


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_runs_forward_at_its_sizes(name):
    spec = nas.load_preset(name)
    sizes = [32, 224] + ([28] if spec.input.channels == 1 else [])
    for resolution in sizes:
        s = nas.load_preset(name, resolution=resolution, num_classes=10)
        model = nas.build_model(s).eval()
        with torch.no_grad():
            out = model(torch.randn(2, s.input.channels, resolution, resolution))
        assert out.shape == (2, 10)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", [n for n in preset_names() if not n.endswith("cnn")])
def test_cifar_rule_gives_the_ports_final_map_and_keeps_paper_strides_at_224(name):
    small = plan(nas.load_preset(name, resolution=32))
    # kuangliu's MobileNetV1 ends on 2x2; the MobileNetV2 and ShuffleNet ports on 4x4
    assert small.stages[-1].out_size == (2 if name == "mobilenet_v1" else 4)
    big = plan(nas.load_preset(name))
    assert big.stages[-1].out_size == 7  # 224 / 32: every paper stride kept


def test_cifar_rule_drops_the_earliest_strides_first():
    p = plan(nas.load_preset("mobilenet_v2", resolution=32))
    assert p.stem.stride == 1
    strides = [s.units[0].stride for s in p.stages]
    assert strides == [1, 1, 2, 2, 1, 2, 1]  # the 24-channel stage lost its stride; the rest kept
    sh = plan(nas.load_preset("shufflenet_v1_g3", resolution=32))
    assert (sh.stem.stride, sh.stem.pool) == (1, False)
    assert [s.units[0].stride for s in sh.stages] == [2, 2, 2]
    v1 = plan(nas.load_preset("mobilenet_v1", resolution=32))  # kuangliu: only the stem stride goes
    assert v1.stem.stride == 1
    assert [s.units[0].stride for s in v1.stages] == [1, 2, 2, 2, 2]
    assert [s.out_size for s in v1.stages] == [32, 16, 8, 4, 2]


def test_preset_width_rounding_keeps_groups_valid():
    for g in (1, 2, 3, 4, 8):
        for width in (0.25, 0.5, 1.5, 2.0):
            p = plan(nas.load_preset(f"shufflenet_v1_g{g}", width=width))
            for stage in p.stages:
                for u in stage.units:
                    assert u.mid_ch % g == 0 and u.out_ch % 4 == 0


def test_mobilenet_v2_head_conv_grows_only_above_width_one():
    assert plan(nas.load_preset("mobilenet_v2", width=0.5)).head.conv_ch == 1280
    assert plan(nas.load_preset("mobilenet_v2", width=1.4)).head.conv_ch == 1792
