"""Optuna's view of a `SearchSpace`: each choice a `trial.suggest_*` under its label (define-by-run,
so a conditional choice is never suggested when its condition fails)."""

from __future__ import annotations

from typing import Any, Sequence

from nas.space import option_key, same


class OptunaChooser:
    """`space.sample(OptunaChooser(trial))`. Optuna stores only None/bool/int/float/str: other
    options (lists, mappings) are suggested by their JSON text and decoded back."""

    def __init__(self, trial: Any):
        self.trial = trial

    def categorical(self, label: str, options: Sequence[Any]) -> Any:
        keys = [option_key(o) for o in options]
        picked = self.trial.suggest_categorical(label, keys)
        return next(o for o, k in zip(options, keys) if same(k, picked))

    def integer(self, label: str, low: int, high: int, step: int) -> int:
        return self.trial.suggest_int(label, low, high, step=step)

    def real(self, label: str, low: float, high: float, log: bool) -> float:
        return self.trial.suggest_float(label, low, high, log=log)


__all__ = ["OptunaChooser"]
