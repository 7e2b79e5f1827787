"""A size limit no architecture of the space meets is refused before the search starts, in
one line with the smallest cost seen, instead of after hundreds of samples each recorded
INFEASIBLE (`max_macs=1` took 84 s to end with nothing trained)."""

from __future__ import annotations

from typing import Any, Callable

from nas.counting import count
from nas.errors import NasError
from nas.space import RandomChooser
from nas.table import millions

PROBES = 200  # random architectures counted (milliseconds each: nas.count runs no network)


def check_reachable(space: Any, to_spec: Callable[[dict[str, Any]], Any], limits: Any,
                    probes: int = PROBES) -> None:
    """Refuse `limits` (max_macs / max_params) when none of `probes` random architectures of
    `space` (its references first) meets them."""
    if limits.max_macs is None and limits.max_params is None:
        return
    points = [point for _, point in space.references]
    points += [space.sample(RandomChooser(seed)) for seed in range(probes)]
    smallest: tuple[float, float] | None = None
    for point in points:
        try:
            counted = count(to_spec(point))
        except NasError:
            continue
        if ((limits.max_macs is None or counted.macs <= limits.max_macs)
                and (limits.max_params is None or counted.params <= limits.max_params)):
            return
        smallest = min(smallest or (counted.macs, counted.params), (counted.macs, counted.params))
    seen = (f"; the smallest of {len(points)} sampled has {millions(smallest[0])} MACs,"
            f" {millions(smallest[1])} params" if smallest else "")
    limit = " and ".join(f"{k}={v:g}" for k, v in (("max_macs", limits.max_macs),
                                                   ("max_params", limits.max_params)) if v is not None)
    raise NasError(f"no architecture of space {space.name!r} meets {limit}{seen}; raise the limit")
