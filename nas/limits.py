"""Every size cap, stated once: per-field ranges (`nas.spec`'s checks) and whole-network caps checked
from the plan before anything is allocated; torch-free, importing only `nas.errors` (no cycle). The
whole-network caps are far above any net here (MobileNetV2 at 224: 3.5M params, 0.3 GMACs, a
1.2M-element largest map) and refuse what every field allows but the whole cannot (width 16 at 2048 px:
11 TMACs)."""

from __future__ import annotations

from typing import Any

from nas.errors import SpecError

# Per field (width 1e9 and repeats 1e6 are refused before any arithmetic).
MAX_CHANNELS = 16384  # also the cap on a width-scaled channel count
MAX_REPEATS = 64
MAX_STAGES = 32
MAX_KERNEL = 15
MAX_RESOLUTION = 2048
MAX_WIDTH = 16.0

# Whole network, per image.
MAX_PARAMS = 1_000_000_000  # 4 GB of float32 weights, before gradients and optimizer state
MAX_MACS = 1_000_000_000_000  # multiply-adds
MAX_MAP = 2**30  # elements of the largest feature map (4 GiB in float32)


def largest_map(net: Any) -> tuple[int, str]:
    """(elements, field path) of the biggest activation one image makes in `net` (a NetPlan); per
    block an upper bound: its widest channel count at its input size."""
    sizes = [(net.stem.in_ch * net.stem.in_size**2, "input"), (net.stem.out_ch * net.stem.conv_size**2, "stem")]
    sizes += [(max(u.in_ch, u.mid_ch, u.out_ch) * u.in_size**2, f"stages[{stage.index}]")
              for stage in net.stages for u in stage.units]
    if net.head.conv_ch:
        sizes.append((net.head.conv_ch * net.head.in_size**2, "head.conv"))
    return max(sizes)


def check_size(net: Any, counted: Any) -> None:
    """SpecError naming the largest part when `net` (a NetPlan) or its `nas.counting.Count` is over a cap."""
    for what, attr, cap, hint in (
            ("parameters", "params", MAX_PARAMS, "width, channels, repeats or head sizes"),
            ("multiply-adds per image", "macs", MAX_MACS,
             "input.resolution, width, channels or repeats")):
        total = getattr(counted, attr)
        if total > cap:
            worst = max(counted.parts, key=lambda part: getattr(part, attr)).name  # `s2` is `stages[2]`
            where = f"stages[{worst[1:]}]" if worst[:1] == "s" and worst[1:].isdigit() else worst
            raise SpecError(f"the network has {total:.3g} {what}, over the {cap:.0e} cap (most in"
                            f" {where}); lower {hint}")
    elements, where = largest_map(net)
    if elements > MAX_MAP:
        raise SpecError(f"{where} makes a {elements:.3g}-element feature map per image, over the"
                        f" {MAX_MAP:.3g} cap; lower input.resolution, width or channels")
