"""Test helper: a Ray Tune `param_space` for a `SearchSpace` (Tune's own random search), kept
beside the tests that check both samplers agree on a space; the product samples through Optuna
(`nas.search.adapters.OptunaChooser`).

Ray resolves a whole `param_space` dict: a conditional choice is a `tune.sample_from` that reads
the values already sampled and returns None when its condition fails (`to_spec` ignores None).
Its value is drawn from a hidden ordinary domain under `_draws`, so Ray's seeded variant
generator reproduces it; keys starting with `_` are bookkeeping that `to_spec` ignores as well.
"""

from __future__ import annotations

from typing import Any, Mapping

from nas.space import Choice, SearchSpace

DRAWS = "_draws"  # the hidden draws behind conditional choices




def _domain(choice: Choice) -> Any:
    from ray import tune

    if choice.kind == "categorical":
        return tune.choice(list(choice.options))
    if choice.kind == "int":
        low, high, step = int(choice.low), int(choice.high), int(choice.step or 1)
        if step == 1:
            return tune.randint(low, high + 1)  # Ray's upper bound is exclusive
        return tune.choice(list(range(low, high + 1, step)))
    if choice.log:
        return tune.loguniform(choice.low, choice.high)
    return tune.uniform(choice.low, choice.high)


def _resolved(config: Mapping[str, Any], key: str) -> Any:
    """`config[key]` once Ray has sampled it; while it is still a domain, Ray's
    RecursiveDependencyError makes the variant generator come back in a later pass."""
    from ray.tune.search.sample import Domain
    from ray.tune.search.variant_generator import RecursiveDependencyError

    value = dict.get(config, key)  # plain dict access: Ray's guard would only wrap attributes
    if isinstance(value, Domain):
        raise RecursiveDependencyError(f"{key} is not sampled yet")
    return value


class _Conditional:
    """A `tune.sample_from` function: the hidden draw when `choice.when` holds, else None."""

    def __init__(self, choice: Choice):
        self.choice = choice

    def __call__(self, spec: Mapping[str, Any]) -> Any:
        # Ray passes the trial's config (newer) or the whole experiment spec {"config": ...}.
        config = spec if DRAWS in spec else dict.get(spec, "config", spec)
        parents = {label: _resolved(config, label) for label in self.choice.when}
        if not self.choice.active(parents):
            return None
        return _resolved(_resolved(config, DRAWS), self.choice.label)


def ray_param_space(space: SearchSpace) -> dict[str, Any]:
    """A Ray Tune `param_space` sampling `space`: `tune.choice` / `tune.randint` / `tune.uniform`
    / `tune.loguniform` per unconditional choice, a `tune.sample_from` per conditional one.
    Resolve it with Tune's default random search (BasicVariantGenerator; Ray's other searchers
    cannot convert `sample_from`), then `space.to_spec(config)`."""
    from ray import tune

    params: dict[str, Any] = {}
    draws: dict[str, Any] = {}
    for choice in space.choices:
        if choice.when:
            draws[choice.label] = _domain(choice)
            params[choice.label] = tune.sample_from(_Conditional(choice))
        else:
            params[choice.label] = _domain(choice)
    if draws:
        params[DRAWS] = draws
    return params


def from_ray(config: Mapping[str, Any]) -> dict[str, Any]:
    """The sampled point in a resolved Ray config: choices that exist, no bookkeeping keys."""
    return {k: v for k, v in config.items() if v is not None and not str(k).startswith("_")}


__all__ = ["DRAWS", "from_ray", "ray_param_space"]
