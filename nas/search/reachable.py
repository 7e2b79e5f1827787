"""A size limit no architecture of the space meets is refused before the search starts, in one line
with the smallest cost seen, not after hundreds of INFEASIBLE samples (`max_macs=1` took 84 s)."""

from __future__ import annotations

from typing import Any, Callable

from nas.counting import count
from nas.errors import NasError
from nas.space import RandomChooser
from nas.table import millions

PROBES = 200  # random architectures counted (milliseconds each: nas.count runs no network)


def check_reachable(space: Any, to_spec: Callable[[dict[str, Any]], Any], limits: Any,
                    probes: int = PROBES) -> None:
    """Refuse max_macs / max_params that none of `probes` random archs of `space` (references first) meets."""
    if limits.max_macs is None and limits.max_params is None:
        return
    points = [point for _, point in space.references]
    points += [space.sample(RandomChooser(seed)) for seed in range(probes)]
    sizes = []
    for point in points:
        try:
            counted = count(to_spec(point))
        except NasError:
            continue
        if max(limits.violations(counted.macs, counted.params)) <= 0:
            return
        sizes.append((counted.macs, counted.params))
    seen = (f"; the smallest of {len(points)} sampled has {millions(min(sizes)[0])} MACs,"
            f" {millions(min(sizes)[1])} params" if sizes else "")
    limit = " and ".join(f"{k}={v:g}" for k, v in (("max_macs", limits.max_macs),
                                                   ("max_params", limits.max_params)) if v is not None)
    raise NasError(f"no architecture of space {space.name!r} meets {limit}{seen}; raise the limit")
