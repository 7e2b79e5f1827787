"""Each preset equals its reference implementation exactly, pinned literally: the 32-px CIFAR
ports (kuangliu's MobileNetV1, chenyaofo's MobileNetV2 at four widths), Megvii's official
ShuffleNet v1 at 224 px (g=3 and g=8, 0.5x-2.0x), and seed 003's CNN. The reference networks are
re-implemented in `tests/reference_nets.py` and counted by FlopCounterMode, so the pinned numbers
are checked against the references' layers as well as against `nas.count`."""

from __future__ import annotations

import json

import pytest

import nas
import reference_nets as ref
from nas.cli import main
from nas.plan import plan

CIFAR = {"resolution": 32, "num_classes": 10}

# (preset, overrides) -> (params, MACs) of the reference implementation, exactly.
PINNED = [
    ("mobilenet_v1", CIFAR, 3_217_226, 46_354_432, lambda: ref.kuangliu_mobilenet(), (3, 32)),
    # chenyaofo publishes 0.70M / 27.97M, 1.37M / 59.31M, 2.24M / 87.98M, 4.33M / 170.07M
    ("mobilenet_v2", {**CIFAR, "width": 0.5}, 700_490, 27_969_024,
     lambda: ref.chenyaofo_mobilenet_v2(0.5), (3, 32)),
    ("mobilenet_v2", {**CIFAR, "width": 0.75}, 1_368_234, 59_310_080,
     lambda: ref.chenyaofo_mobilenet_v2(0.75), (3, 32)),
    ("mobilenet_v2", CIFAR, 2_236_682, 87_976_448, lambda: ref.chenyaofo_mobilenet_v2(1.0), (3, 32)),
    ("mobilenet_v2", {**CIFAR, "width": 1.4}, 4_333_706, 170_073_344,
     lambda: ref.chenyaofo_mobilenet_v2(1.4), (3, 32)),
    # Megvii's README: g=3 0.7M/38M, 1.9M/138M, 3.4M/292M, 5.4M/524M; g=8 1.0M/40M, 2.4M/138M,
    # 4.3M/290M, 6.5M/522M
    ("shufflenet_v1_g3", {"width": 0.5}, 717_324, 37_589_856,
     lambda: ref.megvii_shufflenet_v1(3, "0.5x"), (3, 224)),
    ("shufflenet_v1_g3", {}, 1_864_728, 137_460_672, lambda: ref.megvii_shufflenet_v1(3, "1.0x"), (3, 224)),
    ("shufflenet_v1_g3", {"width": 1.5}, 3_441_168, 292_443_552,
     lambda: ref.megvii_shufflenet_v1(3, "1.5x"), (3, 224)),
    ("shufflenet_v1_g3", {"width": 2.0}, 5_449_776, 524_045_184,
     lambda: ref.megvii_shufflenet_v1(3, "2.0x"), (3, 224)),
    ("shufflenet_v1_g8", {"width": 0.5}, 1_010_448, 40_469_760,
     lambda: ref.megvii_shufflenet_v1(8, "0.5x"), (3, 224)),
    ("shufflenet_v1_g8", {}, 2_433_768, 138_365_952, lambda: ref.megvii_shufflenet_v1(8, "1.0x"), (3, 224)),
    ("shufflenet_v1_g8", {"width": 1.5}, 4_268_952, 290_188_800,
     lambda: ref.megvii_shufflenet_v1(8, "1.5x"), (3, 224)),
    ("shufflenet_v1_g8", {"width": 2.0}, 6_521_232, 521_942_016,
     lambda: ref.megvii_shufflenet_v1(8, "2.0x"), (3, 224)),
    ("dsc_cnn", {}, 184_234, 4_065_600, lambda: ref.Seed003CNN(), (1, 28)),
    ("plain_cnn", {}, 435_306, 29_275_904, lambda: ref.Seed003CNN(full=True), (1, 28)),
]
IDS = [f"{name}-{'-'.join(f'{k}{v}' for k, v in ov.items()) or 'default'}" for name, ov, *_ in PINNED]


def summary_json(capsys, name: str, overrides: dict) -> dict:
    words = ["summary", f"preset={name}", *(f"{k}={v}" for k, v in overrides.items()), "--json"]
    assert main(words) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name,overrides,params,macs,reference,shape", PINNED, ids=IDS)
def test_preset_equals_its_reference_exactly(capsys, name, overrides, params, macs, reference, shape):
    got = summary_json(capsys, name, overrides)
    assert (got["params"], got["macs"]) == (params, macs)
    assert ref.measure(reference(), *shape) == (params, macs)


def test_seed_cnn_counts_by_hand():
    # conv1 + five (dw, pw) + fc1 + fc2; biases on conv1, every pw and both fcs
    params = (9 * 32 + 32) + sum(9 * cin + cin * cout + cout for cin, cout in
                                 [(32, 32), (32, 64), (64, 64), (64, 128), (128, 128)]) \
        + (1152 * 128 + 128) + (128 * 10 + 10)
    macs = 28 * 28 * 32 * 9 + sum(side * side * (9 * cin + cin * cout) for side, cin, cout in
                                  [(28, 32, 32), (14, 32, 64), (14, 64, 64), (7, 64, 128), (7, 128, 128)]) \
        + 1152 * 128 + 128 * 10
    assert (params, macs) == (184_234, 4_065_600)


# kuangliu's ShuffleNet G2/G3 CIFAR port has the same strides and feature maps as ours at 32 px
# (the stem conv and pool strides dropped, stages at 16/8/4) but not the same counts: its stem is
# a 1x1 conv, the bottleneck of each stage's first (concatenating) unit is (out - in)/4 instead
# of the paper's and Megvii's out/4, and its classifier has a bias. We follow Megvii's unit.
SHUFFLE_32 = {2: (940_848, 43_743_552, 887_582, 39_614_080), 3: (914_328, 42_590_592, 862_768, 38_605_056)}


@pytest.mark.parametrize("groups", [2, 3])
def test_shufflenet_32px_against_kuangliu(capsys, groups):
    ours_params, ours_macs, their_params, their_macs = SHUFFLE_32[groups]
    got = summary_json(capsys, f"shufflenet_v1_g{groups}", CIFAR)
    assert (got["params"], got["macs"]) == (ours_params, ours_macs)
    assert ref.measure(ref.kuangliu_shufflenet(groups), 3, 32) == (their_params, their_macs)
    net = plan(nas.load_preset(f"shufflenet_v1_g{groups}", **CIFAR))
    assert (net.stem.stride, net.stem.pool, [s.out_size for s in net.stages]) == (1, False, [16, 8, 4])
