"""Drawing a point of a search space: the `Chooser` protocol a searcher implements (one value per
choice, asked in order) and `RandomChooser`, the seeded uniform one (the time estimate draws
typical points with it; Optuna's define-by-run chooser is `nas.search.optuna_choices`)."""

from __future__ import annotations

import math
import random
from typing import Any, Protocol, Sequence


class Chooser(Protocol):
    """What a searcher provides: one value per call, named by the choice's label."""

    def categorical(self, label: str, options: Sequence[Any]) -> Any: ...

    def integer(self, label: str, low: int, high: int, step: int) -> int: ...

    def real(self, label: str, low: float, high: float, log: bool) -> float: ...


class RandomChooser:
    """Uniform random sampling, reproducible from `seed` (log-uniform for `log` ranges)."""

    def __init__(self, seed: int | None = 0):
        self.rng = random.Random(seed)

    def categorical(self, label: str, options: Sequence[Any]) -> Any:
        return options[self.rng.randrange(len(options))]

    def integer(self, label: str, low: int, high: int, step: int) -> int:
        return self.rng.randrange(low, high + 1, step)

    def real(self, label: str, low: float, high: float, log: bool) -> float:
        if log:
            return math.exp(self.rng.uniform(math.log(low), math.log(high)))
        return self.rng.uniform(low, high)
